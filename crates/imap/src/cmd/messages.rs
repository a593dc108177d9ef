//! Message-level commands on the selected mailbox.

use crate::esearch::{self, Hit};
use crate::mime::Parsed;
use crate::proto::command::{FetchItem, Section, SectionText, StoreOp};
use crate::proto::search::{SearchKey, SearchReturn};
use crate::proto::{SeqSet, encode};
use crate::response;
use crate::session::{Session, no_for};
use std::sync::Arc;
use tern_core::Uid;
use tern_core::flags::SEEN;
use tern_core::ops::{FlagOp, Rejection};
use tern_core::records::MessageRecord;
use tern_mailbox::{Account, MailboxError};

fn needs_body(items: &[FetchItem]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            FetchItem::Envelope
                | FetchItem::BodyStructure
                | FetchItem::Body
                | FetchItem::Section { .. }
                | FetchItem::Binary { .. }
                | FetchItem::BinarySize { .. }
        )
    })
}

/// A part path as written in a section, `1.2.3`.
fn dotted(part: &[u32]) -> String {
    part.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

fn section_name(section: &Section) -> String {
    let mut name: Vec<String> = section.part.iter().map(u32::to_string).collect();
    let text = match &section.text {
        SectionText::Full => None,
        SectionText::Header => Some("HEADER".to_string()),
        SectionText::Text => Some("TEXT".to_string()),
        SectionText::Mime => Some("MIME".to_string()),
        SectionText::Fields(f) => Some(format!("HEADER.FIELDS ({})", f.join(" ").to_uppercase())),
        SectionText::FieldsNot(f) => Some(format!(
            "HEADER.FIELDS.NOT ({})",
            f.join(" ").to_uppercase()
        )),
    };
    name.extend(text);
    name.join(".")
}

/// The `<start.len>` range of `bytes`: empty from past the end, cut at the end (u64 offsets,
/// never truncated to 32 bits).
fn partial_range(bytes: &[u8], start: u64, len: u64) -> &[u8] {
    let start = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    &bytes[start..start.saturating_add(len).min(bytes.len())]
}

impl Session {
    async fn body_of(
        &self,
        account: &Account,
        m: &MessageRecord,
    ) -> Result<Arc<Vec<u8>>, MailboxError> {
        account.read_blob(m.blob).await
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch(
        &mut self,
        tag: &str,
        account: &Account,
        set: &SeqSet,
        uid: bool,
        items: &[FetchItem],
        changed_since: Option<u64>,
    ) -> std::io::Result<()> {
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        let read_only = view.read_only;
        let mut targets: Vec<(u32, MessageRecord)> = view
            .resolve(set, uid)
            .into_iter()
            .map(|(s, m)| (s, m.clone()))
            .collect();
        if let Some(since) = changed_since {
            targets.retain(|(_, m)| m.modseq.0 > since);
        }
        // Fetching a body section without PEEK sets \Seen (RFC 9051 §6.4.5); do it first so
        // the FLAGS in this response are the new ones.
        let sets_seen = items.iter().any(|i| {
            matches!(
                i,
                FetchItem::Section { peek: false, .. } | FetchItem::Binary { peek: false, .. }
            )
        });
        // Messages this FETCH set \Seen on: their new FLAGS go with them even when not asked
        // for (RFC 3501 §6.4.5).
        let mut seen_now: Vec<Uid> = Vec::new();
        if sets_seen && !read_only {
            let unseen: Vec<Uid> = targets
                .iter()
                .filter(|(_, m)| !m.flags.iter().any(|f| f == SEEN))
                .map(|(_, m)| m.uid)
                .collect();
            if !unseen.is_empty() {
                let id = view.id;
                match account
                    .store(id, unseen, FlagOp::Add, vec![SEEN.to_string()], None)
                    .await
                {
                    Ok(stored) => {
                        for (u, flags, modseq) in stored.changed {
                            seen_now.push(u);
                            if let Some(v) = self.selected.as_mut() {
                                v.set_flags(u, flags.clone(), modseq);
                            }
                            // `targets` ascend by UID (sequence order).
                            if let Ok(i) = targets.binary_search_by_key(&u, |(_, m)| m.uid) {
                                targets[i].1.flags = flags;
                                targets[i].1.modseq = modseq;
                            }
                        }
                    }
                    Err(e) => {
                        self.tagged(tag, &no_for(&e));
                        return Ok(());
                    }
                }
            }
        }
        seen_now.sort_unstable();
        let with_body = needs_body(items);
        for (seq, m) in &targets {
            let blob = if with_body {
                match self.body_of(account, m).await {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::warn!(uid = m.uid.0, error = %e, "cannot read message body");
                        continue;
                    }
                }
            } else {
                None
            };
            let parsed = blob.as_deref().map(|b| Parsed::new(b));
            // BINARY content first: a part whose encoding is unknown fails the command before
            // this message's response starts (RFC 3516 §4.3).
            let mut binaries = Vec::with_capacity(items.len());
            for item in items {
                let content = match (item, parsed.as_ref()) {
                    (FetchItem::Binary { part, .. } | FetchItem::BinarySize { part }, Some(p)) => {
                        match p.binary(part) {
                            Some(content) => Some(content),
                            None => {
                                self.refresh(uid, uid).await;
                                let why = "NO [UNKNOWN-CTE] A part's encoding cannot be decoded";
                                self.tagged(tag, why);
                                return Ok(());
                            }
                        }
                    }
                    _ => None,
                };
                binaries.push(content);
            }
            // Each item goes out as soon as enough is queued: memory stays near one message
            // and the flush threshold, however many messages and items were asked for.
            self.out
                .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.out.push(b' ');
                }
                let mut out = std::mem::take(&mut self.out);
                let binary = binaries.get(i).and_then(|b| b.as_deref());
                self.fetch_item(&mut out, item, m, parsed.as_ref(), binary);
                self.out = out;
                self.flush_if_large().await?;
            }
            if seen_now.binary_search(&m.uid).is_ok() && !items.contains(&FetchItem::Flags) {
                self.out.extend_from_slice(b" FLAGS ");
                let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(m.uid));
                response::flag_list(&mut self.out, &m.flags, recent);
            }
            self.out.extend_from_slice(b")\r\n");
        }
        self.refresh(uid, uid).await;
        self.tagged(
            tag,
            &format!("OK {}FETCH completed", if uid { "UID " } else { "" }),
        );
        Ok(())
    }

    fn fetch_item(
        &self,
        out: &mut Vec<u8>,
        item: &FetchItem,
        m: &MessageRecord,
        parsed: Option<&Parsed<'_>>,
        binary: Option<&[u8]>,
    ) {
        match item {
            FetchItem::Uid => out.extend_from_slice(format!("UID {}", m.uid.0).as_bytes()),
            FetchItem::Flags => {
                out.extend_from_slice(b"FLAGS ");
                let recent = self.selected.as_ref().is_some_and(|v| v.is_recent(m.uid));
                response::flag_list(out, &m.flags, recent);
            }
            FetchItem::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE ");
                response::internal_date(out, m.internal_date);
            }
            FetchItem::Size => out.extend_from_slice(format!("RFC822.SIZE {}", m.size).as_bytes()),
            FetchItem::ModSeq => {
                out.extend_from_slice(format!("MODSEQ ({})", m.modseq.0).as_bytes())
            }
            FetchItem::Envelope => {
                out.extend_from_slice(b"ENVELOPE ");
                if let Some(p) = parsed {
                    p.envelope(out);
                }
            }
            FetchItem::BodyStructure | FetchItem::Body => {
                let extended = matches!(item, FetchItem::BodyStructure);
                out.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                if let Some(p) = parsed {
                    p.body_structure(out, extended);
                }
            }
            FetchItem::Binary { part, partial, .. } => {
                let bytes = binary.unwrap_or_default();
                out.extend_from_slice(format!("BINARY[{}]", dotted(part)).as_bytes());
                let slice = match partial {
                    Some((start, len)) => {
                        out.extend_from_slice(format!("<{start}>").as_bytes());
                        partial_range(bytes, *start, *len)
                    }
                    None => bytes,
                };
                // A literal8 when the content has NULs, which a literal cannot carry.
                let marker = if slice.contains(&0) { "~" } else { "" };
                out.extend_from_slice(format!(" {marker}{{{}}}\r\n", slice.len()).as_bytes());
                out.extend_from_slice(slice);
            }
            FetchItem::BinarySize { part } => {
                let size = binary.map_or(0, <[u8]>::len);
                out.extend_from_slice(format!("BINARY.SIZE[{}] {size}", dotted(part)).as_bytes());
            }
            FetchItem::Section {
                section,
                partial,
                legacy,
                ..
            } => {
                let bytes = parsed.map(|p| p.section(section)).unwrap_or_default();
                let name = match legacy {
                    Some(l) => l.to_string(),
                    None => format!("BODY[{}]", section_name(section)),
                };
                out.extend_from_slice(name.as_bytes());
                let slice = match partial {
                    Some((start, len)) => {
                        out.extend_from_slice(format!("<{start}>").as_bytes());
                        partial_range(&bytes, *start, *len)
                    }
                    None => &bytes[..],
                };
                out.push(b' ');
                encode::literal(out, slice);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store(
        &mut self,
        tag: &str,
        account: &Account,
        set: &SeqSet,
        uid: bool,
        op: StoreOp,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) {
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if view.read_only {
            return self.tagged(tag, "NO [READ-ONLY] Mailbox is read-only");
        }
        let id = view.id;
        let uids = view.uids(set, uid);
        let op = match op {
            StoreOp::Replace => FlagOp::Replace,
            StoreOp::Add => FlagOp::Add,
            StoreOp::Remove => FlagOp::Remove,
        };
        // `\Recent` belongs to the session and cannot be stored (RFC 3501 §2.3.2).
        let flags: Vec<String> = flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        let stored = match account.store(id, uids, op, flags, unchanged_since).await {
            Ok(s) => s,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let mut out = std::mem::take(&mut self.out);
        if let Some(view) = self.selected.as_mut() {
            view.announce_keywords(
                stored.changed.iter().flat_map(|(_, f, _)| f.iter()),
                &mut out,
            );
            for (u, flags, modseq) in stored.changed {
                view.set_flags(u, flags.clone(), modseq);
                if let (false, Some(seq)) = (silent, view.seq_of(u)) {
                    let shown = unchanged_since.is_some() || view.show_modseq;
                    let modseq_shown = shown.then_some(modseq.0);
                    let recent = view.is_recent(u);
                    response::flags_fetch(
                        &mut out,
                        seq,
                        (uid || view.vanished).then_some(u),
                        &flags,
                        recent,
                        modseq_shown,
                    );
                }
            }
        }
        self.out = out;
        self.refresh(uid, uid).await;
        if stored.modified.is_empty() {
            self.tagged(tag, "OK STORE completed");
        } else {
            let set = SeqSet::compact(stored.modified.iter().map(|u| u.0).collect());
            self.tagged(
                tag,
                &format!("OK [MODIFIED {set}] Conditional STORE failed for some"),
            );
        }
    }

    pub(crate) async fn copy(
        &mut self,
        tag: &str,
        account: &Account,
        set: &SeqSet,
        uid: bool,
        target: &str,
        remove_source: bool,
    ) {
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if remove_source && view.read_only {
            return self.tagged(tag, "NO [READ-ONLY] Mailbox is read-only");
        }
        let id = view.id;
        let uids = view.uids(set, uid);
        if uids.is_empty() {
            return self.tagged(tag, "OK Nothing to do");
        }
        let copied = match account.copy(id, uids, target, remove_source).await {
            Ok(c) => c,
            Err(MailboxError::Rejected(Rejection::NoSuchMailbox)) => {
                return self.tagged(tag, "NO [TRYCREATE] No such mailbox");
            }
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let from = SeqSet::compact(copied.uids.iter().map(|(s, _)| s.0).collect());
        let to = SeqSet::compact(copied.uids.iter().map(|(_, d)| d.0).collect());
        let code = format!("COPYUID {} {from} {to}", copied.uidvalidity);
        if remove_source {
            self.untagged(&format!("* OK [{code}] Moved"));
            self.refresh(true, uid).await;
            self.tagged(tag, "OK MOVE completed");
        } else {
            self.refresh(true, uid).await;
            self.tagged(tag, &format!("OK [{code}] COPY completed"));
        }
    }

    pub(crate) async fn search(
        &mut self,
        tag: &str,
        account: &Account,
        uid: bool,
        key: &SearchKey,
        ret: Option<SearchReturn>,
    ) {
        let found = match self.matching(account, key, false, |_, _| ()).await {
            Ok(f) => f,
            Err(e) => {
                if ret.is_some_and(|r| r.save) {
                    self.save_result(Vec::new());
                }
                return self.tagged(tag, &no_for(&e));
            }
        };
        let hits: Vec<Hit> = found
            .iter()
            .map(|m| Hit {
                number: if uid { m.record.uid.0 } else { m.seq },
                uid: m.record.uid.0,
                modseq: m.record.modseq.0,
            })
            .collect();
        let modseq = key.has_modseq();
        match ret {
            Some(ret) => {
                if ret.save {
                    self.save_result(esearch::saved(&hits, &ret));
                }
                if ret.responds() {
                    self.untagged(&esearch::response(tag, uid, &hits, &ret, modseq));
                }
            }
            None => {
                let mut line = String::from("* SEARCH");
                for h in &hits {
                    line.push_str(&format!(" {}", h.number));
                }
                // RFC 7162 §3.1.5: with a MODSEQ key, the highest MODSEQ of the matches.
                if let (true, Some(highest)) = (modseq, hits.iter().map(|h| h.modseq).max()) {
                    line.push_str(&format!(" (MODSEQ {highest})"));
                }
                self.untagged(&line);
            }
        }
        self.refresh(uid, uid).await;
        self.tagged(tag, "OK SEARCH completed");
    }

    pub(crate) async fn expunge(&mut self, tag: &str, account: &Account, uids: Option<&SeqSet>) {
        let Some(view) = self.selected.as_ref() else {
            return;
        };
        if view.read_only {
            return self.tagged(tag, "NO [READ-ONLY] Mailbox is read-only");
        }
        let id = view.id;
        let only = uids.map(|set| view.uids(set, true));
        if let Err(e) = account.expunge(id, only).await {
            return self.tagged(tag, &no_for(&e));
        }
        self.refresh(true, false).await;
        self.tagged(tag, "OK EXPUNGE completed");
    }
}

#[cfg(test)]
mod tests {
    use super::partial_range;

    #[test]
    fn partial_ranges_past_32_bits_are_not_wrapped() {
        let bytes = b"0123456789";
        assert_eq!(partial_range(bytes, 2, 3), b"234");
        assert_eq!(partial_range(bytes, 8, 100), b"89");
        assert_eq!(partial_range(bytes, 10, 1), b"");
        // 2^32 + 2 is far past the end, not offset 2; a length of 2^32 is not 0.
        assert_eq!(partial_range(bytes, (1 << 32) + 2, 3), b"");
        assert_eq!(partial_range(bytes, 0, 1 << 32), bytes);
        assert_eq!(partial_range(bytes, u64::MAX, u64::MAX), b"");
    }
}
