//! The maildrop of a session in the TRANSACTION state: the INBOX as it was at login, numbered
//! 1..n, with the session's own marks (deleted, retrieved) and the lock that keeps other POP3
//! sessions out. Nothing here touches storage until [`Maildrop::update`] (the UPDATE state) or
//! [`Maildrop::mark_seen`].
//!
//! RFC 1939 numbers messages for the whole session, so mail arriving meanwhile stays invisible
//! until the next login: the snapshot is never refreshed.

use crate::backend::MailAccount;
use tern_core::flags;
use tern_core::records::MessageRecord;
use tern_core::{MailboxId, Uid};
use tern_mailbox::{MailboxError, Snapshot};

/// Why DELE refused a message number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteError {
    /// No message has that number.
    NoSuchMessage,
    /// The message is already marked deleted.
    AlreadyDeleted,
}

/// One message of the snapshot and what this session did with it.
struct Entry {
    record: MessageRecord,
    deleted: bool,
    retrieved: bool,
}

/// A locked INBOX snapshot.
pub struct Maildrop<A: MailAccount> {
    account: A,
    /// Held for the session's lifetime (RFC 1939 §8 gives one session exclusive access);
    /// `None` once released at QUIT.
    lock: Option<A::Lock>,
    mailbox: MailboxId,
    uidvalidity: u32,
    entries: Vec<Entry>,
}

impl<A: MailAccount> Maildrop<A> {
    /// Wraps a snapshot taken while `lock` was held.
    pub fn new(account: A, lock: A::Lock, snapshot: Snapshot) -> Maildrop<A> {
        Maildrop {
            account,
            lock: Some(lock),
            mailbox: snapshot.mailbox.id,
            uidvalidity: snapshot.mailbox.uidvalidity,
            entries: snapshot
                .messages
                .into_iter()
                .map(|record| Entry {
                    record,
                    deleted: false,
                    retrieved: false,
                })
                .collect(),
        }
    }

    /// The account.
    pub fn account(&self) -> &A {
        &self.account
    }

    /// Number and total size of the messages not marked deleted (STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, octets), (_, m)| (n + 1, octets + m.size))
    }

    /// Message `msg` (1-based), unless it does not exist or is marked deleted.
    pub fn get(&self, msg: u32) -> Option<&MessageRecord> {
        self.entry(msg).filter(|e| !e.deleted).map(|e| &e.record)
    }

    /// The messages not marked deleted, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (u32, &MessageRecord)> {
        // Numbers fit in u32: a mailbox cannot hold more messages than it has UIDs.
        (1u32..)
            .zip(&self.entries)
            .filter(|(_, e)| !e.deleted)
            .map(|(n, e)| (n, &e.record))
    }

    /// The RFC 1939 §7 unique id of a message: UIDVALIDITY and UID together never repeat for
    /// another message, even after the mailbox is deleted and re-created.
    pub fn unique_id(&self, message: &MessageRecord) -> String {
        format!("{}.{}", self.uidvalidity, message.uid.0)
    }

    /// Marks message `msg` deleted (DELE).
    pub fn delete(&mut self, msg: u32) -> Result<(), DeleteError> {
        let entry = self.entry_mut(msg).ok_or(DeleteError::NoSuchMessage)?;
        if entry.deleted {
            return Err(DeleteError::AlreadyDeleted);
        }
        entry.deleted = true;
        Ok(())
    }

    /// Clears every deletion mark (RSET).
    pub fn reset(&mut self) {
        for entry in &mut self.entries {
            entry.deleted = false;
        }
    }

    /// Remembers that message `msg` was sent to the client with RETR, so that it gets `\Seen`.
    pub fn mark_retrieved(&mut self, msg: u32) {
        if let Some(entry) = self.entry_mut(msg) {
            entry.retrieved = true;
        }
    }

    /// Sets `\Seen` on the retrieved messages that stay and lack it. One proposal per session
    /// instead of one per RETR: a client downloading a thousand messages should not cost a
    /// thousand fsyncs. Messages that will be expunged are skipped.
    pub async fn mark_seen(&mut self) -> Result<(), MailboxError> {
        let uids: Vec<Uid> = self
            .entries
            .iter()
            .filter(|e| e.retrieved && !e.deleted && !has_flag(&e.record, flags::SEEN))
            .map(|e| e.record.uid)
            .collect();
        if uids.is_empty() {
            return Ok(());
        }
        self.account
            .add_flag(self.mailbox, uids, flags::SEEN)
            .await?;
        // Do not send them again if this is called twice (after QUIT, then at session end).
        for entry in &mut self.entries {
            entry.retrieved = false;
        }
        Ok(())
    }

    /// The UPDATE state (RFC 1939 §6): `\Seen` on what was retrieved, then the deleted
    /// messages flagged `\Deleted` and expunged by UID, so that messages deleted here are the
    /// only ones removed even if an IMAP client flagged others meanwhile.
    pub async fn update(&mut self) -> Result<(), MailboxError> {
        self.mark_seen().await?;
        let deleted: Vec<Uid> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.record.uid)
            .collect();
        if deleted.is_empty() {
            return Ok(());
        }
        self.account
            .add_flag(self.mailbox, deleted.clone(), flags::DELETED)
            .await?;
        self.account.expunge(self.mailbox, deleted).await?;
        Ok(())
    }

    /// Releases the maildrop lock (after UPDATE), so the user's next session is not refused.
    pub async fn unlock(&mut self) {
        if let Some(lock) = self.lock.take() {
            self.account.unlock(lock).await;
        }
    }

    /// The mailbox id, for error reports.
    pub fn mailbox(&self) -> MailboxId {
        self.mailbox
    }

    fn entry(&self, msg: u32) -> Option<&Entry> {
        let index = usize::try_from(msg).ok()?.checked_sub(1)?;
        self.entries.get(index)
    }

    fn entry_mut(&mut self, msg: u32) -> Option<&mut Entry> {
        let index = usize::try_from(msg).ok()?.checked_sub(1)?;
        self.entries.get_mut(index)
    }
}

fn has_flag(message: &MessageRecord, flag: &str) -> bool {
    message.flags.iter().any(|f| f == flag)
}
