//! One simulated run from a seed: boot the cluster, run clients and the fault schedule for a
//! while of simulated time, heal everything, wait for the replicas to agree, check.

use super::check::{check_state, converge};
use super::cluster::SimCluster;
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
    /// The faults injected, in order, without their times: what the seed alone decides.
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
    let net = SimNet::new(rng.fork());
    let start = Instant::now();
    let mut cluster = match SimCluster::new(net.clone(), config.nodes, config.partitions, &mut rng)
    {
        Ok(c) => c,
        Err(e) => return (failed(config.seed, e), None),
    };
    let mut report = failed(config.seed, String::new());
    report.violations.clear();
    let outcome = scenario(config, &mut cluster, &mut rng, &mut report).await;
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
    report: &mut SimReport,
) -> Result<(), String> {
    let net = cluster.net.clone();
    cluster
        .boot(Instant::now() + Duration::from_secs(120))
        .await?;
    let accounts = setup(cluster, rng, config.accounts).await?;

    let history = Arc::new(Mutex::new(History::default()));
    let end = Instant::now() + config.duration;
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
    if config.faults {
        faults(cluster, rng, end, &mut report.faults).await?;
        report.schedule = report
            .faults
            .iter()
            .map(|f| {
                f.split_once(' ')
                    .map_or(f.clone(), |(_, what)| what.to_string())
            })
            .collect();
    }
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

/// The fault schedule until `end`: network weather, partitions, crashes with restart, and at
/// most one disk wipe per run.
async fn faults(
    cluster: &mut SimCluster,
    rng: &mut SimRng,
    end: Instant,
    log: &mut Vec<String>,
) -> Result<(), String> {
    let net = cluster.net.clone();
    let n = cluster.machines.len();
    let mut wiped = false;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.range(300, 3000))).await;
        let at = net.elapsed().as_millis();
        let i = rng.pick(n);
        let id = cluster.machines[i].id;
        match rng.range(0, 100) {
            0..30 => {
                let weather = Weather {
                    loss: rng.range(0, 30) as f64 / 100.0,
                    max_delay: Duration::from_millis(rng.range(1, 400)),
                };
                log.push(format!("{at}ms weather {weather:?}"));
                net.note(&[
                    30,
                    (weather.loss * 100.0) as u64,
                    weather.max_delay.as_millis() as u64,
                ]);
                net.set_weather(weather);
            }
            30..55 => {
                let hold = Duration::from_millis(rng.range(500, 6000));
                log.push(format!("{at}ms isolate node {id} for {hold:?}"));
                net.note(&[31, id]);
                for m in &cluster.machines {
                    if m.id != id {
                        net.cut(id, m.id);
                    }
                }
                tokio::time::sleep(hold).await;
                net.heal();
            }
            55..65 if n >= 3 => {
                let other = cluster.machines[(i + 1 + rng.pick(n - 1)) % n].id;
                let hold = Duration::from_millis(rng.range(500, 6000));
                log.push(format!("{at}ms cut {id}-{other} for {hold:?}"));
                net.note(&[32, id, other]);
                net.cut(id, other);
                tokio::time::sleep(hold).await;
                net.heal();
            }
            65..92 => {
                let down = Duration::from_millis(rng.range(100, 5000));
                log.push(format!("{at}ms crash node {id}, restart after {down:?}"));
                cluster.crash(i).await;
                tokio::time::sleep(down).await;
                cluster.start(i).await?;
            }
            92..97 if !wiped && !cluster.machines[i].wiped => {
                wiped = true;
                log.push(format!("{at}ms wipe the disk of node {id}"));
                cluster.wipe(i).await?;
            }
            _ => {}
        }
    }
    net.set_weather(Weather::calm());
    Ok(())
}
