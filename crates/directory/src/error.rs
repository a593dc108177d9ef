//! The directory's error type, and the conversions from the layers below it.

use tern_core::GroupId;
use tern_core::address::AddressError;
use tern_core::ops::{Rejection, Unavailable};
use tern_raft::RaftError;
use tern_store::{Response, StoreError};

/// Directory failures.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong user name or password (deliberately not saying which).
    #[error("authentication failed")]
    AuthFailed,
    /// Too many failed logins from this client or for this account lately: refused without
    /// checking the password (sessions answer with a temporary failure).
    #[error("too many failed logins; try again later")]
    Throttled,
    /// The address is malformed.
    #[error(transparent)]
    InvalidAddress(#[from] AddressError),
    /// The state machine refused (duplicate, unknown domain, ...).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Temporarily unavailable (retry later).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl From<RaftError> for DirectoryError {
    fn from(e: RaftError) -> Self {
        DirectoryError::Unavailable(Unavailable(e.to_string()))
    }
}

impl From<StoreError> for DirectoryError {
    fn from(e: StoreError) -> Self {
        DirectoryError::from(RaftError::Store(e))
    }
}

impl DirectoryError {
    /// A blocking lookup task died (panicked or was cancelled at shutdown). Callers may retry,
    /// so it is reported as a temporary failure of the meta group.
    pub(crate) fn task_failed(group: GroupId, e: &tokio::task::JoinError) -> DirectoryError {
        DirectoryError::from(RaftError::Unavailable {
            group,
            reason: format!("lookup task failed: {e}"),
        })
    }

    /// The state machine answered with a response this command never produces: a version
    /// mismatch between proposer and state machine, reported as temporary rather than a panic.
    pub(crate) fn unexpected(group: GroupId, response: &Response) -> DirectoryError {
        DirectoryError::from(RaftError::Unavailable {
            group,
            reason: format!("unexpected response {response:?}"),
        })
    }
}
