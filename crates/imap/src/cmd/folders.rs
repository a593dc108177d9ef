//! Mailbox-level commands.

use crate::proto::encode;
use crate::proto::{ListArgs, StatusItem};
use crate::session::{Session, no_for};
use crate::view::View;
use tern_core::ops::Rejection;
use tern_core::records::MailboxRecord;
use tern_mailbox::{Account, MailboxError};

/// Does `name` match a LIST pattern (`*` anything, `%` anything but the separator)?
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != b'/')
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    if name == "INBOX" && pattern.eq_ignore_ascii_case("INBOX") {
        return true;
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn status_text(m: &MailboxRecord, items: &[StatusItem]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusItem::Messages => format!("MESSAGES {}", m.messages),
            StatusItem::UidNext => format!("UIDNEXT {}", m.uidnext),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", m.uidvalidity),
            StatusItem::Unseen => format!("UNSEEN {}", m.unseen),
            StatusItem::Size => format!("SIZE {}", m.size),
            StatusItem::Recent => "RECENT 0".to_string(),
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
    pub(crate) async fn list(&mut self, tag: &str, account: &Account, args: ListArgs) {
        let ListArgs {
            reference,
            patterns,
            subscribed_only,
            special_use_only,
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
        for m in &all {
            let wanted = patterns
                .iter()
                .any(|p| matches(&format!("{reference}{p}"), &m.name));
            let unwanted_kind =
                (subscribed_only && !m.subscribed) || (special_use_only && m.special_use.is_none());
            if !wanted || unwanted_kind {
                continue;
            }
            let child_prefix = format!("{}/", m.name);
            let mut attrs = vec![if all.iter().any(|o| o.name.starts_with(&child_prefix)) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(su) = m.special_use {
                attrs.push(su.attribute());
            }
            if ret_subscribed && m.subscribed {
                attrs.push("\\Subscribed");
            }
            let line = format!(
                "* LIST ({}) \"/\" {}",
                attrs.join(" "),
                quoted_name(&m.name)
            );
            self.untagged(&line);
            if let Some(items) = &ret_status {
                let line = format!(
                    "* STATUS {} ({})",
                    quoted_name(&m.name),
                    status_text(m, items)
                );
                self.untagged(&line);
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
        let all = match account.list().await {
            Ok(all) => all,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        for m in all.iter().filter(|m| m.subscribed) {
            if matches(&format!("{reference}{pattern}"), &m.name) {
                let line = format!("* LSUB () \"/\" {}", quoted_name(&m.name));
                self.untagged(&line);
            }
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
                let line = format!(
                    "* STATUS {} ({})",
                    quoted_name(&m.name),
                    status_text(&m, items)
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
    ) {
        // RFC 9051 §6.3.2: a failed SELECT leaves no mailbox selected.
        self.selected = None;
        let snapshot = match account.snapshot(name).await {
            Ok(s) => s,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let m = snapshot.mailbox.clone();
        self.untagged(&format!("* {} EXISTS", snapshot.messages.len()));
        self.untagged("* 0 RECENT");
        self.untagged("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
        if read_only {
            self.untagged("* OK [PERMANENTFLAGS ()] Read-only mailbox");
        } else {
            self.untagged("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted");
        }
        self.untagged(&format!("* OK [UIDVALIDITY {}] UIDs valid", m.uidvalidity));
        self.untagged(&format!("* OK [UIDNEXT {}] Predicted next UID", m.uidnext));
        self.untagged(&format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            m.highest_modseq
        ));
        self.selected = Some(View::new(snapshot, read_only));
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

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns() {
        assert!(matches("*", "Projects/Tern"));
        assert!(matches("%", "Sent") && !matches("%", "Projects/Tern"));
        assert!(matches("Projects/%", "Projects/Tern"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("Sent", "Sent2"));
    }
}
