//! The server's processes (`--server-pid`, repeatable; `--server-tree` adds every descendant,
//! for servers that fork per connection like Dovecot) and their CPU time and memory.

use crate::memory::{self, Memory};
use crate::stats;
use std::collections::HashMap;
use std::time::Duration;

/// The processes that make up the server.
#[derive(Debug, Clone)]
pub struct Server {
    roots: Vec<u32>,
    tree: bool,
}

impl Server {
    /// The given pids, and with `tree` their descendants at each measurement.
    pub fn new(roots: Vec<u32>, tree: bool) -> Server {
        Server { roots, tree }
    }

    /// No pid given: nothing to measure.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// How the report names the server: "pid 12", "pids 12,34 + descendants".
    pub fn label(&self) -> String {
        let list: Vec<String> = self.roots.iter().map(u32::to_string).collect();
        let noun = if list.len() == 1 { "pid" } else { "pids" };
        let tree = if self.tree { " + descendants" } else { "" };
        format!("{noun} {}{tree}", list.join(","))
    }

    /// The pids given as JSON-friendly numbers.
    pub fn roots(&self) -> &[u32] {
        &self.roots
    }

    /// Whether descendants count.
    pub fn tree(&self) -> bool {
        self.tree
    }

    /// The processes now: the roots, plus with `tree` their living descendants except
    /// tern-load itself (when started under a given pid, e.g. a shell), which reports apart.
    pub fn pids(&self) -> Vec<u32> {
        if !self.tree {
            return self.roots.clone();
        }
        let children = children_by_parent();
        let me = std::process::id();
        let mut all = self.roots.clone();
        let mut i = 0;
        while i < all.len() {
            if let Some(kids) = children.get(&all[i]) {
                all.extend(
                    kids.iter()
                        .filter(|&&k| k != me && !self.roots.contains(&k)),
                );
            }
            i += 1;
        }
        all
    }

    /// CPU time so far, summed; with `tree` reaped children's time counts too, so that
    /// per-connection processes that came and went are not lost. `None` if nothing is readable.
    pub fn cpu_time(&self) -> Option<Duration> {
        let read = if self.tree {
            stats::cpu_time_with_children
        } else {
            stats::cpu_time
        };
        let times: Vec<Duration> = self
            .pids()
            .iter()
            .filter_map(|p| read(&p.to_string()))
            .collect();
        (!times.is_empty()).then(|| times.iter().sum())
    }

    /// Resident memory now (PSS where readable).
    pub fn memory(&self) -> Option<Memory> {
        memory::total(&self.pids())
    }
}

/// Every process's children, from the ppid in /proc/*/stat.
fn children_by_parent() -> HashMap<u32, Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(ppid) = parse_ppid(&stat) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    children
}

/// The ppid (field 4) of a /proc stat line, counted after the name's last `)`.
fn parse_ppid(stat: &str) -> Option<u32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_past_odd_names() {
        assert_eq!(parse_ppid("812 (imap (x)) S 77 812 812 0"), Some(77));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn a_tree_includes_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = Server::new(vec![std::process::id()], true);
        assert!(me.pids().contains(&child.id()));
        assert!(me.cpu_time().is_some());
        assert_eq!(Server::new(vec![1, 2], false).label(), "pids 1,2");
        assert_eq!(me.memory().map(|m| m.processes), Some(2));
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
