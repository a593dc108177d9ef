//! `--workload pop3`: `--clients` parallel POP3 sessions, one user each at a time until every
//! user's maildrop is downloaded once: USER/PASS, STAT, RETR of every message, QUIT. Nothing
//! is deleted, so runs repeat.

use crate::report::{self, CpuMeter};
use crate::sessions::{Tally, Target};
use crate::wire::LineConn;
use crate::{Args, Outcome, procs::Server};
use anyhow::{Context, Result, bail};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// What one client observed.
#[derive(Default)]
struct ClientReport {
    tally: Tally,
    messages: usize,
    bytes: u64,
}

/// Runs the workload and prints its report.
pub async fn run(args: &Args, server: &Server) -> Result<Outcome> {
    let clients = args.clients();
    let plan = Arc::new(Target::new(args, args.pop3_port));
    println!(
        "pop3: {} users' maildrops downloaded by {clients} clients from {}:{}",
        args.users, args.host, args.pop3_port
    );
    let meter = CpuMeter::start(server);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients.min(args.users) {
        tasks.spawn(client(plan.clone(), next.clone(), args.source(c)));
    }
    let mut total = ClientReport {
        tally: Tally::new(&["login", "stat", "retr", "quit"]),
        ..ClientReport::default()
    };
    while let Some(report) = tasks.join_next().await {
        let report = report.context("a POP3 client task panicked")?;
        total.tally.merge(report.tally);
        total.messages += report.messages;
        total.bytes += report.bytes;
    }
    let ClientReport {
        tally,
        messages,
        bytes,
    } = total;
    let cpu = meter.finish(server);

    let messages_per_s = report::per_sec(messages as f64, cpu.wall);
    let bytes_per_s = report::per_sec(bytes as f64, cpu.wall);
    println!();
    tally.print();
    println!(
        "downloaded:              {messages} messages, {:.1} MiB in {:.2} s",
        bytes as f64 / 1048576.0,
        cpu.wall.as_secs_f64()
    );
    println!(
        "throughput:              {messages_per_s:.1} messages/s, {:.1} MiB/s",
        bytes_per_s / 1048576.0
    );
    println!("latency by operation:");
    let table = report::op_table(tally.times);
    cpu.print(server);
    Ok(Outcome {
        results: json!({
            "sessions": tally.sessions,
            "failed_sessions": tally.failed_sessions,
            "first_error": tally.first_error,
            "messages": messages,
            "bytes": bytes,
            "messages_per_s": messages_per_s,
            "bytes_per_s": bytes_per_s,
            "ops": table,
        }),
        cpu,
        clean: tally.failed_sessions == 0,
    })
}

/// One client: takes the next user not yet downloaded until none is left.
async fn client(plan: Arc<Target>, next: Arc<AtomicUsize>, source: Option<IpAddr>) -> ClientReport {
    let mut report = ClientReport::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(user) = plan.users.get(i) else {
            return report;
        };
        let outcome = session(&plan, user, source, &mut report).await;
        report.tally.session(user, outcome);
    }
}

/// Downloads `user`'s maildrop, each step timed into `report`.
async fn session(
    plan: &Target,
    user: &str,
    source: Option<IpAddr>,
    report: &mut ClientReport,
) -> Result<()> {
    let t = Instant::now();
    let mut conn = LineConn::connect_from(&plan.host, plan.port, source, plan.io_timeout).await?;
    ok(&mut conn, "greeting").await?;
    conn.write_all(format!("USER {user}\r\n").as_bytes())
        .await?;
    ok(&mut conn, "USER").await?;
    conn.write_all(format!("PASS {}\r\n", plan.password).as_bytes())
        .await?;
    ok(&mut conn, "PASS").await?;
    report.tally.times.record("login", t.elapsed());

    let t = Instant::now();
    conn.write_all(b"STAT\r\n").await?;
    let stat = ok(&mut conn, "STAT").await?;
    let count = stat_count(&stat).with_context(|| format!("STAT reply: {stat}"))?;
    report.tally.times.record("stat", t.elapsed());

    for n in 1..=count {
        let t = Instant::now();
        conn.write_all(format!("RETR {n}\r\n").as_bytes()).await?;
        ok(&mut conn, "RETR").await?;
        loop {
            let line = conn.read_raw_line().await?;
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            report.bytes += line.len() as u64;
        }
        report.tally.times.record("retr", t.elapsed());
        report.messages += 1;
    }

    let t = Instant::now();
    conn.write_all(b"QUIT\r\n").await?;
    ok(&mut conn, "QUIT").await?;
    report.tally.times.record("quit", t.elapsed());
    Ok(())
}

/// Reads a one-line reply and fails unless it is `+OK`; returns the line.
async fn ok(conn: &mut LineConn, what: &str) -> Result<String> {
    let line = conn.read_line().await?;
    if !line.starts_with("+OK") {
        bail!("{what}: {line}");
    }
    Ok(line.to_string())
}

/// The message count in `+OK 12 49152`.
fn stat_count(line: &str) -> Option<usize> {
    line.strip_prefix("+OK ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat() {
        assert_eq!(stat_count("+OK 12 49152"), Some(12));
        assert_eq!(stat_count("+OK 0 0"), Some(0));
        assert_eq!(stat_count("+OK maildrop locked"), None);
        assert_eq!(stat_count("-ERR no"), None);
    }
}
