//! Which partitions this node holds a replica of, and the replica's life here: a partition's
//! leader adds a node the placement wants (the node starts the group when the first message
//! for it arrives), and once the leader has taken a node out of the group, that node stops
//! the group and deletes everything it held of it.
//!
//! A node never deletes a replica it votes in, and only deletes one whose own membership
//! says it is out (or that its leader told to go) while the placement does not want it here.

use crate::RaftError;
use crate::TypeConfig;
use crate::cluster::placement;
use crate::log_store::META_VOTE;
use crate::node::{RaftNode, Replica, unavailable};
use openraft::Raft;
use std::collections::BTreeMap;
use std::time::Duration;
use tern_core::{GroupId, NodeId};
use tern_store::Db;
use tern_store::schema::{self, ALL_CFS, CF_RAFT_META, CF_STATE};

/// Why a replica may be let go (see [`RaftNode::release_replica`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Its own membership shows this node out.
    Own,
    /// The group's leader, which took this node out, said so.
    Told,
    /// The group's leader has a committed membership without this node, though the replica's
    /// own (older) membership may still count it as a voter ([`RaftNode::forgotten`]).
    Forgotten,
}

/// How long a replica the placement moved away hears nothing from its group before this node
/// asks whether the group still counts it.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(20);
/// How long that question waits for each node asked.
const FORGOTTEN_ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Where every group's voters go, given the members the placement may use.
pub(crate) struct Eligible {
    nodes: Vec<NodeId>,
    replication_factor: usize,
    /// Index = partition id - 1.
    partitions: Vec<Vec<NodeId>>,
}

impl Eligible {
    /// The placement of `partitions` partitions over `nodes`: partition by partition, the
    /// least loaded nodes so far, ties broken by rendezvous hashing. Every node holds its
    /// share (RF x P / N) give or take one, and every node computes the same table.
    pub fn new(nodes: Vec<NodeId>, replication_factor: usize, partitions: u32) -> Eligible {
        let count = replication_factor.min(nodes.len());
        let mut held: BTreeMap<NodeId, usize> = BTreeMap::new();
        let table = (1..=partitions)
            .map(|g| {
                let ranked = placement(GroupId(g), nodes.iter().copied(), nodes.len());
                // The least loaded nodes so far, in hash order among equals.
                let mut order: Vec<(usize, usize, NodeId)> = ranked
                    .iter()
                    .enumerate()
                    .map(|(rank, n)| (held.get(n).copied().unwrap_or(0), rank, *n))
                    .collect();
                order.sort_unstable();
                let chosen: Vec<NodeId> =
                    order.into_iter().take(count).map(|(_, _, n)| n).collect();
                for n in &chosen {
                    *held.entry(*n).or_default() += 1;
                }
                chosen
            })
            .collect();
        Eligible {
            nodes,
            replication_factor,
            partitions: table,
        }
    }

    /// The nodes that should vote in `group` (the meta group: plain rendezvous hashing).
    pub fn place(&self, group: GroupId) -> Vec<NodeId> {
        match (group.0 as usize).checked_sub(1) {
            Some(k) if k < self.partitions.len() => self.partitions[k].clone(),
            _ => {
                let count = self.replication_factor.min(self.nodes.len());
                placement(group, self.nodes.iter().copied(), count)
            }
        }
    }
}

/// Whether the data dir holds anything of `group` (a vote, or applied state).
pub(crate) fn has_state(db: &Db, group: GroupId) -> Result<bool, RaftError> {
    Ok(
        db.exists(CF_RAFT_META, &schema::raft_meta(group, META_VOTE))?
            || db.exists(CF_STATE, &schema::applied(group))?,
    )
}

impl RaftNode {
    /// The nodes being drained, from this node's meta replica.
    pub fn draining(&self) -> Vec<NodeId> {
        self.local_reader(GroupId::META)
            .draining()
            .unwrap_or_default()
    }

    /// The members replicas may be placed on, by this node's view: every member but those
    /// draining (every member, should all of them drain).
    pub(crate) fn placement_members(&self) -> Eligible {
        let members: Vec<NodeId> = self.members().into_keys().collect();
        let draining = self.draining();
        let kept: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|n| !draining.contains(n))
            .collect();
        let nodes = if kept.is_empty() { members } else { kept };
        Eligible::new(nodes, self.replication_factor(), self.partitions())
    }

    /// Whether the placement wants a replica of `group` on this node, by this node's view of
    /// the members.
    pub fn placed_here(&self, group: GroupId) -> bool {
        self.placement_members()
            .place(group)
            .contains(&self.node_id())
    }

    /// Whether sessions of `group`'s accounts are served here: this node votes in the group
    /// (so its replica is caught up) and the placement keeps it here. A replica on its way in
    /// (a learner catching up) or on its way out (demoted, released soon) does not serve: the
    /// sessions are relayed to one that does.
    pub fn serves_here(&self, group: GroupId) -> bool {
        let Ok(raft) = self.group(group) else {
            return false;
        };
        if self.partitions() == 0 || group == GroupId::META {
            return true;
        }
        let me = self.node_id();
        let votes = raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me);
        votes && self.placed_here(group)
    }

    /// The partitions whose replicas the placement puts on this node.
    pub fn placed_partitions(&self) -> Vec<GroupId> {
        let eligible = self.placement_members();
        let me = self.node_id();
        (1..=self.partitions())
            .map(GroupId)
            .filter(|g| eligible.place(*g).contains(&me))
            .collect()
    }

    /// `group`'s Raft for a replication message from its leader: the running replica, or a
    /// new, empty one when the placement wants one here (the leader is adding this node).
    pub(crate) async fn replica_for_leader(
        &self,
        group: GroupId,
    ) -> Result<Raft<TypeConfig>, RaftError> {
        match self.group(group) {
            Err(RaftError::NoReplica { .. }) => {}
            other => return other,
        }
        if group.0 == 0 || group.0 > self.partitions() || !self.placed_here(group) {
            return Err(RaftError::NoReplica { group });
        }
        let _starting = self.inner.starting.lock().await;
        if let Ok(raft) = self.group(group) {
            return Ok(raft);
        }
        let (_, replica) = self.open_replica(group).await?;
        let raft = replica.raft.clone();
        tern_core::sync::write(&self.inner.groups).insert(group, replica);
        tracing::info!(%group, "replica started: the group's leader is adding this node");
        Ok(raft)
    }

    /// Stops `group` here and deletes all of it, if this node may let it go: the placement
    /// does not want it here and, unless `why` is [`Release::Forgotten`], it has no vote in the
    /// group by its own membership (which must be known, or `why` be [`Release::Told`]).
    pub(crate) async fn release_replica(&self, group: GroupId, why: Release) -> bool {
        if group == GroupId::META || self.placed_here(group) {
            return false;
        }
        let Ok(raft) = self.group(group) else {
            return false;
        };
        let me = self.node_id();
        let m = raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voter = membership.voter_ids().any(|v| v == me);
        let known = membership.nodes().next().is_some();
        let member = membership.get_node(&me).is_some();
        let may = match why {
            Release::Own => !voter && known && !member,
            Release::Told => !voter,
            Release::Forgotten => true,
        };
        if !may {
            return false;
        }
        let _starting = self.inner.starting.lock().await;
        let Some(replica) = tern_core::sync::write(&self.inner.groups).remove(&group) else {
            return false;
        };
        if let Err(e) = replica.raft.shutdown().await {
            tracing::warn!(%group, error = %e, "released replica did not stop cleanly");
        }
        match self.delete_group_data(group) {
            Ok(()) => tracing::info!(%group, "replica released: its data is deleted here"),
            Err(e) => tracing::error!(%group, error = %e, "released replica: data not deleted"),
        }
        true
    }

    /// Deletes every key and file of `group` on this node.
    fn delete_group_data(&self, group: GroupId) -> Result<(), RaftError> {
        let db = &self.inner.db;
        let prefix = schema::group_prefix(group);
        let mut batch = tern_store::db::WriteBatch::default();
        for cf in ALL_CFS {
            db.delete_prefix(&mut batch, cf, &prefix)?;
        }
        db.write(batch, true)?;
        // Give the disk space back now rather than whenever compaction gets to the range.
        let compact = db.clone();
        tokio::task::spawn_blocking(move || {
            for cf in ALL_CFS {
                if let Err(e) = compact.compact_prefix(cf, &prefix) {
                    tracing::warn!(%group, cf, error = %e, "released replica: not compacted");
                }
            }
        });
        self.inner
            .snapshots
            .remove_group(group)
            .map_err(|e| unavailable(group, format!("snapshot files: {e}")))
    }

    /// Releases every replica this node no longer needs (see [`Self::release_replica`]),
    /// including those the group forgot while this node was away ([`Self::forgotten`]).
    pub(crate) async fn release_unplaced(&self) {
        let local: Vec<(GroupId, Replica)> = self
            .replicas()
            .into_iter()
            .filter(|(g, _)| *g != GroupId::META)
            .collect();
        for (group, replica) in local {
            if !self.release_replica(group, Release::Own).await
                && self.forgotten(group, &replica).await
            {
                tracing::info!(%group, "the group's leader no longer counts this replica");
                self.release_replica(group, Release::Forgotten).await;
            }
        }
    }

    /// Whether `group`, which the placement moved away from this node, has a leader whose
    /// committed membership leaves this node out. A replica taken out while its node was down
    /// never hears from its group again, and its own old membership still counts it in, so
    /// [`Self::release_replica`] alone would keep it for ever. Asked at most once per
    /// [`FORGOTTEN_AFTER`], of the placement's voters, once nothing was heard for as long.
    async fn forgotten(&self, group: GroupId, replica: &Replica) -> bool {
        let me = self.node_id();
        let quiet = |since: Option<Duration>| since.is_none_or(|s| s >= FORGOTTEN_AFTER);
        if self.placed_here(group)
            || replica.opened.elapsed() < FORGOTTEN_AFTER
            || !quiet(self.inner.leadership.since_heard(group))
            || replica.raft.metrics().borrow().current_leader == Some(me)
            || !self
                .inner
                .leadership
                .may_ask_forgotten(group, FORGOTTEN_AFTER)
        {
            return false;
        }
        let voters = self
            .placement_table()
            .get(group.0 as usize)
            .cloned()
            .unwrap_or_default();
        for node in voters.into_iter().filter(|n| *n != me) {
            let Ok(views) = self.views_of(node, FORGOTTEN_ASK_TIMEOUT).await else {
                continue;
            };
            let led = views
                .iter()
                .find(|v| v.group == group && v.leader == Some(node));
            if let Some(v) = led {
                let committed = v.applied >= v.membership_index;
                let out = !v.voters.contains(&me) && !v.learners.contains(&me);
                return committed && out;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(table: &Eligible, partitions: u32) -> BTreeMap<NodeId, usize> {
        let mut held = BTreeMap::new();
        for g in 1..=partitions {
            let voters = table.place(GroupId(g));
            assert_eq!(voters.len(), 3, "group {g}: {voters:?}");
            let mut unique = voters.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 3, "group {g}: {voters:?}");
            for n in voters {
                *held.entry(n).or_default() += 1;
            }
        }
        held
    }

    #[test]
    fn every_node_holds_its_share_give_or_take_one_and_growing_moves_little() {
        for partitions in [8, 16, 64, 256] {
            for n in 3..=9u64 {
                let nodes: Vec<NodeId> = (1..=n).collect();
                let table = Eligible::new(nodes.clone(), 3, partitions);
                let share = 3.0 * partitions as f64 / n as f64;
                for (node, count) in held(&table, partitions) {
                    assert!(
                        (count as f64 - share).abs() <= 1.0,
                        "{partitions} partitions on {n} nodes: node {node} holds {count}"
                    );
                }
                // One more node: most replicas stay where they were.
                let grown = Eligible::new((1..=n + 1).collect(), 3, partitions);
                let kept: usize = (1..=partitions)
                    .map(|g| {
                        let before = table.place(GroupId(g));
                        let after = grown.place(GroupId(g));
                        before.iter().filter(|x| after.contains(x)).count()
                    })
                    .sum();
                let total = 3 * partitions as usize;
                assert!(
                    kept * 2 >= total,
                    "{n} -> {}: kept {kept} of {total}",
                    n + 1
                );
            }
        }
        // The meta group is not in the table: plain rendezvous hashing.
        let table = Eligible::new(vec![1, 2, 3, 4], 3, 8);
        assert_eq!(
            table.place(GroupId::META),
            placement(GroupId::META, [1, 2, 3, 4], 3)
        );
    }
}
