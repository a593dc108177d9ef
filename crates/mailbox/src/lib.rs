//! Mailbox actors: one per active account, serialising its writes and pushing change events
//! to the sessions watching it. STUB SIGNATURES: implemented by the mailbox work; IMAP, POP3
//! and the queue rely on these names and types.
#![warn(missing_docs)]

use tern_core::records::{MailboxRecord, MessageRecord, SpecialUse};
use tern_core::{AccountId, BlobId, MailboxId, ModSeq, Uid};
use tern_directory::AccountInfo;
use tern_raft::{RaftError, RaftNode};
use tern_store::{FlagOp, Rejection};
use tokio::sync::broadcast;

/// Mailbox operation failures.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// Refused by the state machine (no such mailbox, exists, over quota, ...).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Temporarily unavailable (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]).
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// A blob referenced by a message is missing on this node.
    #[error("message body {0:?} missing")]
    MissingBlob(BlobId),
    /// The POP3 maildrop is locked by another session (RFC 3206 IN-USE).
    #[error("maildrop in use")]
    InUse,
    /// The account's mailbox actor stopped.
    #[error("mailbox actor unavailable")]
    ActorGone,
}

/// A change in one of the account's mailboxes, pushed to watching sessions (IDLE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxEvent {
    /// Messages were added, flagged or expunged; `modseq` is the mailbox's new HIGHESTMODSEQ.
    Changed {
        /// The mailbox.
        mailbox: MailboxId,
        /// Its new highest MODSEQ.
        modseq: ModSeq,
    },
    /// The mailbox list changed (create, delete, rename).
    ListChanged,
}

/// A selected mailbox's state at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The mailbox and its counters.
    pub mailbox: MailboxRecord,
    /// All messages in UID order.
    pub messages: Vec<MessageRecord>,
}

/// Result of APPEND (UIDPLUS APPENDUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Target mailbox.
    pub mailbox: MailboxId,
    /// Its UIDVALIDITY.
    pub uidvalidity: u32,
    /// The new UID.
    pub uid: Uid,
}

/// Result of COPY/MOVE (UIDPLUS COPYUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Target mailbox's UIDVALIDITY.
    pub uidvalidity: u32,
    /// (source UID, new UID) pairs.
    pub uids: Vec<(Uid, Uid)>,
}

/// Result of STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Changed messages: UID, flags after, new MODSEQ.
    pub changed: Vec<(Uid, Vec<String>, ModSeq)>,
    /// UIDs left alone because of UNCHANGEDSINCE.
    pub modified: Vec<Uid>,
}

/// The registry of mailbox actors on this node. Cheap to clone.
#[derive(Clone)]
pub struct Mailboxes {}

impl Mailboxes {
    /// A registry proposing through `raft`.
    pub fn new(raft: RaftNode) -> Mailboxes {
        let _ = raft;
        todo!()
    }

    /// The handle of `account`'s mailbox actor, starting it if needed (and creating the
    /// default mailboxes if the account has none yet).
    pub async fn open(&self, account: &AccountInfo) -> Result<Account, MailboxError> {
        let _ = account;
        todo!()
    }

    /// Tells watchers of `account` that `mailbox` changed (called after a delivery commits).
    pub fn notify(&self, account: AccountId, event: MailboxEvent) {
        let _ = (account, event);
        todo!()
    }

    /// Stops every mailbox actor.
    pub async fn shutdown(&self) {
        todo!()
    }
}

/// A handle to one account's mailbox actor. Cheap to clone.
#[derive(Clone)]
pub struct Account {}

impl Account {
    /// The account.
    pub fn info(&self) -> &AccountInfo {
        todo!()
    }
    /// All mailboxes with their counters, sorted by name (INBOX first).
    pub async fn list(&self) -> Result<Vec<MailboxRecord>, MailboxError> {
        todo!()
    }
    /// One mailbox's counters (STATUS).
    pub async fn status(&self, name: &str) -> Result<MailboxRecord, MailboxError> {
        let _ = name;
        todo!()
    }
    /// The mailbox's full index (SELECT, and resync after changes).
    pub async fn snapshot(&self, name: &str) -> Result<Snapshot, MailboxError> {
        let _ = name;
        todo!()
    }
    /// The full index of a mailbox by id (after rename the session keeps its id).
    pub async fn snapshot_by_id(&self, id: MailboxId) -> Result<Snapshot, MailboxError> {
        let _ = id;
        todo!()
    }
    /// CREATE.
    pub async fn create(
        &self,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError> {
        let _ = (name, special_use);
        todo!()
    }
    /// DELETE.
    pub async fn delete(&self, name: &str) -> Result<(), MailboxError> {
        let _ = name;
        todo!()
    }
    /// RENAME.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), MailboxError> {
        let _ = (from, to);
        todo!()
    }
    /// SUBSCRIBE / UNSUBSCRIBE.
    pub async fn subscribe(&self, name: &str, subscribed: bool) -> Result<(), MailboxError> {
        let _ = (name, subscribed);
        todo!()
    }
    /// APPEND; `internal_date` defaults to now.
    pub async fn append(
        &self,
        mailbox: &str,
        body: Vec<u8>,
        flags: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<Appended, MailboxError> {
        let _ = (mailbox, body, flags, internal_date);
        todo!()
    }
    /// STORE.
    pub async fn store(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<Stored, MailboxError> {
        let _ = (mailbox, uids, op, flags, unchanged_since);
        todo!()
    }
    /// COPY, or MOVE when `remove_source`.
    pub async fn copy(
        &self,
        from: MailboxId,
        uids: Vec<Uid>,
        to: &str,
        remove_source: bool,
    ) -> Result<Copied, MailboxError> {
        let _ = (from, uids, to, remove_source);
        todo!()
    }
    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (only those in `uids`); returns removed UIDs.
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Option<Vec<Uid>>,
    ) -> Result<Vec<Uid>, MailboxError> {
        let _ = (mailbox, uids);
        todo!()
    }
    /// A message body (read from the local replica).
    pub async fn read_blob(&self, blob: BlobId) -> Result<std::sync::Arc<Vec<u8>>, MailboxError> {
        let _ = blob;
        todo!()
    }
    /// Change events for this account.
    pub fn watch(&self) -> broadcast::Receiver<MailboxEvent> {
        todo!()
    }
    /// Takes the POP3 maildrop lock; `MailboxError::InUse` if another session holds it.
    /// The lock is released when the guard drops.
    pub fn lock_maildrop(&self) -> Result<MaildropLock, MailboxError> {
        todo!()
    }
}

/// Holds the POP3 maildrop lock of one account until dropped.
pub struct MaildropLock {}
