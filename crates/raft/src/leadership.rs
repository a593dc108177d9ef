//! Who leads, and who should.
//!
//! - Readiness: when this node last accepted an append from each group's leader, so that a
//!   follower counts as ready only while its leader is really there (not merely remembered
//!   from before a restart).
//! - Balance: every node computes the same preferred leader for every group, spreading the
//!   leaders evenly over the members. A leader that is not the preferred one hands the group
//!   over once the preferred voter has caught up — after a node returns, its share of the
//!   leaders goes back to it.
//!
//! openraft 0.9 has no leader transfer, and a voter refuses to vote while its leader lease
//! (the longest election timeout since the last append) runs. A handover therefore goes:
//! the leader asks the target to campaign; the target agrees and waits; the leader stops its
//! heartbeats and holds new proposals and reads on that group; once the target has not heard
//! from the leader for a whole lease — so neither has the third voter — it campaigns and wins
//! before any other timer fires. The held requests then go to the new leader. Should anything
//! go wrong the leader resumes after [`HANDOVER_LIMIT`], and at worst an ordinary election
//! follows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// How long a handover may hold requests before the leader gives up and carries on.
pub(crate) const HANDOVER_LIMIT: Duration = Duration::from_secs(3);
/// A node leads a group this long before handing it over, so that leadership does not
/// bounce around right after an election or a restart.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);
/// At most this many handovers from one node at a time.
pub(crate) const MAX_HANDOVERS: usize = 8;

/// Per-node leadership bookkeeping.
pub(crate) struct Leadership {
    /// Per group: when this node last accepted an append from the group's leader.
    heard: Mutex<HashMap<GroupId, Instant>>,
    /// Per group this node leads: the term, and since when it has led in that term.
    leading: Mutex<HashMap<GroupId, (u64, Instant)>>,
    /// Groups this node is handing over; proposals and reads on them wait.
    handing_over: tokio::sync::watch::Sender<BTreeSet<GroupId>>,
    /// Per group: when the last snapshot chunk from its leader arrived (see
    /// `RaftNode::receiving_snapshot`).
    snapshot_chunk: Mutex<HashMap<GroupId, Instant>>,
    /// Per group this node leads: since when each replica the placement moved away has been
    /// seen waiting for removal.
    demoted: Mutex<HashMap<(GroupId, NodeId), Instant>>,
    /// Per group the placement moved away: when this node last asked whether the group still
    /// counts its replica (`RaftNode::forgotten`).
    asked_forgotten: Mutex<HashMap<GroupId, Instant>>,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            heard: Mutex::default(),
            leading: Mutex::default(),
            handing_over: tokio::sync::watch::channel(BTreeSet::new()).0,
            snapshot_chunk: Mutex::default(),
            demoted: Mutex::default(),
            asked_forgotten: Mutex::default(),
        }
    }
}

impl Leadership {
    /// Records an append accepted from `group`'s leader.
    pub(crate) fn heard_leader(&self, group: GroupId) {
        lock(&self.heard).insert(group, Instant::now());
    }

    /// How long ago this node last accepted an append for `group` (`None`: never since start).
    pub(crate) fn since_heard(&self, group: GroupId) -> Option<Duration> {
        lock(&self.heard).get(&group).map(Instant::elapsed)
    }

    /// Whether this node may ask again if `group` still counts its replica (at most once per
    /// `every`); records the question.
    pub(crate) fn may_ask_forgotten(&self, group: GroupId, every: Duration) -> bool {
        let mut asked = lock(&self.asked_forgotten);
        if asked.get(&group).is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        asked.insert(group, Instant::now());
        true
    }

    /// Records a snapshot chunk received for `group`.
    pub(crate) fn snapshot_chunk(&self, group: GroupId) {
        lock(&self.snapshot_chunk).insert(group, Instant::now());
    }

    /// The last chunk of a snapshot for `group` is in.
    pub(crate) fn snapshot_received(&self, group: GroupId) {
        lock(&self.snapshot_chunk).remove(&group);
    }

    /// How long ago the last snapshot chunk for `group` arrived.
    pub(crate) fn since_snapshot_chunk(&self, group: GroupId) -> Option<Duration> {
        lock(&self.snapshot_chunk).get(&group).map(Instant::elapsed)
    }

    /// Of `nodes`, the replicas of `group` that have waited for removal at least `grace` (the
    /// others start or continue waiting). Nodes of `group` not in `nodes` are forgotten.
    pub(crate) fn demoted_for(
        &self,
        group: GroupId,
        nodes: &BTreeSet<NodeId>,
        grace: Duration,
    ) -> BTreeSet<NodeId> {
        let mut demoted = lock(&self.demoted);
        demoted.retain(|(g, n), _| *g != group || nodes.contains(n));
        nodes
            .iter()
            .copied()
            .filter(|n| {
                demoted
                    .entry((group, *n))
                    .or_insert_with(Instant::now)
                    .elapsed()
                    >= grace
            })
            .collect()
    }

    /// Notes that this node leads `group` in `term`; returns how long it has led in that term.
    pub(crate) fn leading_for(&self, group: GroupId, term: u64) -> Duration {
        let mut leading = lock(&self.leading);
        let entry = leading.entry(group).or_insert((term, Instant::now()));
        if entry.0 != term {
            *entry = (term, Instant::now());
        }
        entry.1.elapsed()
    }

    /// Starts a handover of `group`; false if one is under way or too many are.
    pub(crate) fn begin_handover(&self, group: GroupId) -> bool {
        self.handing_over.send_if_modified(|set| {
            if set.contains(&group) || set.len() >= MAX_HANDOVERS {
                return false;
            }
            set.insert(group)
        })
    }

    /// Ends the handover of `group`, releasing the requests it held.
    pub(crate) fn end_handover(&self, group: GroupId) {
        self.handing_over.send_if_modified(|set| set.remove(&group));
    }

    /// Whether `group` is being handed over by this node.
    pub(crate) fn is_handing_over(&self, group: GroupId) -> bool {
        self.handing_over.borrow().contains(&group)
    }

    /// Waits while `group` is being handed over (at most [`HANDOVER_LIMIT`]); true if it
    /// waited, so the caller should look up the leader again.
    pub(crate) async fn wait_handover(&self, group: GroupId) -> bool {
        if !self.is_handing_over(group) {
            return false;
        }
        let mut watch = self.handing_over.subscribe();
        let done = watch.wait_for(|set| !set.contains(&group));
        // Timing out is fine: the handover ends by itself within the same limit.
        let _ = tokio::time::timeout(HANDOVER_LIMIT, done).await;
        true
    }
}

/// The preferred leader of every group (index = group id), given each group's voters.
///
/// Groups are taken in order and each goes to its voter with the fewest groups so far (ties:
/// the voter listed first), so every node computes the same answer and the leaders are spread
/// as evenly as the voter sets allow — exactly evenly when every node votes in every group.
pub fn preferred_leaders(voters: &[Vec<NodeId>]) -> Vec<Option<NodeId>> {
    let mut load: BTreeMap<NodeId, usize> = BTreeMap::new();
    voters
        .iter()
        .map(|group_voters| {
            let pick = group_voters
                .iter()
                .copied()
                .min_by_key(|n| load.get(n).copied().unwrap_or(0))?;
            *load.entry(pick).or_default() += 1;
            Some(pick)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_are_spread_evenly_when_everyone_votes() {
        let voters = vec![vec![1, 2, 3]; 65];
        let preferred = preferred_leaders(&voters);
        let mut count = BTreeMap::new();
        for p in preferred.iter().flatten() {
            *count.entry(*p).or_insert(0) += 1;
        }
        assert_eq!(count, BTreeMap::from([(1, 22), (2, 22), (3, 21)]));
    }

    #[test]
    fn preferred_leader_is_always_a_voter() {
        let voters = vec![vec![4, 1, 7], vec![2, 3, 4], vec![], vec![7]];
        let preferred = preferred_leaders(&voters);
        assert_eq!(preferred[2], None);
        assert_eq!(preferred[3], Some(7));
        for (group, p) in preferred.iter().enumerate() {
            if let Some(p) = p {
                assert!(voters[group].contains(p));
            }
        }
    }

    #[tokio::test]
    async fn handover_holds_and_releases_waiters() {
        let l = std::sync::Arc::new(Leadership::default());
        let g = GroupId(3);
        assert!(!l.wait_handover(g).await, "nothing to wait for");
        assert!(l.begin_handover(g));
        assert!(!l.begin_handover(g), "one handover per group");
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.wait_handover(g).await }
        });
        // Release only once the waiter is really waiting.
        while l.handing_over.receiver_count() == 0 {
            tokio::task::yield_now().await;
        }
        l.end_handover(g);
        assert!(waiter.await.unwrap(), "the waiter was held, then released");
        assert!(!l.is_handing_over(g));
    }

    #[test]
    fn handovers_are_capped() {
        let l = Leadership::default();
        for g in 0..MAX_HANDOVERS as u32 {
            assert!(l.begin_handover(GroupId(g)));
        }
        assert!(!l.begin_handover(GroupId(99)));
    }
}
