//! Which names LIST and LSUB return, and with which attributes (RFC 9051 §6.3.9, RFC 5258
//! LIST-EXTENDED, RFC 3501 §6.3.9 LSUB). Pure: the handlers in `cmd::folders` read the
//! account's mailboxes and subscriptions and write the lines.

use std::collections::{BTreeMap, BTreeSet};
use tern_core::records::MailboxRecord;

/// The hierarchy separator.
pub const SEPARATOR: char = '/';

/// Does `name` match a LIST pattern (`*` anything, `%` anything but the separator)?
pub fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != SEPARATOR as u8)
                .any(|i| go(&p[1..], &n[i..])),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    if name == "INBOX" && pattern.eq_ignore_ascii_case("INBOX") {
        return true;
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The strict ancestors of `name`, nearest last (`a/b/c` → `a`, `a/b`).
fn ancestors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEPARATOR).map(move |(i, _)| &name[..i])
}

/// What a LIST asks for, once the reference is applied to the patterns.
pub struct Selection<'a> {
    /// Full patterns (reference + pattern).
    pub patterns: &'a [String],
    /// Selection option SUBSCRIBED.
    pub subscribed_only: bool,
    /// Selection option SPECIAL-USE.
    pub special_use_only: bool,
    /// Selection option RECURSIVEMATCH.
    pub recursive_match: bool,
    /// Mark subscribed names (`\Subscribed`): return option SUBSCRIBED, or selection option
    /// SUBSCRIBED.
    pub mark_subscribed: bool,
}

/// One LIST response line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<'a> {
    /// The name.
    pub name: String,
    /// Attributes, e.g. `\HasNoChildren`, `\Subscribed`.
    pub attributes: Vec<&'static str>,
    /// The mailbox, when the name is one (STATUS is returned for it).
    pub mailbox: Option<&'a MailboxRecord>,
    /// CHILDINFO ("SUBSCRIBED"): under RECURSIVEMATCH, a descendant the patterns do not match
    /// is subscribed.
    pub child_subscribed: bool,
}

/// The lines of a LIST over `mailboxes` (sorted, INBOX first) and the names subscribed to
/// that are not mailboxes (`dangling`).
pub fn list<'a>(
    mailboxes: &'a [MailboxRecord],
    dangling: &[String],
    sel: &Selection<'_>,
) -> Vec<Listed<'a>> {
    let by_name: BTreeMap<&str, &MailboxRecord> =
        mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();
    let subscribed: BTreeSet<&str> = mailboxes
        .iter()
        .filter(|m| m.subscribed)
        .map(|m| m.name.as_str())
        .chain(dangling.iter().map(String::as_str))
        .collect();
    let matched = |name: &str| sel.patterns.iter().any(|p| matches(p, name));
    let selected = |name: &str| {
        let mailbox = by_name.get(name);
        (!sel.subscribed_only || subscribed.contains(name))
            && (!sel.special_use_only || mailbox.is_some_and(|m| m.special_use.is_some()))
            && (mailbox.is_some() || sel.subscribed_only)
    };
    let has_children = |name: &str| {
        let prefix = format!("{name}{SEPARATOR}");
        by_name
            .range::<&str, _>(prefix.as_str()..)
            .next()
            .is_some_and(|(n, _)| n.starts_with(&prefix))
    };
    // Names to consider: every mailbox, and every subscribed name (which may not exist).
    let mut names: Vec<&str> = mailboxes.iter().map(|m| m.name.as_str()).collect();
    names.extend(dangling.iter().map(String::as_str));
    // RECURSIVEMATCH: parents (matched) of selected names the patterns do not match.
    let mut child_selected: BTreeSet<&str> = BTreeSet::new();
    if sel.recursive_match {
        for name in &names {
            if selected(name) && !matched(name) {
                child_selected.extend(ancestors(name).filter(|a| matched(a)));
            }
        }
        names.extend(child_selected.iter().copied());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        if !seen.insert(name) {
            continue;
        }
        let childinfo = child_selected.contains(name);
        if !(matched(name) && (selected(name) || childinfo)) {
            continue;
        }
        let mailbox = by_name.get(name).copied();
        let mut attributes = Vec::new();
        match mailbox {
            Some(m) => {
                attributes.push(if has_children(name) {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
                attributes.extend(m.special_use.map(|su| su.attribute()));
            }
            None => attributes.push("\\NonExistent"),
        }
        if sel.mark_subscribed && subscribed.contains(name) {
            attributes.push("\\Subscribed");
        }
        out.push(Listed {
            name: name.to_string(),
            attributes,
            mailbox,
            child_subscribed: childinfo && sel.subscribed_only,
        });
    }
    out
}

/// The lines of an LSUB `pattern` (full): each subscribed name it matches, and, for `%`, each
/// unsubscribed parent of a subscribed name that it matches, as `\Noselect` (RFC 3501 §6.3.9).
pub fn lsub(subscribed: &BTreeSet<String>, pattern: &str) -> Vec<(String, bool)> {
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    for name in subscribed {
        if matches(pattern, name) {
            out.insert(name.clone(), false);
        }
        if pattern.contains('%') {
            for parent in ancestors(name) {
                if !subscribed.contains(parent) && matches(pattern, parent) {
                    out.entry(parent.to_string()).or_insert(true);
                }
            }
        }
    }
    let mut lines: Vec<(String, bool)> = out.into_iter().collect();
    // INBOX first, as LIST.
    lines.sort_by(|a, b| (a.0 != "INBOX", &a.0).cmp(&(b.0 != "INBOX", &b.0)));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::MailboxId;

    fn mailbox(name: &str, subscribed: bool) -> MailboxRecord {
        MailboxRecord {
            id: MailboxId(1),
            name: name.into(),
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 1,
            special_use: None,
            subscribed,
            messages: 0,
            unseen: 0,
            size: 0,
        }
    }

    fn lines(listed: &[Listed<'_>]) -> Vec<String> {
        listed
            .iter()
            .map(|l| {
                let info = if l.child_subscribed { " CHILDINFO" } else { "" };
                format!("{} ({}){info}", l.name, l.attributes.join(" "))
            })
            .collect()
    }

    #[test]
    fn patterns() {
        assert!(matches("*", "Projects/Tern"));
        assert!(matches("%", "Sent") && !matches("%", "Projects/Tern"));
        assert!(matches("Projects/%", "Projects/Tern"));
        assert!(matches("inbox", "INBOX"));
        assert!(!matches("Sent", "Sent2"));
    }

    /// The RFC 5258 §5 example 9 shape: `Foo` is not subscribed, `Foo/Bar` is.
    #[test]
    fn recursive_match_reports_parents_of_subscribed_names_the_pattern_misses() {
        let all = vec![
            mailbox("Foo", false),
            mailbox("Foo/Bar", true),
            mailbox("Moo", true),
            mailbox("Moo/Baz", true),
        ];
        let dangling = vec!["Gone".to_string()];
        let patterns = ["%".to_string()];
        let sel = Selection {
            patterns: &patterns,
            subscribed_only: true,
            special_use_only: false,
            recursive_match: true,
            mark_subscribed: true,
        };
        assert_eq!(
            lines(&list(&all, &dangling, &sel)),
            vec![
                "Foo (\\HasChildren) CHILDINFO",
                "Moo (\\HasChildren \\Subscribed) CHILDINFO",
                "Gone (\\NonExistent \\Subscribed)",
            ]
        );
        // Without RECURSIVEMATCH only subscribed names that match come back.
        let sel = Selection {
            recursive_match: false,
            ..sel
        };
        assert_eq!(
            lines(&list(&all, &dangling, &sel)),
            vec![
                "Moo (\\HasChildren \\Subscribed)",
                "Gone (\\NonExistent \\Subscribed)"
            ]
        );
    }

    #[test]
    fn a_plain_list_shows_mailboxes_only() {
        let all = vec![
            mailbox("INBOX", true),
            mailbox("a", false),
            mailbox("a/b", false),
        ];
        let patterns = ["*".to_string()];
        let sel = Selection {
            patterns: &patterns,
            subscribed_only: false,
            special_use_only: false,
            recursive_match: false,
            mark_subscribed: false,
        };
        assert_eq!(
            lines(&list(&all, &["gone".to_string()], &sel)),
            vec![
                "INBOX (\\HasNoChildren)",
                "a (\\HasChildren)",
                "a/b (\\HasNoChildren)"
            ]
        );
    }

    #[test]
    fn lsub_percent_shows_unsubscribed_parents_as_noselect() {
        let subscribed: BTreeSet<String> = ["t/a", "t/b/c", "t/d/e/f"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            lsub(&subscribed, "t/%"),
            vec![
                ("t/a".to_string(), false),
                ("t/b".to_string(), true),
                ("t/d".to_string(), true)
            ]
        );
        assert_eq!(lsub(&subscribed, "*c"), vec![("t/b/c".to_string(), false)]);
    }
}
