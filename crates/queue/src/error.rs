//! The queue's error type.

use tern_core::ops::Unavailable;
use tern_core::{DeliveryId, GroupId};
use tern_raft::RaftError;
use tern_store::{Response, StoreError};

/// Queue failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The commit did not happen or its outcome is unknown: SMTP answers 451 4.3.0.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// No recipient to deliver to.
    #[error("no recipients")]
    NoRecipients,
    /// No queued message has this id (operator commands).
    #[error("no queued message {0}")]
    NotQueued(DeliveryId),
    /// The relay cannot work with this configuration.
    #[error("relay configuration: {0}")]
    Config(String),
}

impl From<RaftError> for QueueError {
    fn from(e: RaftError) -> Self {
        QueueError::Unavailable(Unavailable(e.to_string()))
    }
}

impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::from(RaftError::Store(e))
    }
}

impl QueueError {
    /// A temporary failure of `group` outside Raft itself (an actor that would not start, a
    /// blocking task that died, an unexpected response): SMTP still answers 451.
    pub(crate) fn unavailable(group: GroupId, reason: impl Into<String>) -> QueueError {
        QueueError::from(RaftError::Unavailable {
            group,
            reason: reason.into(),
        })
    }

    /// The state machine answered with a response this command never produces.
    pub(crate) fn unexpected(group: GroupId, response: &Response) -> QueueError {
        QueueError::unavailable(group, format!("unexpected response {response:?}"))
    }
}
