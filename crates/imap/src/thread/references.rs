//! THREAD=REFERENCES (RFC 5256 §2.2 and §3): parents from Message-ID, References and
//! In-Reply-To, dummies for missing parents, threads with the same base subject merged,
//! siblings in sent order.

use super::{Item, Node};
use std::collections::HashMap;

/// A container of the algorithm: a message or a dummy, linked to its parent and children.
#[derive(Default)]
struct Container {
    item: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Arena {
    nodes: Vec<Container>,
    by_id: HashMap<String, usize>,
}

impl Arena {
    fn new_container(&mut self) -> usize {
        self.nodes.push(Container::default());
        self.nodes.len() - 1
    }

    /// The container for a message ID, created empty when new.
    fn for_id(&mut self, id: &str) -> usize {
        if let Some(&c) = self.by_id.get(id) {
            return c;
        }
        let c = self.new_container();
        self.by_id.insert(id.to_string(), c);
        c
    }

    /// Whether `target` is `from` or below it.
    fn reaches(&self, from: usize, target: usize) -> bool {
        let mut stack = vec![from];
        while let Some(c) = stack.pop() {
            if c == target {
                return true;
            }
            stack.extend(&self.nodes[c].children);
        }
        false
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
    }

    /// Makes `child` a child of `parent` unless that would make a loop.
    fn link(&mut self, parent: usize, child: usize) {
        if self.reaches(child, parent) || self.reaches(parent, child) {
            return;
        }
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Step 1: a container per message, linked along its references.
    fn add(&mut self, index: usize, item: &Item) {
        let own = match &item.message_id {
            Some(id) => {
                let c = self.for_id(id);
                if self.nodes[c].item.is_some() {
                    // A duplicate Message-ID: this message is treated as having none.
                    self.new_container()
                } else {
                    c
                }
            }
            None => self.new_container(),
        };
        self.nodes[own].item = Some(index);
        let refs: Vec<usize> = item.references.iter().map(|r| self.for_id(r)).collect();
        for pair in refs.windows(2) {
            if self.nodes[pair[1]].parent.is_none() && pair[0] != pair[1] {
                self.link(pair[0], pair[1]);
            }
        }
        self.unlink(own);
        if let Some(&last) = refs.last() {
            self.link(last, own);
        }
    }

    /// The subtree under `c` as nodes, dummies without children removed and those that are
    /// not needed replaced by their children (step 4).
    fn pruned(&self, c: usize, at_root: bool) -> Vec<Node> {
        let children: Vec<Node> = self.nodes[c]
            .children
            .iter()
            .flat_map(|&k| self.pruned(k, false))
            .collect();
        match self.nodes[c].item {
            Some(item) => vec![Node {
                item: Some(item),
                children,
            }],
            None if at_root && children.len() > 1 => vec![Node {
                item: None,
                children,
            }],
            None => children,
        }
    }
}

/// The message whose date and subject stand for a node: itself, or a dummy's first child's.
fn representative(node: &Node) -> Option<usize> {
    match node.item {
        Some(i) => Some(i),
        None => node.children.first().and_then(representative),
    }
}

/// Step 6: siblings in sent order (ties: in mailbox order), deepest first.
fn sort_siblings(items: &[Item], nodes: &mut [Node]) {
    for n in nodes.iter_mut() {
        sort_siblings(items, &mut n.children);
    }
    nodes.sort_by_key(|n| representative(n).map(|i| (items[i].sent, i)));
}

/// Threads `items` (in mailbox order) by references.
pub fn references(items: &[Item]) -> Vec<Node> {
    let mut arena = Arena {
        nodes: Vec::new(),
        by_id: HashMap::new(),
    };
    for (i, item) in items.iter().enumerate() {
        arena.add(i, item);
    }
    let roots: Vec<usize> = (0..arena.nodes.len())
        .filter(|&c| arena.nodes[c].parent.is_none())
        .collect();
    let mut threads: Vec<Node> = roots.iter().flat_map(|&c| arena.pruned(c, true)).collect();
    sort_siblings(items, &mut threads);
    let mut threads = merge_subjects(items, threads);
    sort_siblings(items, &mut threads);
    threads
}

/// Step 5: root threads with the same base subject are gathered under one.
fn merge_subjects(items: &[Item], threads: Vec<Node>) -> Vec<Node> {
    let subject_of = |n: &Node| representative(n).map(|i| items[i].subject.as_str());
    let reply_of = |n: &Node| representative(n).is_some_and(|i| items[i].reply);
    // (B) One root per subject: prefer a dummy, then a message that is not a reply.
    let mut table: HashMap<&str, usize> = HashMap::new();
    for (pos, t) in threads.iter().enumerate() {
        let Some(subject) = subject_of(t).filter(|s| !s.is_empty()) else {
            continue;
        };
        match table.get(subject) {
            None => {
                table.insert(subject, pos);
            }
            Some(&old) => {
                let o = &threads[old];
                if o.item.is_some() && (t.item.is_none() || (reply_of(o) && !reply_of(t))) {
                    table.insert(subject, pos);
                }
            }
        }
    }
    // (C) Merge each other root into the table's.
    let mut slots: Vec<Option<Node>> = threads.iter().cloned().map(Some).collect();
    let subjects: Vec<Option<String>> = threads
        .iter()
        .map(|t| subject_of(t).map(str::to_string))
        .collect();
    let replies: Vec<bool> = threads.iter().map(reply_of).collect();
    let table: HashMap<String, usize> =
        table.into_iter().map(|(s, p)| (s.to_string(), p)).collect();
    for pos in 0..slots.len() {
        let Some(subject) = subjects[pos].as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let Some(&target) = table.get(subject) else {
            continue;
        };
        if target == pos {
            continue;
        }
        let (Some(current), Some(mut kept)) = (slots[pos].take(), slots[target].take()) else {
            continue;
        };
        let kept_reply = kept.item.is_some() && replies[target];
        match (current.item, kept.item) {
            (None, None) => kept.children.extend(current.children),
            (Some(_), None) => kept.children.push(current),
            (Some(_), Some(_)) if replies[pos] && !kept_reply => kept.children.push(current),
            _ => {
                kept = Node {
                    item: None,
                    children: vec![kept, current],
                };
            }
        }
        slots[target] = Some(kept);
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Item, format};
    use super::*;

    fn mail(number: u32, sent: i64, subject: &str, id: &str, refs: &[&str]) -> Item {
        let (base, reply) = crate::sort::base_subject(subject);
        Item {
            number,
            sent,
            subject: base.to_uppercase(),
            reply,
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: refs.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn thread(items: &[Item]) -> String {
        format(items, &references(items))
    }

    #[test]
    fn replies_hang_under_their_parents() {
        let items = [
            mail(1, 1, "a", "1@x", &[]),
            mail(2, 2, "Re: a", "2@x", &["1@x"]),
            mail(3, 3, "Re: a", "3@x", &["1@x", "2@x"]),
            mail(4, 4, "Re: a", "4@x", &["1@x"]),
            mail(5, 5, "other", "5@x", &[]),
        ];
        assert_eq!(thread(&items), "(1 (2 3)(4))(5)");
    }

    #[test]
    fn missing_parents_become_dummies() {
        // 2 and 3 reply to a message that is not here: a dummy holds them.
        let items = [
            mail(1, 1, "x", "1@x", &[]),
            mail(2, 2, "Re: gone", "2@x", &["0@x"]),
            mail(3, 3, "Re: gone", "3@x", &["0@x"]),
        ];
        assert_eq!(thread(&items), "(1)((2)(3))");
        // With one child, the dummy is not kept.
        let items = [mail(1, 1, "Re: gone", "1@x", &["0@x"])];
        assert_eq!(thread(&items), "(1)");
    }

    #[test]
    fn same_subject_merges_and_dates_order() {
        // 2 is a reply by subject only; 3 and 1 share a subject and neither is a reply.
        let items = [
            mail(1, 30, "topic", "1@x", &[]),
            mail(2, 20, "Re: topic", "2@x", &[]),
            mail(3, 10, "other", "3@x", &[]),
            mail(4, 40, "other", "4@x", &[]),
        ];
        assert_eq!(thread(&items), "((3)(4))(1 2)");
    }

    #[test]
    fn loops_and_duplicates_do_not_hang() {
        let items = [
            mail(1, 1, "a", "1@x", &["2@x"]),
            mail(2, 2, "b", "2@x", &["1@x"]),
            mail(3, 3, "c", "1@x", &[]),
            mail(4, 4, "d", "4@x", &["4@x"]),
        ];
        let out = thread(&items);
        for n in ["1", "2", "3", "4"] {
            assert!(out.contains(n), "{out}");
        }
    }
}
