//! `--workload imap`: `--clients` clients, each looping for `--duration` seconds over the
//! session of a typical mail client: LOGIN, SELECT INBOX, the newest 20 headers, one body,
//! a flag change, a search, a moment of IDLE, LOGOUT. Every operation is timed by type.

use crate::imap::ImapSession;
use crate::report::{self, CpuMeter};
use crate::sessions::{Tally, Target};
use crate::{Args, Outcome, procs::Server};
use anyhow::{Context, Result};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The operation types, in the report's order.
const OPS: &[&str] = &[
    "login",
    "select",
    "fetch-headers",
    "fetch-body",
    "store",
    "search",
    "idle",
    "logout",
];

/// What every client needs to know.
struct Plan {
    target: Target,
    clients: usize,
    idle: Duration,
}

/// What one client observed.
#[derive(Default)]
struct ClientReport {
    tally: Tally,
    body_bytes: u64,
}

/// Runs the workload and prints its report.
pub async fn run(args: &Args, server: &Server) -> Result<Outcome> {
    let clients = args.clients();
    let plan = Arc::new(Plan {
        target: Target::new(args, args.imap_port),
        clients,
        idle: Duration::from_millis(args.idle_ms),
    });
    println!(
        "imap: {clients} clients for {} s against {}:{}, {} users",
        args.duration, args.host, args.imap_port, args.users
    );
    let meter = CpuMeter::start(server);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        tasks.spawn(client(plan.clone(), c, args.source(c), deadline));
    }
    let mut total = ClientReport {
        tally: Tally::new(OPS),
        ..ClientReport::default()
    };
    while let Some(report) = tasks.join_next().await {
        let report = report.context("an IMAP client task panicked")?;
        total.tally.merge(report.tally);
        total.body_bytes += report.body_bytes;
    }
    let ClientReport { tally, body_bytes } = total;
    let cpu = meter.finish(server);

    let ops = tally.times.count();
    let ops_per_s = report::per_sec(ops as f64, cpu.wall);
    println!();
    tally.print();
    println!(
        "operations:              {ops} in {:.2} s = {ops_per_s:.1} ops/s ({:.1} sessions/s)",
        cpu.wall.as_secs_f64(),
        report::per_sec(tally.sessions as f64, cpu.wall)
    );
    println!(
        "bodies fetched:          {:.1} MiB",
        body_bytes as f64 / 1048576.0
    );
    println!("latency by operation:");
    let table = report::op_table(tally.times);
    cpu.print(server);
    Ok(Outcome {
        results: json!({
            "sessions": tally.sessions,
            "failed_sessions": tally.failed_sessions,
            "first_error": tally.first_error,
            "operations": ops,
            "ops_per_s": ops_per_s,
            "sessions_per_s": report::per_sec(tally.sessions as f64, cpu.wall),
            "body_bytes": body_bytes,
            "ops": table,
        }),
        cpu,
        clean: tally.failed_sessions == 0 && tally.sessions > 0,
    })
}

/// One client: sessions back to back until `deadline`, users taken round-robin.
async fn client(
    plan: Arc<Plan>,
    c: usize,
    source: Option<IpAddr>,
    deadline: Instant,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut turn = c;
    while Instant::now() < deadline {
        let user = &plan.target.users[turn % plan.target.users.len()];
        turn += plan.clients;
        let outcome = session(&plan, user, source, &mut report).await;
        if !report.tally.session(user, outcome) {
            // Do not spin on a server that refuses everything.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    report
}

/// One mail-client session as `user`, each step timed into `report`.
async fn session(
    plan: &Plan,
    user: &str,
    source: Option<IpAddr>,
    report: &mut ClientReport,
) -> Result<()> {
    let t = Instant::now();
    let target = &plan.target;
    let mut s = ImapSession::login_from(
        &target.host,
        target.port,
        source,
        user,
        &target.password,
        target.io_timeout,
    )
    .await?;
    report.tally.times.record("login", t.elapsed());

    let t = Instant::now();
    let exists = s.select_inbox().await?;
    report.tally.times.record("select", t.elapsed());

    if exists > 0 {
        let t = Instant::now();
        let first = exists.saturating_sub(19).max(1);
        let headers = s
            .command(&format!(
                "FETCH {first}:{exists} (UID FLAGS RFC822.SIZE ENVELOPE)"
            ))
            .await?;
        report.tally.times.record("fetch-headers", t.elapsed());

        let uids: Vec<u32> = headers.iter().filter_map(|l| fetched_uid(l)).collect();
        if !uids.is_empty() {
            let uid = uids[rand::random_range(0..uids.len())];
            let before = s.literal_bytes;
            let t = Instant::now();
            s.command(&format!("UID FETCH {uid} (BODY.PEEK[])")).await?;
            report.tally.times.record("fetch-body", t.elapsed());
            report.body_bytes += s.literal_bytes - before;

            let t = Instant::now();
            s.command(&format!("UID STORE {uid} +FLAGS (\\Seen)"))
                .await?;
            report.tally.times.record("store", t.elapsed());
        }
    }

    let t = Instant::now();
    s.command("UID SEARCH UNSEEN").await?;
    report.tally.times.record("search", t.elapsed());

    // IDLE's cost is the wait for '+' and for the OK after DONE, not the time spent idling.
    let t = Instant::now();
    s.idle_start().await?;
    let entered = t.elapsed();
    tokio::time::sleep(plan.idle).await;
    let t = Instant::now();
    s.idle_done().await?;
    report.tally.times.record("idle", entered + t.elapsed());

    let t = Instant::now();
    s.logout_checked().await?;
    report.tally.times.record("logout", t.elapsed());
    Ok(())
}

/// The UID in `* 3 FETCH (UID 17 FLAGS ...)`.
fn fetched_uid(line: &str) -> Option<u32> {
    if !line.starts_with("* ") || !line.contains(" FETCH (") {
        return None;
    }
    let rest = &line[line.find("UID ")? + "UID ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fetched_uids() {
        let line = "* 3 FETCH (UID 17 FLAGS (\\Seen) RFC822.SIZE 4096 ENVELOPE (NIL \"x\"))";
        assert_eq!(fetched_uid(line), Some(17));
        let other_order = "* 3 FETCH (FLAGS () UID 18 RFC822.SIZE 1)";
        assert_eq!(fetched_uid(other_order), Some(18));
        assert_eq!(fetched_uid("* 3 EXISTS"), None);
    }
}
