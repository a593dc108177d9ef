//! `--workload imap`: `--clients` clients, each looping for `--duration` seconds over the
//! session of a typical mail client: LOGIN, SELECT INBOX, the newest 20 headers, one body,
//! a flag change, a search, a moment of IDLE, LOGOUT. Every operation is timed by type.

use crate::imap::ImapSession;
use crate::report::{self, CpuMeter};
use crate::stats::OpTimes;
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
    host: String,
    port: u16,
    password: String,
    /// user1..userN at the domain, precomputed.
    users: Vec<String>,
    clients: usize,
    io_timeout: Duration,
    idle: Duration,
}

/// What one client observed.
#[derive(Default)]
struct ClientReport {
    times: OpTimes,
    sessions: usize,
    failed_sessions: usize,
    body_bytes: u64,
    first_error: Option<String>,
}

/// Runs the workload and prints its report.
pub async fn run(args: &Args, server: &Server) -> Result<Outcome> {
    let clients = args.clients();
    let plan = Arc::new(Plan {
        host: args.host.clone(),
        port: args.imap_port,
        password: args.password.clone(),
        users: (1..=args.users).map(|i| crate::user(args, i)).collect(),
        clients,
        io_timeout: args.io_timeout(),
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
        times: OpTimes::new(OPS),
        ..ClientReport::default()
    };
    while let Some(report) = tasks.join_next().await {
        let report = report.context("an IMAP client task panicked")?;
        total.times.merge(report.times);
        total.sessions += report.sessions;
        total.failed_sessions += report.failed_sessions;
        total.body_bytes += report.body_bytes;
        if total.first_error.is_none() {
            total.first_error = report.first_error;
        }
    }
    let cpu = meter.finish(server);

    let ops = total.times.count();
    let ops_per_s = report::per_sec(ops as f64, cpu.wall);
    println!();
    println!(
        "sessions:                {} complete, {} failed",
        total.sessions, total.failed_sessions
    );
    if let Some(e) = &total.first_error {
        println!("first error:             {e}");
    }
    println!(
        "operations:              {ops} in {:.2} s = {ops_per_s:.1} ops/s ({:.1} sessions/s)",
        cpu.wall.as_secs_f64(),
        report::per_sec(total.sessions as f64, cpu.wall)
    );
    println!(
        "bodies fetched:          {:.1} MiB",
        total.body_bytes as f64 / 1048576.0
    );
    println!("latency by operation:");
    let table = report::op_table(total.times);
    cpu.print(server);
    Ok(Outcome {
        results: json!({
            "sessions": total.sessions,
            "failed_sessions": total.failed_sessions,
            "first_error": total.first_error,
            "operations": ops,
            "ops_per_s": ops_per_s,
            "sessions_per_s": report::per_sec(total.sessions as f64, cpu.wall),
            "body_bytes": total.body_bytes,
            "ops": table,
        }),
        cpu,
        clean: total.failed_sessions == 0 && total.sessions > 0,
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
        let user = &plan.users[turn % plan.users.len()];
        turn += plan.clients;
        match session(&plan, user, source, &mut report).await {
            Ok(()) => report.sessions += 1,
            Err(e) => {
                report.failed_sessions += 1;
                report
                    .first_error
                    .get_or_insert_with(|| format!("{user}: {e:#}"));
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
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
    let mut s = ImapSession::login_from(
        &plan.host,
        plan.port,
        source,
        user,
        &plan.password,
        plan.io_timeout,
    )
    .await?;
    report.times.record("login", t.elapsed());

    let t = Instant::now();
    let exists = s.select_inbox().await?;
    report.times.record("select", t.elapsed());

    if exists > 0 {
        let t = Instant::now();
        let first = exists.saturating_sub(19).max(1);
        let headers = s
            .command(&format!(
                "FETCH {first}:{exists} (UID FLAGS RFC822.SIZE ENVELOPE)"
            ))
            .await?;
        report.times.record("fetch-headers", t.elapsed());

        let uids: Vec<u32> = headers.iter().filter_map(|l| fetched_uid(l)).collect();
        if !uids.is_empty() {
            let uid = uids[rand::random_range(0..uids.len())];
            let before = s.literal_bytes;
            let t = Instant::now();
            s.command(&format!("UID FETCH {uid} (BODY.PEEK[])")).await?;
            report.times.record("fetch-body", t.elapsed());
            report.body_bytes += s.literal_bytes - before;

            let t = Instant::now();
            s.command(&format!("UID STORE {uid} +FLAGS (\\Seen)"))
                .await?;
            report.times.record("store", t.elapsed());
        }
    }

    let t = Instant::now();
    s.command("UID SEARCH UNSEEN").await?;
    report.times.record("search", t.elapsed());

    // IDLE's cost is the wait for '+' and for the OK after DONE, not the time spent idling.
    let t = Instant::now();
    s.idle_start().await?;
    let entered = t.elapsed();
    tokio::time::sleep(plan.idle).await;
    let t = Instant::now();
    s.idle_done().await?;
    report.times.record("idle", entered + t.elapsed());

    let t = Instant::now();
    s.logout_checked().await?;
    report.times.record("logout", t.elapsed());
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
