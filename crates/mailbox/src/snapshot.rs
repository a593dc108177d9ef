//! Building a [`Snapshot`] from two reads that are not one atomic view.
//!
//! The mailbox record and its messages are read one after the other while deliveries may
//! commit in between, so the message list can be newer than the counters. The list is what a
//! session shows, so the counters are recomputed from it and the UIDNEXT / HIGHESTMODSEQ marks
//! are raised to cover it: the snapshot then never contradicts itself.

use crate::{MailboxError, Snapshot};
use tern_core::records::{MailboxRecord, MessageRecord};
use tern_core::{AccountId, MailboxId, Uid, flags};
use tern_store::{Reader, Rejection};

/// Reads mailbox `id` of `account` and its messages.
pub(crate) fn read(
    reader: &Reader,
    account: AccountId,
    id: MailboxId,
) -> Result<Snapshot, MailboxError> {
    let mailbox = reader
        .mailbox_by_id(account, id)?
        .ok_or(Rejection::NoSuchMailbox)?;
    let first_recent = reader.first_recent(account, id)?;
    let messages = reader.messages(account, id)?;
    Ok(reconcile(mailbox, messages, first_recent))
}

/// Makes the counters of `mailbox` agree with `messages` (see the module docs).
pub(crate) fn reconcile(
    mut mailbox: MailboxRecord,
    messages: Vec<MessageRecord>,
    first_recent: Uid,
) -> Snapshot {
    mailbox.messages = u32::try_from(messages.len()).unwrap_or(u32::MAX);
    let unseen = messages
        .iter()
        .filter(|m| !m.flags.iter().any(|f| f == flags::SEEN))
        .count();
    mailbox.unseen = u32::try_from(unseen).unwrap_or(u32::MAX);
    mailbox.size = messages.iter().map(|m| m.size).sum();
    if let Some(last) = messages.last() {
        mailbox.uidnext = mailbox.uidnext.max(last.uid.0.saturating_add(1));
    }
    if let Some(top) = messages.iter().map(|m| m.modseq.0).max() {
        mailbox.highest_modseq = mailbox.highest_modseq.max(top);
    }
    Snapshot {
        mailbox,
        messages,
        first_recent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::{BlobId, ModSeq};

    fn message(uid: u32, modseq: u64, seen: bool) -> MessageRecord {
        MessageRecord {
            uid: Uid(uid),
            blob: BlobId([0; 32]),
            size: 10,
            internal_date: 0,
            flags: if seen {
                vec![flags::SEEN.into()]
            } else {
                vec![]
            },
            modseq: ModSeq(modseq),
        }
    }

    fn mailbox(uidnext: u32, highest_modseq: u64, messages: u32) -> MailboxRecord {
        MailboxRecord {
            id: MailboxId(1),
            name: "INBOX".into(),
            uidvalidity: 7,
            uidnext,
            highest_modseq,
            special_use: None,
            subscribed: true,
            messages,
            unseen: messages,
            size: 10 * u64::from(messages),
        }
    }

    #[test]
    fn counters_follow_a_newer_message_list() {
        // The record was read before uid 3 (modseq 9) was delivered.
        let list = vec![
            message(1, 4, true),
            message(2, 5, false),
            message(3, 9, false),
        ];
        let snap = reconcile(mailbox(3, 5, 2), list, Uid(1));
        let m = snap.mailbox;
        assert_eq!((m.messages, m.unseen, m.size), (3, 2, 30));
        assert_eq!((m.uidnext, m.highest_modseq), (4, 9));
    }

    #[test]
    fn consistent_reads_are_unchanged() {
        let list = vec![message(1, 4, true), message(5, 6, false)];
        let before = mailbox(9, 12, 2);
        let snap = reconcile(before.clone(), list, Uid(1));
        assert_eq!(snap.mailbox.uidnext, 9);
        assert_eq!(snap.mailbox.highest_modseq, 12);
        assert_eq!(snap.mailbox.size, 20);
        assert_eq!(snap.mailbox.unseen, 1);
    }

    #[test]
    fn empty_mailbox() {
        let snap = reconcile(mailbox(1, 1, 0), vec![], Uid(1));
        assert_eq!((snap.mailbox.messages, snap.mailbox.uidnext), (0, 1));
    }
}
