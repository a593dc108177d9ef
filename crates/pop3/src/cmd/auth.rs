//! USER/PASS (RFC 1939 §7) and AUTH PLAIN (RFC 5034, RFC 4616), and the login they share:
//! check the credentials, open the account, take the maildrop lock, snapshot the INBOX.

use crate::backend::{Backend, MailAccount};
use crate::error::Pop3Error;
use crate::maildrop::Maildrop;
use crate::proto::{Reply, SASL_CONTINUE};
use crate::replies;
use crate::session::{Authorization, Flow, Input, Session};
use tern_directory::DirectoryError;
use tern_directory::sasl::{self, SaslError};

/// The only SASL mechanism offered: PLAIN needs TLS (or loopback in `--dev`), like USER.
const MECHANISMS: [&str; 1] = ["PLAIN"];

/// Where an authentication command leaves the session.
pub enum Step<A: MailAccount> {
    /// Still in AUTHORIZATION.
    Stay,
    /// Too many failures, or the client went away.
    Close,
    /// Logged in: the session enters TRANSACTION with this maildrop.
    LoggedIn(Maildrop<A>),
}

/// USER: remembers the name for PASS.
pub fn user<B: Backend>(s: &mut Session<'_, B>, auth: &mut Authorization, name: String) -> Flow {
    if !s.plaintext_auth_allowed() {
        s.send(&replies::AUTH_NEEDS_TLS);
        return Flow::Continue;
    }
    auth.user = Some(name);
    s.send(&replies::USER_OK);
    Flow::Continue
}

/// PASS: logs in with the name from USER.
pub async fn pass<B: Backend>(
    s: &mut Session<'_, B>,
    auth: &mut Authorization,
    password: String,
) -> Result<Step<B::Account>, Pop3Error> {
    if !s.plaintext_auth_allowed() {
        s.send(&replies::AUTH_NEEDS_TLS);
        return Ok(Step::Stay);
    }
    // RFC 1939 §7: whatever PASS answers, the next attempt starts again with USER.
    let Some(user) = auth.user.take() else {
        s.send(&replies::PASS_WITHOUT_USER);
        return Ok(Step::Stay);
    };
    login(s, auth, &user, &password).await
}

/// AUTH: lists the mechanisms without an argument, else runs PLAIN with the initial response
/// or one continuation round.
pub async fn auth<B: Backend>(
    s: &mut Session<'_, B>,
    auth: &mut Authorization,
    mechanism: Option<String>,
    initial: Option<String>,
) -> Result<Step<B::Account>, Pop3Error> {
    let Some(mechanism) = mechanism else {
        // Listing is harmless, but offering nothing where PLAIN would be refused matches CAPA.
        let offered: &[&str] = if s.plaintext_auth_allowed() {
            &MECHANISMS
        } else {
            &[]
        };
        s.send_multiline(&replies::AUTH_MECHANISMS, offered).await?;
        return Ok(Step::Stay);
    };
    if !MECHANISMS.contains(&mechanism.as_str()) {
        s.send(&replies::UNSUPPORTED_MECHANISM);
        return Ok(Step::Stay);
    }
    if !s.plaintext_auth_allowed() {
        s.send(&replies::AUTH_NEEDS_TLS);
        return Ok(Step::Stay);
    }
    let response = match initial {
        Some(response) => response,
        None => {
            s.conn.write(SASL_CONTINUE);
            match s.read_line().await {
                Input::Line(line) => String::from_utf8_lossy(&line).into_owned(),
                Input::TooLong => return Ok(fail(s, auth, &replies::SASL_MALFORMED)),
                Input::Closed => return Ok(Step::Close),
                Input::Shutdown => {
                    s.send(&replies::SHUTTING_DOWN);
                    return Ok(Step::Close);
                }
            }
        }
    };
    // RFC 5034 §4: a lone `*` cancels the exchange.
    if response.trim() == "*" {
        s.send(&replies::AUTH_CANCELLED);
        return Ok(Step::Stay);
    }
    match sasl::decode_plain(response.trim()) {
        Ok((user, password)) => login(s, auth, &user, &password).await,
        Err(SaslError::Cancelled) => {
            s.send(&replies::AUTH_CANCELLED);
            Ok(Step::Stay)
        }
        Err(SaslError::Base64 | SaslError::Malformed) => {
            Ok(fail(s, auth, &replies::SASL_MALFORMED))
        }
    }
}

/// Checks the credentials and opens the maildrop.
async fn login<B: Backend>(
    s: &mut Session<'_, B>,
    auth: &mut Authorization,
    user: &str,
    password: &str,
) -> Result<Step<B::Account>, Pop3Error> {
    let backend = s.backend;
    let checking = backend.authenticate(s.conn.peer.ip(), user, password);
    // A client that hangs up meanwhile is not worth the password hash.
    let Some(checked) = s.conn.unless_hung_up(checking).await else {
        return Ok(Step::Close);
    };
    let info = match checked {
        Ok(info) => info,
        Err(DirectoryError::Throttled) => {
            tracing::warn!(?user, "authentication refused: too many failed logins");
            return Ok(fail(s, auth, &replies::THROTTLED));
        }
        Err(
            DirectoryError::AuthFailed
            | DirectoryError::InvalidAddress(_)
            | DirectoryError::Rejected(_),
        ) => {
            // Debug formatting escapes whatever a SASL response smuggled into the name.
            tracing::info!(?user, "authentication failed");
            return Ok(fail(s, auth, &replies::INVALID_CREDENTIALS));
        }
        Err(source) => {
            return Err(Pop3Error::Directory {
                user: user.to_string(),
                source,
            });
        }
    };
    let open_error = |source| Pop3Error::Open {
        account: info.id,
        source,
    };
    let account = match s.backend.open(&info).await {
        Ok(account) => account,
        Err(tern_mailbox::MailboxError::Elsewhere(group)) => {
            let upstream = s
                .backend
                .relay(&info, s.conn.peer)
                .await
                .map_err(open_error)?;
            tracing::Span::current().record("user", info.address.as_str());
            tracing::info!(%group, "logged in; relayed to the account's node");
            s.relay = Some(upstream);
            return Ok(Step::Close);
        }
        Err(e) => return Err(open_error(e)),
    };
    // Lock first, then snapshot: the snapshot must not miss an expunge by a session that was
    // still holding the lock.
    let lock = account.lock_maildrop().await.map_err(open_error)?;
    let snapshot = account.inbox().await.map_err(open_error)?;
    let maildrop = Maildrop::new(account, lock, snapshot);
    let (count, octets) = maildrop.stat();
    tracing::Span::current().record("user", info.address.as_str());
    tracing::info!(count, octets, "logged in");
    s.send(&replies::maildrop(count, octets));
    Ok(Step::LoggedIn(maildrop))
}

/// Counts a failed attempt and answers with `reply`; at the limit the answer says so and the
/// connection closes, so a password guesser gets only a few tries per TCP handshake.
fn fail<B: Backend>(
    s: &mut Session<'_, B>,
    auth: &mut Authorization,
    reply: &Reply,
) -> Step<B::Account> {
    auth.failures = auth.failures.saturating_add(1);
    if auth.failures >= s.cfg.limits.max_auth_failures {
        s.send(&replies::TOO_MANY_FAILURES);
        Step::Close
    } else {
        s.send(reply);
        Step::Stay
    }
}
