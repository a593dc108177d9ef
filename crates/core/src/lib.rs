//! Tern's shared vocabulary, used by every other crate.
//!
//! It holds plain data and small helpers only: no storage, no Raft, no protocol logic.
//!
//! - [`ids`]: typed identifiers (accounts, mailboxes, UIDs, MODSEQs, blobs, Raft groups).
//! - [`records`]: the replicated records (domains, accounts, mailboxes, messages, queue entries).
//! - [`address`]: parsing and normalising mail addresses.
//! - [`config`]: the `tern.toml` configuration with a default for every field.
//! - [`net`]: the connection stream (plain or TLS) that protocol sessions read and write.
//! - [`proxy`]: the PROXY protocol header a load balancer sends ahead of a client connection.
//! - [`flags`]: IMAP system flags and their canonical spelling.
#![warn(missing_docs)]

pub mod address;
pub mod config;
pub mod flags;
pub mod ids;
pub mod net;
pub mod proxy;
pub mod records;

pub use ids::{AccountId, BlobId, DeliveryId, GroupId, MailboxId, ModSeq, NodeId, Uid};
