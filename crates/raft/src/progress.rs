//! What `tern cluster status` says about data placement: each node's share (partitions held
//! and led, bytes, moves in flight) and the progress of the replica moves under way
//! (moved of total, bytes, rate, ETA), from every member's report and the placement table.

use crate::cluster::MemberReport;
use crate::link::GroupView;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// A replica this close to its leader's log has finished copying (it waits for the voter
/// swap); the same slack the maintenance loop uses.
pub(crate) const CAUGHT_UP_SLACK: u64 = 64;

/// One node's share of the partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeShare {
    /// Node id.
    pub id: NodeId,
    /// Partition replicas on the node (voters, and learners being filled).
    pub partitions: usize,
    /// Partitions it leads.
    pub leads: usize,
    /// Bytes of mail in the partitions it holds, as its replicas have applied them.
    pub bytes: u64,
    /// Replicas being copied to it.
    pub moves_in: usize,
    /// Replicas it is copying to other nodes (as the leader of their partition).
    pub moves_out: usize,
}

/// Replicas the placement wants that do not vote yet: what is left of a rebalance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// Replicas still to create or finish.
    pub moves: usize,
    /// Of those, replicas being copied now.
    pub in_flight: usize,
    /// Bytes still to copy.
    pub bytes: u64,
}

/// The progress of the replica moves, since the status first saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rebalance {
    /// Whether any replica the placement wants is missing.
    pub active: bool,
    /// Replicas to move in this rebalance (grows if a node joins meanwhile).
    pub moves_total: usize,
    /// Replicas moved.
    pub moves_done: usize,
    /// Replicas being copied now.
    pub moves_in_flight: usize,
    /// Bytes of the partitions to move.
    pub bytes_total: u64,
    /// Bytes moved.
    pub bytes_done: u64,
    /// Bytes moved per second, on average since the start.
    pub bytes_per_sec: u64,
    /// Seconds since the start (the first status request that saw the moves).
    pub elapsed_secs: u64,
    /// Estimated seconds to the end, once something has moved.
    pub eta_secs: Option<u64>,
}

/// Each node's share and what is left to move. `placement[g]` are the voters group `g` should
/// have; each group's figures come from its leader's report.
pub fn survey(reports: &[MemberReport], placement: &[Vec<NodeId>]) -> (Vec<NodeShare>, Pending) {
    let mut shares: BTreeMap<NodeId, NodeShare> = reports
        .iter()
        .map(|r| {
            let held = r.groups.iter().filter(|v| v.group != GroupId::META);
            let share = NodeShare {
                id: r.id,
                partitions: held.clone().count(),
                bytes: held.map(|v| v.bytes).sum(),
                ..NodeShare::default()
            };
            (r.id, share)
        })
        .collect();
    let mut pending = Pending::default();
    for (group, view) in leader_views(reports) {
        if group == GroupId::META {
            continue;
        }
        if let Some(leader) = view.leader.and_then(|l| shares.get_mut(&l)) {
            leader.leads += 1;
        }
        let Some(want) = placement.get(group.0 as usize) else {
            continue;
        };
        for node in want.iter().filter(|n| !view.voters.contains(n)) {
            pending.moves += 1;
            if !view.learners.contains(node) {
                pending.bytes += view.bytes; // not started
                continue;
            }
            pending.in_flight += 1;
            let matched = view.matched.get(node).copied().unwrap_or(0);
            if matched + CAUGHT_UP_SLACK < view.last_log_index {
                pending.bytes += left_to_copy(view, *node, matched);
            }
            if let Some(to) = shares.get_mut(node) {
                to.moves_in += 1;
            }
            if let Some(from) = view.leader.and_then(|l| shares.get_mut(&l)) {
                from.moves_out += 1;
            }
        }
    }
    (shares.into_values().collect(), pending)
}

/// Bytes of `view`'s group still to reach `node`: what the snapshot on its way has not
/// carried yet, or, for a replica catching up from the log, the share of the log it lacks.
fn left_to_copy(view: &GroupView, node: NodeId, matched: u64) -> u64 {
    let by_snapshot = view
        .bytes
        .saturating_sub(view.sending.get(&node).copied().unwrap_or(0));
    let by_log = (view.bytes as u128 * view.last_log_index.saturating_sub(matched) as u128)
        .checked_div(view.last_log_index as u128)
        .map_or(view.bytes, |b| b as u64);
    by_snapshot.min(by_log)
}

/// For each group, the view of the member that leads it (the highest term among members that
/// say they lead), or any member's when none does.
fn leader_views(reports: &[MemberReport]) -> BTreeMap<GroupId, &GroupView> {
    let mut best: BTreeMap<GroupId, (bool, u64, &GroupView)> = BTreeMap::new();
    for report in reports {
        for view in &report.groups {
            let leads = view.leader == Some(report.id);
            let rank = (leads, view.term);
            let better = best
                .get(&view.group)
                .is_none_or(|(l, t, _)| rank > (*l, *t));
            if better {
                best.insert(view.group, (leads, view.term, view));
            }
        }
    }
    best.into_iter().map(|(g, (_, _, v))| (g, v)).collect()
}

/// Remembers when the current rebalance was first seen and how big it was, so that status
/// requests can report done, rate and ETA.
#[derive(Debug, Default)]
pub struct RebalanceClock {
    current: Mutex<Option<Started>>,
}

#[derive(Debug, Clone, Copy)]
struct Started {
    at: Instant,
    moves_total: usize,
    bytes_total: u64,
    last: Pending,
}

impl RebalanceClock {
    /// The progress now that `pending` is left.
    pub fn observe(&self, pending: Pending, now: Instant) -> Rebalance {
        let mut current = lock(&self.current);
        if pending.moves == 0 {
            *current = None;
            return Rebalance::default();
        }
        let started = current.get_or_insert(Started {
            at: now,
            moves_total: pending.moves,
            bytes_total: pending.bytes,
            last: pending,
        });
        // More to do than last time: a node joined or left meanwhile, or mail arrived.
        started.moves_total += pending.moves.saturating_sub(started.last.moves);
        started.bytes_total += pending.bytes.saturating_sub(started.last.bytes);
        started.last = pending;
        let elapsed = now.saturating_duration_since(started.at);
        let moves_done = started.moves_total - pending.moves;
        let bytes_done = started.bytes_total.saturating_sub(pending.bytes);
        let secs = elapsed.as_secs_f64();
        let bytes_per_sec = if secs > 0.0 {
            (bytes_done as f64 / secs) as u64
        } else {
            0
        };
        let eta = if bytes_done > 0 && bytes_per_sec > 0 {
            Some(Duration::from_secs_f64(
                pending.bytes as f64 / bytes_per_sec as f64,
            ))
        } else if moves_done > 0 {
            Some(elapsed.mul_f64(pending.moves as f64 / moves_done as f64))
        } else {
            None
        };
        Rebalance {
            active: true,
            moves_total: started.moves_total,
            moves_done,
            moves_in_flight: pending.in_flight,
            bytes_total: started.bytes_total,
            bytes_done,
            bytes_per_sec,
            elapsed_secs: elapsed.as_secs(),
            eta_secs: eta.map(|d| d.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(group: u32, leader: NodeId, voters: &[NodeId], learners: &[NodeId]) -> GroupView {
        GroupView {
            group: GroupId(group),
            term: 2,
            leader: Some(leader),
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            last_log_index: 1000,
            applied: 1000,
            membership_index: 10,
            matched: BTreeMap::new(),
            bytes: 10_000,
            sending: BTreeMap::new(),
        }
    }

    fn report(id: NodeId, groups: Vec<GroupView>) -> MemberReport {
        MemberReport {
            id,
            addr: String::new(),
            reachable: true,
            groups,
        }
    }

    #[test]
    fn shares_and_pending_moves_come_from_each_groups_leader() {
        // Group 1 is settled on 1,2,3; group 2 moves from 3 to 4: node 4 is a learner that
        // has 4,000 of 10,000 bytes; group 3 should also go to 4 and has not started.
        let mut g2 = view(2, 1, &[1, 2, 3], &[4]);
        g2.matched = BTreeMap::from([(2, 1000), (3, 1000), (4, 0)]);
        g2.sending = BTreeMap::from([(4, 4_000)]);
        let mut follower_g2 = view(2, 1, &[1, 2, 3], &[4]);
        follower_g2.bytes = 9_000; // a follower's figures do not count
        let reports = vec![
            report(
                1,
                vec![view(1, 1, &[1, 2, 3], &[]), g2, view(3, 2, &[1, 2, 3], &[])],
            ),
            report(2, vec![view(1, 1, &[1, 2, 3], &[]), follower_g2]),
            report(4, vec![]),
        ];
        let placement = vec![vec![], vec![1, 2, 3], vec![1, 2, 4], vec![1, 2, 4]];
        let (shares, pending) = survey(&reports, &placement);
        assert_eq!(
            pending,
            Pending {
                moves: 2,
                in_flight: 1,
                bytes: 6_000 + 10_000
            }
        );
        let by_id: BTreeMap<NodeId, &NodeShare> = shares.iter().map(|s| (s.id, s)).collect();
        assert_eq!(by_id[&1].partitions, 3);
        assert_eq!(by_id[&1].leads, 2);
        assert_eq!(by_id[&1].bytes, 30_000);
        assert_eq!(by_id[&1].moves_out, 1);
        assert_eq!(by_id[&2].leads, 1, "group 3 is led by 2 as node 1 sees it");
        assert_eq!(by_id[&4].moves_in, 1);
    }

    #[test]
    fn a_replica_catching_up_from_the_log_has_the_share_it_lacks_left() {
        let v = view(1, 1, &[1, 2, 3], &[4]);
        assert_eq!(left_to_copy(&v, 4, 750), 2_500);
        let mut snap = v.clone();
        snap.sending = BTreeMap::from([(4, 9_000)]);
        assert_eq!(left_to_copy(&snap, 4, 0), 1_000);
    }

    #[test]
    fn the_clock_reports_done_rate_and_eta_and_resets_when_nothing_is_left() {
        let clock = RebalanceClock::default();
        let t0 = Instant::now();
        let p = |moves, bytes| Pending {
            moves,
            in_flight: 1,
            bytes,
        };
        let first = clock.observe(p(4, 4_000), t0);
        assert!(first.active);
        assert_eq!(
            (first.moves_total, first.moves_done, first.eta_secs),
            (4, 0, None)
        );
        let later = clock.observe(p(3, 3_000), t0 + Duration::from_secs(10));
        assert_eq!((later.moves_done, later.bytes_done), (1, 1_000));
        assert_eq!(later.bytes_per_sec, 100);
        assert_eq!(later.eta_secs, Some(30));
        // A node joins: two more moves and 2,000 more bytes.
        let grown = clock.observe(p(5, 5_000), t0 + Duration::from_secs(20));
        assert_eq!((grown.moves_total, grown.moves_done), (6, 1));
        assert_eq!(grown.bytes_total, 6_000);
        let done = clock.observe(p(0, 0), t0 + Duration::from_secs(30));
        assert_eq!(done, Rebalance::default());
        let again = clock.observe(p(1, 10), t0 + Duration::from_secs(40));
        assert_eq!((again.moves_total, again.elapsed_secs), (1, 0));
    }
}
