//! One simulated run from a seed: boot the cluster, run clients and the fault schedule for a
//! while of simulated time, heal everything, wait for the replicas to agree, check.

use super::check::{check_state, converge};
use super::cluster::SimCluster;
use super::faults::{self, Planned, describe, play};
use super::history::History;
use super::net::{SimNet, Weather};
use super::rng::SimRng;
use super::workload::{Client, WORK, propose_until, reader};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::sync::lock;
use tern_core::{AccountId, GroupId};
use tern_store::{Command, Response};
use tokio::time::Instant;

/// What a run does.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the fault schedule, the workload and the network's choices follow from it.
    pub seed: u64,
    /// Nodes (3 to 5).
    pub nodes: usize,
    /// Data partitions.
    pub partitions: u32,
    /// Accounts written to.
    pub accounts: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Simulated time of the workload under faults.
    pub duration: Duration,
    /// Whether faults are injected.
    pub faults: bool,
}

impl SimConfig {
    /// The run of `seed` as `cargo test` runs it.
    pub fn for_seed(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            nodes: 3,
            partitions: 2,
            accounts: 3,
            clients: 4,
            duration: Duration::from_secs(30),
            faults: true,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Digest of the event trace (two runs of one seed should match).
    pub trace: u64,
    /// Events in the trace.
    pub events: u64,
    /// Simulated time from boot to the end of the checks.
    pub simulated: Duration,
    /// Operations acknowledged.
    pub acked: u64,
    /// Operations whose outcome stayed unknown.
    pub unknown: u64,
    /// The faults injected, in order.
    pub faults: Vec<String>,
    /// The faults planned, in order, without their times: what the seed alone decides.
    pub schedule: Vec<String>,
    /// Broken invariants (empty: the run is clean).
    pub violations: Vec<String>,
}

/// Runs `config` on a current-thread runtime with a paused clock, and returns once every
/// RocksDB of the run has closed and its files are gone.
pub fn run(config: &SimConfig) -> SimReport {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failed(config.seed, format!("no runtime: {e}")),
    };
    let (report, root) = runtime.block_on(simulate(config));
    drop(runtime);
    if let Some((root, dbs)) = root {
        for db in dbs {
            // The runtime is gone, so every handle is; wait for RocksDB's own threads.
            for _ in 0..2000 {
                if !db.exists() || tern_store::Db::open(&db).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        drop(root);
    }
    report
}

fn failed(seed: u64, why: String) -> SimReport {
    SimReport {
        seed,
        trace: 0,
        events: 0,
        simulated: Duration::ZERO,
        acked: 0,
        unknown: 0,
        faults: Vec::new(),
        schedule: Vec::new(),
        violations: vec![why],
    }
}

type Root = Option<(tempfile::TempDir, Vec<std::path::PathBuf>)>;

async fn simulate(config: &SimConfig) -> (SimReport, Root) {
    let mut rng = SimRng::new(config.seed);
    // The plan comes first, from its own stream: nothing the run does can change it.
    let mut fault_rng = rng.fork();
    let plan = match config.faults {
        true => faults::plan(&mut fault_rng, config.nodes, config.duration),
        false => Vec::new(),
    };
    let net = SimNet::new(rng.fork());
    let start = Instant::now();
    let mut cluster = match SimCluster::new(net.clone(), config.nodes, config.partitions, &mut rng)
    {
        Ok(c) => c,
        Err(e) => return (failed(config.seed, e), None),
    };
    let mut report = failed(config.seed, String::new());
    report.violations.clear();
    let outcome = scenario(config, &mut cluster, &mut rng, &plan, &mut report).await;
    if let Err(e) = outcome {
        report.violations.push(e);
    }
    cluster.shutdown().await;
    (report.trace, report.events) = net.trace();
    report.simulated = start.elapsed();
    (report, cluster.take_root())
}

async fn scenario(
    config: &SimConfig,
    cluster: &mut SimCluster,
    rng: &mut SimRng,
    plan: &[Planned],
    report: &mut SimReport,
) -> Result<(), String> {
    let net = cluster.net.clone();
    cluster
        .boot(Instant::now() + Duration::from_secs(120))
        .await?;
    let accounts = setup(cluster, rng, config.accounts).await?;

    let history = Arc::new(Mutex::new(History::default()));
    let started = Instant::now();
    let end = started + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..config.clients {
        let client = Client::new(
            c as u64 + 1,
            rng.fork(),
            accounts.clone(),
            history.clone(),
            cluster.board.clone(),
            net.clone(),
        );
        tasks.spawn(client.run(end));
    }
    tasks.spawn(reader(
        rng.fork(),
        accounts.clone(),
        history.clone(),
        cluster.board.clone(),
        end,
    ));
    report.schedule = plan.iter().map(|p| describe(cluster, &p.fault)).collect();
    play(cluster, plan, started, &mut report.faults).await?;
    while tasks.join_next().await.is_some() {}

    // Heal everything, bring back every crashed node, and let the replicas agree.
    net.set_weather(Weather::calm());
    net.heal();
    for i in 0..cluster.machines.len() {
        if cluster.machines[i].node.is_none() {
            cluster.start(i).await?;
        }
    }
    converge(cluster, Instant::now() + Duration::from_secs(120)).await?;
    let h = lock(&history);
    report.acked = h.acked;
    report.unknown = h.unknown;
    report.violations.extend(h.violations.iter().cloned());
    report
        .violations
        .extend(check_state(cluster, &accounts, &h));
    Ok(())
}

/// Adds the domain and the accounts, each with a `Work` mailbox.
async fn setup(
    cluster: &SimCluster,
    rng: &mut SimRng,
    accounts: usize,
) -> Result<Vec<AccountId>, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let board = &cluster.board;
    let meta = |_: &crate::RaftNode| GroupId::META;
    let domain = Command::AddDomain {
        name: "sim.test".into(),
        now: 1,
    };
    propose_until(board, rng, meta, domain, deadline).await?;
    let mut ids = Vec::new();
    for i in 0..accounts {
        let add = Command::AddAccount {
            address: format!("u{i}@sim.test"),
            password_hash: "x".into(),
            quota: 0,
            now: 1_700_000_000,
        };
        let id = match propose_until(board, rng, meta, add, deadline).await? {
            Response::AccountAdded(id) => id,
            other => return Err(format!("adding an account: {other:?}")),
        };
        let at = move |n: &crate::RaftNode| n.partition_of(id);
        let init = Command::InitAccount {
            account: id,
            now: 1_700_000_000,
        };
        propose_until(board, rng, at, init, deadline).await?;
        let work = Command::CreateMailbox {
            account: id,
            name: WORK.into(),
            special_use: None,
            now: 1_700_000_000,
        };
        propose_until(board, rng, at, work, deadline).await?;
        ids.push(id);
    }
    Ok(ids)
}
