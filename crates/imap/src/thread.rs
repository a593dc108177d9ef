//! THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES, and the THREAD response.

mod ids;
mod references;

pub use ids::{message_id, references as reference_ids};
pub use references::references;

/// What threading needs of one message.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// The number shown: sequence number, or UID for UID THREAD.
    pub number: u32,
    /// The sent date (Unix time; the internal date when the Date: is missing).
    pub sent: i64,
    /// The base subject, case-folded.
    pub subject: String,
    /// Whether the subject had reply or forward markers.
    pub reply: bool,
    /// Message-ID, when it has a valid one.
    pub message_id: Option<String>,
    /// The parents' IDs, oldest first: References, or else the first In-Reply-To.
    pub references: Vec<String>,
}

/// A thread node: a message (by index into the items), or a dummy standing for a message
/// that is missing, with its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The message (index into the items), `None` for a dummy.
    pub item: Option<usize>,
    /// Replies, in order.
    pub children: Vec<Node>,
}

/// ORDEREDSUBJECT: messages grouped by base subject; in each group the earliest sent is the
/// parent of the others (in sent order); groups ordered by their first message's date.
pub fn ordered_subject(items: &[Item]) -> Vec<Node> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&items[a], &items[b]);
        (&x.subject, x.sent, a).cmp(&(&y.subject, y.sent, b))
    });
    let mut threads: Vec<Node> = Vec::new();
    let mut last_subject: Option<&str> = None;
    for i in order {
        let leaf = Node {
            item: Some(i),
            children: Vec::new(),
        };
        match threads.last_mut() {
            Some(t) if last_subject == Some(items[i].subject.as_str()) => t.children.push(leaf),
            _ => threads.push(leaf),
        }
        last_subject = Some(items[i].subject.as_str());
    }
    threads.sort_by_key(|t| t.item.map(|i| (items[i].sent, i)));
    threads
}

/// The THREAD response's thread list: `(1 2 (3)(4))(5)`.
pub fn format(items: &[Item], threads: &[Node]) -> String {
    let mut out = String::new();
    for t in threads {
        out.push('(');
        branch(items, t, &mut out);
        out.push(')');
    }
    out
}

/// A node and its replies: a single reply continues the chain, several are each in
/// parentheses; a dummy shows only its replies.
fn branch(items: &[Item], node: &Node, out: &mut String) {
    if let Some(i) = node.item {
        out.push_str(&items[i].number.to_string());
    }
    match node.children.as_slice() {
        [] => {}
        [only] if node.item.is_some() => {
            out.push(' ');
            branch(items, only, out);
        }
        children => {
            if node.item.is_some() {
                out.push(' ');
            }
            for c in children {
                out.push('(');
                branch(items, c, out);
                out.push(')');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn item(number: u32, sent: i64, subject: &str) -> Item {
        Item {
            number,
            sent,
            subject: subject.to_uppercase(),
            ..Item::default()
        }
    }

    #[test]
    fn ordered_subject_groups_by_subject_and_date() {
        let items = [
            item(1, 10, "a"),
            item(2, 5, "b"),
            item(3, 20, "a"),
            item(4, 1, "b"),
            item(5, 30, "c"),
            item(6, 15, "a"),
        ];
        let t = ordered_subject(&items);
        assert_eq!(format(&items, &t), "(4 2)(1 (6)(3))(5)");
        let two = [item(9, 1, "x"), item(10, 2, "x")];
        assert_eq!(format(&two, &ordered_subject(&two)), "(9 10)");
    }

    #[test]
    fn the_rfc_5256_response_shape() {
        let items: Vec<Item> = (0..12).map(|n| item(n, 0, "")).collect();
        let leaf = |i| Node {
            item: Some(i),
            children: vec![],
        };
        let node = |i, children| Node {
            item: Some(i),
            children,
        };
        // (2)(3 6 (4 23)(44 7 96)) with numbers 2,3,6,4,23,44,7,96 as items 2..9.
        let mut items = items;
        for (i, n) in [
            (2, 2),
            (3, 3),
            (4, 6),
            (5, 4),
            (6, 23),
            (7, 44),
            (8, 7),
            (9, 96),
        ] {
            items[i].number = n;
        }
        let threads = vec![
            leaf(2),
            node(
                3,
                vec![node(
                    4,
                    vec![
                        node(5, vec![leaf(6)]),
                        node(7, vec![node(8, vec![leaf(9)])]),
                    ],
                )],
            ),
        ];
        assert_eq!(format(&items, &threads), "(2)(3 6 (4 23)(44 7 96))");
        let dummy = vec![Node {
            item: None,
            children: vec![leaf(2), leaf(3)],
        }];
        assert_eq!(format(&items, &dummy), "((2)(3))");
    }
}
