//! Domains, accounts, aliases and authentication, kept in the meta Raft group.
//!
//! Lookups read the local replica of the meta group, which every node holds; logins and RCPT
//! resolution first make it catch up with the group (one shared ReadIndex round for every
//! lookup waiting, `fresh`), so they see every committed change; operator changes are proposed to the meta group and
//! return once committed. This crate does not store mail (tern-mailbox does) and does not speak
//! any protocol: sessions decode SASL with [`sasl`] and call [`Directory`].
//!
//! - [`sasl`]: PLAIN and LOGIN decoding, shared by SMTP, IMAP and POP3.
//! - `types`: [`AccountInfo`], [`Recipient`], [`Resolution`].
//! - `error`: [`DirectoryError`].
//! - `service`: the [`Directory`] handle, its blocking reads and its proposals.
//! - `fresh`: the shared catch-up rounds that make logins and RCPT lookups linearizable.
//! - `lookup`: authentication, resolution and account lookups.
//! - `admin`: adding and removing domains, accounts and aliases.
//! - `dkim`: storing and reading the domains' DKIM signing keys.
//! - `resolve`: alias expansion and sub-addressing, pure over a lookup trait.
//! - `password`: Argon2id hashing and verification (PHC strings).
//! - `hashers`: the threads that run them, one per core, at a lower CPU priority, behind a
//!   bounded two-lane queue.
//! - `throttle`: failed logins per client and per account: delays, then refusals.
//!
//! New lookups go in `lookup` (reads of the local meta replica), new operator changes in
//! `admin` (one meta-group proposal each); both are methods on [`Directory`].
#![warn(missing_docs)]

mod admin;
mod dkim;
mod error;
mod fresh;
mod hashers;
mod lookup;
mod password;
mod resolve;
pub mod sasl;
mod service;
mod throttle;
mod types;

pub use error::DirectoryError;
pub use service::Directory;
pub use throttle::LoginPolicy;
pub use types::{AccountInfo, Recipient, Resolution};
