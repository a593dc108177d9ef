//! Mailbox-level commands.

use crate::listing;
use crate::proto::encode;
use crate::proto::{ListArgs, Qresync, SeqSet, StatusItem};
use crate::response;
use crate::session::{Session, no_for};
use crate::view::View;
use tern_core::ops::Rejection;
use tern_core::records::MailboxRecord;
use tern_mailbox::{Account, MailboxError};

/// STATUS data that is not in the mailbox record, read only when asked for.
#[derive(Default)]
struct Counted {
    /// Messages no session was shown yet.
    recent: u32,
    /// Messages flagged `\Deleted`, and their bytes.
    deleted: (u32, u64),
    /// The largest message APPEND takes.
    append_limit: u64,
}

/// The STATUS items of `m`.
fn status_text(m: &MailboxRecord, items: &[StatusItem], counted: &Counted) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusItem::Messages => format!("MESSAGES {}", m.messages),
            StatusItem::UidNext => format!("UIDNEXT {}", m.uidnext),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", m.uidvalidity),
            StatusItem::Unseen => format!("UNSEEN {}", m.unseen),
            StatusItem::Size => format!("SIZE {}", m.size),
            StatusItem::Recent => format!("RECENT {}", counted.recent),
            StatusItem::Deleted => format!("DELETED {}", counted.deleted.0),
            StatusItem::DeletedStorage => format!("DELETED-STORAGE {}", counted.deleted.1),
            StatusItem::AppendLimit => format!("APPENDLIMIT {}", counted.append_limit),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", m.highest_modseq),
        })
        .collect();
    parts.join(" ")
}

fn quoted_name(name: &str) -> String {
    let mut out = Vec::new();
    encode::mailbox(&mut out, name);
    String::from_utf8_lossy(&out).into_owned()
}

impl Session {
    /// Reads the STATUS data of mailbox `name` that `items` ask for beyond its record.
    async fn count(&self, account: &Account, name: &str, items: &[StatusItem]) -> Counted {
        let mut counted = Counted {
            append_limit: self.ctx.limits.max_message_size,
            ..Counted::default()
        };
        if items.contains(&StatusItem::Recent) {
            counted.recent = account.unclaimed_recent(name).await.unwrap_or(0);
        }
        if items.contains(&StatusItem::Deleted) || items.contains(&StatusItem::DeletedStorage) {
            counted.deleted = account.deleted(name).await.unwrap_or_default();
        }
        counted
    }

    pub(crate) async fn list(&mut self, tag: &str, account: &Account, args: ListArgs) {
        let ListArgs {
            reference,
            patterns,
            subscribed_only,
            special_use_only,
            recursive_match,
            ret_subscribed,
            ret_status,
        } = args;
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.untagged("* LIST (\\Noselect) \"/\" \"\"");
            self.tagged(tag, "OK LIST completed");
            return;
        }
        let all = match account.list().await {
            Ok(all) => all,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let dangling = if subscribed_only || ret_subscribed {
            match account.dangling_subscriptions().await {
                Ok(d) => d,
                Err(e) => return self.tagged(tag, &no_for(&e)),
            }
        } else {
            Vec::new()
        };
        let patterns: Vec<String> = patterns.iter().map(|p| format!("{reference}{p}")).collect();
        let selection = listing::Selection {
            patterns: &patterns,
            subscribed_only,
            special_use_only,
            recursive_match,
            mark_subscribed: subscribed_only || ret_subscribed,
        };
        for line in listing::list(&all, &dangling, &selection) {
            let mut text = format!(
                "* LIST ({}) \"/\" {}",
                line.attributes.join(" "),
                quoted_name(&line.name)
            );
            if line.child_subscribed {
                text.push_str(" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            self.untagged(&text);
            if let (Some(items), Some(m)) = (&ret_status, line.mailbox) {
                let counted = self.count(account, &m.name, items).await;
                let text = format!(
                    "* STATUS {} ({})",
                    quoted_name(&m.name),
                    status_text(m, items, &counted)
                );
                self.untagged(&text);
            }
        }
        self.tagged(tag, "OK LIST completed");
    }

    pub(crate) async fn lsub(
        &mut self,
        tag: &str,
        account: &Account,
        reference: &str,
        pattern: &str,
    ) {
        let (all, dangling) = match (account.list().await, account.dangling_subscriptions().await) {
            (Ok(all), Ok(dangling)) => (all, dangling),
            (Err(e), _) | (_, Err(e)) => return self.tagged(tag, &no_for(&e)),
        };
        let subscribed = all
            .into_iter()
            .filter(|m| m.subscribed)
            .map(|m| m.name)
            .chain(dangling)
            .collect();
        for (name, noselect) in listing::lsub(&subscribed, &format!("{reference}{pattern}")) {
            let attributes = if noselect { "\\Noselect" } else { "" };
            self.untagged(&format!(
                "* LSUB ({attributes}) \"/\" {}",
                quoted_name(&name)
            ));
        }
        self.tagged(tag, "OK LSUB completed");
    }

    pub(crate) async fn status(
        &mut self,
        tag: &str,
        account: &Account,
        name: &str,
        items: &[StatusItem],
    ) {
        match account.status(name).await {
            Ok(m) => {
                let counted = self.count(account, &m.name, items).await;
                let line = format!(
                    "* STATUS {} ({})",
                    quoted_name(&m.name),
                    status_text(&m, items, &counted)
                );
                self.untagged(&line);
                self.tagged(tag, "OK STATUS completed");
            }
            Err(e) => self.tagged(tag, &no_for(&e)),
        }
    }

    pub(crate) async fn select(
        &mut self,
        tag: &str,
        account: &Account,
        name: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    ) {
        if qresync.is_some() && !self.qresync {
            return self.tagged(tag, "BAD QRESYNC is not enabled");
        }
        self.condstore |= condstore;
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected, and the client learns
        // that the previous one is closed before anything about the new one.
        if self.selected.take().is_some() {
            self.untagged("* OK [CLOSED] Previous mailbox is now closed");
        }
        let snapshot = match account.snapshot(name).await {
            Ok(s) => s,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let m = snapshot.mailbox.clone();
        let recent_from = self.recent_from(account, &snapshot, read_only).await;
        let mut view = View::new(snapshot, read_only, recent_from);
        view.vanished = self.qresync;
        view.show_modseq = self.condstore;
        self.untagged(&format!("* {} EXISTS", view.messages.len()));
        if !self.rev2 {
            self.untagged(&format!("* {} RECENT", view.recent_count()));
        }
        view.write_flags(&mut self.out);
        // RFC 3501 §6.3.1: the first unseen message (RFC 9051 dropped it).
        let first_unseen = view
            .messages
            .iter()
            .position(|m| !m.flags.iter().any(|f| f == tern_core::flags::SEEN));
        if let (false, Some(i)) = (self.rev2, first_unseen) {
            self.untagged(&format!("* OK [UNSEEN {}] First unseen", i + 1));
        }
        self.untagged(&format!("* OK [UIDVALIDITY {}] UIDs valid", m.uidvalidity));
        self.untagged(&format!("* OK [UIDNEXT {}] Predicted next UID", m.uidnext));
        self.untagged(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            m.highest_modseq
        ));
        // RFC 7162 §3.2.5.1: what changed since the client's last visit, when it is the same
        // mailbox (same UIDVALIDITY). Expunged UIDs are not recorded, so VANISHED (EARLIER)
        // lists every UID the client may know that is gone, however long ago it went.
        if let Some(q) = qresync.filter(|q| q.uidvalidity == view.uidvalidity) {
            let known = q.known_uids.unwrap_or_else(SeqSet::every);
            let gone = view.missing_uids(&known, m.uidnext.saturating_sub(1));
            if !gone.is_empty() {
                self.untagged(&format!(
                    "* VANISHED (EARLIER) {}",
                    SeqSet::ranges_text(&gone)
                ));
            }
            for (i, msg) in view.messages.iter().enumerate() {
                if msg.modseq.0 > q.modseq {
                    let recent = view.is_recent(msg.uid);
                    let (seq, uid) = (i as u32 + 1, Some(msg.uid));
                    let modseq = Some(msg.modseq.0);
                    response::flags_fetch(&mut self.out, seq, uid, &msg.flags, recent, modseq);
                }
            }
        }
        self.selected = Some(view);
        let mode = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.tagged(tag, &format!("OK [{mode}] SELECT completed"));
    }

    pub(crate) async fn close(&mut self, tag: &str, account: &Account, expunge: bool) {
        if let Some(view) = self.selected.take()
            && expunge
            && !view.read_only
            && let Err(e) = account.expunge(view.id, None).await
        {
            return self.tagged(tag, &no_for(&e));
        }
        self.tagged(tag, "OK CLOSE completed");
    }

    pub(crate) async fn append(
        &mut self,
        tag: &str,
        account: &Account,
        mailbox: &str,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    ) {
        let flags = flags
            .into_iter()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        match account.append(mailbox, message, flags, date).await {
            Ok(a) => {
                self.refresh(true, false).await;
                self.tagged(
                    tag,
                    &format!(
                        "OK [APPENDUID {} {}] APPEND completed",
                        a.uidvalidity, a.uid.0
                    ),
                );
            }
            Err(MailboxError::Rejected(Rejection::NoSuchMailbox)) => {
                self.tagged(tag, "NO [TRYCREATE] No such mailbox")
            }
            Err(e) => self.tagged(tag, &no_for(&e)),
        }
    }
}
