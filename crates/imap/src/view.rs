//! A selected mailbox as this session sees it: the message list whose positions are sequence
//! numbers, and the flags it last reported. `sync` brings it up to date with a fresh snapshot
//! and writes the untagged EXPUNGE / EXISTS / FETCH responses that tell the client.

use crate::proto::SeqSet;
use crate::response;
use tern_core::records::MessageRecord;
use tern_core::{MailboxId, Uid};
use tern_mailbox::Snapshot;

/// The session's view of its selected mailbox.
pub struct View {
    /// The mailbox.
    pub id: MailboxId,
    /// Its name when selected.
    pub name: String,
    /// EXAMINE.
    pub read_only: bool,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Messages in sequence order.
    pub messages: Vec<MessageRecord>,
}

impl View {
    /// The view right after SELECT.
    pub fn new(snapshot: Snapshot, read_only: bool) -> View {
        View {
            id: snapshot.mailbox.id,
            name: snapshot.mailbox.name,
            read_only,
            uidvalidity: snapshot.mailbox.uidvalidity,
            messages: snapshot.messages,
        }
    }

    /// The messages a sequence set or UID set names, with their sequence numbers (1-based),
    /// ascending and each once. Costs `O(r log n)` for `r` ranges plus the answer, so a
    /// client listing thousands of numbers cannot make it scan the mailbox once per number.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Vec<(u32, &MessageRecord)> {
        let largest = if uid {
            self.messages.last().map(|m| m.uid.0).unwrap_or(0)
        } else {
            self.messages.len() as u32
        };
        let mut found = Vec::new();
        for (lo, hi) in set.intervals(largest) {
            // Positions (0-based, end exclusive) of the messages the interval names.
            let (start, end) = if uid {
                (
                    self.messages.partition_point(|m| m.uid.0 < lo),
                    self.messages.partition_point(|m| m.uid.0 <= hi),
                )
            } else {
                let len = self.messages.len();
                ((lo.max(1) as usize - 1).min(len), (hi as usize).min(len))
            };
            let named = self.messages.get(start..end).unwrap_or_default();
            for (offset, m) in named.iter().enumerate() {
                found.push(((start + offset) as u32 + 1, m));
            }
        }
        found
    }

    /// The UIDs a sequence set or UID set names, ascending.
    pub fn uids(&self, set: &SeqSet, uid: bool) -> Vec<Uid> {
        self.resolve(set, uid)
            .into_iter()
            .map(|(_, m)| m.uid)
            .collect()
    }

    /// The sequence number of a UID.
    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Updates flags we changed ourselves (so `sync` does not report them again).
    pub fn set_flags(&mut self, uid: Uid, flags: Vec<String>, modseq: tern_core::ModSeq) {
        if let Ok(i) = self.messages.binary_search_by_key(&uid, |m| m.uid) {
            self.messages[i].flags = flags;
            self.messages[i].modseq = modseq;
        }
    }

    /// Brings the view to `snapshot`, writing untagged responses to `out`. Expunges are only
    /// reported (and applied) when `allow_expunge`: during FETCH, STORE and SEARCH by sequence
    /// number they would renumber messages under the client's feet (RFC 9051 §7.5.1).
    pub fn sync(
        &mut self,
        snapshot: Snapshot,
        allow_expunge: bool,
        uid_in_fetch: bool,
        out: &mut Vec<u8>,
    ) {
        let fresh = snapshot.messages;
        if allow_expunge {
            let mut i = 0;
            while i < self.messages.len() {
                let uid = self.messages[i].uid;
                if fresh.binary_search_by_key(&uid, |m| m.uid).is_err() {
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", i + 1).as_bytes());
                    self.messages.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        let last_uid = self.messages.last().map(|m| m.uid).unwrap_or(Uid(0));
        let mut added = false;
        for m in &fresh {
            if m.uid > last_uid {
                self.messages.push(m.clone());
                added = true;
            }
        }
        if added {
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
        }
        for (i, mine) in self.messages.iter_mut().enumerate() {
            if let Ok(j) = fresh.binary_search_by_key(&mine.uid, |m| m.uid)
                && fresh[j].flags != mine.flags
            {
                mine.flags = fresh[j].flags.clone();
                mine.modseq = fresh[j].modseq;
                let uid = uid_in_fetch.then_some(mine.uid);
                response::flags_fetch(out, i as u32 + 1, uid, &mine.flags, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::ModSeq;
    use tern_core::ids::BlobId;

    fn view(uids: &[u32]) -> View {
        View {
            id: MailboxId(1),
            name: "INBOX".into(),
            read_only: false,
            uidvalidity: 1,
            messages: uids
                .iter()
                .map(|&u| MessageRecord {
                    uid: Uid(u),
                    blob: BlobId([0; 32]),
                    size: 1,
                    internal_date: 0,
                    flags: Vec::new(),
                    modseq: ModSeq(1),
                })
                .collect(),
        }
    }

    fn resolved(v: &View, set: &str, uid: bool) -> Vec<(u32, u32)> {
        let set = SeqSet::from_text(set).unwrap();
        v.resolve(&set, uid)
            .into_iter()
            .map(|(s, m)| (s, m.uid.0))
            .collect()
    }

    #[test]
    fn resolves_each_message_once_in_order() {
        let v = view(&[3, 5, 9, 10, 20]);
        assert_eq!(
            resolved(&v, "4:*,1,1:2", false),
            vec![(1, 3), (2, 5), (4, 10), (5, 20)]
        );
        assert_eq!(
            resolved(&v, "6:10,1:4,*", true),
            vec![(1, 3), (3, 9), (4, 10), (5, 20)]
        );
        assert_eq!(resolved(&v, "99", false), vec![]);
        assert_eq!(resolved(&v, "21:30", true), vec![]);
        // `*` on a UID set is the highest UID, even when the number given is above it.
        assert_eq!(resolved(&v, "100:*", true), vec![(5, 20)]);
        assert!(resolved(&view(&[]), "1:*", false).is_empty());
    }
}
