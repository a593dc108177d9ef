//! The fault schedule of a run, planned from the seed before the cluster boots and then
//! played against simulated time. Planning first keeps the schedule a function of the seed
//! alone: how long a restart or a retried proposal takes cannot add, drop or change a fault.

use super::cluster::SimCluster;
use super::net::Weather;
use super::rng::SimRng;
use std::time::Duration;
use tokio::time::Instant;

/// One fault of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Loss and delay on every message from now on.
    Weather(Weather),
    /// Cut a machine off from every other for `hold`, then heal.
    Isolate {
        /// Index of the machine.
        node: usize,
        /// How long the cut lasts.
        hold: Duration,
    },
    /// Cut the link between two machines for `hold`, then heal.
    Cut {
        /// Index of one machine.
        node: usize,
        /// Index of the other.
        other: usize,
        /// How long the cut lasts.
        hold: Duration,
    },
    /// Stop a machine for `down`, then restart it from its disk.
    Crash {
        /// Index of the machine.
        node: usize,
        /// How long it stays down.
        down: Duration,
    },
    /// Restart a machine from an empty data dir (at most once per run).
    Wipe {
        /// Index of the machine.
        node: usize,
    },
}

/// A fault and when it starts, counted from the start of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Planned start; a fault starts late when the previous one overran (a slow restart).
    pub at: Duration,
    /// What happens.
    pub fault: Fault,
}

/// Plans the faults of `duration` of workload on `nodes` machines.
pub fn plan(rng: &mut SimRng, nodes: usize, duration: Duration) -> Vec<Planned> {
    let mut plan = Vec::new();
    let mut at = Duration::ZERO;
    let mut wiped = false;
    loop {
        at += Duration::from_millis(rng.range(300, 3000));
        if at >= duration {
            return plan;
        }
        let node = rng.pick(nodes);
        let (fault, lasts) = match rng.range(0, 100) {
            0..30 => {
                let weather = Weather {
                    loss: rng.range(0, 30) as f64 / 100.0,
                    max_delay: Duration::from_millis(rng.range(1, 400)),
                };
                (Fault::Weather(weather), Duration::ZERO)
            }
            30..55 => {
                let hold = Duration::from_millis(rng.range(500, 6000));
                (Fault::Isolate { node, hold }, hold)
            }
            55..65 if nodes >= 3 => {
                let other = (node + 1 + rng.pick(nodes - 1)) % nodes;
                let hold = Duration::from_millis(rng.range(500, 6000));
                (Fault::Cut { node, other, hold }, hold)
            }
            65..92 => {
                let down = Duration::from_millis(rng.range(100, 5000));
                (Fault::Crash { node, down }, down)
            }
            92..97 if !wiped => {
                wiped = true;
                (Fault::Wipe { node }, Duration::ZERO)
            }
            _ => continue,
        };
        plan.push(Planned { at, fault });
        at += lasts;
    }
}

/// What `fault` does, in words, with the cluster's node ids.
pub fn describe(cluster: &SimCluster, fault: &Fault) -> String {
    let id = |i: usize| cluster.machines[i].id;
    match fault {
        Fault::Weather(w) => format!("weather {w:?}"),
        Fault::Isolate { node, hold } => format!("isolate node {} for {hold:?}", id(*node)),
        Fault::Cut { node, other, hold } => {
            format!("cut {}-{} for {hold:?}", id(*node), id(*other))
        }
        Fault::Crash { node, down } => {
            format!("crash node {}, restart after {down:?}", id(*node))
        }
        Fault::Wipe { node } => format!("wipe the disk of node {}", id(*node)),
    }
}

/// Plays `plan` from `start`; each fault is logged with the simulated time it began.
pub async fn play(
    cluster: &mut SimCluster,
    plan: &[Planned],
    start: Instant,
    log: &mut Vec<String>,
) -> Result<(), String> {
    let net = cluster.net.clone();
    for planned in plan {
        tokio::time::sleep_until(start + planned.at).await;
        let at = net.elapsed().as_millis();
        log.push(format!("{at}ms {}", describe(cluster, &planned.fault)));
        match &planned.fault {
            Fault::Weather(weather) => {
                net.note(&[
                    30,
                    (weather.loss * 100.0) as u64,
                    weather.max_delay.as_millis() as u64,
                ]);
                net.set_weather(*weather);
            }
            Fault::Isolate { node, hold } => {
                let id = cluster.machines[*node].id;
                net.note(&[31, id]);
                for m in &cluster.machines {
                    if m.id != id {
                        net.cut(id, m.id);
                    }
                }
                tokio::time::sleep(*hold).await;
                net.heal();
            }
            Fault::Cut { node, other, hold } => {
                let (a, b) = (cluster.machines[*node].id, cluster.machines[*other].id);
                net.note(&[32, a, b]);
                net.cut(a, b);
                tokio::time::sleep(*hold).await;
                net.heal();
            }
            Fault::Crash { node, down } => {
                cluster.crash(*node).await;
                tokio::time::sleep(*down).await;
                cluster.start(*node).await?;
            }
            Fault::Wipe { node } => cluster.wipe(*node).await?,
        }
    }
    net.set_weather(Weather::calm());
    Ok(())
}
