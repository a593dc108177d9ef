//! Cluster membership: `init` (the first node), `join` (a new node, through any member),
//! `remove`, and the maintenance loop that keeps every group's replicas where the placement
//! wants them.
//!
//! The members of the cluster are the nodes of the meta group's membership (voters and
//! learners). The meta group (directory, small) is on every member: the placement's voters
//! (the replication factor, or fewer while the cluster is smaller) and everyone else as a
//! learner, so any node reads the directory from its own replica. A partition (the mail) is
//! only on its placement's voters: a node holds about replication factor / members of it,
//! and adding a node moves a share of the partitions to it.
//!
//! Each group's leader moves its group one step at a time: add the node the placement wants
//! as a learner (it receives a snapshot and catches up), swap the voters through joint
//! consensus once every wanted node is caught up, then remove the nodes the placement no
//! longer wants and tell them to delete their copy. A leader that loses its own vote hands
//! the group to the most caught-up new voter. At most `max_concurrent_moves` groups led by one node
//! have a replica being added at once.
//!
//! Who may join, and which ids are refused for ever, is `crate::roster`'s record: `init` and
//! `join` record the node's data-dir incarnation, `remove` records the id as removed.

use crate::RaftError;
use crate::leadership::{SETTLE, preferred_leaders};
use crate::link::{Answer, ClusterInfo, GroupView, Request};
use crate::node::{ELECTION_TIMEOUT_MAX_MS, REQUEST_TIMEOUT, RaftNode, StartWith, unavailable};
use crate::progress::CAUGHT_UP_SLACK;
use openraft::{BasicNode, ChangeMembers, RaftMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::{GroupId, NodeId};
use tern_store::{Command, Response};
use tokio::time::Instant;

/// How often each leader checks its group's membership (a move takes a few passes).
const MAINTAIN_EVERY: Duration = Duration::from_millis(250);
/// How long a joining node waits for the meta leader to take it in (it catches up first).
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a replica the placement moved away keeps receiving the log before the leader
/// removes it (sessions it was serving finish meanwhile).
const RELEASE_GRACE: Duration = Duration::from_secs(10);
/// A partition with less mail than this moves without counting against
/// `max_concurrent_moves`.
const SMALL_MOVE_BYTES: u64 = 8 << 20;
/// How long a status query waits for each peer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// One member as `cluster status` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberReport {
    /// Node id.
    pub id: NodeId,
    /// Its link address.
    pub addr: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Its view of every group (empty when unreachable).
    pub groups: Vec<GroupView>,
}

/// Rendezvous placement: the `count` members that score highest for `group`. Every node
/// computes the same answer, and adding or removing a member moves only the replicas it gains
/// or loses. `leadership::preferred_leaders` picks which of them leads.
pub fn placement(
    group: GroupId,
    members: impl IntoIterator<Item = NodeId>,
    count: usize,
) -> Vec<NodeId> {
    let mut scored: Vec<(u64, NodeId)> = members
        .into_iter()
        .map(|node| (mix(u64::from(group.0) << 32 ^ node), node))
        .collect();
    scored.sort_unstable_by(|a, b| b.cmp(a));
    scored.into_iter().take(count).map(|(_, n)| n).collect()
}

/// SplitMix64's finaliser: a cheap, well-spread 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl RaftNode {
    fn link(&self) -> Result<&crate::node::Link, RaftError> {
        self.inner.link.as_ref().ok_or_else(|| {
            unavailable(
                GroupId::META,
                "this node has no node link ([cluster] listen is empty)",
            )
        })
    }

    /// Creates the cluster on this node: the meta group and `partitions` partitions, with this
    /// node as their one voter. Others join it afterwards.
    pub async fn init_cluster(&self, partitions: u32) -> Result<ClusterInfo, RaftError> {
        let link = self.link()?;
        if partitions == 0 {
            return Err(unavailable(
                GroupId::META,
                "a cluster needs at least one partition",
            ));
        }
        if self.has_groups()
            && self
                .group(GroupId::META)?
                .is_initialized()
                .await
                .unwrap_or(false)
        {
            return Err(unavailable(
                GroupId::META,
                "this node is already in a cluster",
            ));
        }
        self.store_partitions(partitions)?;
        self.start_groups(partitions, StartWith::Every).await?;
        let me = BTreeMap::from([(self.node_id(), BasicNode::new(&link.advertise))]);
        self.initialize_groups(me).await?;
        self.wait_for_leaders().await?;
        self.record_node(self.node_id(), Some(self.incarnation()))
            .await?;
        tracing::info!(partitions, "cluster initialised");
        Ok(self.info())
    }

    /// Joins the cluster through `seed` (or the configured seeds): learns the partition count,
    /// starts the groups, and asks the meta leader to take this node in. Returns once the meta
    /// group has it; the partitions follow within seconds.
    pub async fn join_cluster(&self, seed: Option<String>) -> Result<ClusterInfo, RaftError> {
        let link = self.link()?;
        let seeds: Vec<String> = match seed {
            Some(s) => vec![s],
            None => link
                .seeds
                .iter()
                .filter(|s| **s != link.advertise)
                .cloned()
                .collect(),
        };
        if seeds.is_empty() {
            return Err(unavailable(GroupId::META, "no seed to join through"));
        }
        let mut failures = Vec::new();
        for (i, seed) in seeds.iter().enumerate() {
            // The seed's id is unknown until it answers; a placeholder keys its connection. A
            // seed refuses a node whose id was removed or whose data dir was replaced at the
            // first call, before this node starts any group.
            let placeholder = crate::link::client::seed_placeholder(i);
            match link
                .peers
                .call(placeholder, seed, &Request::Info, STATUS_TIMEOUT)
                .await
            {
                Ok(Answer::Info(Ok(info))) => {
                    if info.replication_factor != self.replication_factor() {
                        return Err(unavailable(
                            GroupId::META,
                            format!(
                                "the cluster has replication_factor = {}, this node {}: \
                                 set the same [cluster] replication_factor on every node",
                                info.replication_factor,
                                self.replication_factor()
                            ),
                        ));
                    }
                    self.store_partitions(info.partitions)?;
                    self.start_groups(info.partitions, StartWith::Meta).await?;
                    let join =
                        Request::Join(self.node_id(), link.advertise.clone(), self.incarnation());
                    return match link
                        .peers
                        .call(placeholder, seed, &join, JOIN_TIMEOUT)
                        .await
                    {
                        Ok(Answer::Info(Ok(info))) => {
                            tracing::info!(%seed, "joined the cluster");
                            Ok(info)
                        }
                        Ok(Answer::Info(Err(refusal))) => Err(unavailable(GroupId::META, refusal)),
                        Ok(other) => {
                            Err(unavailable(GroupId::META, format!("unexpected {other:?}")))
                        }
                        Err(e) => Err(unavailable(GroupId::META, e)),
                    };
                }
                Ok(Answer::Info(Err(refusal))) => failures.push(format!("{seed}: {refusal}")),
                Ok(other) => failures.push(format!("{seed}: unexpected {other:?}")),
                Err(e) => failures.push(format!("{seed}: {e}")),
            }
        }
        Err(unavailable(
            GroupId::META,
            format!("no seed answered: {}", failures.join("; ")),
        ))
    }

    /// Takes `node` out of the cluster (through the meta leader). Refused while the node
    /// holds partition replicas (drain it first) or does not answer, unless `dead`: the node
    /// is gone for good, and the group leaders make its replicas again on the other members
    /// from the survivors.
    pub async fn remove_node(&self, node: NodeId, dead: bool) -> Result<(), RaftError> {
        self.link()?;
        if !self.members().contains_key(&node) {
            return Err(unavailable(
                GroupId::META,
                format!("node {node} is not a member"),
            ));
        }
        if !dead {
            self.check_drained(node).await?;
        }
        // Recorded first, so that no window lets the id join again; the node keeps its place
        // on the link until the membership change below has taken it out.
        self.record_node(node, None).await?;
        self.expel(node).await?;
        // The mark has done its work (the id is never used again).
        if self.draining().contains(&node) {
            self.set_draining(node, false).await?;
        }
        Ok(())
    }

    /// Refuses while `node` holds partition replicas or cannot say whether it does.
    async fn check_drained(&self, node: NodeId) -> Result<(), RaftError> {
        match self.views_of(node, STATUS_TIMEOUT).await {
            Ok(views) => {
                let held = views.iter().filter(|v| v.group != GroupId::META).count();
                if held == 0 {
                    return Ok(());
                }
                Err(unavailable(
                    GroupId::META,
                    format!(
                        "node {node} still holds {held} partition replica(s): \
                         `tern cluster drain {node}` moves them to the other nodes"
                    ),
                ))
            }
            Err(why) => Err(unavailable(
                GroupId::META,
                format!(
                    "node {node} does not answer ({why}); if it is gone for good, \
                     `tern cluster remove {node} --dead` makes its replicas again elsewhere"
                ),
            )),
        }
    }

    /// Marks `node` as draining (or not): the placement then puts no replica on it, so the
    /// group leaders move its replicas to the other members. Refused when that would leave
    /// fewer members than the replication factor.
    pub async fn drain_node(&self, node: NodeId, draining: bool) -> Result<(), RaftError> {
        self.link()?;
        let members = self.members();
        if !members.contains_key(&node) {
            return Err(unavailable(
                GroupId::META,
                format!("node {node} is not a member"),
            ));
        }
        if draining {
            let drained = self.draining();
            let left = members
                .keys()
                .filter(|n| **n != node && !drained.contains(n))
                .count();
            let factor = self.replication_factor();
            if left < factor {
                return Err(unavailable(
                    GroupId::META,
                    format!(
                        "draining node {node} would leave {left} node(s) for replication_factor \
                         {factor}: add a node first (`tern cluster join` on a new one)"
                    ),
                ));
            }
        }
        self.set_draining(node, draining).await
    }

    async fn set_draining(&self, node: NodeId, draining: bool) -> Result<(), RaftError> {
        match self
            .propose(GroupId::META, Command::SetDraining { node, draining })
            .await?
        {
            Response::Ok => Ok(()),
            other => Err(unavailable(
                GroupId::META,
                format!("unexpected response {other:?}"),
            )),
        }
    }

    /// Sends `request` to the meta leader and returns its reply (used when this node does not
    /// lead the meta group).
    async fn to_meta_leader(&self, leader: NodeId, request: Request) -> Result<Answer, RaftError> {
        self.call(GroupId::META, leader, &request, JOIN_TIMEOUT)
            .await
            .map_err(|e| unavailable(GroupId::META, e))
    }

    /// On the meta leader: records `node`'s data-dir incarnation, adds it as a learner of the
    /// meta group (waiting until it has caught up), then lets the placement make it a voter if
    /// it should be one. Refused for a removed id, and for a known id whose data dir is
    /// another one than recorded (it lost its data).
    pub(crate) async fn admit(
        &self,
        node: NodeId,
        addr: String,
        incarnation: u64,
    ) -> Result<ClusterInfo, RaftError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let leader = self.leader(GroupId::META, deadline).await?;
        if leader != self.node_id() {
            return match self
                .to_meta_leader(leader, Request::Join(node, addr, incarnation))
                .await?
            {
                Answer::Info(result) => result.map_err(|r| unavailable(GroupId::META, r)),
                other => Err(unavailable(GroupId::META, format!("unexpected {other:?}"))),
            };
        }
        if let Some(known) = self.members().get(&node)
            && *known != addr
        {
            return Err(unavailable(
                GroupId::META,
                format!("node {node} is already a member at {known}"),
            ));
        }
        self.check_admission(node, incarnation)?;
        self.record_node(node, Some(incarnation)).await?;
        let meta = self.group(GroupId::META)?;
        tokio::time::timeout(
            JOIN_TIMEOUT,
            meta.add_learner(node, BasicNode::new(&addr), true),
        )
        .await
        .map_err(|_| unavailable(GroupId::META, "the new node did not catch up in time"))?
        .map_err(|e| unavailable(GroupId::META, e))?;
        let mut moves = Moves {
            in_flight: 0,
            limit: usize::MAX,
        };
        self.maintain_group(GroupId::META, &mut moves).await;
        tracing::info!(node, %addr, "node joined");
        Ok(self.info())
    }

    /// On the meta leader: removes `node` from the meta group (first as a voter, then
    /// altogether).
    pub(crate) async fn expel(&self, node: NodeId) -> Result<(), RaftError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let leader = self.leader(GroupId::META, deadline).await?;
        if leader != self.node_id() {
            return match self.to_meta_leader(leader, Request::Expel(node)).await? {
                Answer::Done(result) => result.map_err(|r| unavailable(GroupId::META, r)),
                other => Err(unavailable(GroupId::META, format!("unexpected {other:?}"))),
            };
        }
        let mut members = self.members();
        if members.remove(&node).is_none() {
            return Err(unavailable(
                GroupId::META,
                format!("node {node} is not a member"),
            ));
        }
        if members.is_empty() {
            return Err(unavailable(GroupId::META, "cannot remove the last member"));
        }
        let meta = self.group(GroupId::META)?;
        let draining = self.draining();
        let mut eligible: Vec<NodeId> = members
            .keys()
            .copied()
            .filter(|n| !draining.contains(n))
            .collect();
        if eligible.is_empty() {
            eligible = members.keys().copied().collect();
        }
        let voters: BTreeSet<NodeId> =
            placement(GroupId::META, eligible, self.replication_factor())
                .into_iter()
                .collect();
        meta.change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await
            .map_err(|e| unavailable(GroupId::META, e))?;
        meta.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node])), false)
            .await
            .map_err(|e| unavailable(GroupId::META, e))?;
        tracing::info!(node, "node removed");
        Ok(())
    }

    /// The voters the placement wants for every group, indexed by group id.
    pub fn placement_table(&self) -> Vec<Vec<NodeId>> {
        let eligible = self.placement_members();
        (0..=self.partitions())
            .map(|g| eligible.place(GroupId(g)))
            .collect()
    }

    /// Each node's share of the partitions and the progress of the moves under way, from
    /// `reports` (see [`RaftNode::cluster_status`]).
    pub fn progress(
        &self,
        reports: &[MemberReport],
    ) -> (Vec<crate::progress::NodeShare>, crate::progress::Rebalance) {
        let (shares, pending) = crate::progress::survey(reports, &self.placement_table());
        (
            shares,
            self.inner.rebalance.observe(pending, Instant::now()),
        )
    }

    /// `node`'s view of every group it holds: this node's own, or asked over the node link
    /// (waiting at most `timeout`); the error says why there is none.
    pub(crate) async fn views_of(
        &self,
        node: NodeId,
        timeout: Duration,
    ) -> Result<Vec<GroupView>, String> {
        if node == self.node_id() {
            return Ok(self.views());
        }
        match self
            .call(GroupId::META, node, &Request::Status, timeout)
            .await
        {
            Ok(Answer::Status(views)) => Ok(views),
            Ok(other) => Err(format!("unexpected {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Every member's view of every group, asking each member over the node link.
    pub async fn cluster_status(&self) -> Vec<MemberReport> {
        let members = self.members();
        let asks = members.into_iter().map(|(id, addr)| async move {
            let groups = self.views_of(id, STATUS_TIMEOUT).await.ok();
            MemberReport {
                id,
                addr,
                reachable: groups.is_some(),
                groups: groups.unwrap_or_default(),
            }
        });
        futures::future::join_all(asks).await
    }

    /// One pass over the groups this node leads, moving each one step towards its placement,
    /// and handing a settled group to its preferred leader; then lets go of the replicas
    /// this node no longer needs.
    async fn maintain_all(&self) {
        let members = self.members();
        let voters = self.placement_table();
        let preferred = preferred_leaders(&voters);
        let mut moves = Moves {
            in_flight: self.moves_in_flight(&voters),
            limit: self.move_limits().max_concurrent,
        };
        for (group, _) in self.replicas() {
            if self.inner.stop.is_cancelled() {
                return;
            }
            if self.inner.leadership.is_handing_over(group) {
                continue; // any change now would renew the lease the handover waits out
            }
            let settled = self.maintain_group(group, &mut moves).await;
            if settled && let Some(Some(target)) = preferred.get(group.0 as usize) {
                self.balance(group, *target);
            }
        }
        if members.contains_key(&self.node_id()) {
            self.release_unplaced().await;
        }
        self.record_unrecorded().await;
    }

    /// Whether `group` holds so little mail that moving it is not worth a place among the
    /// moves `max_concurrent_moves` allows (a new cluster's empty partitions move at once).
    fn small_group(&self, group: GroupId) -> bool {
        self.local_reader(group)
            .group_usage()
            .is_ok_and(|bytes| bytes < SMALL_MOVE_BYTES)
    }

    /// Partitions this node leads that have a replica being added and not yet caught up.
    fn moves_in_flight(&self, placements: &[Vec<NodeId>]) -> usize {
        let me = self.node_id();
        self.replicas()
            .into_iter()
            .filter(|(g, _)| *g != GroupId::META)
            .filter(|(g, replica)| {
                let m = replica.raft.metrics().borrow().clone();
                if m.current_leader != Some(me) {
                    return false;
                }
                let want = placements.get(g.0 as usize).cloned().unwrap_or_default();
                m.membership_config
                    .membership()
                    .learner_ids()
                    .any(|l| want.contains(&l) && !caught_up(&m, l))
            })
            .filter(|(g, _)| !self.small_group(*g))
            .count()
    }

    /// Hands `group` to `target`, its preferred leader, if this node has led it for a while
    /// and `target` votes in it and has every entry.
    fn balance(&self, group: GroupId, target: NodeId) {
        let me = self.node_id();
        let Some(m) = self.metrics(group) else { return };
        if target == me || m.current_leader != Some(me) {
            return;
        }
        if self.inner.leadership.leading_for(group, m.current_term) < SETTLE {
            return;
        }
        let healthy = m
            .millis_since_quorum_ack
            .is_some_and(|ms| ms < ELECTION_TIMEOUT_MAX_MS);
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == target);
        let caught_up = matched(&m, target) >= m.last_log_index.unwrap_or(0);
        if healthy && voter && caught_up {
            tracing::info!(%group, target, "handing leadership to the preferred leader");
            self.start_handover(group, target);
        }
    }

    /// If this node leads `group`, makes one membership change it needs: add a node that
    /// should hold a replica as a learner, then swap in the placement's voters once they have
    /// caught up, then remove the nodes that should not hold one (and tell them to delete
    /// it). The meta group is on every member; a partition only on its placement's voters.
    /// True when this node leads the group and it needs no change.
    async fn maintain_group(&self, group: GroupId, moves: &mut Moves) -> bool {
        let me = self.node_id();
        let Some(m) = self.metrics(group) else {
            return false;
        };
        if m.current_leader != Some(me) {
            return false;
        }
        self.inner.leadership.leading_for(group, m.current_term);
        let membership = m.membership_config.membership().clone();
        if membership.get_joint_config().len() > 1 {
            return false; // a change is under way
        }
        let members = self.members();
        if members.is_empty() {
            return false;
        }
        let Ok(raft) = self.group(group) else {
            return false;
        };
        let eligible = self.placement_members();
        if !membership.voter_ids().any(|v| v == me) {
            // openraft 0.9 lets a leader that is no longer a voter carry on leading: hand the
            // group to the voter that has the most of the log.
            if let Some(target) = membership.voter_ids().max_by_key(|v| matched(&m, *v)) {
                tracing::info!(%group, target, "leading without a vote: handing over");
                self.start_handover(group, target);
            }
            return false;
        }
        let want: BTreeSet<NodeId> = eligible.place(group).into_iter().collect();
        let holders: BTreeSet<NodeId> = if group == GroupId::META {
            members.keys().copied().collect()
        } else {
            want.clone()
        };
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let result = async {
            if let Some(id) = holders.iter().find(|id| membership.get_node(id).is_none()) {
                if group != GroupId::META && !self.small_group(group) && !moves.start() {
                    return Ok(false); // enough moves under way; this one waits its turn
                }
                tracing::info!(%group, node = id, "adding a replica");
                let addr = members.get(id).cloned().unwrap_or_default();
                raft.add_learner(*id, BasicNode::new(addr), false).await?;
                return Ok(false);
            }
            if want != voters {
                if want.iter().all(|n| *n == me || caught_up(&m, *n)) {
                    tracing::info!(%group, ?want, "changing voters");
                    raft.change_membership(ChangeMembers::ReplaceAllVoters(want), true)
                        .await?;
                }
                return Ok(false);
            }
            let extra: BTreeSet<NodeId> = membership
                .nodes()
                .map(|(id, _)| *id)
                .filter(|id| !holders.contains(id) && !voters.contains(id))
                .collect();
            // A demoted replica keeps receiving the log for a while, so that sessions it
            // serves can finish (new ones are relayed to the voters).
            let extra = self
                .inner
                .leadership
                .demoted_for(group, &extra, RELEASE_GRACE);
            if !extra.is_empty() {
                tracing::info!(%group, ?extra, "removing replicas the placement moved away");
                raft.change_membership(ChangeMembers::RemoveNodes(extra.clone()), false)
                    .await?;
                if group != GroupId::META {
                    for node in extra {
                        self.tell_release(group, node);
                    }
                }
                return Ok(false);
            }
            Ok::<
                _,
                openraft::error::RaftError<
                    NodeId,
                    openraft::error::ClientWriteError<NodeId, BasicNode>,
                >,
            >(true)
        };
        match result.await {
            Ok(settled) => settled,
            Err(e) => {
                tracing::debug!(%group, "membership change not made: {e}");
                false
            }
        }
    }

    /// Tells `node`, just taken out of `group`, to delete its replica (best effort: a node
    /// that misses this sees it from the membership it has).
    fn tell_release(&self, group: GroupId, node: NodeId) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me
                .call(
                    GroupId::META,
                    node,
                    &Request::Release(group),
                    STATUS_TIMEOUT,
                )
                .await
            {
                tracing::debug!(%group, node, "release not delivered: {e}");
            }
        });
    }
}

/// How many more replica moves this node may start in one maintenance pass.
struct Moves {
    in_flight: usize,
    limit: usize,
}

impl Moves {
    /// Counts a new move if the limit allows it.
    fn start(&mut self) -> bool {
        if self.in_flight >= self.limit {
            return false;
        }
        self.in_flight += 1;
        true
    }
}

/// Whether `node` has acknowledged all but [`CAUGHT_UP_SLACK`] entries of the leader's log, as
/// `m`'s leader sees it: a replica that may become a voter. A replica that has acknowledged
/// nothing yet (a new one waiting for its snapshot) is not caught up, however short the log.
fn caught_up(m: &RaftMetrics<NodeId, BasicNode>, node: NodeId) -> bool {
    let Some(has) = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&node).copied().flatten())
    else {
        return false;
    };
    has.index + CAUGHT_UP_SLACK >= m.last_log_index.unwrap_or(0)
}

/// The last log index `node` is known to have, as `m`'s leader sees it.
fn matched(m: &RaftMetrics<NodeId, BasicNode>, node: NodeId) -> u64 {
    m.replication
        .as_ref()
        .and_then(|r| r.get(&node).copied().flatten())
        .map_or(0, |l| l.index)
}

/// The maintenance loop of a cluster member; ends when the node shuts down.
pub(crate) async fn maintain(node: RaftNode) {
    let stop = node.inner.stop.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(MAINTAIN_EVERY) => {}
        }
        if node.has_groups() {
            node.maintain_all().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_spread() {
        let nodes = [1, 2, 3];
        let mut first = BTreeMap::<NodeId, usize>::new();
        for g in 1..=64 {
            let p = placement(GroupId(g), nodes, 3);
            assert_eq!(p.len(), 3);
            assert_eq!(
                p,
                placement(GroupId(g), [3, 1, 2], 3),
                "order of members matters not"
            );
            *first.entry(p[0]).or_default() += 1;
            // A fourth node takes at most one of the three places.
            let with4 = placement(GroupId(g), [1, 2, 3, 4], 3);
            let kept = with4.iter().filter(|n| p.contains(n)).count();
            assert!(kept >= 2);
        }
        // Preferred leaders are spread: each node prefers roughly a third of the groups.
        assert!(first.values().all(|&n| n >= 10), "{first:?}");
    }
}
