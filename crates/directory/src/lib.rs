//! Domains, accounts, aliases and authentication. STUB SIGNATURES: implemented by the
//! directory work; protocol crates rely on these names and types.
#![warn(missing_docs)]

pub mod sasl;

use tern_core::AccountId;
use tern_core::address::AddressError;
use tern_core::records::{AliasRecord, DomainRecord};
use tern_raft::{RaftError, RaftNode};
use tern_store::Rejection;

/// What a session knows about an authenticated or addressed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account.
    pub id: AccountId,
    /// Its normalised address (also the login name).
    pub address: String,
    /// Quota in bytes, 0 = unlimited.
    pub quota: u64,
}

/// One final recipient after alias expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account.
    Local(AccountInfo),
    /// An address outside our domains (an alias may point there).
    Remote(String),
}

/// What an RCPT address resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Deliver to these (at least one; duplicates removed).
    Deliver(Vec<Recipient>),
    /// The domain is ours but nobody has this address (SMTP 550 5.1.1).
    UnknownUser,
    /// The domain is not ours (relay: only for authenticated senders).
    NotLocal,
}

/// Directory failures.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong user name or password (deliberately not saying which).
    #[error("authentication failed")]
    AuthFailed,
    /// The address is malformed.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    /// The state machine refused (duplicate, unknown domain, ...).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Temporarily unavailable (retry later).
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The directory service. Cheap to clone.
#[derive(Clone)]
pub struct Directory {}

impl Directory {
    /// A directory over the meta group of `raft`.
    pub fn new(raft: RaftNode) -> Directory {
        let _ = raft;
        todo!()
    }

    /// Checks a login name (full address) and password.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<AccountInfo, DirectoryError> {
        let _ = (user, password);
        todo!()
    }

    /// Resolves an envelope recipient, expanding aliases (one level of nesting and more, with a
    /// depth limit).
    pub async fn resolve(&self, address: &str) -> Result<Resolution, DirectoryError> {
        let _ = address;
        todo!()
    }

    /// Whether `domain` is one of ours.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, DirectoryError> {
        let _ = domain;
        todo!()
    }

    /// Looks up an account by address.
    pub async fn account(&self, address: &str) -> Result<Option<AccountInfo>, DirectoryError> {
        let _ = address;
        todo!()
    }

    /// Adds a domain.
    pub async fn add_domain(&self, name: &str) -> Result<(), DirectoryError> {
        let _ = name;
        todo!()
    }
    /// Removes a domain.
    pub async fn delete_domain(&self, name: &str) -> Result<(), DirectoryError> {
        let _ = name;
        todo!()
    }
    /// All domains.
    pub async fn list_domains(&self) -> Result<Vec<DomainRecord>, DirectoryError> {
        todo!()
    }
    /// Adds an account and creates its default mailboxes.
    pub async fn add_account(
        &self,
        address: &str,
        password: &str,
        quota: u64,
    ) -> Result<AccountInfo, DirectoryError> {
        let _ = (address, password, quota);
        todo!()
    }
    /// Removes an account and its mail.
    pub async fn delete_account(&self, address: &str) -> Result<(), DirectoryError> {
        let _ = address;
        todo!()
    }
    /// Changes a password.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), DirectoryError> {
        let _ = (address, password);
        todo!()
    }
    /// All accounts.
    pub async fn list_accounts(&self) -> Result<Vec<AccountInfo>, DirectoryError> {
        todo!()
    }
    /// Adds `target` to alias `address`.
    pub async fn add_alias(&self, address: &str, target: &str) -> Result<(), DirectoryError> {
        let _ = (address, target);
        todo!()
    }
    /// Removes an alias.
    pub async fn delete_alias(&self, address: &str) -> Result<(), DirectoryError> {
        let _ = address;
        todo!()
    }
    /// All aliases.
    pub async fn list_aliases(&self) -> Result<Vec<AliasRecord>, DirectoryError> {
        todo!()
    }
}
