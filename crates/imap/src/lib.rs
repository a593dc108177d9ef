//! Tern's IMAP server (IMAP4rev2, RFC 9051, serving IMAP4rev1 clients too).
//!
//! It parses commands, keeps each session's view of its selected mailbox, and talks to
//! storage only through the account's mailbox actor (`tern_mailbox::Account`).
//!
//! - [`proto`]: pure parser (commands, sequence sets, search keys) and string encoding.
//! - [`session`]: the connection loop: literals, the state gate, authentication.
//! - [`cmd`]: command handlers by family (mailboxes, messages, idle).
//! - [`listing`]: which names LIST and LSUB return, with which attributes.
//! - [`view`]: the selected mailbox as the client knows it, and its resynchronisation.
//! - [`mime`]: ENVELOPE, BODYSTRUCTURE and sections, from the part tree of [`parts`].
//! - [`parts`]: the MIME part tree of a message, as byte ranges.
//! - [`cte`]: Content-Transfer-Encoding decoding and CRLF line endings.
//! - [`binary`]: RFC 3516 BINARY content, and parts sent `binary` stored base64 encoded.
//! - [`search`]: evaluating SEARCH keys.
//! - [`esearch`]: the ESEARCH response and what SAVE keeps.
//! - [`sort`]: SORT keys and order; [`thread`]: THREAD algorithms.
//! - [`response`]: response pieces shared by commands.
//!
//! A new command gets a variant and its grammar in [`proto::command`], its state in the
//! session's gate, and a handler in the [`cmd`] module of its family; its capability, if any,
//! goes in the CAPABILITY list in [`session`].
#![warn(missing_docs)]

pub mod binary;
pub mod cmd;
pub mod cte;
pub mod esearch;
pub mod listing;
pub mod mime;
pub mod parts;
pub mod proto;
pub mod response;
pub mod search;
pub mod session;
pub mod sort;
pub mod thread;
pub mod view;

pub use session::{run_relayed_session, run_session};

use tern_core::config::Limits;
use tern_directory::Directory;
use tern_mailbox::Mailboxes;
use tokio_rustls::TlsAcceptor;

/// What every IMAP session of one listener shares.
pub struct ImapContext {
    /// Our host name.
    pub hostname: String,
    /// Authentication.
    pub directory: Directory,
    /// Mailbox actors.
    pub mailboxes: Mailboxes,
    /// For STARTTLS; `None` disables it.
    pub tls: Option<TlsAcceptor>,
    /// Line, literal and time limits.
    pub limits: Limits,
    /// `--dev`: LOGIN/AUTHENTICATE allowed without TLS when the peer is a loopback address.
    pub allow_plaintext_auth_on_loopback: bool,
}
