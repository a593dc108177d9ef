//! Tern's Raft layer: every group (meta and data partitions) is an openraft instance over the
//! node's one RocksDB. STUB SIGNATURES: implemented by the raft work; callers rely on these.
#![warn(missing_docs)]

use std::path::PathBuf;
use tern_core::{AccountId, GroupId, NodeId};
use tern_store::{Command, Reader, Response};

/// Why a proposal or read did not happen. All are temporary for clients (SMTP 451, IMAP NO
/// [UNAVAILABLE]): the outcome of a failed proposal is unknown, it may still commit.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// This node does not lead the group.
    #[error("{group}: not the leader (leader: {leader:?})")]
    NotLeader {
        /// The group.
        group: GroupId,
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// No quorum, a timeout, or the group is not running here.
    #[error("{group}: unavailable: {reason}")]
    Unavailable {
        /// The group.
        group: GroupId,
        /// What went wrong.
        reason: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] tern_store::StoreError),
    /// The node is shutting down.
    #[error("shutting down")]
    Shutdown,
}

/// How to start the Raft layer.
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// RocksDB lives in `data_dir/db`.
    pub data_dir: PathBuf,
    /// Number of data partitions (used when the data dir is new; a stored value wins).
    pub partitions: u32,
}

/// Status of one group on this node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupStatus {
    /// The group.
    pub group: GroupId,
    /// Current leader.
    pub leader: Option<NodeId>,
    /// Voters.
    pub voters: Vec<NodeId>,
    /// Last committed log index.
    pub commit_index: u64,
    /// Last applied log index.
    pub applied_index: u64,
}

/// The node's Raft groups. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {}

impl RaftNode {
    /// Opens RocksDB, starts the meta group and every partition, initialises them as one-voter
    /// groups when the data dir is new, and returns once every group has a leader.
    pub async fn start(config: RaftConfig) -> Result<RaftNode, RaftError> {
        let _ = config;
        todo!()
    }

    /// Number of data partitions.
    pub fn partitions(&self) -> u32 {
        todo!()
    }

    /// The partition that owns `account`.
    pub fn partition_of(&self, account: AccountId) -> GroupId {
        GroupId::partition_of(account, self.partitions())
    }

    /// Proposes `command` to `group`; returns its response once it is committed on a quorum
    /// (log fsynced) and applied here.
    pub async fn propose(&self, group: GroupId, command: Command) -> Result<Response, RaftError> {
        let _ = (group, command);
        todo!()
    }

    /// A linearizable reader: confirms leadership and waits until everything committed before
    /// the call is applied.
    pub async fn read(&self, group: GroupId) -> Result<Reader, RaftError> {
        let _ = group;
        todo!()
    }

    /// A reader over whatever this replica has applied (for immutable blobs and cached
    /// directory lookups).
    pub fn local_reader(&self, group: GroupId) -> Reader {
        let _ = group;
        todo!()
    }

    /// Status of every group.
    pub async fn status(&self) -> Vec<GroupStatus> {
        todo!()
    }

    /// Stops every group, then closes RocksDB.
    pub async fn shutdown(&self) {
        todo!()
    }
}
