//! Tern's POP3 server: one session per connection, serving the INBOX of an account to mail
//! clients that download and delete (RFC 1939), with CAPA, TOP, UIDL and response codes
//! (RFC 2449, RFC 3206), STLS (RFC 2595) and AUTH PLAIN (RFC 5034).
//!
//! It does not listen on sockets (the `tern` binary accepts connections and calls
//! [`run_session`]), store anything itself (all reads and writes go through
//! `tern_mailbox::Account`), or check passwords (`tern_directory::Directory` does).
//!
//! - [`proto`]: the pure wire format: command parser, typed replies, byte-stuffing, TOP.
//! - [`replies`]: every reply the server sends, with its RFC section.
//! - `session`: the connection loop, the idle timeout, shutdown and the state gate.
//! - `cmd`: one handler file per command family.
//! - `maildrop`: the locked INBOX snapshot of the TRANSACTION state, and the UPDATE state.
//! - `backend`: the two traits the session needs from storage, implemented over the
//!   directory and the mailbox actors (and in memory by the session tests).
//! - [`error`]: the crate's error type and its mapping to replies.
//! - `tests`: the session driven over a socket against an in-memory backend.
//!
//! New commands get a variant in `proto`, their replies in `replies` and a file in `cmd`.
#![warn(missing_docs)]

mod backend;
mod cmd;
pub mod error;
mod maildrop;
pub mod proto;
pub mod replies;
mod session;

#[cfg(test)]
mod tests;

pub use error::Pop3Error;

use session::SessionConfig;
use std::sync::Arc;
use tern_core::config::Limits;
use tern_core::net::Connection;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What every POP3 session shares: built once by the server, cloned into sessions as an `Arc`.
pub struct Pop3Context {
    /// Our name in the greeting and sign-off.
    pub hostname: String,
    /// Checks credentials.
    pub directory: tern_directory::Directory,
    /// Opens accounts' mailboxes.
    pub mailboxes: tern_mailbox::Mailboxes,
    /// For STLS; None disables it.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Line length, idle timeout, authentication failures.
    pub limits: Limits,
    /// `--dev`: USER/PASS/AUTH allowed without TLS when the peer is a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
}

/// Serves one POP3 connection until the client quits or disconnects, the idle timer fires, or
/// `shutdown` is cancelled (then the client gets `-ERR [SYS/TEMP] server shutting down` and
/// nothing is deleted).
pub async fn run_session(conn: Connection, ctx: Arc<Pop3Context>, shutdown: CancellationToken) {
    let span = tracing::info_span!("pop3", peer = %conn.peer, user = tracing::field::Empty);
    let cfg = SessionConfig {
        hostname: &ctx.hostname,
        tls: ctx.tls.as_ref(),
        limits: &ctx.limits,
        allow_plaintext_auth_on_loopback: ctx.allow_plaintext_auth_on_loopback,
    };
    session::run(conn, ctx.as_ref(), &cfg, &shutdown)
        .instrument(span)
        .await;
}

/// Serves a POP3 session another node relays here after `info` logged in there (see
/// `tern_mailbox::relay`), until the client quits or disconnects, the idle timer fires, or
/// `shutdown` is cancelled.
pub async fn run_relayed_session(
    conn: Connection,
    ctx: Arc<Pop3Context>,
    info: tern_directory::AccountInfo,
    shutdown: CancellationToken,
) {
    let span = tracing::info_span!("pop3", peer = %conn.peer, user = %info.address, relayed = true);
    let cfg = SessionConfig {
        hostname: &ctx.hostname,
        tls: ctx.tls.as_ref(),
        limits: &ctx.limits,
        allow_plaintext_auth_on_loopback: ctx.allow_plaintext_auth_on_loopback,
    };
    session::run_relayed(conn, ctx.as_ref(), &cfg, &shutdown, &info)
        .instrument(span)
        .await;
}
