//! The mailbox error type, and the conversions from the layers below it.

use tern_core::ops::{Rejection, Unavailable};
use tern_core::{BlobId, GroupId};
use tern_raft::RaftError;
use tern_store::{Response, StoreError};

/// Mailbox operation failures.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// Refused by the state machine (no such mailbox, exists, over quota, ...).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Temporarily unavailable (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]).
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// A blob referenced by a message is missing on this node.
    #[error("message body {0:?} missing")]
    MissingBlob(BlobId),
    /// The POP3 maildrop is locked by another session (RFC 3206 IN-USE).
    #[error("maildrop in use")]
    InUse,
    /// The account's mailbox actor stopped.
    #[error("mailbox actor unavailable")]
    ActorGone,
    /// The account's mail is on other nodes: the session is relayed there
    /// ([`crate::Mailboxes::relay`]).
    #[error("{0}: the account's mail is on other nodes")]
    Elsewhere(GroupId),
}

impl From<RaftError> for MailboxError {
    fn from(e: RaftError) -> Self {
        MailboxError::Unavailable(Unavailable(e.to_string()))
    }
}

impl From<StoreError> for MailboxError {
    fn from(e: StoreError) -> Self {
        MailboxError::from(RaftError::Store(e))
    }
}

impl MailboxError {
    /// A temporary failure of `group` that is neither Raft's nor the store's own (a timeout
    /// waiting for the actor, a blocking task that died): sessions answer "try again".
    pub(crate) fn unavailable(group: GroupId, reason: impl Into<String>) -> MailboxError {
        MailboxError::from(RaftError::Unavailable {
            group,
            reason: reason.into(),
        })
    }

    /// The state machine answered with a response this command never produces (a version
    /// mismatch between proposer and state machine): reported as temporary, never a panic.
    pub(crate) fn unexpected(group: GroupId, response: &Response) -> MailboxError {
        MailboxError::unavailable(group, format!("unexpected response {response:?}"))
    }
}
