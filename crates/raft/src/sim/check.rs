//! The end of a run: once every fault is healed, wait (with a deadline) until the replicas of
//! every group agree, then check the final state of each against the history: every
//! acknowledged accept present exactly once on every live replica, none applied twice, UIDs
//! below UIDNEXT, MODSEQs distinct and at most HIGHESTMODSEQ, UIDVALIDITY as first seen.

use super::cluster::SimCluster;
use super::history::History;
use super::workload::{WORK, append_marker, txn_marker};
use crate::RaftNode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tern_core::{AccountId, GroupId};
use tokio::time::Instant;

/// Why the replicas do not agree yet, or `None` once they do: every replica of every group
/// has applied its whole log, and all replicas of a group have the same applied index and
/// digest.
async fn disagreement(cluster: &SimCluster) -> Option<String> {
    let live = cluster.live();
    if live.is_empty() {
        return Some("no node holds groups".into());
    }
    let mut seen: BTreeMap<GroupId, Vec<(u64, u64, String)>> = BTreeMap::new();
    for node in &live {
        if !node.ready() {
            return Some(format!("node {} is not ready", node.node_id()));
        }
        for v in node.views() {
            if v.applied != v.last_log_index {
                return Some(format!(
                    "node {} {}: applied {} of {}",
                    node.node_id(),
                    v.group,
                    v.applied,
                    v.last_log_index
                ));
            }
        }
        let digests = match node.digests().await {
            Ok(d) => d,
            Err(e) => return Some(format!("node {}: {e}", node.node_id())),
        };
        for d in digests {
            seen.entry(d.group)
                .or_default()
                .push((node.node_id(), d.applied, d.digest));
        }
    }
    for (group, replicas) in seen {
        let (_, applied, digest) = &replicas[0];
        if replicas.iter().any(|(_, a, d)| a != applied || d != digest) {
            return Some(format!("{group}: replicas differ: {replicas:?}"));
        }
    }
    None
}

/// Waits until the replicas agree, or says why they did not by `deadline`.
pub async fn converge(cluster: &SimCluster, deadline: Instant) -> Result<(), String> {
    loop {
        match disagreement(cluster).await {
            None => return Ok(()),
            Some(why) if Instant::now() >= deadline => {
                return Err(format!("no convergence: {why}"));
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Checks one live replica's state of `accounts` against `history`; adds what is wrong.
fn check_replica(node: &RaftNode, accounts: &[AccountId], history: &History) -> Vec<String> {
    let me = node.node_id();
    let mut wrong = Vec::new();
    let mut found: BTreeMap<String, Vec<(AccountId, u32, u32)>> = BTreeMap::new();
    // On more than three nodes a node holds some partitions only: check the accounts it holds.
    let held: BTreeSet<_> = node.views().iter().map(|v| v.group).collect();
    let holds = |account: AccountId| held.contains(&node.partition_of(account));
    for &account in accounts.iter().filter(|a| holds(**a)) {
        let reader = node.local_reader(node.partition_of(account));
        let mailboxes = match reader.mailboxes(account) {
            Ok(m) => m,
            Err(e) => return vec![format!("node {me}: reading {account}: {e}")],
        };
        for mb in mailboxes {
            if let Some(&first) = history.uidvalidity.get(&(account, mb.id))
                && first != mb.uidvalidity
            {
                wrong.push(format!(
                    "node {me}: UIDVALIDITY of {account}/{} is {}, clients saw {first}",
                    mb.name, mb.uidvalidity
                ));
            }
            let messages = match reader.messages(account, mb.id) {
                Ok(m) => m,
                Err(e) => return vec![format!("node {me}: reading {account}/{}: {e}", mb.name)],
            };
            let mut modseqs = BTreeSet::new();
            for m in messages {
                if m.uid.0 >= mb.uidnext {
                    wrong.push(format!(
                        "node {me}: {account}/{} UID {} not below UIDNEXT {}",
                        mb.name, m.uid.0, mb.uidnext
                    ));
                }
                if m.modseq.0 > mb.highest_modseq || !modseqs.insert(m.modseq.0) {
                    wrong.push(format!(
                        "node {me}: {account}/{} UID {} has MODSEQ {} (highest {}, or shared)",
                        mb.name, m.uid.0, m.modseq.0, mb.highest_modseq
                    ));
                }
                let body = reader.blob(&m.blob).ok().flatten().unwrap_or_default();
                let first_line = String::from_utf8_lossy(&body)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                found
                    .entry(first_line)
                    .or_default()
                    .push((account, mb.id.0, m.uid.0));
            }
        }
    }
    for (marker, places) in &found {
        if places.len() > 1 {
            wrong.push(format!(
                "node {me}: {marker} stored {} times: {places:?}",
                places.len()
            ));
        }
    }
    for (id, record) in &history.accepts {
        let Some(outcomes) = record.acked.as_ref().filter(|_| holds(record.account)) else {
            continue;
        };
        let marker = txn_marker(*id);
        let reader = node.local_reader(node.partition_of(record.account));
        if !reader.accepted(*id).unwrap_or(false) {
            wrong.push(format!(
                "node {me}: acknowledged {marker} has no ACCEPTED row"
            ));
        }
        for o in outcomes {
            if let tern_store::DeliveryOutcome::Delivered {
                account,
                mailbox,
                uid,
            } = o
                && found
                    .get(&marker)
                    .is_none_or(|p| !p.contains(&(*account, mailbox.0, uid.0)))
            {
                wrong.push(format!(
                    "node {me}: acknowledged {marker} (UID {} in {account}/{}) is lost: found \
                     at {:?}",
                    uid.0,
                    mailbox.0,
                    found.get(&marker)
                ));
            }
        }
    }
    for (n, (account, mailbox, uid)) in history.appends.iter().filter(|(_, a)| holds(a.0)) {
        let marker = append_marker(*n);
        let here = found.get(&marker);
        let expected = (*account, mailbox.0, uid.0);
        let ok = match here {
            Some(places) => places.contains(&expected),
            None => history.deletable.contains(&(*account, *mailbox, *uid)),
        };
        if !ok {
            wrong.push(format!(
                "node {me}: acknowledged append {marker} (UID {} in {account}/{WORK}) is lost \
                 or moved: found at {here:?}",
                uid.0
            ));
        }
    }
    wrong
}

/// Checks every live replica; returns what is wrong.
pub fn check_state(cluster: &SimCluster, accounts: &[AccountId], history: &History) -> Vec<String> {
    let live = cluster.live();
    let mut wrong: Vec<String> = live
        .iter()
        .flat_map(|n| check_replica(n, accounts, history))
        .collect();
    // Every account is checked somewhere: some live node holds its partition.
    for &account in accounts {
        let held = live.iter().any(|n| {
            let group = n.partition_of(account);
            n.views().iter().any(|v| v.group == group)
        });
        if !held {
            wrong.push(format!("no live node holds the partition of {account}"));
        }
    }
    wrong
}
