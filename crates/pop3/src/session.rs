//! One POP3 connection from greeting to close: reads command lines (bounded, with the idle
//! timeout and the shutdown signal), parses them, applies the one state gate and hands them to
//! [`crate::cmd`]. Errors become replies here and nowhere else.

use crate::backend::{Backend, MailAccount};
use crate::cmd;
use crate::maildrop::Maildrop;
use crate::proto::{self, ParseError, Phase, Reply, RespCode};
use crate::replies;
use std::time::Duration;
use tern_core::config::Limits;
use tern_core::net::{Connection, ReadError};
use tern_mailbox::relay::RelayStream;
use tern_mailbox::{RelayRefusal, status_line};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The server settings a session reads, borrowed from [`crate::Pop3Context`].
pub struct SessionConfig<'a> {
    /// Our name in the greeting and sign-off.
    pub hostname: &'a str,
    /// For STLS; `None` disables it.
    pub tls: Option<&'a TlsAcceptor>,
    /// Line length, idle timeout, authentication failures.
    pub limits: &'a Limits,
    /// `--dev`: clear-text credentials are fine from loopback peers.
    pub allow_plaintext_auth_on_loopback: bool,
}

impl SessionConfig<'_> {
    /// The longest command line: the configured limit, but never beyond what POP3 needs.
    pub fn max_line(&self) -> usize {
        self.limits.max_line_length.min(proto::MAX_COMMAND_LINE)
    }

    /// How long the client may stay silent (RFC 1939 §3 asks for at least ten minutes; the
    /// configuration decides).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.pop3_idle_timeout_secs)
    }
}

/// The POP3 state (RFC 1939 §3). UPDATE is not a state the session rests in: QUIT runs it
/// and closes.
pub enum State<A: MailAccount> {
    /// Waiting for credentials.
    Authorization(Authorization),
    /// Logged in, maildrop locked.
    Transaction(Maildrop<A>),
}

impl<A: MailAccount> State<A> {
    fn phase(&self) -> Phase {
        match self {
            State::Authorization(_) => Phase::Authorization,
            State::Transaction(_) => Phase::Transaction,
        }
    }
}

/// What the AUTHORIZATION state remembers between commands.
#[derive(Debug, Default)]
pub struct Authorization {
    /// The name given by USER, waiting for PASS.
    pub user: Option<String>,
    /// Failed logins on this connection, closed at `limits.max_auth_failures`.
    pub failures: u32,
}

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close the connection.
    Close,
}

/// What reading from the client produced.
pub enum Input {
    /// One line without its line ending.
    Line(Vec<u8>),
    /// A line over the limit, already discarded; the connection is still usable.
    TooLong,
    /// The client closed, the socket failed or the idle timer fired.
    Closed,
    /// The server is shutting down.
    Shutdown,
}

/// The connection and everything a command handler may need besides the POP3 state.
pub struct Session<'a, B: Backend> {
    /// The client connection.
    pub conn: Connection,
    /// Directory and mailboxes.
    pub backend: &'a B,
    /// Server settings.
    pub cfg: &'a SessionConfig<'a>,
    shutdown: &'a CancellationToken,
    /// Set by a login whose account is on another node: the session continues there.
    pub relay: Option<RelayStream>,
}

impl<'a, B: Backend> Session<'a, B> {
    /// A session on `conn`, not relayed.
    fn new(
        conn: Connection,
        backend: &'a B,
        cfg: &'a SessionConfig<'a>,
        shutdown: &'a CancellationToken,
    ) -> Self {
        Session {
            conn,
            backend,
            cfg,
            shutdown,
            relay: None,
        }
    }

    /// Queues a status line; it goes out before the next read.
    pub fn send(&mut self, reply: &Reply) {
        let mut out = Vec::with_capacity(64);
        reply.encode(&mut out);
        self.conn.write(&out);
    }

    /// Sends a multi-line reply now. Flushing here bounds what a client that pipelines many
    /// listing commands without reading can make us buffer.
    pub async fn send_multiline<I, S>(&mut self, reply: &Reply, lines: I) -> std::io::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        proto::encode_multiline(reply, lines, &mut out);
        self.conn.write(&out);
        self.conn.flush().await
    }

    /// Whether USER/PASS and AUTH PLAIN may be used now: on TLS, or from loopback in `--dev`.
    pub fn plaintext_auth_allowed(&self) -> bool {
        self.conn
            .plaintext_auth_allowed(self.cfg.allow_plaintext_auth_on_loopback)
    }

    /// Whether STLS can be offered: a certificate is configured and TLS is not on yet.
    pub fn stls_available(&self) -> bool {
        self.cfg.tls.is_some() && !self.conn.is_tls()
    }

    /// Reads one line, giving up at the idle timeout or when the server shuts down.
    pub async fn read_line(&mut self) -> Input {
        let max = self.cfg.max_line();
        let idle = self.cfg.idle_timeout();
        let read = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return Input::Shutdown,
            read = tokio::time::timeout(idle, self.conn.read_line(max)) => read,
        };
        match read {
            Ok(Ok(Some(line))) => Input::Line(line),
            Ok(Ok(None)) => Input::Closed,
            Ok(Err(ReadError::TooLong(_))) => Input::TooLong,
            Ok(Err(ReadError::BareLineEnding)) => {
                // Only CRLF ends a line (RFC 1939 §3); nothing after it is read, and the
                // session ends without UPDATE.
                self.send(&replies::BARE_LINE_ENDING);
                Input::Closed
            }
            Ok(Err(ReadError::Io(e))) => {
                tracing::debug!(error = %e, "read failed");
                Input::Closed
            }
            Err(_) => {
                // RFC 1939 §3: on autologout the server closes without a response and without
                // entering UPDATE.
                tracing::debug!("idle timeout");
                Input::Closed
            }
        }
    }
}

/// Serves one connection until QUIT, close, timeout or shutdown.
pub async fn run<B: Backend>(
    conn: Connection,
    backend: &B,
    cfg: &SessionConfig<'_>,
    shutdown: &CancellationToken,
) {
    let mut s = Session::new(conn, backend, cfg, shutdown);
    s.send(&replies::greeting(cfg.hostname));
    serve(s, State::Authorization(Authorization::default())).await;
}

/// Serves, on `conn`, a POP3 session another node relays here after `info` logged in there:
/// opens the account, locks the maildrop, sends the relay status line, answers the login,
/// then serves the client as [`run`] does.
pub async fn run_relayed<B: Backend>(
    conn: Connection,
    backend: &B,
    cfg: &SessionConfig<'_>,
    shutdown: &CancellationToken,
    info: &tern_directory::AccountInfo,
) {
    let mut s = Session::new(conn, backend, cfg, shutdown);
    let opened = async {
        let account = backend.open(info).await?;
        let lock = account.lock_maildrop().await?;
        let snapshot = account.inbox().await?;
        Ok::<_, tern_mailbox::MailboxError>(Maildrop::new(account, lock, snapshot))
    };
    let maildrop = match opened.await {
        Ok(maildrop) => maildrop,
        Err(e) => {
            tracing::info!(error = %e, "relayed session refused");
            s.conn
                .write(status_line(Err(RelayRefusal::from_error(&e))).as_bytes());
            let _ = s.conn.shutdown().await;
            return;
        }
    };
    s.conn.write(status_line(Ok(())).as_bytes());
    let (count, octets) = maildrop.stat();
    tracing::info!(count, octets, "logged in (relayed)");
    s.send(&replies::maildrop(count, octets));
    serve(s, State::Transaction(maildrop)).await;
}

/// The command loop, from `state` until the session ends.
async fn serve<B: Backend>(mut s: Session<'_, B>, mut state: State<B::Account>) {
    loop {
        let flow = match s.read_line().await {
            Input::Line(line) => execute(&mut s, &mut state, &line).await,
            Input::TooLong => {
                s.send(&replies::LINE_TOO_LONG);
                Flow::Continue
            }
            Input::Closed => Flow::Close,
            Input::Shutdown => {
                s.send(&replies::SHUTTING_DOWN);
                Flow::Close
            }
        };
        if flow == Flow::Close {
            break;
        }
    }
    if let State::Transaction(maildrop) = &mut state {
        // Without a successful QUIT nothing is deleted (RFC 1939 §6), so the deletion marks
        // are void; what the client downloaded is still marked read, as after QUIT.
        maildrop.reset();
        if let Err(e) = maildrop.mark_seen().await {
            tracing::debug!(error = %e, "could not mark retrieved messages seen");
        }
    }
    if let Some(upstream) = s.relay.take() {
        if let Err(e) = s.conn.relay(upstream, s.shutdown.cancelled()).await {
            tracing::debug!(error = %e, "relayed session ended with an I/O error");
        }
        return;
    }
    if let Err(e) = s.conn.shutdown().await {
        tracing::debug!(error = %e, "closing the connection");
    }
}

/// Parses one line, applies the state gate and runs the command.
async fn execute<B: Backend>(
    s: &mut Session<'_, B>,
    state: &mut State<B::Account>,
    line: &[u8],
) -> Flow {
    let command = match proto::parse_command(line) {
        Ok(command) => command,
        Err(ParseError::Unknown) => {
            s.send(&replies::UNKNOWN_COMMAND);
            return Flow::Continue;
        }
        Err(e) => {
            s.send(&replies::syntax_error(&e.to_string()));
            return Flow::Continue;
        }
    };
    // The one state gate: handlers never check the state again.
    if !command.allowed_in(state.phase()) {
        s.send(&replies::WRONG_STATE);
        return Flow::Continue;
    }
    let name = command.name();
    match cmd::dispatch(s, state, command).await {
        Ok(flow) => flow,
        Err(e) => match e.reply() {
            Some(reply) => {
                // Server trouble is worth an operator's attention; a locked maildrop is not.
                if matches!(reply.code, Some(RespCode::SysTemp | RespCode::SysPerm)) {
                    tracing::warn!(command = name, error = %e, "command failed");
                } else {
                    tracing::info!(command = name, error = %e, "command refused");
                }
                s.send(&reply);
                Flow::Continue
            }
            None => {
                tracing::debug!(command = name, error = %e, "connection lost");
                Flow::Close
            }
        },
    }
}
