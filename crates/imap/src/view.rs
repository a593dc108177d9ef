//! A selected mailbox as this session sees it: the message list whose positions are sequence
//! numbers, the flags it last reported, the keywords it announced in `FLAGS`, and the messages
//! that are `\Recent` in this session. `sync` brings it up to date with a fresh snapshot and
//! writes the untagged EXPUNGE / FLAGS / EXISTS / RECENT / FETCH responses that tell the client.

use crate::proto::SeqSet;
use crate::response;
use std::collections::BTreeSet;
use tern_core::records::MessageRecord;
use tern_core::{MailboxId, Uid};
use tern_mailbox::Snapshot;

/// The system flags every mailbox allows (RFC 9051 §2.3.2).
const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

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
    /// Keywords announced to the client in `FLAGS` (RFC 9051 §7.3.5: a keyword is announced
    /// before a FETCH shows it).
    keywords: BTreeSet<String>,
    /// Messages `\Recent` in this session (IMAP4rev1 only; empty under IMAP4rev2).
    recent: BTreeSet<Uid>,
    /// QRESYNC: expunges are reported as `VANISHED` UID sets, not `EXPUNGE` numbers.
    pub vanished: bool,
    /// CONDSTORE: flag changes are reported with their MODSEQ.
    pub show_modseq: bool,
    /// The UIDs the last `SEARCH RETURN (SAVE)` kept: what `$` names (RFC 5182).
    pub saved: Vec<u32>,
}

/// Which new messages a sync makes `\Recent` in this session: those with a UID of at least
/// this (see `tern_mailbox::Account::claim_recent`); `None` for none.
pub type RecentFrom = Option<Uid>;

impl View {
    /// The view right after SELECT; messages from `recent_from` on are `\Recent` here.
    pub fn new(snapshot: Snapshot, read_only: bool, recent_from: RecentFrom) -> View {
        let keywords = snapshot
            .messages
            .iter()
            .flat_map(|m| m.flags.iter())
            .filter(|f| !f.starts_with('\\'))
            .cloned()
            .collect();
        let recent = match recent_from {
            Some(from) => snapshot
                .messages
                .iter()
                .map(|m| m.uid)
                .filter(|u| *u >= from)
                .collect(),
            None => BTreeSet::new(),
        };
        View {
            id: snapshot.mailbox.id,
            name: snapshot.mailbox.name,
            read_only,
            uidvalidity: snapshot.mailbox.uidvalidity,
            messages: snapshot.messages,
            keywords,
            recent,
            vanished: false,
            show_modseq: false,
            saved: Vec::new(),
        }
    }

    /// The UIDs of `set` (a UID set, `*` the highest UID here) up to `highest` that are not
    /// in the mailbox: what the client may still hold of messages expunged since. Gaps only,
    /// so a set of millions of UIDs costs one pass over the messages it covers.
    pub fn missing_uids(&self, set: &SeqSet, highest: u32) -> Vec<(u32, u32)> {
        let mut gaps = Vec::new();
        for (lo, hi) in set.intervals(self.last_uid().0) {
            let (lo, hi) = (lo.max(1), hi.min(highest));
            if lo > hi {
                continue;
            }
            let mut next = lo;
            let start = self.messages.partition_point(|m| m.uid.0 < lo);
            for m in &self.messages[start..] {
                if m.uid.0 > hi {
                    break;
                }
                if m.uid.0 > next {
                    gaps.push((next, m.uid.0 - 1));
                }
                next = m.uid.0.saturating_add(1);
            }
            if next <= hi {
                gaps.push((next, hi));
            }
        }
        gaps
    }

    /// How many messages are `\Recent` in this session.
    pub fn recent_count(&self) -> usize {
        self.recent.len()
    }

    /// Whether `uid` is `\Recent` in this session.
    pub fn is_recent(&self, uid: Uid) -> bool {
        self.recent.contains(&uid)
    }

    /// The highest UID in the view (0 when empty).
    pub fn last_uid(&self) -> Uid {
        self.messages.last().map(|m| m.uid).unwrap_or(Uid(0))
    }

    /// Writes the `FLAGS` and `PERMANENTFLAGS` responses: the system flags and every keyword
    /// announced so far.
    pub fn write_flags(&self, out: &mut Vec<u8>) {
        let mut all = SYSTEM_FLAGS.to_string();
        for k in &self.keywords {
            all.push(' ');
            all.push_str(k);
        }
        out.extend_from_slice(format!("* FLAGS ({all})\r\n").as_bytes());
        if self.read_only {
            out.extend_from_slice(b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
        } else {
            out.extend_from_slice(
                format!("* OK [PERMANENTFLAGS ({all} \\*)] Flags permitted\r\n").as_bytes(),
            );
        }
    }

    /// Announces (writes `FLAGS` again) when `flags` hold a keyword not announced yet.
    pub fn announce_keywords<'a>(
        &mut self,
        flags: impl IntoIterator<Item = &'a String>,
        out: &mut Vec<u8>,
    ) {
        let mut added = false;
        for f in flags {
            if !f.starts_with('\\') && !self.keywords.contains(f) {
                self.keywords.insert(f.clone());
                added = true;
            }
        }
        if added {
            self.write_flags(out);
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

    /// Brings the view to `snapshot`, writing untagged responses to `out`; new messages from
    /// `recent_from` on become `\Recent` here. Expunges are only reported (and applied) when
    /// `allow_expunge`: during FETCH, STORE and SEARCH by sequence number they would renumber
    /// messages under the client's feet (RFC 9051 §7.5.1).
    pub fn sync(
        &mut self,
        snapshot: Snapshot,
        allow_expunge: bool,
        uid_in_fetch: bool,
        recent_from: RecentFrom,
        out: &mut Vec<u8>,
    ) {
        let fresh = snapshot.messages;
        if allow_expunge {
            // One pass over the view, not one removal per expunged message.
            let mut gone = Vec::new();
            let mut kept = Vec::with_capacity(self.messages.len());
            for (i, m) in std::mem::take(&mut self.messages).into_iter().enumerate() {
                if fresh.binary_search_by_key(&m.uid, |f| f.uid).is_ok() {
                    kept.push(m);
                } else {
                    gone.push((i + 1, m.uid.0));
                    self.recent.remove(&m.uid);
                }
            }
            self.messages = kept;
            if self.vanished && !gone.is_empty() {
                let uids = gone.iter().map(|&(_, u)| u).collect();
                out.extend_from_slice(
                    format!("* VANISHED {}\r\n", SeqSet::compact(uids)).as_bytes(),
                );
            } else {
                // RFC 9051 §7.5.1: each EXPUNGE renumbers the messages after it, so numbers
                // are sent in an order that stays right as the client applies them in turn.
                for (k, (seq, _)) in gone.iter().enumerate() {
                    out.extend_from_slice(format!("* {} EXPUNGE\r\n", seq - k).as_bytes());
                }
            }
        }
        let last_uid = self.last_uid();
        let start = fresh.partition_point(|m| m.uid <= last_uid);
        let added = &fresh[start..];
        self.announce_keywords(fresh.iter().flat_map(|m| m.flags.iter()), out);
        if !added.is_empty() {
            self.messages.extend_from_slice(added);
            if let Some(from) = recent_from {
                self.recent
                    .extend(added.iter().map(|m| m.uid).filter(|u| *u >= from));
            }
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
            if recent_from.is_some() {
                out.extend_from_slice(format!("* {} RECENT\r\n", self.recent.len()).as_bytes());
            }
        }
        let mut j = 0;
        for (i, mine) in self.messages.iter_mut().enumerate() {
            // Both lists ascend by UID: walk them together.
            while j < fresh.len() && fresh[j].uid < mine.uid {
                j += 1;
            }
            if let Some(f) = fresh.get(j)
                && f.uid == mine.uid
                && f.flags != mine.flags
            {
                mine.flags = f.flags.clone();
                mine.modseq = f.modseq;
                // Under QRESYNC every FETCH carries the UID (RFC 7162 §3.2.4).
                let uid = (uid_in_fetch || self.vanished).then_some(mine.uid);
                let recent = self.recent.contains(&mine.uid);
                let modseq = self.show_modseq.then_some(mine.modseq.0);
                response::flags_fetch(out, i as u32 + 1, uid, &mine.flags, recent, modseq);
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
            keywords: BTreeSet::new(),
            recent: BTreeSet::new(),
            vanished: false,
            show_modseq: false,
            saved: Vec::new(),
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

    #[test]
    fn missing_uids_are_the_gaps_of_the_set() {
        let v = view(&[3, 5, 6, 10]);
        let gaps = |set: &str, highest| v.missing_uids(&SeqSet::from_text(set).unwrap(), highest);
        assert_eq!(gaps("1:*", 12), vec![(1, 2), (4, 4), (7, 9)]);
        assert_eq!(
            gaps("1:4294967295", 12),
            vec![(1, 2), (4, 4), (7, 9), (11, 12)]
        );
        assert_eq!(gaps("5:6", 12), vec![]);
        assert_eq!(gaps("4,8:9", 12), vec![(4, 4), (8, 9)]);
        assert!(
            view(&[])
                .missing_uids(&SeqSet::from_text("1:*").unwrap(), 0)
                .is_empty()
        );
    }
}
