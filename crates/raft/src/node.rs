//! [`RaftNode`]: the node's Raft groups — start (initialising a fresh data dir as one-voter
//! groups), propose, linearizable and local reads, status, shutdown.

use crate::log_store::LogStore;
use crate::log_writer::LogWriter;
use crate::network::Network;
use crate::state_machine::StateMachine;
use crate::{RaftError, TypeConfig};
use futures::future::try_join_all;
use openraft::error::{CheckIsLeaderError, ClientWriteError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tern_core::{AccountId, GroupId, NodeId};
use tern_store::schema::CF_RAFT_META;
use tern_store::{Command, Db, Reader, Response};

/// Heartbeats keep followers from starting elections.
const HEARTBEAT_MS: u64 = 100;
/// Election timeouts: short, so a single node (and a failover) elects within a second.
const ELECTION_TIMEOUT_MIN_MS: u64 = 300;
const ELECTION_TIMEOUT_MAX_MS: u64 = 600;
/// A snapshot after this many applied entries, then older log entries are purged.
const SNAPSHOT_EVERY: u64 = 20_000;
/// Log entries kept behind a snapshot, so a lagging follower can catch up from the log.
const LOG_KEPT_AFTER_SNAPSHOT: u64 = 1_000;
/// How long a proposal or read may wait before it is reported unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long start-up waits for every group to elect a leader.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// `raft_meta` key (under the meta group) holding the partition count fixed at creation.
const META_PARTITIONS: u8 = 0xFF;

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
    /// Last log index on this node.
    pub last_log_index: u64,
    /// Last applied log index.
    pub applied_index: u64,
}

struct Inner {
    node_id: NodeId,
    db: Db,
    writer: LogWriter,
    /// Index = group id: 0 is meta, 1..=P the partitions.
    groups: Vec<Raft<TypeConfig>>,
}

/// The node's Raft groups. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    inner: Arc<Inner>,
}

fn raft_config() -> Result<Arc<Config>, RaftError> {
    let config = Config {
        cluster_name: "tern".into(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY),
        max_in_snapshot_log_to_keep: LOG_KEPT_AFTER_SNAPSHOT,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| RaftError::Unavailable {
            group: GroupId::META,
            reason: format!("invalid raft config: {e}"),
        })
}

/// The partition count: stored on first start, read back ever after.
fn partition_count(db: &Db, wanted: u32) -> Result<u32, RaftError> {
    let key = tern_store::schema::raft_meta(GroupId::META, META_PARTITIONS);
    if let Some(bytes) = db.get(CF_RAFT_META, &key)? {
        let stored: [u8; 4] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| RaftError::Unavailable {
                group: GroupId::META,
                reason: "corrupt partition count".into(),
            })?;
        return Ok(u32::from_be_bytes(stored));
    }
    let count = wanted.max(1);
    let mut batch = rocksdb::WriteBatch::default();
    batch.put_cf(&db.cf(CF_RAFT_META)?, key, count.to_be_bytes());
    db.write(batch, true)?;
    Ok(count)
}

fn unavailable(group: GroupId, reason: impl ToString) -> RaftError {
    RaftError::Unavailable {
        group,
        reason: reason.to_string(),
    }
}

impl RaftNode {
    /// Opens RocksDB, starts the meta group and every partition, initialises them as one-voter
    /// groups when the data dir is new, and returns once every group has a leader.
    pub async fn start(config: RaftConfig) -> Result<RaftNode, RaftError> {
        let db_path = config.data_dir.join("db");
        std::fs::create_dir_all(&db_path).map_err(|e| unavailable(GroupId::META, e))?;
        let db = Db::open(&db_path)?;
        let partitions = partition_count(&db, config.partitions)?;
        let writer = LogWriter::start(db.clone()).map_err(|e| unavailable(GroupId::META, e))?;
        let raft_config = raft_config()?;
        let node_id = config.node_id;
        let starts = (0..=partitions).map(|g| {
            let group = GroupId(g);
            let (db, writer, raft_config) = (db.clone(), writer.clone(), raft_config.clone());
            async move {
                let log = LogStore::new(group, db.clone(), writer);
                let sm = StateMachine::open(group, db).map_err(|e| unavailable(group, e))?;
                let raft = Raft::new(node_id, raft_config, Network, log, sm)
                    .await
                    .map_err(|e| unavailable(group, e))?;
                let initialized = raft
                    .is_initialized()
                    .await
                    .map_err(|e| unavailable(group, e))?;
                if !initialized {
                    let members = BTreeMap::from([(node_id, BasicNode::default())]);
                    raft.initialize(members)
                        .await
                        .map_err(|e| unavailable(group, e))?;
                }
                Ok::<_, RaftError>(raft)
            }
        });
        let groups = try_join_all(starts).await?;
        let node = RaftNode {
            inner: Arc::new(Inner {
                node_id,
                db,
                writer,
                groups,
            }),
        };
        node.wait_for_leaders().await?;
        tracing::info!(partitions, node_id, "raft groups started");
        Ok(node)
    }

    async fn wait_for_leaders(&self) -> Result<(), RaftError> {
        let waits = self
            .inner
            .groups
            .iter()
            .enumerate()
            .map(|(g, raft)| async move {
                raft.wait(Some(LEADER_TIMEOUT))
                    .metrics(|m| m.current_leader.is_some(), "a leader")
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable(GroupId(g as u32), e))
            });
        try_join_all(waits).await.map(|_| ())
    }

    fn group(&self, group: GroupId) -> Result<&Raft<TypeConfig>, RaftError> {
        self.inner
            .groups
            .get(group.0 as usize)
            .ok_or_else(|| unavailable(group, "no such group on this node"))
    }

    /// Number of data partitions.
    pub fn partitions(&self) -> u32 {
        (self.inner.groups.len() - 1) as u32
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The partition that owns `account`.
    pub fn partition_of(&self, account: AccountId) -> GroupId {
        GroupId::partition_of(account, self.partitions())
    }

    /// Proposes `command` to `group`; returns its response once it is committed on a quorum
    /// (log fsynced) and applied here.
    pub async fn propose(&self, group: GroupId, command: Command) -> Result<Response, RaftError> {
        let raft = self.group(group)?;
        let written = tokio::time::timeout(REQUEST_TIMEOUT, raft.client_write(command))
            .await
            .map_err(|_| unavailable(group, "proposal timed out"))?;
        match written {
            Ok(reply) => Ok(reply.data),
            Err(openraft::error::RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(RaftError::NotLeader {
                    group,
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(unavailable(group, e)),
        }
    }

    /// A linearizable reader: confirms leadership and waits until everything committed before
    /// the call is applied.
    pub async fn read(&self, group: GroupId) -> Result<Reader, RaftError> {
        let raft = self.group(group)?;
        let checked = tokio::time::timeout(REQUEST_TIMEOUT, raft.ensure_linearizable())
            .await
            .map_err(|_| unavailable(group, "read timed out"))?;
        match checked {
            Ok(_) => Ok(self.local_reader(group)),
            Err(openraft::error::RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(RaftError::NotLeader {
                    group,
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(unavailable(group, e)),
        }
    }

    /// A reader over whatever this replica has applied (for immutable blobs and cached
    /// directory lookups).
    pub fn local_reader(&self, group: GroupId) -> Reader {
        Reader::new(self.inner.db.clone(), group)
    }

    /// How many WAL fsyncs the node has done (group commit makes this far fewer than commits).
    pub fn wal_syncs(&self) -> u64 {
        self.inner.writer.syncs()
    }

    /// Status of every group.
    pub async fn status(&self) -> Vec<GroupStatus> {
        self.inner
            .groups
            .iter()
            .enumerate()
            .map(|(g, raft)| {
                let m = raft.metrics().borrow().clone();
                GroupStatus {
                    group: GroupId(g as u32),
                    leader: m.current_leader,
                    voters: m.membership_config.membership().voter_ids().collect(),
                    last_log_index: m.last_log_index.unwrap_or(0),
                    applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
                }
            })
            .collect()
    }

    /// Stops every group and the WAL syncer; RocksDB closes when the last handle is dropped.
    pub async fn shutdown(&self) {
        let stops = self.inner.groups.iter().map(|raft| raft.shutdown());
        for (g, result) in futures::future::join_all(stops)
            .await
            .into_iter()
            .enumerate()
        {
            if let Err(e) = result {
                tracing::warn!(group = g, error = %e, "raft group did not stop cleanly");
            }
        }
        self.inner.writer.stop().await;
    }
}
