//! Tern's SMTP server: inbound MX sessions and authenticated submission (RFC 5321, 6409, 8314).
//!
//! It parses, enforces limits and policy (no open relay, AUTH only over TLS), asks the inbound
//! filter (DNSBL at connect, SPF from MAIL FROM, DKIM and DMARC at the end of DATA), DKIM-signs
//! submitted mail, and hands a finished transaction to the queue, answering `250` only after
//! the Raft commit. It does not store anything itself, nor relay outbound mail (the queue does).
//!
//! - [`proto`]: pure command parser.
//! - [`replies`]: every reply the server sends.
//! - [`session`]: the per-connection state machine.
//! - [`auth`]: SASL PLAIN and LOGIN exchanges.
//! - [`data`]: the DATA reader (CRLF.CRLF only, dot-unstuffing, size limit).
//! - [`headers`]: Return-Path and Received.
//! - [`policy`]: the inbound verdict and DKIM signing at the end of DATA.
//!
//! A new command gets a variant in [`proto`], its replies in [`replies`] and its handling in
//! [`session`]; an EHLO keyword is added where `session` builds the EHLO answer.
#![warn(missing_docs)]

pub mod auth;
pub mod data;
pub mod headers;
pub mod policy;
pub mod proto;
pub mod replies;
pub mod session;

pub use session::run_session;

use std::sync::Arc;
use tern_core::config::Limits;
use tern_directory::Directory;
use tern_queue::Queue;
use tokio_rustls::TlsAcceptor;

/// Which listener a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// Inbound mail for our domains; no AUTH, no relaying.
    Mx,
    /// Message submission by authenticated users (ports 587 and 465).
    Submission,
}

/// What every SMTP session of one listener shares.
pub struct SmtpContext {
    /// Our host name (greeting, Received).
    pub hostname: String,
    /// MX or submission.
    pub mode: SmtpMode,
    /// Accounts, aliases, authentication.
    pub directory: Directory,
    /// Where accepted transactions go.
    pub queue: Queue,
    /// For STARTTLS; `None` disables it.
    pub tls: Option<TlsAcceptor>,
    /// Size, recipient, line and time limits.
    pub limits: Limits,
    /// `--dev`: AUTH allowed without TLS when the peer is a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
    /// Inbound checks (MX) and Authentication-Results (both listeners).
    pub filter: Arc<tern_filter::Filter>,
}
