//! Mailbox actors: one per active account, serialising its writes and pushing change events
//! to the sessions watching it.
//!
//! IMAP and POP3 sessions `open` an account through [`Mailboxes`] and get an [`Account`]
//! handle: writes (APPEND, STORE, COPY/MOVE, EXPUNGE, CREATE, ...) are proposed to the
//! account's Raft partition by its actor, reads are linearizable reads of that partition, and
//! [`Account::watch`] delivers [`MailboxEvent`]s for IDLE. This crate speaks no protocol and
//! owns no storage; it does not deliver SMTP mail (tern-queue does). Events come from the
//! apply loop of this node's replica, so a watcher hears of changes made through any node.
//!
//! - `registry`: [`Mailboxes`], the actors of this node and each account's shared state.
//! - `account`: [`Account`], the session's handle.
//! - `lease`: the POP3 [`MaildropLock`], a lease in the account's partition.
//! - `actor`: the mailbox actor and its message enum.
//! - `events`: which mailboxes a committed command touched, as [`MailboxEvent`]s.
//! - `relay`: sessions relayed to a node that holds the account's mail ([`RelayRequest`]).
//! - `snapshot`: a self-consistent [`Snapshot`] from two reads.
//! - `types`: the values operations return.
//! - `error`: [`MailboxError`].
//!
//! A new mailbox operation is a method on [`Account`] (a read runs after the partition's
//! ReadIndex; a write is a message to the actor, which proposes one tern-store command) and,
//! if it changes what sessions see, a case in `events`.
#![warn(missing_docs)]

mod account;
mod actor;
mod error;
mod events;
mod lease;
mod registry;
pub mod relay;
mod snapshot;
mod types;

pub use account::Account;
pub use error::MailboxError;
pub use lease::{LEASE as MAILDROP_LEASE, MaildropLock};
pub use registry::Mailboxes;
pub use relay::{RelayProtocol, RelayRefusal, RelayRequest, status_line};
pub use types::{Appended, Copied, MailboxEvent, Snapshot, Stored};
