//! Answering node-link requests: Raft RPCs go to the addressed group; forwarded proposals and
//! reads run only if this node leads the group (never forwarded again, so a request makes at
//! most one hop); cluster management runs on the meta leader.

use crate::RaftError;
use crate::TypeConfig;
use crate::link::{Answer, Handler, Refusal, RelayedStream, Request, Standing};
use crate::node::RaftNode;
use openraft::Raft;
use openraft::raft::AppendEntriesResponse;
use std::time::Duration;
use tern_core::{GroupId, NodeId};

fn refusal(e: RaftError) -> Refusal {
    match e {
        RaftError::NotLeader { leader, .. } => Refusal::NotLeader(leader),
        // The caller asks another replica.
        RaftError::NoReplica { .. } => Refusal::NotLeader(None),
        other => Refusal::Unavailable(other.to_string()),
    }
}

impl Handler for RaftNode {
    async fn handle(&self, from: NodeId, request: Request) -> Answer {
        self.answer(from, request).await
    }

    async fn relay(&self, from: NodeId, request: Vec<u8>, stream: RelayedStream) {
        match self.inner.relay_acceptor.get() {
            Some(acceptor) => acceptor.accept(from, request, stream).await,
            None => tracing::warn!(from, "a relayed session arrived, but nothing serves them"),
        }
    }

    fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        RaftNode::standing(self, node, incarnation)
    }

    fn incarnation(&self) -> u64 {
        RaftNode::incarnation(self)
    }
}

impl RaftNode {
    async fn answer(&self, from: NodeId, request: Request) -> Answer {
        let no_group = |group: GroupId| format!("{group}: not running on this node");
        match request {
            Request::Append(group, rpc) => match self.replica_for_leader(group).await {
                Ok(raft) => {
                    let result = raft.append_entries(rpc).await;
                    if let Ok(response) = &result
                        && !matches!(response, AppendEntriesResponse::HigherVote(_))
                    {
                        self.inner.leadership.heard_leader(group);
                    }
                    Answer::Append(result)
                }
                Err(_) => Answer::Error(no_group(group)),
            },
            Request::Vote(group, rpc) => match self.group(group) {
                Ok(raft) => Answer::Vote(raft.vote(rpc).await),
                Err(_) => Answer::Error(no_group(group)),
            },
            Request::Snapshot(group, rpc) => match self.replica_for_leader(group).await {
                Ok(raft) => {
                    let done = rpc.done;
                    self.receiving_snapshot(group, &raft);
                    let answer = raft.install_snapshot(rpc).await;
                    if done {
                        self.inner.leadership.snapshot_received(group);
                        raft.runtime_config().elect(true);
                    }
                    Answer::Snapshot(answer)
                }
                Err(_) => Answer::Error(no_group(group)),
            },
            Request::Propose(group, command) => {
                Answer::Proposed(self.propose_here(group, command).await.map_err(refusal))
            }
            Request::ReadIndex(group) => {
                Answer::ReadIndex(self.read_index_here(group).await.map_err(refusal))
            }
            Request::Info => Answer::Info(if self.has_groups() {
                Ok(self.info())
            } else {
                Err(Refusal::Unavailable(
                    "this node is not in a cluster yet".into(),
                ))
            }),
            Request::Join(node, addr, incarnation) => {
                tracing::info!(from, node, %addr, "join request");
                Answer::Info(self.admit(node, addr, incarnation).await.map_err(refusal))
            }
            Request::Expel(node) => Answer::Done(self.expel(node).await.map_err(refusal)),
            Request::Status => Answer::Status(self.views()),
            Request::Digests => Answer::Digests(self.digests().await.map_err(refusal)),
            Request::Campaign(group) => Answer::Done(self.campaign(from, group).map_err(refusal)),
            Request::Release(group) => {
                let released = self
                    .release_replica(group, crate::replicas::Release::Told)
                    .await;
                tracing::debug!(from, %group, released, "asked to release a replica");
                Answer::Done(Ok(()))
            }
        }
    }
}

/// A follower stays quiet this long after the last snapshot chunk before it may campaign again:
/// paced chunks (`move_rate_limit`, shared by every transfer of the sending node) can be
/// seconds apart. Being quiet costs little: a follower that receives a snapshot is behind and
/// could not win an election anyway, and it still votes for the others.
const SNAPSHOT_QUIET: Duration = Duration::from_secs(10);

impl RaftNode {
    /// A snapshot chunk from `group`'s leader is arriving. openraft 0.9 does not count chunks as
    /// word from the leader, and sends no heartbeat to a follower while it streams it a
    /// snapshot: a transfer longer than an election timeout would make the follower campaign
    /// (and, with its log behind, only disrupt the leader and restart the transfer). So the
    /// follower does not campaign while chunks keep coming, and may again once none has come
    /// for [`SNAPSHOT_QUIET`], or when the last one is in.
    fn receiving_snapshot(&self, group: GroupId, raft: &Raft<TypeConfig>) {
        let first = self
            .inner
            .leadership
            .since_snapshot_chunk(group)
            .is_none_or(|quiet| quiet >= SNAPSHOT_QUIET);
        self.inner.leadership.snapshot_chunk(group);
        if !first {
            return;
        }
        raft.runtime_config().elect(false);
        let node = self.clone();
        let raft = raft.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SNAPSHOT_QUIET).await;
                let quiet = node.inner.leadership.since_snapshot_chunk(group);
                if quiet.is_none_or(|q| q >= SNAPSHOT_QUIET) {
                    raft.runtime_config().elect(true);
                    return;
                }
            }
        });
    }
}
