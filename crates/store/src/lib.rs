//! Tern's storage: the RocksDB schema and the deterministic replicated state machine.
//!
//! It does not know about Raft (tern-raft drives it) or about protocols. Everything here is
//! synchronous; callers run it off the async threads.
//!
//! - [`command`]: the replicated commands and responses (the contract with proposers).
//! - [`db`]: opening RocksDB with Tern's column families.
//! - [`schema`]: column-family names and key encoding (group-prefixed, big-endian).
//! - [`apply`]: `apply(group, index, command) -> Response`, deterministic on every replica.
//! - [`body`]: bodies split from log entries and stored once, under the id apply uses.
//! - [`reader`]: typed, read-only queries over one group's state.
//! - [`image`]: one group's state as a checksummed byte stream (Raft snapshots, backups).
//! - [`error`]: the crate's error type.
//! - `codec` (bincode in one place) and `tx` (a command's staged writes) are internal.
//!
//! A new replicated command is a [`Command`] variant (appended at the end: variants are
//! encoded by position in the Raft log), its apply function in the [`apply`] module of its
//! family, its [`Response`], and any new keys in [`schema`]. RocksDB stays inside this crate:
//! callers get typed reads ([`Reader`]) and [`db::Db`]'s narrow API, never the database.
#![warn(missing_docs)]

pub mod apply;
pub mod body;
mod codec;
pub mod command;
pub mod db;
pub mod error;
pub mod image;
pub mod reader;
pub mod schema;
mod tx;

pub use command::{
    Command, DeliveryOutcome, FlagOp, LocalRecipient, Rejection, Response, SendLimits,
};
pub use db::Db;
pub use error::StoreError;
pub use reader::Reader;
