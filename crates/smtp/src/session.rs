//! One SMTP session: greeting, the command loop with its single state gate, and each
//! command's handling. Replies are flushed before every read, which makes PIPELINING work.

use crate::auth::{self, Exchange};
use crate::data::{self, Body};
use crate::headers::{self, Trace};
use crate::policy;
use crate::proto::{self, MailParams, ParseError, Request};
use crate::replies::{self, Reply};
use crate::{SmtpContext, SmtpMode};
use std::sync::Arc;
use std::time::Duration;
use tern_core::net::{Connection, ReadError};
use tern_directory::{AccountInfo, DirectoryError, Recipient, Resolution};
use tern_queue::Envelope;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A transaction between MAIL and the end of DATA.
struct Transaction {
    from: String,
    recipients: Vec<Recipient>,
    /// RCPT commands accepted (duplicates included), for the recipient limit.
    accepted_rcpts: usize,
    /// RCPT commands tried, to tell "no RCPT" (503) from "all RCPTs refused" (554).
    attempted_rcpts: usize,
    /// The address of the single accepted recipient, for the Received header.
    first_rcpt: Option<String>,
    /// Every accepted RCPT address as the client gave it: with the sender and the message as
    /// received, it names the transaction (`tern_queue::transaction_id`).
    rcpt_addresses: Vec<String>,
    /// The domains of the accepted RCPT addresses: they choose the inbound checks.
    rcpt_domains: Vec<String>,
    /// SPF checks started at MAIL FROM on the MX listener, finished at the end of DATA.
    spf: Option<tern_filter::SpfTask>,
}

/// What the loop does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session {
    conn: Connection,
    ctx: Arc<SmtpContext>,
    helo: Option<String>,
    user: Option<AccountInfo>,
    auth_failures: u32,
    tx: Option<Transaction>,
}

/// Serves one SMTP connection until QUIT, disconnect, timeout or shutdown.
pub async fn run_session(conn: Connection, ctx: Arc<SmtpContext>, shutdown: CancellationToken) {
    let span = tracing::info_span!("smtp", peer = %conn.peer, user = tracing::field::Empty);
    let mut session = Session {
        conn,
        ctx,
        helo: None,
        user: None,
        auth_failures: 0,
        tx: None,
    };
    async move {
        if let Err(e) = session.run(shutdown).await {
            tracing::debug!(error = %e, "session ended with an I/O error");
        }
    }
    .instrument(span)
    .await
}

impl Session {
    fn reply(&mut self, reply: &Reply) {
        self.conn.write(&reply.to_bytes());
    }

    async fn run(&mut self, shutdown: CancellationToken) -> std::io::Result<()> {
        if self.ctx.mode == SmtpMode::Mx
            && self.ctx.filter.has_dnsbl()
            && let Some(listing) = self.ctx.filter.dnsbl(self.conn.peer.ip()).await
        {
            tracing::info!(zone = %listing.zone, reason = ?listing.reason, "client on a block list");
            self.reply(&replies::blocked(listing.reply_text()));
            return self.conn.shutdown().await;
        }
        let greeting = format!("220 {} ESMTP Tern\r\n", self.ctx.hostname);
        self.conn.write(greeting.as_bytes());
        let idle = Duration::from_secs(self.ctx.limits.smtp_idle_timeout_secs);
        let max_line = self.ctx.limits.max_line_length;
        loop {
            // Every read of a command or an AUTH continuation waits at most this long; DATA
            // sets its own bound (RFC 5321 §4.5.3.2).
            self.conn.set_read_timeout(Some(idle));
            let read = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.reply(&replies::SHUTTING_DOWN);
                    break;
                }
                read = tokio::time::timeout(idle, self.conn.read_line(max_line)) => read,
            };
            let line = match read {
                Err(_) => {
                    self.reply(&replies::TIMEOUT);
                    break;
                }
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(ReadError::TooLong(_))) => {
                    self.reply(&replies::LINE_TOO_LONG);
                    continue;
                }
                Ok(Err(ReadError::BareLineEnding)) => {
                    // Nothing pipelined behind it may run as a command.
                    tracing::info!("bare line ending in a command; closing");
                    self.reply(&replies::BARE_LINE_ENDING);
                    break;
                }
                Ok(Err(ReadError::Io(e))) if e.kind() == std::io::ErrorKind::TimedOut => {
                    self.reply(&replies::TIMEOUT);
                    break;
                }
                Ok(Err(ReadError::Io(e))) => return Err(e),
            };
            let flow = match proto::parse(&line) {
                Ok(request) => match self.dispatch(request).await {
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        // Silent inside DATA or an AUTH exchange.
                        tracing::info!("client went silent; closing");
                        self.reply(&replies::TIMEOUT);
                        Flow::Close
                    }
                    other => other?,
                },
                Err(ParseError::UnknownCommand) => {
                    self.reply(&replies::UNKNOWN_COMMAND);
                    Flow::Continue
                }
                Err(ParseError::Syntax(why)) => {
                    self.reply(&Reply::new(501, "5.5.4", format!("Syntax error: {why}")));
                    Flow::Continue
                }
                Err(ParseError::UnknownParameter(p)) => {
                    self.reply(&Reply::new(
                        555,
                        "5.5.4",
                        format!("Unsupported parameter {p}"),
                    ));
                    Flow::Continue
                }
            };
            if let Flow::Close = flow {
                break;
            }
        }
        self.conn.shutdown().await
    }

    /// The state gate: every command is checked against the session state here, once.
    async fn dispatch(&mut self, request: Request) -> std::io::Result<Flow> {
        let needs_helo = matches!(
            request,
            Request::Mail { .. } | Request::Rcpt { .. } | Request::Data | Request::Auth { .. }
        );
        if needs_helo && self.helo.is_none() {
            self.reply(&replies::HELO_FIRST);
            return Ok(Flow::Continue);
        }
        match request {
            Request::Ehlo(domain) => self.ehlo(domain, true),
            Request::Helo(domain) => self.ehlo(domain, false),
            Request::Mail { from, params } => self.mail(from, params).await,
            Request::Rcpt { to } => self.rcpt(to).await,
            Request::Data => return self.data().await,
            Request::Rset => {
                self.tx = None;
                self.reply(&replies::OK);
            }
            Request::Noop => self.reply(&replies::OK),
            Request::Vrfy => self.reply(&replies::VRFY),
            Request::Help => self.reply(&replies::HELP),
            Request::Quit => {
                self.reply(&replies::BYE);
                return Ok(Flow::Close);
            }
            Request::StartTls => return self.starttls().await,
            Request::Auth { mechanism, initial } => return self.auth(&mechanism, initial).await,
        }
        Ok(Flow::Continue)
    }

    fn auth_allowed(&self) -> bool {
        self.ctx.mode == SmtpMode::Submission
            && self
                .conn
                .plaintext_auth_allowed(self.ctx.allow_plaintext_auth_on_loopback)
    }

    fn ehlo(&mut self, domain: String, extended: bool) {
        self.tx = None;
        let hostname = self.ctx.hostname.clone();
        if !extended {
            self.helo = Some(domain);
            self.reply(&Reply::new(250, "", hostname));
            return;
        }
        let mut lines = vec![
            format!("{hostname} greets {domain}"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.limits.max_message_size),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
        ];
        if self.ctx.tls.is_some() && !self.conn.is_tls() {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_allowed() && self.user.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.conn.write(format!("250{sep}{line}\r\n").as_bytes());
        }
        self.helo = Some(domain);
    }

    async fn mail(&mut self, from: String, params: MailParams) {
        if self.tx.is_some() {
            return self.reply(&replies::NESTED_MAIL);
        }
        if self.ctx.mode == SmtpMode::Submission {
            let Some(user) = self.user.clone() else {
                return self.reply(&replies::AUTH_REQUIRED);
            };
            if !self.owns(&user, &from).await {
                tracing::warn!(from = %from, "sender address not owned by the authenticated user");
                return self.reply(&replies::SENDER_NOT_OWNED);
            }
        }
        if params
            .size
            .is_some_and(|s| s > self.ctx.limits.max_message_size)
        {
            return self.reply(&replies::TOO_BIG);
        }
        if let Some(user) = self.user.clone()
            && let Some(refusal) = self.charge_send(&user).await
        {
            return self.reply(&refusal);
        }
        let spf = (self.ctx.mode == SmtpMode::Mx && self.ctx.filter.spf_wanted()).then(|| {
            let helo = self.helo.as_deref().unwrap_or_default();
            self.ctx.filter.start_spf(self.conn.peer.ip(), helo, &from)
        });
        self.tx = Some(Transaction {
            from,
            recipients: Vec::new(),
            accepted_rcpts: 0,
            attempted_rcpts: 0,
            first_rcpt: None,
            rcpt_addresses: Vec::new(),
            rcpt_domains: Vec::new(),
            spf,
        });
        self.reply(&replies::SENDER_OK);
    }

    /// Counts this message against the user's sending limits (per hour/day, cluster-wide, in
    /// the replicated state); the refusal to send when over them. MAIL FROM is what counts (as
    /// with Postfix's message rate limit): a transaction abandoned later still counted.
    async fn charge_send(&self, user: &AccountInfo) -> Option<Reply> {
        let limits = tern_queue::SendLimits {
            per_hour: self.ctx.limits.max_messages_per_hour,
            per_day: self.ctx.limits.max_messages_per_day,
        };
        match self.ctx.queue.charge_send(user.id, limits).await {
            Ok(true) => None,
            Ok(false) => {
                tracing::warn!(user = %user.address, "sending limit reached");
                Some(replies::SEND_LIMIT)
            }
            Err(e) => {
                tracing::warn!(error = %e, "sending limit check failed");
                Some(replies::TRY_AGAIN)
            }
        }
    }

    /// Whether an authenticated user may send as `from` (RFC 6409 §6.1): their own address,
    /// the null sender (bounces), or an alias that delivers to them.
    async fn owns(&self, user: &AccountInfo, from: &str) -> bool {
        if from.is_empty() || from.eq_ignore_ascii_case(&user.address) {
            return true;
        }
        match self.ctx.directory.resolve(from).await {
            Ok(Resolution::Deliver(targets)) => targets
                .iter()
                .any(|t| matches!(t, Recipient::Local(a) if a.id == user.id)),
            _ => false,
        }
    }

    async fn rcpt(&mut self, to: String) {
        let max = self.ctx.limits.max_recipients;
        let Some(tx) = self.tx.as_mut() else {
            return self.reply(&replies::MAIL_FIRST);
        };
        tx.attempted_rcpts += 1;
        if tx.accepted_rcpts >= max {
            return self.reply(&replies::TOO_MANY_RECIPIENTS);
        }
        let resolved = self.ctx.directory.resolve(&to).await;
        let authenticated = self.user.is_some();
        let reply = match resolved {
            Ok(Resolution::Deliver(recipients)) if self.any_full(&recipients) => {
                replies::MAILBOX_FULL
            }
            Ok(Resolution::Deliver(recipients)) => {
                self.add_recipients(&to, recipients);
                replies::RECIPIENT_OK
            }
            Ok(Resolution::UnknownUser) => replies::UNKNOWN_USER,
            Ok(Resolution::NotLocal) if authenticated => {
                self.add_recipients(&to, vec![Recipient::Remote(to.to_lowercase())]);
                replies::RECIPIENT_OK
            }
            Ok(Resolution::NotLocal) => replies::RELAY_DENIED,
            Err(DirectoryError::InvalidAddress(e)) => {
                Reply::new(501, "5.1.3", format!("Bad recipient address: {e}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "recipient lookup failed");
                replies::TRY_AGAIN
            }
        };
        self.reply(&reply);
    }

    /// Whether a local recipient is already at its quota (a single account: aliases that fan
    /// out deliver to whoever has room, and the commit enforces the quota exactly).
    fn any_full(&self, recipients: &[Recipient]) -> bool {
        let [Recipient::Local(account)] = recipients else {
            return false;
        };
        match self.ctx.queue.is_full(account) {
            Ok(full) => full,
            Err(e) => {
                tracing::debug!(error = %e, "quota pre-check unavailable");
                false
            }
        }
    }

    fn add_recipients(&mut self, address: &str, recipients: Vec<Recipient>) {
        let Some(tx) = self.tx.as_mut() else { return };
        tx.accepted_rcpts += 1;
        if tx.first_rcpt.is_none() {
            tx.first_rcpt = Some(address.to_string());
        }
        tx.rcpt_addresses.push(address.to_string());
        if let Some((_, domain)) = address.rsplit_once('@') {
            let domain = domain.to_ascii_lowercase();
            if !tx.rcpt_domains.contains(&domain) {
                tx.rcpt_domains.push(domain);
            }
        }
        for r in recipients {
            if !tx.recipients.contains(&r) {
                tx.recipients.push(r);
            }
        }
    }

    async fn data(&mut self) -> std::io::Result<Flow> {
        let Some(tx) = self.tx.as_ref() else {
            self.reply(&replies::MAIL_FIRST);
            return Ok(Flow::Continue);
        };
        if tx.recipients.is_empty() {
            let reply = if tx.attempted_rcpts > 0 {
                replies::NO_VALID_RECIPIENTS
            } else {
                replies::RCPT_FIRST
            };
            self.reply(&reply);
            return Ok(Flow::Continue);
        }
        self.reply(&replies::START_DATA);
        let data_block = Duration::from_secs(self.ctx.limits.smtp_data_timeout_secs);
        self.conn.set_read_timeout(Some(data_block));
        let body = data::read_body(&mut self.conn, self.ctx.limits.max_message_size).await?;
        let Some(tx) = self.tx.take() else {
            return Ok(Flow::Continue);
        };
        let body = match body {
            None => {
                tracing::info!(from = %tx.from, "client disconnected during DATA; nothing stored");
                return Ok(Flow::Close);
            }
            Some(Body::TooBig) => {
                self.reply(&replies::TOO_BIG);
                return Ok(Flow::Continue);
            }
            Some(Body::BareLineEnding) => {
                // Refused at the first bare line ending, before the end of DATA: the rest of
                // what the client sent is not read as a message or as commands.
                tracing::info!(from = %tx.from, "bare line ending in DATA; closing");
                self.reply(&replies::BARE_LINE_ENDING);
                return Ok(Flow::Close);
            }
            Some(Body::Complete(body)) => body,
        };
        let reply = self.commit(tx, body).await;
        self.reply(&reply);
        Ok(Flow::Continue)
    }

    /// Runs the filter (MX) or signs (submission), adds trace headers and commits through the
    /// queue; `250` only once that returned.
    async fn commit(&mut self, mut tx: Transaction, body: Vec<u8>) -> Reply {
        // Named before anything of ours touches the message, so a retry of it gets this id
        // (a message without a Message-ID is not known to be one message: a fresh id).
        let id = if tern_queue::names_itself(&body) {
            tern_queue::transaction_id(&tx.from, &tx.rcpt_addresses, &body)
        } else {
            tern_core::DeliveryId::random()
        };
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let (body, mailbox) = match &self.user {
            Some(user) => {
                let signed = policy::submitted(&self.ctx, &user.address, &tx.from, body).await;
                (signed, None)
            }
            None => {
                let facts = policy::MxFacts {
                    ip: self.conn.peer.ip(),
                    helo,
                    mail_from: &tx.from,
                    rcpt_domains: &tx.rcpt_domains,
                };
                match policy::inbound(&self.ctx, facts, tx.spf.take(), body).await {
                    Ok(screened) => (screened.body, screened.mailbox),
                    Err(reply) => return reply,
                }
            }
        };
        let trace_id = id.to_string();
        let protocol = match (self.conn.is_tls(), self.user.is_some()) {
            (false, false) => "ESMTP",
            (true, false) => "ESMTPS",
            (false, true) => "ESMTPA",
            (true, true) => "ESMTPSA",
        };
        let single = (tx.accepted_rcpts == 1)
            .then_some(tx.first_rcpt.as_deref())
            .flatten();
        let trace = Trace {
            hostname: &self.ctx.hostname,
            helo: self.helo.as_deref().unwrap_or("unknown"),
            peer: self.conn.peer.ip(),
            protocol,
            id: &trace_id[..16],
            single_recipient: single,
            sender: &tx.from,
        };
        let message = headers::prepend(&trace, &body);
        let size = message.len();
        let rcpts = tx.recipients.len();
        let envelope = Envelope {
            sender: tx.from.clone(),
            recipients: tx.recipients,
            body: message,
            sender_account: self.user.as_ref().map(|u| u.id),
            mailbox,
        };
        match self.ctx.queue.accept_once(envelope, id).await {
            Ok(accepted) if accepted.accepted == 0 && !accepted.over_quota.is_empty() => {
                tracing::info!(from = %tx.from, "refused: every recipient over quota");
                replies::OVER_QUOTA
            }
            Ok(accepted) => {
                if !accepted.over_quota.is_empty() {
                    tracing::warn!(id = %accepted.id, over_quota = ?accepted.over_quota,
                        "some recipients were over quota");
                }
                tracing::info!(id = %accepted.id, from = %tx.from, rcpts, size, "accepted");
                Reply::new(250, "2.0.0", format!("Ok: queued as {}", accepted.id))
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit failed; client will retry");
                replies::TRY_AGAIN
            }
        }
    }

    async fn starttls(&mut self) -> std::io::Result<Flow> {
        let acceptor = match (&self.ctx.tls, self.conn.is_tls()) {
            (Some(acceptor), false) => acceptor.clone(),
            _ => {
                self.reply(&replies::TLS_UNAVAILABLE);
                return Ok(Flow::Continue);
            }
        };
        self.reply(&replies::READY_FOR_TLS);
        let limit = Duration::from_secs(self.ctx.limits.tls_handshake_timeout_secs);
        if let Err(e) = self.conn.start_tls(&acceptor, limit).await {
            tracing::debug!(error = %e, "STARTTLS handshake failed");
            return Ok(Flow::Close);
        }
        // RFC 3207 §4.2: forget everything learned before TLS.
        self.helo = None;
        self.tx = None;
        Ok(Flow::Continue)
    }

    async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> std::io::Result<Flow> {
        if self.ctx.mode == SmtpMode::Mx {
            self.reply(&replies::AUTH_NOT_AVAILABLE);
            return Ok(Flow::Continue);
        }
        if self.user.is_some() || self.tx.is_some() {
            self.reply(&replies::ALREADY_AUTHENTICATED);
            return Ok(Flow::Continue);
        }
        if !self.auth_allowed() {
            self.reply(&replies::ENCRYPTION_REQUIRED);
            return Ok(Flow::Continue);
        }
        let max_line = self.ctx.limits.max_line_length;
        let (user, password) =
            match auth::exchange(&mut self.conn, mechanism, initial, max_line).await? {
                Exchange::Credentials(u, p) => (u, p),
                Exchange::Failed(reply) => {
                    self.reply(&reply);
                    return Ok(Flow::Continue);
                }
                Exchange::Closed => return Ok(Flow::Close),
            };
        let ctx = self.ctx.clone();
        let checking = ctx
            .directory
            .authenticate(self.conn.peer.ip(), &user, &password);
        // A client that hangs up meanwhile is not worth the password hash.
        let Some(result) = self.conn.unless_hung_up(checking).await else {
            return Ok(Flow::Close);
        };
        match result {
            Ok(account) => {
                tracing::Span::current().record("user", account.address.as_str());
                tracing::info!("authenticated");
                self.user = Some(account);
                self.reply(&replies::AUTH_OK);
                Ok(Flow::Continue)
            }
            Err(DirectoryError::AuthFailed) | Err(DirectoryError::InvalidAddress(_)) => {
                self.auth_failures += 1;
                tracing::warn!(user = %user, failures = self.auth_failures, "authentication failed");
                if self.auth_failures >= self.ctx.limits.max_auth_failures {
                    self.reply(&replies::TOO_MANY_FAILURES);
                    return Ok(Flow::Close);
                }
                self.reply(&replies::AUTH_FAILED);
                Ok(Flow::Continue)
            }
            Err(DirectoryError::Throttled) => {
                self.auth_failures += 1;
                tracing::warn!(
                    ?user,
                    failures = self.auth_failures,
                    "authentication refused: too many failed logins"
                );
                self.reply(&replies::AUTH_THROTTLED);
                if self.auth_failures >= self.ctx.limits.max_auth_failures {
                    return Ok(Flow::Close);
                }
                Ok(Flow::Continue)
            }
            Err(e) => {
                tracing::warn!(error = %e, "authentication unavailable");
                self.reply(&Reply::new(
                    454,
                    "4.7.0",
                    "Temporary authentication failure",
                ));
                Ok(Flow::Continue)
            }
        }
    }
}
