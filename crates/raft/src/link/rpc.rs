//! What travels on a node link: every [`Request`] and [`Answer`] is [`Tagged`] with a call id,
//! and an answer carries its request's id, so one connection serves many concurrent calls.

use crate::TypeConfig;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tern_core::{GroupId, NodeId};
use tern_store::{Command, Response};

/// The first frame on every link: who is calling. The certificate proves they belong to the
/// cluster and must name this node id; the incarnation must be the one the cluster recorded
/// for it (see [`super::identity`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The caller's node id.
    pub node: NodeId,
    /// The random id of the caller's data dir, made when the data dir was first initialised:
    /// a node that lost its data comes back with another one.
    pub incarnation: u64,
    /// Set when the connection is not for calls but relays one client session: what the
    /// layer above needs to take it over (opaque here). After the hello, the connection
    /// carries that session's bytes.
    pub relay: Option<Vec<u8>>,
}

/// The server's answer to a [`Hello`]: who it is (the caller checks it as the server checks
/// the hello), or why the caller may not use the link (then the server closes it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Welcome {
    /// The link is open.
    Accepted {
        /// The server's node id (its certificate names it).
        node: NodeId,
        /// The server's data-dir incarnation.
        incarnation: u64,
    },
    /// The caller is refused: a removed node, a wiped data dir, a certificate of another node.
    Refused(String),
}

/// A request or an answer with its call id.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tagged<T> {
    /// Matches an answer to its request.
    pub id: u64,
    /// The request or answer.
    pub body: T,
}

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft replication.
    Append(GroupId, AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(GroupId, VoteRequest<NodeId>),
    /// Raft snapshot transfer (one chunk).
    Snapshot(
        GroupId,
        #[serde(with = "snapshot_chunk")] InstallSnapshotRequest<TypeConfig>,
    ),
    /// Propose a command to a group this node leads.
    Propose(GroupId, Command),
    /// Confirm leadership of a group and return the log index a linearizable read must wait
    /// for.
    ReadIndex(GroupId),
    /// What the cluster looks like (partition count and members), for a joining node.
    Info,
    /// Add a node (id, advertised link address, data-dir incarnation) to the cluster. A node
    /// that is not a member may only ask this for itself (its hello's id and incarnation).
    Join(NodeId, String, u64),
    /// On the meta leader: take a node out of the meta group (the checks are done).
    Expel(NodeId),
    /// This node's view of every group it runs.
    Status,
    /// Per-group applied index and state digest (replica convergence checks).
    Digests,
    /// From a group's leader handing the group over: campaign once the leader has gone quiet
    /// for a whole lease.
    Campaign(GroupId),
    /// From a group's leader that has taken this node out of the group: delete the replica
    /// (if the placement does not want it here).
    Release(GroupId),
}

/// openraft's snapshot chunk with its data encoded as one byte string (see
/// [`tern_core::byte_buf`]); the fields and their order are openraft's.
mod snapshot_chunk {
    use super::*;
    use openraft::{RaftTypeConfig, SnapshotMeta, Vote};

    type Meta =
        SnapshotMeta<<TypeConfig as RaftTypeConfig>::NodeId, <TypeConfig as RaftTypeConfig>::Node>;

    #[derive(Serialize)]
    struct ChunkRef<'a> {
        vote: &'a Vote<NodeId>,
        meta: &'a Meta,
        offset: u64,
        #[serde(with = "tern_core::byte_buf")]
        data: &'a [u8],
        done: bool,
    }

    #[derive(Deserialize)]
    struct Chunk {
        vote: Vote<NodeId>,
        meta: Meta,
        offset: u64,
        #[serde(with = "tern_core::byte_buf")]
        data: Vec<u8>,
        done: bool,
    }

    pub fn serialize<S: serde::Serializer>(
        rpc: &InstallSnapshotRequest<TypeConfig>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        ChunkRef {
            vote: &rpc.vote,
            meta: &rpc.meta,
            offset: rpc.offset,
            data: &rpc.data,
            done: rpc.done,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<InstallSnapshotRequest<TypeConfig>, D::Error> {
        let chunk = Chunk::deserialize(deserializer)?;
        Ok(InstallSnapshotRequest {
            vote: chunk.vote,
            meta: chunk.meta,
            offset: chunk.offset,
            data: chunk.data,
            done: chunk.done,
        })
    }
}

/// Why a forwarded operation did not happen.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    /// The callee does not lead the group; it may know who does.
    #[error("not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    /// No quorum, timeout, shutting down, storage failure.
    #[error("{0}")]
    Unavailable(String),
}

/// The partition count and members of a cluster.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Data partitions.
    pub partitions: u32,
    /// Every member and its advertised link address.
    pub members: BTreeMap<NodeId, String>,
    /// Voters per partition (every member must be configured alike).
    pub replication_factor: usize,
}

/// One group as a node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupView {
    /// The group.
    pub group: GroupId,
    /// The node's current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Voters of the group's membership (the latest the node has, maybe not committed).
    pub voters: Vec<NodeId>,
    /// Learners (non-voting replicas).
    pub learners: Vec<NodeId>,
    /// Last log index here.
    pub last_log_index: u64,
    /// Applied index here.
    pub applied: u64,
    /// The log index of the entry that set that membership (committed once `applied` has
    /// reached it).
    pub membership_index: u64,
    /// On the leader: how far each replica has replicated (matched log index).
    pub matched: BTreeMap<NodeId, u64>,
    /// Bytes of mail in the group's mailboxes, as this replica has applied them.
    pub bytes: u64,
    /// Snapshot bytes this node has sent so far to each replica being added (moves under way).
    pub sending: BTreeMap<NodeId, u64>,
}

/// One group's applied index and state digest on a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupDigest {
    /// The group.
    pub group: GroupId,
    /// Applied log index.
    pub applied: u64,
    /// BLAKE3 digest of the group's state, hex.
    pub digest: String,
}

/// The answer to a [`Request`].
#[derive(Debug, Serialize, Deserialize)]
pub enum Answer {
    /// To `Append`.
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To `Snapshot`.
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To `Propose`.
    Proposed(Result<Response, Refusal>),
    /// To `ReadIndex`.
    ReadIndex(Result<u64, Refusal>),
    /// To `Info` and `Join`.
    Info(Result<ClusterInfo, Refusal>),
    /// To `Remove` and `Campaign`.
    Done(Result<(), Refusal>),
    /// To `Status`.
    Status(Vec<GroupView>),
    /// To `Digests`.
    Digests(Result<Vec<GroupDigest>, Refusal>),
    /// The request could not be decoded or handled at all.
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{SnapshotMeta, Vote};

    #[test]
    fn a_snapshot_chunk_survives_the_wire() {
        let rpc = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(7, 2),
            meta: SnapshotMeta {
                last_log_id: None,
                last_membership: Default::default(),
                snapshot_id: "g3-7-1200".to_string(),
            },
            offset: 4096,
            data: (0..=255u8).cycle().take(100_000).collect(),
            done: true,
        };
        let config = bincode::config::standard();
        let bytes =
            bincode::serde::encode_to_vec(Request::Snapshot(GroupId(3), rpc.clone()), config)
                .expect("encode");
        let (back, _): (Request, usize) =
            bincode::serde::decode_from_slice(&bytes, config).expect("decode");
        let Request::Snapshot(group, got) = back else {
            panic!("not a snapshot chunk: {back:?}");
        };
        assert_eq!(group, GroupId(3));
        assert_eq!(got, rpc);
    }
}
