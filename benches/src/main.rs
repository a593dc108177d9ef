//! `tern-load`: measures Tern's mail path end to end. Parallel SMTP sessions send messages to
//! user1..userN, then IMAP readers wait until every message is visible in its INBOX; the
//! report gives throughput, SMTP latency percentiles and CPU use.
//!
//! - [`wire`]: a line connection with read deadlines.
//! - [`smtp`]: the senders (pipelined MAIL/RCPT/DATA, several messages per session).
//! - [`imap`]: the readers (LOGIN, `STATUS INBOX (MESSAGES)` polls).
//! - [`stats`]: percentiles and CPU time from /proc.
//! - [`accounts`]: `--create-users` through the `tern` CLI.
//!
//! Plain tokio and raw protocol lines on purpose: the client should cost little CPU and hide
//! nothing about what goes over the wire.

mod accounts;
mod imap;
mod smtp;
mod stats;
mod wire;

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Load generator for Tern: SMTP in, IMAP-visible out.
#[derive(Debug, Parser)]
#[command(name = "tern-load", version)]
struct Args {
    /// Server address (loopback for `tern serve --dev`).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// SMTP port (MX, no authentication).
    #[arg(long, default_value_t = 2525)]
    smtp_port: u16,
    /// IMAP port (plain LOGIN, allowed from loopback in --dev).
    #[arg(long, default_value_t = 1143)]
    imap_port: u16,
    /// Recipients are user1..userN at --domain.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// The users' password.
    #[arg(long, default_value = "load-test-password")]
    password: String,
    /// The users' domain.
    #[arg(long, default_value = "load.test")]
    domain: String,
    /// Parallel SMTP sessions.
    #[arg(long, default_value_t = 20)]
    senders: usize,
    /// Messages to send in all.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Approximate size of each message in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Messages per SMTP session.
    #[arg(long, default_value_t = 10)]
    per_session: usize,
    /// Parallel IMAP readers (each watches a share of the users).
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Milliseconds between two STATUS polls of an INBOX not yet complete.
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Give up waiting for IMAP visibility after this many seconds.
    #[arg(long, default_value_t = 120)]
    visible_timeout: u64,
    /// Seconds to wait for any single server reply.
    #[arg(long, default_value_t = 60)]
    io_timeout: u64,
    /// Create the domain and the users first, with the `tern` CLI.
    #[arg(long)]
    create_users: bool,
    /// The `tern` binary used by --create-users.
    #[arg(long, default_value = "tern")]
    tern_bin: String,
    /// Extra global arguments for the `tern` CLI, e.g. --tern-arg=--data=/tmp/tern-data.
    #[arg(long = "tern-arg", allow_hyphen_values = true)]
    tern_args: Vec<String>,
    /// Also report the CPU time of this process (the server) during the run.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// A user's login name.
fn user(args: &Args, i: usize) -> String {
    format!("user{i}@{}", args.domain)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.users == 0 || args.senders == 0 || args.readers == 0 || args.per_session == 0 {
        bail!("--users, --senders, --readers and --per-session must be at least 1");
    }
    if args.create_users {
        println!("creating {} users at {}", args.users, args.domain);
        accounts::create(
            &args.tern_bin,
            &args.tern_args,
            &args.domain,
            args.users,
            &args.password,
        )
        .await?;
    }
    let io_timeout = Duration::from_secs(args.io_timeout);

    // What the INBOXes hold already, so that earlier runs do not count.
    let baseline = baseline(&args, io_timeout).await?;

    let cpu_start = stats::cpu_time("self");
    let server_pid = args.server_pid.map(|p| p.to_string());
    let server_cpu_start = server_pid.as_deref().and_then(stats::cpu_time);
    let plan = Arc::new(smtp::SendPlan {
        host: args.host.clone(),
        port: args.smtp_port,
        users: args.users,
        domain: args.domain.clone(),
        messages: args.messages,
        per_session: args.per_session,
        size: args.size,
        io_timeout,
        run_id: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    println!(
        "sending {} messages of ~{} bytes over {} SMTP sessions at a time",
        args.messages, args.size, args.senders
    );
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..args.senders {
        senders.spawn(smtp::sender(plan.clone(), next.clone()));
    }
    let mut latencies = Vec::with_capacity(args.messages);
    let mut accepted_per_user = vec![0usize; args.users + 1];
    let mut failed = 0;
    let mut last_accept = None;
    let mut first_error = None;
    while let Some(report) = senders.join_next().await {
        let report = report.context("a sender task panicked")?;
        latencies.extend(report.latencies);
        for (total, n) in accepted_per_user.iter_mut().zip(report.accepted_per_user) {
            *total += n;
        }
        failed += report.failed;
        last_accept = last_accept.max(report.last_accept);
        if first_error.is_none() {
            first_error = report.first_error;
        }
    }
    let smtp_done = last_accept.map_or(Duration::ZERO, |t| t - started);

    // Wait until every accepted message is visible over IMAP.
    let deadline = Instant::now() + Duration::from_secs(args.visible_timeout);
    let mut shares: Vec<Vec<imap::Watch>> = (0..args.readers).map(|_| Vec::new()).collect();
    for i in 1..=args.users {
        shares[(i - 1) % args.readers].push(imap::Watch {
            user: user(&args, i),
            expected: baseline[i] + accepted_per_user[i],
        });
    }
    let mut readers = tokio::task::JoinSet::new();
    for watches in shares.into_iter().filter(|w| !w.is_empty()) {
        let (host, port, password) = (args.host.clone(), args.imap_port, args.password.clone());
        let poll = Duration::from_millis(args.poll_ms);
        readers.spawn(async move {
            imap::wait_visible(&host, port, &password, watches, poll, deadline, io_timeout).await
        });
    }
    let mut all_visible = Some(started);
    let mut missing = Vec::new();
    while let Some(result) = readers.join_next().await {
        for (user, visible) in result.context("a reader task panicked")?? {
            match visible {
                Some(t) => all_visible = all_visible.map(|v| v.max(t)),
                None => {
                    all_visible = None;
                    missing.push(user);
                }
            }
        }
    }
    let cpu = stats::cpu_time("self")
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let server_cpu = server_pid
        .as_deref()
        .and_then(stats::cpu_time)
        .zip(server_cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    let wall = started.elapsed();

    latencies.sort_unstable();
    let accepted = latencies.len();
    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!();
    println!("messages sent:           {accepted} accepted, {failed} failed");
    if let Some(e) = first_error {
        println!("first error:             {e}");
    }
    println!(
        "SMTP:                    {:.2} s to the last 250, {:.1} accepted/s",
        smtp_done.as_secs_f64(),
        per_sec(accepted, smtp_done)
    );
    match all_visible {
        Some(t) => {
            let e2e = t - started;
            println!(
                "all IMAP-visible:        {:.2} s after the first SMTP byte (poll every {} ms)",
                e2e.as_secs_f64(),
                args.poll_ms
            );
            println!(
                "end to end:              {:.1} messages/s",
                per_sec(accepted, e2e)
            );
        }
        None => println!(
            "all IMAP-visible:        NO: {} users incomplete after {} s: {}",
            missing.len(),
            args.visible_timeout,
            missing.join(", ")
        ),
    }
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        })
    };
    println!(
        "SMTP transaction:        p50 {}, p99 {}, max {}",
        ms(stats::percentile(&latencies, 50.0)),
        ms(stats::percentile(&latencies, 99.0)),
        ms(latencies.last().copied())
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = |cpu: Duration| {
        let of_wall = cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9);
        format!(
            "{:.2} s CPU = {:.1}% of one core, {:.1}% of {cores} cores over {:.2} s",
            cpu.as_secs_f64(),
            of_wall * 100.0,
            of_wall * 100.0 / cores as f64,
            wall.as_secs_f64()
        )
    };
    match cpu {
        Some(cpu) => println!("tern-load CPU:           {}", share(cpu)),
        None => println!("tern-load CPU:           unavailable (no /proc)"),
    }
    if let (Some(pid), Some(cpu)) = (args.server_pid, server_cpu) {
        println!("server CPU (pid {pid}):  {}", share(cpu));
    }
    if failed > 0 || all_visible.is_none() {
        bail!("the run was not clean");
    }
    Ok(())
}

/// Each user's INBOX size before the run (index 0 unused), read by the readers in parallel.
async fn baseline(args: &Args, io_timeout: Duration) -> Result<Vec<usize>> {
    let mut tasks = tokio::task::JoinSet::new();
    for reader in 0..args.readers.min(args.users) {
        let users: Vec<(usize, String)> = (1..=args.users)
            .filter(|i| (i - 1) % args.readers == reader)
            .map(|i| (i, user(args, i)))
            .collect();
        let (host, port, password) = (args.host.clone(), args.imap_port, args.password.clone());
        tasks.spawn(async move {
            let mut counts = Vec::with_capacity(users.len());
            for (i, user) in users {
                let mut session =
                    imap::ImapSession::login(&host, port, &user, &password, io_timeout).await?;
                counts.push((i, session.inbox_messages().await?));
                session.logout().await;
            }
            anyhow::Ok(counts)
        });
    }
    let mut baseline = vec![0; args.users + 1];
    while let Some(counts) = tasks.join_next().await {
        for (i, n) in counts.context("a reader task panicked")?? {
            baseline[i] = n;
        }
    }
    Ok(baseline)
}
