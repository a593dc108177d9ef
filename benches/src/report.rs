//! What every workload reports besides its own figures: CPU use of tern-load and of the
//! server over the run, latency lines, and the `--json` file.

use crate::procs::Server;
use crate::stats;
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// CPU times at the start of a measured phase.
pub struct CpuMeter {
    started: Instant,
    own: Option<Duration>,
    server: Option<Duration>,
}

/// CPU used over a measured phase.
pub struct CpuUse {
    /// The phase's wall-clock time.
    pub wall: Duration,
    /// tern-load's CPU time (`None` without /proc).
    pub own: Option<Duration>,
    /// The server's CPU time (`None` without `--server-pid`).
    pub server: Option<Duration>,
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn start(server: &Server) -> CpuMeter {
        CpuMeter {
            own: stats::cpu_time("self"),
            server: server.cpu_time(),
            started: Instant::now(),
        }
    }

    /// The CPU used since [`CpuMeter::start`].
    pub fn finish(self, server: &Server) -> CpuUse {
        let spent = |end: Option<Duration>, start: Option<Duration>| {
            end.zip(start).map(|(end, start)| end.saturating_sub(start))
        };
        CpuUse {
            own: spent(stats::cpu_time("self"), self.own),
            server: spent(server.cpu_time(), self.server),
            wall: self.started.elapsed(),
        }
    }
}

impl CpuUse {
    /// Prints the tern-load and server CPU lines.
    pub fn print(&self, server: &Server) {
        match self.own {
            Some(cpu) => println!("tern-load CPU:           {}", self.share(cpu)),
            None => println!("tern-load CPU:           unavailable (no /proc)"),
        }
        if let Some(cpu) = self.server {
            println!("server CPU ({}):  {}", server.label(), self.share(cpu));
        }
    }

    /// "1.20 s CPU = 60.0% of one core, 30.0% of 2 cores over 2.00 s".
    fn share(&self, cpu: Duration) -> String {
        let of_wall = cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9);
        let cores = cores();
        format!(
            "{:.2} s CPU = {:.1}% of one core, {:.1}% of {cores} cores over {:.2} s",
            cpu.as_secs_f64(),
            of_wall * 100.0,
            of_wall * 100.0 / cores as f64,
            self.wall.as_secs_f64()
        )
    }

    /// The figures as JSON: seconds, and percent of one core.
    pub fn json(&self) -> Value {
        let wall = self.wall.as_secs_f64().max(1e-9);
        let entry = |cpu: Option<Duration>| {
            cpu.map(|c| {
                json!({
                    "cpu_s": c.as_secs_f64(),
                    "percent_of_one_core": c.as_secs_f64() / wall * 100.0,
                })
            })
        };
        json!({
            "wall_s": self.wall.as_secs_f64(),
            "cores": cores(),
            "tern_load": entry(self.own),
            "server": entry(self.server),
        })
    }
}

/// The machine's cores.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// "12.3 ms", or "-" for no value.
pub fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_string(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    })
}

/// Milliseconds for JSON.
pub fn ms_json(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1e3))
}

/// `n` per second over `d`.
pub fn per_sec(n: f64, d: Duration) -> f64 {
    n / d.as_secs_f64().max(1e-9)
}

/// Prints one line per operation type (count, p50, p99, max) and returns them as JSON.
pub fn op_table(times: stats::OpTimes) -> Value {
    let mut ops = serde_json::Map::new();
    for (op, sorted) in times.sorted() {
        let (p50, p99) = (
            stats::percentile(&sorted, 50.0),
            stats::percentile(&sorted, 99.0),
        );
        let max = sorted.last().copied();
        println!(
            "  {op:<14} {:>8} ops   p50 {:>9}   p99 {:>9}   max {:>9}",
            sorted.len(),
            ms(p50),
            ms(p99),
            ms(max)
        );
        ops.insert(
            op.to_string(),
            json!({
                "count": sorted.len(),
                "p50_ms": ms_json(p50),
                "p99_ms": ms_json(p99),
                "max_ms": ms_json(max),
            }),
        );
    }
    Value::Object(ops)
}

/// Writes the report for `--json`: one object per run.
pub fn write_json(path: &Path, report: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}
