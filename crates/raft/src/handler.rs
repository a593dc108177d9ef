//! Answering node-link requests: Raft RPCs go to the addressed group; forwarded proposals and
//! reads run only if this node leads the group (never forwarded again, so a request makes at
//! most one hop); cluster management runs on the meta leader.

use crate::RaftError;
use crate::link::{Handler, Refusal, Reply, Request};
use crate::node::RaftNode;
use openraft::raft::AppendEntriesResponse;
use tern_core::{GroupId, NodeId};

fn refusal(e: RaftError) -> Refusal {
    match e {
        RaftError::NotLeader { leader, .. } => Refusal::NotLeader(leader),
        other => Refusal::Unavailable(other.to_string()),
    }
}

impl Handler for RaftNode {
    async fn handle(&self, from: NodeId, request: Request) -> Reply {
        self.answer(from, request).await
    }
}

impl RaftNode {
    async fn answer(&self, from: NodeId, request: Request) -> Reply {
        let no_group = |group: GroupId| format!("{group}: not running on this node");
        match request {
            Request::Append(group, rpc) => match self.group(group) {
                Ok(raft) => {
                    let result = raft.append_entries(rpc).await;
                    if let Ok(response) = &result
                        && !matches!(response, AppendEntriesResponse::HigherVote(_))
                    {
                        self.inner.leadership.heard_leader(group);
                    }
                    Reply::Append(result)
                }
                Err(_) => Reply::Error(no_group(group)),
            },
            Request::Vote(group, rpc) => match self.group(group) {
                Ok(raft) => Reply::Vote(raft.vote(rpc).await),
                Err(_) => Reply::Error(no_group(group)),
            },
            Request::Snapshot(group, rpc) => match self.group(group) {
                Ok(raft) => Reply::Snapshot(raft.install_snapshot(rpc).await),
                Err(_) => Reply::Error(no_group(group)),
            },
            Request::Propose(group, command) => {
                Reply::Proposed(self.propose_here(group, command).await.map_err(refusal))
            }
            Request::ReadIndex(group) => {
                Reply::ReadIndex(self.read_index_here(group).await.map_err(refusal))
            }
            Request::Info => Reply::Info(if self.has_groups() {
                Ok(self.info())
            } else {
                Err(Refusal::Unavailable(
                    "this node is not in a cluster yet".into(),
                ))
            }),
            Request::Join(node, addr) => {
                tracing::info!(from, node, %addr, "join request");
                Reply::Info(self.admit(node, addr).await.map_err(refusal))
            }
            Request::Remove(node) => Reply::Done(self.expel(node).await.map_err(refusal)),
            Request::Status => Reply::Status(self.views()),
            Request::Digests => Reply::Digests(self.digests().await.map_err(refusal)),
            Request::Campaign(group) => Reply::Done(self.campaign(from, group).map_err(refusal)),
        }
    }
}
