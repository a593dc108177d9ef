//! The values mailbox operations return and the events they push.

use tern_core::records::{MailboxRecord, MessageRecord};
use tern_core::{MailboxId, ModSeq, Uid};

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
    /// The lowest UID no IMAP session was shown yet (IMAP4rev1 `\Recent`), as this replica
    /// last saw it; `Account::claim_recent` decides.
    pub first_recent: Uid,
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
