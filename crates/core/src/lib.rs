//! Tern's shared vocabulary, used by every other crate.
//!
//! It holds plain data and small helpers only: no storage, no Raft, no protocol logic. Put a
//! type here when crates on both sides of the storage boundary (protocol sessions and the
//! state machine) must name it; a protocol's own types belong in its crate.
//!
//! - [`ids`]: typed identifiers (accounts, mailboxes, UIDs, MODSEQs, blobs, Raft groups).
//! - [`records`]: the replicated records (domains, accounts, mailboxes, messages, queue entries).
//! - [`address`]: parsing and normalising mail addresses.
//! - [`config`]: the `tern.toml` configuration with a default for every field.
//! - [`net`]: the connection stream (plain or TLS) that protocol sessions read and write.
//! - [`deflate`]: the compression layer a connection may switch on (IMAP COMPRESS=DEFLATE).
//! - [`sync`]: [`sync::lock`], the poison-safe mutex lock every crate uses.
//! - [`flags`]: IMAP system flags and their canonical spelling.
//! - [`byte_buf`]: serde helpers that encode a body as one byte string, not byte by byte.
//! - [`ops`]: outcomes sessions see: [`ops::FlagOp`], [`ops::Rejection`], [`ops::Unavailable`].
#![warn(missing_docs)]

pub mod address;
pub mod byte_buf;
pub mod config;
pub mod deflate;
pub mod flags;
pub mod ids;
pub mod net;
pub mod ops;
pub mod records;
pub mod sync;

pub use ids::{AccountId, BlobId, DeliveryId, GroupId, MailboxId, ModSeq, NodeId, Uid};
