//! One IMAP connection: reading commands (with their literals), the state gate, the
//! authentication commands, and the response plumbing every handler uses.

use crate::ImapContext;
use crate::proto::{self, Command, Tagged};
use crate::view::{RecentFrom, View};
use std::sync::Arc;
use std::time::Duration;
use tern_core::Uid;
use tern_core::net::{Connection, ReadError};
use tern_core::ops::Rejection;
use tern_directory::{DirectoryError, sasl};
use tern_mailbox::relay::RelayStream;
use tern_mailbox::{
    Account, MailboxError, RelayProtocol, RelayRefusal, RelayRequest, Snapshot, status_line,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Largest literal accepted outside APPEND.
const MAX_COMMAND_LITERAL: u64 = 64 * 1024;
/// Largest literal, and command with its literals, accepted before login: enough for any
/// user name and password, too small to make an anonymous client cost memory.
const MAX_LITERAL_BEFORE_LOGIN: u64 = 8 * 1024;
/// Output queued beyond this is sent before more is built (see [`Session::flush_if_large`]).
const OUTPUT_FLUSH_BYTES: usize = 256 * 1024;
/// Longest command line (each line of a command with literals), Dovecot's default: long
/// enough for a UID set of thousands of ranges or an ID with long values.
const MAX_COMMAND_LINE: usize = 64 * 1024;
/// Consecutive unparseable commands before the connection is closed.
const MAX_BAD_COMMANDS: u32 = 20;

const CAPS_COMMON: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN STATUS=SIZE CONDSTORE QRESYNC QUOTA QUOTA=RES-STORAGE BINARY ESEARCH SEARCHRES SORT SORT=DISPLAY ESORT THREAD=REFERENCES THREAD=ORDEREDSUBJECT";
/// Advertised once logged in: COMPRESS is a command of the authenticated state.
const CAPS_AUTHENTICATED: &str = "COMPRESS=DEFLATE";

/// What the command loop does next.
pub(crate) enum Flow {
    Continue,
    Close,
    /// Logged in, and the account's mail is on another node: the session continues there,
    /// this node only copies bytes (see `tern_mailbox::relay`).
    Relay(Box<RelayStream>),
}

/// How a read of the next command ended.
enum Input {
    Command(Vec<u8>),
    /// Already answered (literal too large, line too long).
    Answered,
    Eof,
    Close,
}

/// A session's state.
pub struct Session {
    pub(crate) conn: Connection,
    pub(crate) ctx: Arc<ImapContext>,
    pub(crate) account: Option<Account>,
    pub(crate) selected: Option<View>,
    pub(crate) out: Vec<u8>,
    auth_failures: u32,
    pub(crate) shutdown: CancellationToken,
    /// The client enabled IMAP4rev2 (RFC 9051 §6.3.1): no `\Recent`, no RECENT responses.
    pub(crate) rev2: bool,
    /// CONDSTORE is on (RFC 7162 §3.1): flag changes are reported with their MODSEQ.
    pub(crate) condstore: bool,
    /// QRESYNC is enabled (RFC 7162 §3.2): expunges are reported as VANISHED.
    pub(crate) qresync: bool,
}

/// Serves one IMAP connection until LOGOUT, disconnect, timeout or shutdown.
pub async fn run_session(conn: Connection, ctx: Arc<ImapContext>, shutdown: CancellationToken) {
    let span = tracing::info_span!("imap", peer = %conn.peer, user = tracing::field::Empty);
    let mut session = Session {
        conn,
        ctx,
        account: None,
        selected: None,
        out: Vec::new(),
        auth_failures: 0,
        shutdown,
        rev2: false,
        condstore: false,
        qresync: false,
    };
    async move {
        match session.run().await {
            Ok(Some(upstream)) => {
                let Session { conn, shutdown, .. } = session;
                if let Err(e) = conn.relay(upstream, shutdown.cancelled_owned()).await {
                    tracing::debug!(error = %e, "relayed session ended with an I/O error");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "session ended with an I/O error"),
        }
    }
    .instrument(span)
    .await
}

/// Serves, on `conn`, a session another node relays here after `address` logged in there
/// with the command tagged `tag` (see `tern_mailbox::relay`): opens the account, sends the
/// relay status line, answers the login, then serves the client as [`run_session`] does.
pub async fn run_relayed_session(
    mut conn: Connection,
    ctx: Arc<ImapContext>,
    info: tern_directory::AccountInfo,
    tag: String,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("imap", peer = %conn.peer, user = %info.address, relayed = true);
    async move {
        let account = match ctx.mailboxes.open(&info).await {
            Ok(account) => account,
            Err(e) => {
                tracing::info!(error = %e, "relayed session refused");
                conn.write(status_line(Err(RelayRefusal::from_error(&e))).as_bytes());
                let _ = conn.shutdown().await;
                return;
            }
        };
        conn.write(status_line(Ok(())).as_bytes());
        tracing::info!("logged in (relayed)");
        let mut session = Session {
            conn,
            ctx,
            account: Some(account),
            selected: None,
            out: Vec::new(),
            auth_failures: 0,
            shutdown,
            rev2: false,
            condstore: false,
            qresync: false,
        };
        let caps = session.capabilities();
        session.tagged(&tag, &format!("OK [CAPABILITY {caps}] Logged in"));
        session.emit();
        // A relayed session is not relayed again: its account is here.
        if let Err(e) = session.serve().await {
            tracing::debug!(error = %e, "session ended with an I/O error");
        }
    }
    .instrument(span)
    .await
}

/// The tag of a command from its first bytes: the first word, when it is a valid tag and the
/// command goes on after it.
fn tag_of(head: &[u8]) -> Option<String> {
    let space = head.iter().position(|&b| b == b' ')?;
    let tag = std::str::from_utf8(&head[..space]).ok()?;
    let valid = !tag.is_empty()
        && tag
            .bytes()
            .all(|b| b > 0x20 && b < 0x7f && !b"(){%*\"\\+".contains(&b));
    valid.then(|| tag.to_string())
}

/// The `NO` response code for a mailbox error (RFC 5530).
pub(crate) fn no_for(e: &MailboxError) -> String {
    match e {
        MailboxError::Rejected(r) => {
            let code = match r {
                Rejection::NoSuchMailbox => "NONEXISTENT",
                Rejection::MailboxExists => "ALREADYEXISTS",
                Rejection::OverQuota => "OVERQUOTA",
                _ => "CANNOT",
            };
            format!("NO [{code}] {r}")
        }
        MailboxError::InUse => "NO [INUSE] mailbox in use".into(),
        MailboxError::MissingBlob(_) => "NO [SERVERBUG] message body missing".into(),
        other => {
            tracing::warn!(error = %other, "mailbox temporarily unavailable");
            "NO [UNAVAILABLE] temporarily unavailable, try again".into()
        }
    }
}

impl Session {
    /// Queues an untagged or continuation line.
    pub(crate) fn untagged(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Queues the tagged completion.
    pub(crate) fn tagged(&mut self, tag: &str, status: &str) {
        self.out
            .extend_from_slice(format!("{tag} {status}\r\n").as_bytes());
    }

    /// Moves queued output to the connection.
    pub(crate) fn emit(&mut self) {
        if !self.out.is_empty() {
            self.conn.write(&self.out);
            self.out.clear();
            self.out.shrink_to(OUTPUT_FLUSH_BYTES);
        }
    }

    /// Sends queued output once it passes [`OUTPUT_FLUSH_BYTES`], so a long response (FETCH of
    /// a whole mailbox) goes out as it is built, at the pace the client reads it, instead of
    /// being assembled in memory first.
    pub(crate) async fn flush_if_large(&mut self) -> std::io::Result<()> {
        if self.out.len() >= OUTPUT_FLUSH_BYTES {
            self.emit();
            self.conn.flush().await?;
        }
        Ok(())
    }

    fn capabilities(&self) -> String {
        let mut caps = CAPS_COMMON.to_string();
        caps.push_str(&format!(
            " APPENDLIMIT={}",
            self.ctx.limits.max_message_size
        ));
        if self.account.is_some() {
            caps.push(' ');
            caps.push_str(CAPS_AUTHENTICATED);
        }
        if self.account.is_none() {
            if self.ctx.tls.is_some() && !self.conn.is_tls() {
                caps.push_str(" STARTTLS");
            }
            if self.login_allowed() {
                caps.push_str(" AUTH=PLAIN");
            } else {
                caps.push_str(" LOGINDISABLED");
            }
        }
        caps
    }

    fn login_allowed(&self) -> bool {
        self.conn
            .plaintext_auth_allowed(self.ctx.allow_plaintext_auth_on_loopback)
    }

    pub(crate) fn account(&self) -> Option<Account> {
        self.account.clone()
    }

    /// Greets the client and serves it; returns the relay when the session moves to the
    /// node that holds the account's mail.
    async fn run(&mut self) -> std::io::Result<Option<RelayStream>> {
        let greeting = format!(
            "* OK [CAPABILITY {}] {} Tern IMAP ready",
            self.capabilities(),
            self.ctx.hostname
        );
        self.untagged(&greeting);
        self.emit();
        self.serve().await
    }

    /// The command loop.
    async fn serve(&mut self) -> std::io::Result<Option<RelayStream>> {
        let mut bad_in_a_row = 0;
        loop {
            // Silence allowed: short before login, RFC 9051's 30 minutes after; every read of
            // the command, its literals and an AUTHENTICATE continuation is bounded by it.
            let idle = Duration::from_secs(if self.account.is_some() {
                self.ctx.limits.imap_idle_timeout_secs
            } else {
                self.ctx.limits.imap_login_timeout_secs
            });
            self.conn.set_read_timeout(Some(idle));
            let shutdown = self.shutdown.clone();
            let input = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.untagged("* BYE Server shutting down");
                    break;
                }
                input = tokio::time::timeout(idle, self.read_command()) => input,
            };
            let buf = match input {
                Err(_) => {
                    self.untagged("* BYE Autologout; idle for too long");
                    break;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.untagged("* BYE Autologout; idle for too long");
                    break;
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Input::Eof)) => return Ok(None),
                Ok(Ok(Input::Close)) => break,
                Ok(Ok(Input::Answered)) => {
                    self.emit();
                    continue;
                }
                Ok(Ok(Input::Command(buf))) => buf,
            };
            let flow = match proto::parse(&buf) {
                Ok(tagged) => {
                    bad_in_a_row = 0;
                    match self.dispatch(tagged).await {
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                            self.untagged("* BYE Autologout; idle for too long");
                            Flow::Close
                        }
                        other => other?,
                    }
                }
                Err((Some(tag), e)) if e == proto::command::INVALID_MAILBOX_NAME => {
                    self.tagged(&tag, &format!("NO [CANNOT] {}", e.0));
                    Flow::Continue
                }
                Err((tag, e)) => {
                    bad_in_a_row += 1;
                    let tag = tag.unwrap_or_else(|| "*".into());
                    self.tagged(&tag, &format!("BAD {}", e.0));
                    if bad_in_a_row >= MAX_BAD_COMMANDS {
                        self.untagged("* BYE Too many invalid commands");
                        Flow::Close
                    } else {
                        Flow::Continue
                    }
                }
            };
            self.emit();
            match flow {
                Flow::Continue => {}
                Flow::Close => break,
                Flow::Relay(upstream) => return Ok(Some(*upstream)),
            }
        }
        self.emit();
        self.conn.shutdown().await.map(|()| None)
    }

    /// Reads one command line and the literals it announces.
    async fn read_command(&mut self) -> std::io::Result<Input> {
        let max_line = self.ctx.limits.max_line_length.max(MAX_COMMAND_LINE);
        let mut buf = Vec::new();
        loop {
            let line = match self.conn.read_line(max_line).await {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(Input::Eof),
                Err(ReadError::TooLong(_)) => {
                    // The line was read to its end, so the session goes on; the client gets
                    // the tagged answer it waits for.
                    let head = if buf.is_empty() {
                        self.conn.overlong_head()
                    } else {
                        &buf[..]
                    };
                    match tag_of(head) {
                        Some(tag) => self.tagged(&tag, "BAD Command line too long"),
                        None => self.untagged("* BAD Command line too long"),
                    }
                    return Ok(Input::Answered);
                }
                Err(ReadError::BareLineEnding) => {
                    // Only CRLF ends a line (RFC 9051 §2.2); nothing after it is read.
                    self.untagged("* BYE Bare LF or CR received; lines end with CRLF");
                    return Ok(Input::Close);
                }
                Err(ReadError::Io(e)) => return Err(e),
            };
            buf.extend_from_slice(&line);
            let Some((size, non_sync)) = proto::trailing_literal(&line) else {
                return Ok(Input::Command(buf));
            };
            let is_append = buf
                .split(|&b| b == b' ')
                .nth(1)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"));
            let (limit, command_limit) = if self.account.is_none() {
                (MAX_LITERAL_BEFORE_LOGIN, MAX_LITERAL_BEFORE_LOGIN)
            } else if is_append {
                let limit = self.ctx.limits.max_message_size;
                (limit, limit + MAX_COMMAND_LITERAL)
            } else {
                (MAX_COMMAND_LITERAL, 2 * MAX_COMMAND_LITERAL)
            };
            if size > limit || buf.len() as u64 + size > command_limit {
                let tag = tag_of(&buf).unwrap_or_else(|| "*".into());
                if non_sync {
                    // The client is already sending the bytes; refusing means closing.
                    self.untagged("* BYE [TOOBIG] Literal too large");
                    return Ok(Input::Close);
                }
                self.tagged(&tag, "NO [TOOBIG] Literal too large");
                return Ok(Input::Answered);
            }
            if !non_sync {
                self.conn.write(b"+ Ready for literal data\r\n");
            }
            buf.extend_from_slice(b"\r\n");
            let data = self.conn.read_exact(size as usize).await?;
            buf.extend_from_slice(&data);
        }
    }

    /// The state gate, then the handler.
    async fn dispatch(&mut self, Tagged { tag, command }: Tagged) -> std::io::Result<Flow> {
        use Command::*;
        let authenticated = self.account.is_some();
        let selected = self.selected.is_some();
        let allowed = match &command {
            Capability | Noop | Logout | Id => true,
            StartTls | Login { .. } | Authenticate { .. } => !authenticated,
            Fetch { .. }
            | Store { .. }
            | Copy { .. }
            | Search { .. }
            | Sort { .. }
            | Thread { .. }
            | Expunge { .. }
            | Close
            | Unselect
            | Check => selected,
            _ => authenticated,
        };
        if !allowed {
            let why = if authenticated {
                "No mailbox selected"
            } else {
                "Not valid in this state"
            };
            self.tagged(&tag, &format!("BAD {why}"));
            return Ok(Flow::Continue);
        }
        match command {
            Capability => {
                let caps = format!("* CAPABILITY {}", self.capabilities());
                self.untagged(&caps);
                self.tagged(&tag, "OK CAPABILITY completed");
            }
            Noop | Check => {
                self.refresh(true, false).await;
                self.tagged(&tag, "OK NOOP completed");
            }
            Logout => {
                self.untagged("* BYE Logging out");
                self.tagged(&tag, "OK LOGOUT completed");
                return Ok(Flow::Close);
            }
            Id => {
                self.untagged("* ID (\"name\" \"Tern\")");
                self.tagged(&tag, "OK ID completed");
            }
            StartTls => return self.starttls(&tag).await,
            Login { user, password } => return self.login(&tag, &user, &password).await,
            Authenticate { mechanism, initial } => {
                return self.authenticate(&tag, &mechanism, initial).await;
            }
            Enable(caps) => {
                let mut enabled: Vec<&str> = Vec::new();
                for cap in &caps {
                    match cap.as_str() {
                        "CONDSTORE" if !self.condstore => {
                            self.condstore = true;
                            enabled.push("CONDSTORE");
                        }
                        // RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
                        "QRESYNC" if !self.qresync => {
                            self.qresync = true;
                            self.condstore = true;
                            enabled.push("QRESYNC");
                        }
                        "IMAP4REV2" if !self.rev2 => {
                            self.rev2 = true;
                            enabled.push("IMAP4rev2");
                        }
                        _ => {}
                    }
                }
                let line = format!("* ENABLED {}", enabled.join(" "));
                self.untagged(line.trim_end());
                self.tagged(&tag, "OK ENABLE completed");
            }
            Namespace => {
                self.untagged("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.tagged(&tag, "OK NAMESPACE completed");
            }
            Idle => return self.idle(&tag).await,
            Compress { mechanism } => return self.compress(&tag, &mechanism).await,
            other => self.mailbox_command(&tag, other).await?,
        }
        Ok(Flow::Continue)
    }

    /// Which messages of `snapshot` are `\Recent` in this session from now on: none under
    /// IMAP4rev2; for EXAMINE, those no session was shown yet; for SELECT, those this session
    /// claims now (a replicated write, made only when some are unclaimed).
    pub(crate) async fn recent_from(
        &self,
        account: &Account,
        snapshot: &Snapshot,
        read_only: bool,
    ) -> RecentFrom {
        if self.rev2 {
            return None;
        }
        let last = snapshot.messages.last().map_or(Uid(0), |m| m.uid);
        let none = Uid(last.0.saturating_add(1));
        if read_only {
            return Some(snapshot.first_recent);
        }
        if snapshot.first_recent > last {
            return Some(none);
        }
        match account.claim_recent(snapshot.mailbox.id, last).await {
            Ok(first) => Some(first),
            Err(e) => {
                tracing::debug!(error = %e, "claiming \\Recent failed");
                Some(none)
            }
        }
    }

    /// Resynchronises the selected mailbox and queues what changed.
    pub(crate) async fn refresh(&mut self, allow_expunge: bool, uid_in_fetch: bool) {
        let (Some(account), Some(view)) = (self.account.clone(), self.selected.as_ref()) else {
            return;
        };
        let (read_only, last) = (view.read_only, view.last_uid());
        match account.snapshot_by_id(view.id).await {
            Ok(snapshot) => {
                let grew = snapshot.messages.last().is_some_and(|m| m.uid > last);
                let recent_from = match grew {
                    true => self.recent_from(&account, &snapshot, read_only).await,
                    false => None,
                };
                let mut out = std::mem::take(&mut self.out);
                if let Some(view) = self.selected.as_mut() {
                    // CONDSTORE may have been turned on since SELECT (a CHANGEDSINCE FETCH).
                    view.show_modseq = self.condstore;
                    view.sync(snapshot, allow_expunge, uid_in_fetch, recent_from, &mut out);
                }
                self.out = out;
            }
            Err(MailboxError::Rejected(Rejection::NoSuchMailbox)) => {
                // Deleted under us (RFC 9051 §7.1): tell the client and deselect.
                self.untagged("* BYE Selected mailbox was deleted");
                self.selected = None;
            }
            Err(e) => tracing::debug!(error = %e, "refresh failed"),
        }
    }

    /// COMPRESS DEFLATE (RFC 4978): the OK goes out uncompressed, everything after it
    /// compressed, both ways.
    async fn compress(&mut self, tag: &str, mechanism: &str) -> std::io::Result<Flow> {
        if self.conn.is_deflating() {
            self.tagged(tag, "NO [COMPRESSIONACTIVE] Already compressing");
        } else if mechanism != "DEFLATE" {
            self.tagged(tag, "BAD Unknown compression mechanism");
        } else {
            self.tagged(tag, "OK DEFLATE active");
            self.emit();
            self.conn.flush().await?;
            self.conn.start_deflate();
        }
        Ok(Flow::Continue)
    }

    async fn starttls(&mut self, tag: &str) -> std::io::Result<Flow> {
        let acceptor = match (&self.ctx.tls, self.conn.is_tls()) {
            (Some(a), false) => a.clone(),
            _ => {
                self.tagged(tag, "BAD TLS not available");
                return Ok(Flow::Continue);
            }
        };
        self.tagged(tag, "OK Begin TLS negotiation now");
        self.emit();
        let limit = std::time::Duration::from_secs(self.ctx.limits.tls_handshake_timeout_secs);
        match self.conn.start_tls(&acceptor, limit).await {
            Ok(()) => Ok(Flow::Continue),
            Err(e) => {
                tracing::debug!(error = %e, "STARTTLS failed");
                Ok(Flow::Close)
            }
        }
    }

    async fn login(&mut self, tag: &str, user: &str, password: &str) -> std::io::Result<Flow> {
        if !self.login_allowed() {
            self.tagged(
                tag,
                "NO [PRIVACYREQUIRED] Use STARTTLS or the IMAPS port first",
            );
            return Ok(Flow::Continue);
        }
        self.check_password(tag, user, password).await
    }

    async fn authenticate(
        &mut self,
        tag: &str,
        mechanism: &str,
        initial: Option<String>,
    ) -> std::io::Result<Flow> {
        if mechanism != "PLAIN" {
            self.tagged(tag, "NO [CANNOT] Only AUTH=PLAIN is supported");
            return Ok(Flow::Continue);
        }
        if !self.login_allowed() {
            self.tagged(
                tag,
                "NO [PRIVACYREQUIRED] Use STARTTLS or the IMAPS port first",
            );
            return Ok(Flow::Continue);
        }
        let response = match initial {
            Some(r) if r == "=" => String::new(),
            Some(r) => r,
            None => {
                self.untagged("+ ");
                self.emit();
                match self.conn.read_line(self.ctx.limits.max_line_length).await {
                    Ok(Some(line)) => String::from_utf8_lossy(&line).trim().to_string(),
                    Ok(None) => return Ok(Flow::Close),
                    Err(ReadError::TooLong(_)) => String::new(),
                    Err(ReadError::BareLineEnding) => {
                        self.untagged("* BYE Bare LF or CR received; lines end with CRLF");
                        return Ok(Flow::Close);
                    }
                    Err(ReadError::Io(e)) => return Err(e),
                }
            }
        };
        match sasl::decode_plain(&response) {
            Ok((user, password)) => self.check_password(tag, &user, &password).await,
            Err(sasl::SaslError::Cancelled) => {
                self.tagged(tag, "BAD Authentication cancelled");
                Ok(Flow::Continue)
            }
            Err(e) => {
                self.tagged(tag, &format!("BAD {e}"));
                Ok(Flow::Continue)
            }
        }
    }

    /// Checks the credentials (dropping the work if the client hangs up meanwhile), then
    /// answers the login.
    async fn check_password(
        &mut self,
        tag: &str,
        user: &str,
        password: &str,
    ) -> std::io::Result<Flow> {
        let ctx = self.ctx.clone();
        let client = self.conn.peer.ip();
        let checking = ctx.directory.authenticate(client, user, password);
        match self.conn.unless_hung_up(checking).await {
            Some(result) => self.finish_auth(tag, user, result).await,
            None => Ok(Flow::Close),
        }
    }

    async fn finish_auth(
        &mut self,
        tag: &str,
        user: &str,
        result: Result<tern_directory::AccountInfo, DirectoryError>,
    ) -> std::io::Result<Flow> {
        match result {
            Ok(info) => match self.ctx.mailboxes.open(&info).await {
                Ok(account) => {
                    tracing::Span::current().record("user", info.address.as_str());
                    tracing::info!("logged in");
                    self.account = Some(account);
                    let caps = self.capabilities();
                    self.tagged(tag, &format!("OK [CAPABILITY {caps}] Logged in"));
                }
                Err(MailboxError::Elsewhere(group)) => {
                    tracing::Span::current().record("user", info.address.as_str());
                    let request = RelayRequest {
                        protocol: RelayProtocol::Imap,
                        address: info.address.clone(),
                        client: self.conn.peer,
                        tag: tag.to_string(),
                    };
                    match self.ctx.mailboxes.relay(&info, &request).await {
                        Ok(upstream) => {
                            tracing::info!(%group, "logged in; relayed to the account's node");
                            return Ok(Flow::Relay(Box::new(upstream)));
                        }
                        Err(e) => {
                            let no = no_for(&e);
                            self.tagged(tag, &no);
                        }
                    }
                }
                Err(e) => {
                    let no = no_for(&e);
                    self.tagged(tag, &no);
                }
            },
            Err(
                e @ (DirectoryError::AuthFailed
                | DirectoryError::InvalidAddress(_)
                | DirectoryError::Throttled),
            ) => {
                self.auth_failures += 1;
                tracing::warn!(?user, failures = self.auth_failures, error = %e, "login failed");
                if matches!(e, DirectoryError::Throttled) {
                    self.tagged(
                        tag,
                        "NO [UNAVAILABLE] Too many failed logins; try again later",
                    );
                } else {
                    self.tagged(tag, "NO [AUTHENTICATIONFAILED] Invalid credentials");
                }
                if self.auth_failures >= self.ctx.limits.max_auth_failures {
                    self.untagged("* BYE Too many failed logins");
                    return Ok(Flow::Close);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "authentication unavailable");
                self.tagged(
                    tag,
                    "NO [UNAVAILABLE] Authentication temporarily unavailable",
                );
            }
        }
        Ok(Flow::Continue)
    }
}
