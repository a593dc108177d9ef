//! The outcomes of replicated operations that sessions and the admin API see: how STORE
//! combines flags, why the state machine refused a command, and the temporary failure every
//! layer above Raft reports. They live here so protocol crates can name them without linking
//! the storage or Raft crates (tern-store re-exports the first two as part of its command
//! contract).

use serde::{Deserialize, Serialize};

/// How STORE combines flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagOp {
    /// `FLAGS`: replace.
    Replace,
    /// `+FLAGS`: add.
    Add,
    /// `-FLAGS`: remove.
    Remove,
}

/// A deterministic refusal: every replica refuses the same command the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// The domain already exists.
    #[error("domain already exists")]
    DomainExists,
    /// No such domain.
    #[error("no such domain")]
    NoSuchDomain,
    /// Accounts or aliases still use the domain.
    #[error("domain still has accounts or aliases")]
    DomainNotEmpty,
    /// An account or alias already has this address.
    #[error("address already exists")]
    AccountExists,
    /// No such account.
    #[error("no such account")]
    NoSuchAccount,
    /// No such alias.
    #[error("no such alias")]
    NoSuchAlias,
    /// No such mailbox.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The mailbox already exists.
    #[error("mailbox already exists")]
    MailboxExists,
    /// INBOX cannot be deleted.
    #[error("INBOX cannot be deleted")]
    CannotDeleteInbox,
    /// The mailbox has child mailboxes.
    #[error("mailbox has children")]
    HasChildren,
    /// The mailbox name is not acceptable.
    #[error("invalid mailbox name")]
    InvalidName,
    /// The operation would exceed the quota.
    #[error("over quota")]
    OverQuota,
    /// No such queued message or recipient.
    #[error("not queued")]
    NotQueued,
    /// The account sent its allowance of messages for this hour or day.
    #[error("sending limit exceeded")]
    SendLimitExceeded,
    /// Another POP3 session holds the account's maildrop.
    #[error("maildrop in use")]
    MaildropInUse,
}

/// A temporary failure below the caller: no leader or quorum, a timeout, storage, shutdown, a
/// worker that died. The outcome of a write that failed this way is unknown (it may still
/// commit), so clients are told to retry: SMTP `451`, IMAP `NO [UNAVAILABLE]`, POP3
/// `-ERR [SYS/TEMP]`, HTTP 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);
