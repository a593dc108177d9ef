//! The machines of a run: each has a node id and a data dir; its node can be started,
//! crashed (cut off at once, its tasks and Raft groups stopped without a clean shutdown, then
//! restarted from the same RocksDB), or wiped (restarted from an empty data dir, so with a new
//! incarnation that the cluster must refuse).

use super::net::SimNet;
use super::rng::SimRng;
use crate::node::{LinkSetup, MoveLimits, Tuning, Wire};
use crate::{RaftConfig, RaftNode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// How long a crashed node's last handles may take to go before it counts as stuck.
const CLOSE_PATIENCE: Duration = Duration::from_secs(60);

/// One simulated machine.
pub struct Machine {
    /// Its node id.
    pub id: NodeId,
    /// Its data dir.
    dir: PathBuf,
    /// The running node, if up.
    pub node: Option<RaftNode>,
    /// Whether its data dir was wiped (it is then refused by the cluster).
    pub wiped: bool,
    /// Its election timeout (ms): fixed per machine, drawn from the seed, since openraft's
    /// own draw is not seeded.
    election_ms: u64,
}

/// The link address of node `id`.
pub fn addr(id: NodeId) -> String {
    format!("sim-{id}")
}

/// The nodes running at the moment, by id, for clients to pick from.
pub type Board = Arc<Mutex<BTreeMap<NodeId, RaftNode>>>;

/// The machines of one run.
pub struct SimCluster {
    /// What clients see of it.
    pub board: Board,
    /// The network they share.
    pub net: SimNet,
    /// Every machine (index = node id - 1).
    pub machines: Vec<Machine>,
    partitions: u32,
    root: Option<tempfile::TempDir>,
}

impl SimCluster {
    /// `nodes` machines with fresh data dirs under a temporary directory.
    pub fn new(
        net: SimNet,
        nodes: usize,
        partitions: u32,
        rng: &mut SimRng,
    ) -> Result<SimCluster, String> {
        // Memory-backed when the machine has it: the run is about ordering, not the disk.
        let shm = std::path::Path::new("/dev/shm");
        let root = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        }
        .map_err(|e| e.to_string())?;
        let machines = (1..=nodes as NodeId)
            .map(|id| Machine {
                id,
                dir: root.path().join(format!("n{id}")),
                node: None,
                wiped: false,
                election_ms: 300 + 20 * rng.range(0, 15),
            })
            .collect();
        Ok(SimCluster {
            board: Board::default(),
            net,
            machines,
            partitions,
            root: Some(root),
        })
    }

    /// Starts machine `i`'s node over its data dir, waiting for a crashed predecessor's
    /// RocksDB to close.
    pub async fn start(&mut self, i: usize) -> Result<(), String> {
        let m = &self.machines[i];
        let config = RaftConfig {
            node_id: m.id,
            data_dir: m.dir.clone(),
            partitions: self.partitions,
            link: None,
            storage: Default::default(),
        };
        let tuning = Tuning {
            inline_wal_sync: true,
            election_timeout_ms: Some((m.election_ms, m.election_ms + 1)),
        };
        let deadline = Instant::now() + CLOSE_PATIENCE;
        let node = loop {
            let link = LinkSetup {
                advertise: addr(m.id),
                seeds: vec![addr(1)],
                moves: MoveLimits::default(),
                wire: Wire::Sim(self.net.clone()),
            };
            match RaftNode::start_with(&config, Some(link), tuning).await {
                Ok(node) => break node,
                Err(e) if e.to_string().contains("lock") && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(format!("node {} did not start: {e}", m.id)),
            }
        };
        self.net.note(&[10, m.id]);
        lock(&self.board).insert(m.id, node.clone());
        self.machines[i].node = Some(node);
        Ok(())
    }

    /// Crashes machine `i`: off the network at once, then its groups and tasks stop without
    /// a clean shutdown (nothing is synced or handed over).
    pub async fn crash(&mut self, i: usize) {
        let Some(node) = self.machines[i].node.take() else {
            return;
        };
        self.net.note(&[11, node.node_id()]);
        lock(&self.board).remove(&node.node_id());
        self.net.detach(&addr(node.node_id()));
        node.inner.stop.cancel();
        let groups = std::mem::take(&mut *tern_core::sync::write(&node.inner.groups));
        for (_, replica) in groups {
            let _ = tokio::time::timeout(Duration::from_secs(5), replica.raft.shutdown()).await;
        }
    }

    /// Crashes machine `i` and starts it again from an empty data dir.
    pub async fn wipe(&mut self, i: usize) -> Result<(), String> {
        self.crash(i).await;
        let db = self.machines[i].dir.join("db");
        let deadline = Instant::now() + CLOSE_PATIENCE;
        // The old RocksDB must be closed (its lock free) before its files go.
        while db.exists() {
            match tern_store::Db::open(&db) {
                Ok(reopened) => {
                    drop(reopened);
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => return Err(format!("node {} never closed: {e}", i + 1)),
            }
        }
        std::fs::remove_dir_all(&self.machines[i].dir).map_err(|e| e.to_string())?;
        self.machines[i].wiped = true;
        self.net.note(&[12, self.machines[i].id]);
        self.start(i).await
    }

    /// Creates the cluster: node 1 initialises it, the others join through it; returns once
    /// every group has all its voters (or fails at `deadline`).
    pub async fn boot(&mut self, deadline: Instant) -> Result<(), String> {
        for i in 0..self.machines.len() {
            self.start(i).await?;
        }
        let first = self.node(0).ok_or("node 1 is down")?;
        first
            .init_cluster(self.partitions)
            .await
            .map_err(|e| format!("init: {e}"))?;
        for i in 1..self.machines.len() {
            let node = self.node(i).ok_or("a node is down")?;
            loop {
                match node.join_cluster(Some(addr(1))).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() >= deadline => return Err(format!("join: {e}")),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        let voters = self.machines.len().min(3);
        loop {
            let settled = first.views().iter().all(|v| v.voters.len() == voters)
                && first.views().len() == self.partitions as usize + 1
                && self.live().iter().all(|n| n.ready());
            if settled {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("the cluster did not settle after boot".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Machine `i`'s node, if it runs.
    pub fn node(&self, i: usize) -> Option<RaftNode> {
        self.machines[i].node.clone()
    }

    /// The running nodes that hold groups (a wiped node that was refused holds none).
    pub fn live(&self) -> Vec<RaftNode> {
        self.machines
            .iter()
            .filter_map(|m| m.node.clone())
            .filter(|n| n.has_groups())
            .collect()
    }

    /// Every running node's groups, for the checker: `(node, group)` pairs.
    pub fn replicas(&self) -> Vec<(RaftNode, GroupId)> {
        self.live()
            .into_iter()
            .flat_map(|n| {
                n.views()
                    .into_iter()
                    .map(move |v| (n.clone(), v.group))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The data dirs, to be deleted once every RocksDB has closed (after the runtime).
    pub fn take_root(&mut self) -> Option<(tempfile::TempDir, Vec<PathBuf>)> {
        let dirs = self.machines.iter().map(|m| m.dir.join("db")).collect();
        self.root.take().map(|r| (r, dirs))
    }

    /// Stops every node (at the end of a run).
    pub async fn shutdown(&mut self) {
        for m in &mut self.machines {
            if let Some(node) = m.node.take() {
                lock(&self.board).remove(&node.node_id());
                self.net.detach(&addr(node.node_id()));
                node.shutdown().await;
            }
        }
    }
}
