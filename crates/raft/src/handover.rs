//! Handing a group's leadership to another voter (see `leadership` for why it works this
//! way): the leader's side, [`RaftNode::hand_over`], and the target's, [`RaftNode::campaign`].

use crate::RaftError;
use crate::leadership::HANDOVER_LIMIT;
use crate::link::{Answer, Request};
use crate::node::{ELECTION_TIMEOUT_MAX_MS, RaftNode, unavailable};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// How long the leader waits for the target to agree to campaign.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);
/// How much longer than a lease the target waits after the leader's last append, so that the
/// other voters' leases have surely run out too.
const LEASE_MARGIN: Duration = Duration::from_millis(50);
/// How often the target checks whether the leader has gone quiet.
const POLL: Duration = Duration::from_millis(10);

impl RaftNode {
    /// Starts handing `group`, which this node leads, over to `target` in the background.
    /// Does nothing if a handover of the group is under way or too many are.
    pub(crate) fn start_handover(&self, group: GroupId, target: NodeId) {
        if !self.inner.leadership.begin_handover(group) {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            node.hand_over(group, target).await;
            node.inner.leadership.end_handover(group);
        });
    }

    /// The leader's side: get the target's agreement, go quiet (requests on the group are held
    /// meanwhile), wait for the new leader, and carry on in any case after
    /// [`HANDOVER_LIMIT`].
    async fn hand_over(&self, group: GroupId, target: NodeId) {
        let Ok(raft) = self.group(group) else { return };
        match self
            .call(group, target, &Request::Campaign(group), ASK_TIMEOUT)
            .await
        {
            Ok(Answer::Done(Ok(()))) => {}
            Ok(other) => {
                tracing::debug!(%group, target, "handover declined: {other:?}");
                return;
            }
            Err(e) => {
                tracing::debug!(%group, target, "handover not started: {e}");
                return;
            }
        }
        let me = self.node_id();
        raft.runtime_config().heartbeat(false);
        let moved = raft
            .wait(Some(HANDOVER_LIMIT))
            .metrics(|m| m.current_leader != Some(me), "a new leader")
            .await
            .is_ok();
        raft.runtime_config().heartbeat(true);
        if moved {
            tracing::info!(%group, target, "leadership handed over");
        } else {
            tracing::info!(%group, target, "handover did not happen; still leading");
        }
    }

    /// The target's side, answering `Request::Campaign` from `leader`: agree at once if this
    /// node votes in the group and `leader` leads it, then campaign once the leader has been
    /// quiet for a whole lease.
    pub(crate) fn campaign(&self, leader: NodeId, group: GroupId) -> Result<(), RaftError> {
        let raft = self.group(group)?;
        let me = self.node_id();
        let m = raft.metrics().borrow().clone();
        if m.current_leader != Some(leader) {
            return Err(unavailable(group, "the caller does not lead this group"));
        }
        if !m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me)
        {
            return Err(unavailable(group, "not a voter of this group"));
        }
        let node = self.clone();
        tokio::spawn(async move {
            let lease = Duration::from_millis(ELECTION_TIMEOUT_MAX_MS) + LEASE_MARGIN;
            let deadline = Instant::now() + HANDOVER_LIMIT;
            while node
                .inner
                .leadership
                .since_heard(group)
                .is_some_and(|since| since < lease)
            {
                if Instant::now() >= deadline {
                    return; // the leader never went quiet
                }
                tokio::time::sleep(POLL).await;
            }
            if raft.metrics().borrow().current_leader != Some(leader) {
                return; // someone else already took over
            }
            if let Err(e) = raft.trigger().elect().await {
                tracing::warn!(%group, "campaign not started: {e}");
            }
        });
        Ok(())
    }
}
