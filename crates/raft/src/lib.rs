//! Tern's Raft layer: every group — the meta group and each data partition — is an openraft
//! instance over the node's one RocksDB. A single node runs exactly this code with one voter.
//!
//! It does not interpret commands (tern-store does) or speak any mail protocol.
//!
//! - [`log_store`]: one group's log and vote (`raft_log`, `raft_meta` column families).
//! - [`log_writer`]: group commit — one WAL fsync acknowledges the appends of many groups.
//! - [`state_machine`]: applies entries through tern-store; names, exports and installs
//!   snapshots.
//! - [`snapshot_data`]: the bytes of a snapshot as openraft sends and receives them.
//! - [`backup`]: exporting a group's image from a running node; a data dir from images.
//! - [`snapshots`]: the snapshot files of this node (`data_dir/snapshots`), while one moves.
//! - [`link`]: the node link (mTLS, bincode frames) between cluster members.
//! - [`network`]: Raft RPCs to peers over the node link.
//! - [`cluster`]: init, join, remove, and the placement of every group's replicas.
//! - [`observers`]: code above learns of every applied command on every replica.
//! - [`node`]: [`RaftNode`], which starts, drives and stops every group, and forwards
//!   proposals and reads to the group leader.
//! - `handler`: answering node-link requests (Raft RPCs, forwarded proposals and reads,
//!   cluster management on the meta leader).
//! - `leadership`: readiness (when each group's leader was last heard from) and the preferred
//!   leader of every group; `handover`: moving a group's leadership to its preferred node.
//! - `replicas`: which partitions this node holds; starting a replica a leader adds, deleting
//!   one it took away.
//! - `routes`: where requests go for a group this node holds no replica of.
//! - `roster`: node identity — this data dir's incarnation, the recorded incarnations and
//!   removed ids, and from them who may use the node link.
//! - `compaction`: snapshots by log size and age, beside openraft's count-based policy.
//! - `codec`: bincode for entries, votes and snapshots, in one place.
//! - `testing` (feature `testing`): a harness for tests of the crates above this one.
//! - `sim` (feature `sim`): deterministic simulation of a cluster in one process.
//!
//! New node-link requests get a variant in [`link::rpc`] (`Request` and `Answer`), a case in
//! `handler` and a caller on [`RaftNode`]; a new replicated command needs nothing here (it is a
//! tern-store `Command`).
#![warn(missing_docs)]
// openraft's `StorageError` (the error type its storage traits require) is large; boxing it in
// our helpers would only move the allocation.
#![allow(clippy::result_large_err)]

pub mod backup;
pub mod cluster;
mod codec;
mod compaction;
mod handler;
mod handover;
mod leadership;
pub mod link;
pub mod log_store;
pub mod log_writer;
pub mod network;
pub mod node;
pub mod observers;
pub mod progress;
mod replicas;
mod roster;
mod routes;
#[cfg(feature = "sim")]
pub mod sim;
pub mod snapshot_data;
pub mod snapshots;
pub mod state_machine;
#[cfg(feature = "testing")]
pub mod testing;
mod transfers;

pub use cluster::MemberReport;
pub use node::{GroupStatus, LinkConfig, MoveLimits, RaftConfig, RaftNode, RelayAcceptor};

use tern_core::{GroupId, NodeId};

openraft::declare_raft_types!(
    /// Tern's openraft type configuration.
    pub TypeConfig:
        D = tern_store::Command,
        R = tern_store::Response,
        SnapshotData = snapshot_data::SnapshotData,
);

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
    /// This node holds no replica of the group (its replicas are on other nodes).
    #[error("{group}: no replica on this node")]
    NoReplica {
        /// The group.
        group: GroupId,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] tern_store::StoreError),
    /// The node is shutting down.
    #[error("shutting down")]
    Shutdown,
}
