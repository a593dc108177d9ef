//! [`RaftNode`]: the node's Raft groups — start, propose and read (forwarded to the group
//! leader over the node link when it is elsewhere), status, shutdown.
//!
//! A single node (no node link) initialises every group with itself as the one voter on first
//! start. A cluster member starts its groups once it knows the partition count: from its data
//! dir, from `tern cluster init`, or from the seed it joins through (see [`crate::cluster`]).

use crate::link::{
    Answer, ClusterInfo, GroupDigest, GroupView, LinkError, LinkTls, Peers, Refusal, Request,
    Transport,
};
use crate::log_store::LogStore;
use crate::log_writer::LogWriter;
use crate::network::Network;
use crate::observers::Observers;
use crate::snapshots::SnapshotDir;
use crate::state_machine::StateMachine;
use crate::{RaftError, TypeConfig};
use futures::future::try_join_all;
use futures::{StreamExt, TryStreamExt};
use openraft::error::{CheckIsLeaderError, ClientWriteError};
use openraft::{BasicNode, Config, Raft, RaftMetrics, SnapshotPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::config::StorageConfig;
use tern_core::{AccountId, GroupId, NodeId};
use tern_store::schema::CF_RAFT_META;
use tern_store::{Command, Db, Reader, Response};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Heartbeats keep followers from starting elections. openraft 0.9 also gives every
/// AppendEntries this long to come back, the follower's fsync included: at 100 ms, three nodes
/// on two cores taking 1 MiB messages from 20 senders timed out a thousand RPCs a node in ten
/// seconds, each resent in full, and nodes dropped out of readiness (31 of 200 transactions
/// cut). At 200 ms: about a hundred timeouts, no transaction cut, and failover unchanged (it is
/// set by the election timeouts below).
const HEARTBEAT_MS: u64 = 200;
/// Election timeouts: short, so a single node elects at once and a failover takes well under
/// two seconds. A follower campaigns only after a whole lease (the maximum) plus a random
/// timeout without word from its leader: 0.9 to 1.2 s, four or more missed heartbeats.
const ELECTION_TIMEOUT_MIN_MS: u64 = 300;
pub(crate) const ELECTION_TIMEOUT_MAX_MS: u64 = 600;
/// A snapshot travels in chunks of this size, each its own node-link call, so heartbeats of
/// every group keep flowing between chunks and memory stays bounded on both ends.
const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
/// How long one snapshot chunk may take, the last one including the follower's install of the
/// whole snapshot (which streams the file into RocksDB: seconds per GiB).
const SNAPSHOT_CHUNK_TIMEOUT_MS: u64 = 120_000;
/// How long a proposal or read may wait (for a leader, a quorum, the apply) before it is
/// reported unavailable.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long start-up of a single node waits for every group to elect itself.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before retrying a request whose leader just changed or could not be reached.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long a leader keeps trying to confirm a read with a quorum before it reports the group
/// unavailable: longer than an election, so a leader that has really lost its quorum has been
/// replaced by then.
const READ_QUORUM_PATIENCE: Duration = Duration::from_secs(3);
/// How many parts of one large body are proposed at once (8 x 512 KiB).
const PARTS_IN_FLIGHT: usize = 8;
/// `raft_meta` key (under the meta group) holding the partition count fixed at creation.
const META_PARTITIONS: u8 = 0xFF;

/// The node link of a cluster member.
#[derive(Clone)]
pub struct LinkConfig {
    /// Where the link listens.
    pub listen: String,
    /// The address peers dial.
    pub advertise: String,
    /// Links of existing members, for joining.
    pub seeds: Vec<String>,
    /// The mTLS material.
    pub tls: LinkTls,
    /// How replicas are placed and moved.
    pub moves: MoveLimits,
}

/// How many replicas each partition has and how fast they move (`[cluster]`).
#[derive(Debug, Clone, Copy)]
pub struct MoveLimits {
    /// Voters per partition.
    pub replication_factor: usize,
    /// Moves each node leads at once.
    pub max_concurrent: usize,
    /// Snapshot bytes per second sent to replicas being added (0 = no limit).
    pub bytes_per_sec: u64,
}

impl Default for MoveLimits {
    fn default() -> Self {
        MoveLimits {
            replication_factor: 3,
            max_concurrent: 2,
            bytes_per_sec: 0,
        }
    }
}

/// What carries a node's link.
pub(crate) enum Wire {
    /// mTLS over TCP, listening on `listen`.
    Tls {
        /// Where the link listens.
        listen: String,
        /// The mTLS material.
        tls: LinkTls,
    },
    /// The simulator's seeded in-process network.
    #[cfg(feature = "sim")]
    Sim(crate::sim::SimNet),
}

impl Wire {
    /// The calling side for node `me` of data dir `incarnation`, talking to whom `roster`
    /// allows.
    fn transport(
        &self,
        me: NodeId,
        incarnation: u64,
        roster: Arc<dyn crate::link::Roster>,
    ) -> Arc<dyn Transport> {
        match self {
            Wire::Tls { listen, tls } => Arc::new(Peers::with_roster(
                me,
                incarnation,
                roster,
                tls.clone(),
                source_ip(listen),
            )),
            #[cfg(feature = "sim")]
            Wire::Sim(net) => Arc::new(net.endpoint(me, incarnation, roster)),
        }
    }

    /// Starts answering peers for `node` (until its stop token is cancelled).
    async fn serve(&self, node: &RaftNode) -> Result<(), RaftError> {
        match self {
            Wire::Tls { listen, tls } => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| unavailable(GroupId::META, format!("node link {listen}: {e}")))?;
                tokio::spawn(crate::link::serve(
                    listener,
                    tls.clone(),
                    Arc::new(node.clone()),
                    node.inner.stop.clone(),
                ));
            }
            #[cfg(feature = "sim")]
            Wire::Sim(net) => net.attach(node),
        }
        Ok(())
    }
}

/// A node link as [`RaftNode::start_with`] takes it.
pub(crate) struct LinkSetup {
    /// The address peers dial.
    pub advertise: String,
    /// Links of existing members, for joining.
    pub seeds: Vec<String>,
    /// How replicas are placed and moved.
    pub moves: MoveLimits,
    /// What carries it.
    pub wire: Wire,
}

/// Knobs only the simulator turns; the defaults are what a real node runs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tuning {
    /// Sync the WAL on the runtime's own thread instead of a syncer thread, so the simulated
    /// clock never runs while an fsync is under way and the order of events does not depend
    /// on thread timing.
    pub inline_wal_sync: bool,
    /// openraft's election timeout range (min, max) in ms instead of the default.
    pub election_timeout_ms: Option<(u64, u64)>,
}

/// How to start the Raft layer.
#[derive(Clone)]
pub struct RaftConfig {
    /// This node's id.
    pub node_id: NodeId,
    /// RocksDB lives in `data_dir/db`.
    pub data_dir: PathBuf,
    /// Number of data partitions of a single node (used when the data dir is new; a stored
    /// value wins). A cluster's count comes from `cluster init`.
    pub partitions: u32,
    /// The node link; `None` for a single node.
    pub link: Option<LinkConfig>,
    /// Snapshots and log retention (`[storage]`).
    pub storage: StorageConfig,
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
    /// Log index of the group's current snapshot, if it has one.
    pub snapshot_index: Option<u64>,
    /// Last log index purged (the log starts after it).
    pub purged_index: Option<u64>,
}

/// Which partitions a node starts with (the meta group always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartWith {
    /// All of them: a single node, or the first node of a new cluster.
    Every,
    /// None: a node joining a cluster gets its replicas as their leaders add it.
    Meta,
    /// Those with state in the data dir: a cluster member restarting.
    Stored,
}

/// One group's replica on this node.
#[derive(Clone)]
pub(crate) struct Replica {
    pub raft: Raft<TypeConfig>,
    /// Bytes this process appended to the group's log (for size-triggered snapshots).
    pub growth: crate::compaction::LogGrowth,
    /// When this process started the replica.
    pub opened: Instant,
}

/// The node link as the Raft layer uses it.
pub(crate) struct Link {
    pub peers: Arc<dyn Transport>,
    pub advertise: String,
    pub seeds: Vec<String>,
    pub moves: MoveLimits,
}

pub(crate) struct Inner {
    pub node_id: NodeId,
    /// This data dir's random incarnation (see [`crate::roster`]).
    pub incarnation: u64,
    /// The meta group's record of node incarnations and removed ids, cached.
    pub book: crate::roster::BookCache,
    pub db: Db,
    pub writer: LogWriter,
    /// Snapshot files of every group.
    pub snapshots: Arc<SnapshotDir>,
    /// `[storage]`: snapshot triggers beyond openraft's own.
    pub storage: StorageConfig,
    pub raft_config: Arc<Config>,
    /// The partition count: unset until the node is in a cluster (or has started alone).
    pub partitions: OnceLock<u32>,
    /// The groups this node runs a replica of (the meta group and some or all partitions).
    pub groups: RwLock<BTreeMap<GroupId, Replica>>,
    /// Serialises starting and stopping groups (init, join and moves may race).
    pub starting: tokio::sync::Mutex<()>,
    pub observers: Observers,
    /// Paces the snapshot chunks this node sends (`[cluster] move_rate_limit`).
    pub snapshot_pace: Arc<crate::network::SnapshotPace>,
    /// How far the snapshots this node sends have got.
    pub transfers: Arc<crate::transfers::Transfers>,
    /// When `cluster status` first saw the replica moves under way, and how many.
    pub rebalance: crate::progress::RebalanceClock,
    /// The last known leader of groups this node has no replica of.
    pub routes: crate::routes::Routes,
    /// Who heard from which leader when, and the handovers under way.
    pub leadership: crate::leadership::Leadership,
    pub link: Option<Link>,
    /// Stops the link server and the cluster maintenance loop.
    pub stop: CancellationToken,
    /// Becomes true once the groups run.
    pub started: tokio::sync::watch::Sender<bool>,
    /// Serves the client sessions other nodes relay here (set by the layer above).
    pub relay_acceptor: OnceLock<Arc<dyn RelayAcceptor>>,
}

/// Serves client sessions that other nodes relay to this one (IMAP, POP3: the session runs
/// where the account's mail is). Implemented above this crate.
pub trait RelayAcceptor: Send + Sync + 'static {
    /// Serves the session node `from` relays on `stream`, described by `request`.
    fn accept(
        &self,
        from: NodeId,
        request: Vec<u8>,
        stream: crate::link::RelayedStream,
    ) -> futures::future::BoxFuture<'static, ()>;
}

/// The node's Raft groups. Cheap to clone.
#[derive(Clone)]
pub struct RaftNode {
    pub(crate) inner: Arc<Inner>,
}

/// The size of a snapshot chunk: 1 MiB, or a quarter of a second's worth at
/// `move_rate_limit` (at least 64 KiB), so that paced chunks keep arriving often.
fn snapshot_chunk_bytes(move_bytes_per_sec: u64) -> u64 {
    match move_bytes_per_sec {
        0 => SNAPSHOT_CHUNK_BYTES,
        rate => (rate / 4).clamp(64 * 1024, SNAPSHOT_CHUNK_BYTES),
    }
}

fn raft_config(storage: &StorageConfig, move_bytes_per_sec: u64) -> Result<Arc<Config>, RaftError> {
    let config = Config {
        cluster_name: "tern".into(),
        heartbeat_interval: HEARTBEAT_MS,
        election_timeout_min: ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(storage.snapshot_entries.max(1)),
        max_in_snapshot_log_to_keep: storage.log_keep_entries,
        // A follower further behind than one snapshot interval gets the snapshot.
        replication_lag_threshold: storage.snapshot_entries.max(1),
        snapshot_max_chunk_size: snapshot_chunk_bytes(move_bytes_per_sec),
        install_snapshot_timeout: SNAPSHOT_CHUNK_TIMEOUT_MS,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| unavailable(GroupId::META, format!("invalid raft config: {e}")))
}

pub(crate) fn unavailable(group: GroupId, reason: impl ToString) -> RaftError {
    RaftError::Unavailable {
        group,
        reason: reason.to_string(),
    }
}

/// The partition count stored in the data dir, if any.
fn stored_partitions(db: &Db) -> Result<Option<u32>, RaftError> {
    let key = tern_store::schema::raft_meta(GroupId::META, META_PARTITIONS);
    let Some(bytes) = db.get(CF_RAFT_META, &key)? else {
        return Ok(None);
    };
    let stored: [u8; 4] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| unavailable(GroupId::META, "corrupt partition count"))?;
    Ok(Some(u32::from_be_bytes(stored)))
}

pub(crate) fn store_partitions(db: &Db, count: u32) -> Result<(), RaftError> {
    let key = tern_store::schema::raft_meta(GroupId::META, META_PARTITIONS);
    let mut batch = tern_store::db::WriteBatch::default();
    batch.put_cf(&db.cf(CF_RAFT_META)?, key, count.to_be_bytes());
    db.write(batch, true)?;
    Ok(())
}

/// The IP outbound links leave from: the node's own link address, when it names one.
fn source_ip(listen: &str) -> Option<std::net::IpAddr> {
    listen
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

impl RaftNode {
    /// Opens RocksDB and starts the groups. A single node initialises them as one-voter groups
    /// when the data dir is new and returns once each has a leader; a cluster member starts its
    /// node link and returns at once (its groups elect as peers answer).
    pub async fn start(config: RaftConfig) -> Result<RaftNode, RaftError> {
        if let Some(l) = &config.link
            && l.tls.node != Some(config.node_id)
        {
            return Err(unavailable(
                GroupId::META,
                format!(
                    "[cluster] cert names {}, but node_id is {}: make this node's certificate \
                     with `tern cluster cert --node {}`",
                    l.tls
                        .node
                        .map_or("no single node".to_string(), |n| format!("node {n}")),
                    config.node_id,
                    config.node_id
                ),
            ));
        }
        let link = config.link.as_ref().map(|l| LinkSetup {
            advertise: l.advertise.clone(),
            seeds: l.seeds.clone(),
            moves: l.moves,
            wire: Wire::Tls {
                listen: l.listen.clone(),
                tls: l.tls.clone(),
            },
        });
        RaftNode::start_with(&config, link, Tuning::default()).await
    }

    /// [`RaftNode::start`] with the node link carried by `link` (`config.link` is not read)
    /// and `tuning` applied.
    pub(crate) async fn start_with(
        config: &RaftConfig,
        link: Option<LinkSetup>,
        tuning: Tuning,
    ) -> Result<RaftNode, RaftError> {
        let db_path = config.data_dir.join("db");
        std::fs::create_dir_all(&db_path).map_err(|e| unavailable(GroupId::META, e))?;
        let db = Db::open(&db_path)?;
        let writer = if tuning.inline_wal_sync {
            LogWriter::start_inline(db.clone())
        } else {
            LogWriter::start(db.clone()).map_err(|e| unavailable(GroupId::META, e))?
        };
        let snapshots = SnapshotDir::open(&config.data_dir)
            .map(Arc::new)
            .map_err(|e| unavailable(GroupId::META, format!("snapshot dir: {e}")))?;
        let incarnation = crate::roster::incarnation(&db)?;
        let mut raft_config = raft_config(
            &config.storage,
            link.as_ref().map_or(0, |l| l.moves.bytes_per_sec),
        )?;
        if let Some((min, max)) = tuning.election_timeout_ms {
            let mut tuned = (*raft_config).clone();
            tuned.election_timeout_min = min;
            tuned.election_timeout_max = max;
            raft_config = tuned
                .validate()
                .map(Arc::new)
                .map_err(|e| unavailable(GroupId::META, format!("invalid raft config: {e}")))?;
        }
        let node = RaftNode {
            inner: Arc::new_cyclic(|me| Inner {
                node_id: config.node_id,
                incarnation,
                book: Default::default(),
                db,
                writer,
                snapshots,
                storage: config.storage.clone(),
                raft_config,
                partitions: OnceLock::new(),
                groups: RwLock::new(BTreeMap::new()),
                starting: tokio::sync::Mutex::new(()),
                observers: Observers::default(),
                leadership: Default::default(),
                routes: Default::default(),
                snapshot_pace: Arc::new(crate::network::SnapshotPace::new(
                    link.as_ref().map_or(0, |l| l.moves.bytes_per_sec),
                )),
                transfers: Default::default(),
                rebalance: Default::default(),
                link: link.as_ref().map(|l| Link {
                    peers: l.wire.transport(
                        config.node_id,
                        incarnation,
                        Arc::new(crate::roster::NodeRoster(me.clone())),
                    ),
                    advertise: l.advertise.clone(),
                    seeds: l.seeds.clone(),
                    moves: l.moves,
                }),
                stop: CancellationToken::new(),
                started: tokio::sync::watch::channel(false).0,
                relay_acceptor: OnceLock::new(),
            }),
        };
        match &link {
            None => {
                let partitions = match stored_partitions(&node.inner.db)? {
                    Some(p) => p,
                    None => {
                        let p = config.partitions.max(1);
                        store_partitions(&node.inner.db, p)?;
                        p
                    }
                };
                node.start_groups(partitions, StartWith::Every).await?;
                let me = BTreeMap::from([(config.node_id, BasicNode::default())]);
                node.initialize_groups(me).await?;
                node.wait_for_leaders().await?;
                tracing::info!(partitions, node_id = config.node_id, "raft groups started");
            }
            Some(link) => {
                link.wire.serve(&node).await?;
                if let Some(partitions) = stored_partitions(&node.inner.db)? {
                    node.start_groups(partitions, StartWith::Stored).await?;
                    tracing::info!(partitions, node_id = config.node_id, "raft groups started");
                } else {
                    tracing::info!(
                        node_id = config.node_id,
                        "not in a cluster yet: waiting for `tern cluster init` or `tern cluster join`"
                    );
                }
                tokio::spawn(crate::cluster::maintain(node.clone()));
                tracing::info!(advertise = %link.advertise, "node link listening");
            }
        }
        Ok(node)
    }

    /// Starts the meta group and those of the `partitions` data partitions `which` names (not
    /// yet initialised when they are new here).
    pub(crate) async fn start_groups(
        &self,
        partitions: u32,
        which: StartWith,
    ) -> Result<(), RaftError> {
        let _starting = self.inner.starting.lock().await;
        if self.inner.partitions.get().is_some() {
            return Ok(());
        }
        let mut open = vec![GroupId::META];
        for g in 1..=partitions {
            let group = GroupId(g);
            let wanted = match which {
                StartWith::Every => true,
                StartWith::Meta => false,
                StartWith::Stored => crate::replicas::has_state(&self.inner.db, group)?,
            };
            if wanted {
                open.push(group);
            }
        }
        let starts = open.into_iter().map(|g| self.open_replica(g));
        let replicas = try_join_all(starts).await?;
        {
            let mut groups = tern_core::sync::write(&self.inner.groups);
            for (group, replica) in replicas {
                groups.insert(group, replica);
            }
        }
        let _ = self.inner.partitions.set(partitions);
        tokio::spawn(crate::compaction::run(
            self.clone(),
            self.inner.storage.clone(),
        ));
        self.inner.started.send_replace(true);
        Ok(())
    }

    /// Opens `group`'s log and state on this node and starts its Raft (not yet initialised
    /// when the group is new here).
    pub(crate) async fn open_replica(
        &self,
        group: GroupId,
    ) -> Result<(GroupId, Replica), RaftError> {
        let inner = &self.inner;
        let peers = inner.link.as_ref().map(|l| l.peers.clone());
        let network = Network::new(
            group,
            peers,
            inner.snapshot_pace.clone(),
            inner.transfers.clone(),
        );
        let log = LogStore::new(group, inner.db.clone(), inner.writer.clone());
        let growth = log.growth();
        let sm = StateMachine::open(
            group,
            inner.db.clone(),
            inner.snapshots.clone(),
            inner.observers.clone(),
        )
        .map_err(|e| unavailable(group, e))?;
        let raft = Raft::new(inner.node_id, inner.raft_config.clone(), network, log, sm)
            .await
            .map_err(|e| unavailable(group, e))?;
        Ok((
            group,
            Replica {
                raft,
                growth,
                opened: Instant::now(),
            },
        ))
    }

    /// Initialises every group not yet initialised with `members` as its voters.
    pub(crate) async fn initialize_groups(
        &self,
        members: BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), RaftError> {
        for (group, raft) in self.groups()? {
            let initialized = raft
                .is_initialized()
                .await
                .map_err(|e| unavailable(group, e))?;
            if !initialized {
                raft.initialize(members.clone())
                    .await
                    .map_err(|e| unavailable(group, e))?;
            }
        }
        Ok(())
    }

    pub(crate) async fn wait_for_leaders(&self) -> Result<(), RaftError> {
        let waits = self.groups()?.into_iter().map(|(group, raft)| async move {
            raft.wait(Some(LEADER_TIMEOUT))
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await
                .map(|_| ())
                .map_err(|e| unavailable(group, e))
        });
        try_join_all(waits).await.map(|_| ())
    }

    /// The groups this node runs, in order (meta first); an error before the node is in a
    /// cluster.
    pub(crate) fn groups(&self) -> Result<Vec<(GroupId, Raft<TypeConfig>)>, RaftError> {
        if !self.has_groups() {
            return Err(unavailable(
                GroupId::META,
                "this node is not in a cluster yet",
            ));
        }
        Ok(tern_core::sync::read(&self.inner.groups)
            .iter()
            .map(|(g, r)| (*g, r.raft.clone()))
            .collect())
    }

    /// Every replica this node runs, with its log growth counter.
    pub(crate) fn replicas(&self) -> Vec<(GroupId, Replica)> {
        tern_core::sync::read(&self.inner.groups)
            .iter()
            .map(|(g, r)| (*g, r.clone()))
            .collect()
    }

    /// `group`'s Raft on this node.
    pub(crate) fn group(&self, group: GroupId) -> Result<Raft<TypeConfig>, RaftError> {
        if !self.has_groups() {
            return Err(unavailable(group, "this node is not in a cluster yet"));
        }
        tern_core::sync::read(&self.inner.groups)
            .get(&group)
            .map(|r| r.raft.clone())
            .ok_or(RaftError::NoReplica { group })
    }

    /// Whether this node runs a replica of `group`.
    pub fn has_replica(&self, group: GroupId) -> bool {
        tern_core::sync::read(&self.inner.groups).contains_key(&group)
    }

    /// Returns once the groups run (at once on a single node or a member that restarted; after
    /// `cluster init` or `cluster join` on a new member).
    pub async fn wait_started(&self) {
        let mut started = self.inner.started.subscribe();
        let _ = started.wait_for(|s| *s).await;
    }

    /// Whether the groups are running (a cluster member that has not joined has none).
    pub fn has_groups(&self) -> bool {
        self.inner.partitions.get().is_some()
    }

    /// Number of data partitions (0 before the node is in a cluster).
    pub fn partitions(&self) -> u32 {
        self.inner.partitions.get().copied().unwrap_or(0)
    }

    /// Voters per partition (1 on a single node).
    pub fn replication_factor(&self) -> usize {
        self.inner
            .link
            .as_ref()
            .map_or(1, |l| l.moves.replication_factor)
    }

    /// How replica moves are limited (the defaults on a single node).
    pub(crate) fn move_limits(&self) -> MoveLimits {
        self.inner
            .link
            .as_ref()
            .map_or_else(MoveLimits::default, |l| l.moves)
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The partition that owns `account`.
    pub fn partition_of(&self, account: AccountId) -> GroupId {
        GroupId::partition_of(account, self.partitions().max(1))
    }

    /// Hears of every command this replica applies, in every group.
    pub fn observe(&self, observer: crate::observers::Observer) {
        self.inner.observers.add(observer);
    }

    /// Whether this node currently leads `group`.
    pub fn leads(&self, group: GroupId) -> bool {
        self.group(group)
            .is_ok_and(|raft| raft.metrics().borrow().current_leader == Some(self.inner.node_id))
    }

    pub(crate) fn metrics(&self, group: GroupId) -> Option<RaftMetrics<NodeId, BasicNode>> {
        self.group(group)
            .ok()
            .map(|raft| raft.metrics().borrow().clone())
    }

    /// The link address of `node`, from the group's membership or the meta group's.
    pub(crate) fn addr_of(&self, group: GroupId, node: NodeId) -> Option<String> {
        [group, GroupId::META].into_iter().find_map(|g| {
            self.metrics(g).and_then(|m| {
                m.membership_config
                    .membership()
                    .get_node(&node)
                    .map(|n| n.addr.clone())
            })
        })
    }

    /// The node link and `node`'s address as `group`'s membership (or the directory) has it.
    fn link_to(&self, group: GroupId, node: NodeId) -> Result<(&Link, String), LinkError> {
        let unreachable = |reason: &str| LinkError::Unreachable {
            node,
            reason: reason.into(),
        };
        let link = self
            .inner
            .link
            .as_ref()
            .ok_or_else(|| unreachable("no node link"))?;
        let addr = self
            .addr_of(group, node)
            .ok_or_else(|| unreachable("address unknown"))?;
        Ok((link, addr))
    }

    /// Calls `node` over the node link.
    pub(crate) async fn call(
        &self,
        group: GroupId,
        node: NodeId,
        request: &Request,
        timeout: Duration,
    ) -> Result<Answer, LinkError> {
        let (link, addr) = self.link_to(group, node)?;
        link.peers.call(node, &addr, request, timeout).await
    }

    /// Waits (until `deadline`) for `group` to know a leader.
    pub(crate) async fn leader(
        &self,
        group: GroupId,
        deadline: Instant,
    ) -> Result<NodeId, RaftError> {
        let raft = self.group(group)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        raft.wait(Some(remaining))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .ok()
            .and_then(|m| m.current_leader)
            .ok_or_else(|| unavailable(group, "no leader (no quorum?)"))
    }

    /// Proposes `command` to `group`; returns its response once it is committed on a quorum
    /// (log fsynced) and applied on the leader. When another node leads the group the command
    /// is forwarded there. A proposal whose fate is unknown (the link broke after sending) is
    /// reported unavailable: it may still commit.
    pub async fn propose(&self, group: GroupId, command: Command) -> Result<Response, RaftError> {
        // A large body goes first, in parts no larger than an ordinary entry (see
        // `tern_store::body`); the command then carries a reference to them.
        let upload = tern_core::DeliveryId::random().0 as u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let command = match tern_store::body::parts(command, upload, now) {
            Ok(cut) => {
                // Parts go several at a time: apply stores each under its own key, so their
                // order does not matter. At most [`PARTS_IN_FLIGHT`] wait at once, so each
                // keeps its own deadline whatever the body's size. Only the command that refers
                // to them waits until every part is in.
                let parts = cut.parts.into_iter().map(|p| self.propose_one(group, p));
                let responses: Vec<Response> = futures::stream::iter(parts)
                    .buffer_unordered(PARTS_IN_FLIGHT)
                    .try_collect()
                    .await?;
                for response in responses {
                    if response != Response::Ok {
                        return Err(unavailable(
                            group,
                            format!("a body part was refused: {response:?}"),
                        ));
                    }
                }
                cut.command
            }
            Err(whole) => *whole,
        };
        self.propose_one(group, command).await
    }

    async fn propose_one(&self, group: GroupId, command: Command) -> Result<Response, RaftError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        if !self.has_replica(group) {
            return self.propose_elsewhere(group, &command, deadline).await;
        }
        loop {
            let leader = self.leader(group, deadline).await?;
            if leader == self.inner.node_id {
                if self.inner.leadership.wait_handover(group).await {
                    continue; // the group may have a new leader now
                }
                // The command moves into the log; should leadership change in between, openraft
                // refuses it before appending and the caller sees a temporary failure.
                return self.propose_here(group, command).await;
            }
            match self.propose_at(group, leader, &command, deadline).await {
                Err(RaftError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => return other,
            }
        }
    }

    /// Proposes to a group this node holds no replica of: at the leader it last learnt of,
    /// else at the group's replicas as placement has them, else at any member, following
    /// the hints of those that know the leader.
    async fn propose_elsewhere(
        &self,
        group: GroupId,
        command: &Command,
        deadline: Instant,
    ) -> Result<Response, RaftError> {
        let routes = &self.inner.routes;
        let mut hinted = None;
        loop {
            let candidates = routes.candidates(
                group,
                hinted.take(),
                &self.members(),
                self.placement_members().place(group),
            );
            for node in candidates {
                match self.propose_at(group, node, command, deadline).await {
                    Ok(response) => {
                        routes.learn(group, node);
                        return Ok(response);
                    }
                    Err(RaftError::NotLeader {
                        leader: Some(leader),
                        ..
                    }) if leader != node => {
                        routes.learn(group, leader);
                        hinted = Some(leader);
                        break;
                    }
                    Err(RaftError::NotLeader { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if Instant::now() >= deadline {
                return Err(unavailable(group, "no replica of the group answered"));
            }
            if hinted.is_none() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    /// The nodes to relay a client session of `group` to, best first: its known leader, then
    /// its replicas as placement has them, then the other members (never this node).
    pub fn relay_candidates(&self, group: GroupId) -> Vec<NodeId> {
        let me = self.node_id();
        let mut candidates = self.inner.routes.candidates(
            group,
            None,
            &self.members(),
            self.placement_members().place(group),
        );
        candidates.retain(|n| *n != me);
        candidates
    }

    /// Opens a connection to `node` that relays one client session (`request` tells it which;
    /// see [`RelayAcceptor`]).
    pub async fn open_relay(
        &self,
        node: NodeId,
        request: Vec<u8>,
    ) -> Result<crate::link::RelayStream, LinkError> {
        let (link, addr) = self.link_to(GroupId::META, node)?;
        link.peers.open_relay(node, &addr, request).await
    }

    /// Serves the sessions other nodes relay here with `acceptor` (set once, at start).
    pub fn set_relay_acceptor(&self, acceptor: Arc<dyn RelayAcceptor>) {
        let _ = self.inner.relay_acceptor.set(acceptor);
    }

    /// Proposes on this node, which must lead the group.
    pub(crate) async fn propose_here(
        &self,
        group: GroupId,
        command: Command,
    ) -> Result<Response, RaftError> {
        let raft = self.group(group)?;
        // During a handover the proposal waits; then openraft refuses it if this node no
        // longer leads, and the caller retries at the new leader.
        self.inner.leadership.wait_handover(group).await;
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

    async fn propose_at(
        &self,
        group: GroupId,
        leader: NodeId,
        command: &Command,
        deadline: Instant,
    ) -> Result<Response, RaftError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let request = Request::Propose(group, command.clone());
        match self.call(group, leader, &request, remaining).await {
            Ok(Answer::Proposed(Ok(response))) => Ok(response),
            Ok(Answer::Proposed(Err(Refusal::NotLeader(leader)))) => {
                Err(RaftError::NotLeader { group, leader })
            }
            Ok(Answer::Proposed(Err(Refusal::Unavailable(why)))) => Err(unavailable(group, why)),
            Ok(other) => Err(unavailable(group, format!("unexpected reply {other:?}"))),
            // Never sent: as good as not the leader; wait for the next one.
            Err(LinkError::Unreachable { .. }) => Err(RaftError::NotLeader {
                group,
                leader: None,
            }),
            Err(e) => Err(unavailable(group, e)),
        }
    }

    /// A linearizable reader: waits until this replica has applied everything the group's
    /// leader had committed when the call began (the leader confirms its leadership with a
    /// quorum first). Reads then come from the local replica.
    pub async fn read(&self, group: GroupId) -> Result<Reader, RaftError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let leader = self.leader(group, deadline).await?;
            let index = if leader == self.inner.node_id {
                self.read_index_here(group).await
            } else {
                self.read_index_at(group, leader, deadline).await
            };
            match index {
                Ok(index) => {
                    self.wait_applied(group, index, deadline).await?;
                    return Ok(self.local_reader(group));
                }
                Err(RaftError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The read index of a group this node leads (after confirming leadership with a quorum).
    /// A confirmation that misses its quorum (the followers' acks have one heartbeat interval,
    /// which a busy machine can overrun) is tried again for up to [`READ_QUORUM_PATIENCE`].
    pub(crate) async fn read_index_here(&self, group: GroupId) -> Result<u64, RaftError> {
        let raft = self.group(group)?;
        let patience = Instant::now() + READ_QUORUM_PATIENCE;
        loop {
            // Confirming leadership now would renew the lease a handover is waiting out.
            self.inner.leadership.wait_handover(group).await;
            let checked = tokio::time::timeout(REQUEST_TIMEOUT, raft.get_read_log_id())
                .await
                .map_err(|_| unavailable(group, "read timed out"))?;
            match checked {
                Ok((read_log_id, _applied)) => return Ok(read_log_id.map_or(0, |l| l.index)),
                Err(openraft::error::RaftError::APIError(CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => {
                    return Err(RaftError::NotLeader {
                        group,
                        leader: f.leader_id,
                    });
                }
                Err(openraft::error::RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(
                    _,
                ))) if Instant::now() < patience => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Err(e) => return Err(unavailable(group, e)),
            }
        }
    }

    async fn read_index_at(
        &self,
        group: GroupId,
        leader: NodeId,
        deadline: Instant,
    ) -> Result<u64, RaftError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self
            .call(group, leader, &Request::ReadIndex(group), remaining)
            .await
        {
            Ok(Answer::ReadIndex(Ok(index))) => Ok(index),
            Ok(Answer::ReadIndex(Err(Refusal::NotLeader(leader)))) => {
                Err(RaftError::NotLeader { group, leader })
            }
            Ok(Answer::ReadIndex(Err(Refusal::Unavailable(why)))) => Err(unavailable(group, why)),
            Ok(other) => Err(unavailable(group, format!("unexpected reply {other:?}"))),
            Err(LinkError::Unreachable { .. }) => Err(RaftError::NotLeader {
                group,
                leader: None,
            }),
            Err(e) => Err(unavailable(group, e)),
        }
    }

    async fn wait_applied(
        &self,
        group: GroupId,
        index: u64,
        deadline: Instant,
    ) -> Result<(), RaftError> {
        let raft = self.group(group)?;
        let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        if applied >= index {
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        raft.wait(Some(remaining))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| unavailable(group, format!("replica did not catch up: {e}")))
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

    /// Status of every group on this node.
    pub async fn status(&self) -> Vec<GroupStatus> {
        let snapshots: Vec<_> = self
            .groups()
            .unwrap_or_default()
            .iter()
            .map(|(_, raft)| {
                let m = raft.metrics().borrow().clone();
                (m.snapshot.map(|l| l.index), m.purged.map(|l| l.index))
            })
            .collect();
        self.views()
            .into_iter()
            .zip(snapshots)
            .map(|(v, (snapshot_index, purged_index))| GroupStatus {
                group: v.group,
                leader: v.leader,
                voters: v.voters,
                last_log_index: v.last_log_index,
                applied_index: v.applied,
                snapshot_index,
                purged_index,
            })
            .collect()
    }

    /// This node's detailed view of every group it runs.
    pub fn views(&self) -> Vec<GroupView> {
        let Ok(groups) = self.groups() else {
            return Vec::new();
        };
        groups
            .into_iter()
            .map(|(group, raft)| {
                let m = raft.metrics().borrow().clone();
                let membership = m.membership_config.membership();
                let voters: Vec<NodeId> = membership.voter_ids().collect();
                let learners: Vec<NodeId> = membership.learner_ids().collect();
                let matched = m
                    .replication
                    .as_ref()
                    .map(|r| {
                        r.iter()
                            .map(|(id, log)| (*id, log.map_or(0, |l| l.index)))
                            .collect()
                    })
                    .unwrap_or_default();
                let bytes = if group == GroupId::META {
                    0
                } else {
                    self.local_reader(group).group_usage().unwrap_or(0)
                };
                GroupView {
                    group,
                    membership_index: m.membership_config.log_id().map_or(0, |l| l.index),
                    term: m.current_term,
                    leader: m.current_leader,
                    voters,
                    learners,
                    last_log_index: m.last_log_index.unwrap_or(0),
                    applied: m.last_applied.map_or(0, |l| l.index),
                    matched,
                    bytes,
                    sending: self.inner.transfers.of(group),
                }
            })
            .collect()
    }

    /// Per-group applied index and state digest on this replica.
    pub async fn digests(&self) -> Result<Vec<GroupDigest>, RaftError> {
        let node = self.clone();
        tokio::task::spawn_blocking(move || {
            let groups = node.groups()?;
            let mut out = Vec::with_capacity(groups.len());
            for (group, raft) in groups {
                let before = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
                let digest = node.local_reader(group).digest()?;
                let after = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
                if before != after {
                    return Err(unavailable(group, "still applying; try again"));
                }
                out.push(GroupDigest {
                    group,
                    applied: after,
                    digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| unavailable(GroupId::META, e))?
    }

    /// The members of the cluster and their link addresses, as the meta group records them.
    pub fn members(&self) -> BTreeMap<NodeId, String> {
        self.metrics(GroupId::META)
            .map(|m| {
                m.membership_config
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.addr.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The partition count and members.
    pub fn info(&self) -> ClusterInfo {
        ClusterInfo {
            partitions: self.partitions(),
            members: self.members(),
            replication_factor: self.replication_factor(),
        }
    }

    /// Whether this node can serve: it runs the meta group and every partition the placement
    /// puts here, and each has a leader that is really there — this node with a recent quorum
    /// ack, or another node this one heard from recently (a leader merely remembered from
    /// before a restart does not count).
    pub fn ready(&self) -> bool {
        let Ok(groups) = self.groups() else {
            return false;
        };
        let local: BTreeMap<GroupId, Raft<TypeConfig>> = groups.into_iter().collect();
        let recent = Duration::from_millis(2 * ELECTION_TIMEOUT_MAX_MS);
        let led = |group: GroupId| {
            let Some(raft) = local.get(&group) else {
                return false;
            };
            let m = raft.metrics().borrow().clone();
            match m.current_leader {
                Some(leader) if leader == self.inner.node_id => m
                    .millis_since_quorum_ack
                    .is_some_and(|ms| ms < recent.as_millis() as u64),
                Some(_) => self
                    .inner
                    .leadership
                    .since_heard(group)
                    .is_some_and(|since| since < recent),
                None => false,
            }
        };
        led(GroupId::META) && self.placed_partitions().into_iter().all(led)
    }

    /// Stops the node link, every group and the WAL syncer; RocksDB closes when the last
    /// handle is dropped.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        if let Some(link) = &self.inner.link {
            link.peers.close();
        }
        let groups = std::mem::take(&mut *tern_core::sync::write(&self.inner.groups));
        let stops = groups.into_iter().map(|(group, replica)| async move {
            if let Err(e) = replica.raft.shutdown().await {
                tracing::warn!(%group, error = %e, "raft group did not stop cleanly");
            }
        });
        futures::future::join_all(stops).await;
        self.inner.writer.stop().await;
    }

    pub(crate) fn store_partitions(&self, partitions: u32) -> Result<(), RaftError> {
        match stored_partitions(&self.inner.db)? {
            Some(p) if p != partitions => Err(unavailable(
                GroupId::META,
                format!("this data dir belongs to a cluster with {p} partitions, not {partitions}"),
            )),
            Some(_) => Ok(()),
            None => store_partitions(&self.inner.db, partitions),
        }
    }
}
