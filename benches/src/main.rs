//! `tern-load`: load workloads for Tern, or any SMTP/IMAP/POP3 server (Dovecot + Postfix for
//! comparison). `--workload smtp` (the default) measures the mail path end to end: parallel
//! SMTP sessions send messages to user1..userN, then IMAP readers wait until every message is
//! visible in its INBOX; the report gives throughput, SMTP latency percentiles and CPU use.
//! `imap`, `idle` and `pop3` exercise the mailbox side.
//!
//! - [`wire`]: a line connection with read deadlines.
//! - [`smtp`]: the senders (pipelined MAIL/RCPT/DATA, several messages per session).
//! - [`imap`]: the IMAP client and the readers (LOGIN, `STATUS INBOX (MESSAGES)` polls).
//! - [`imap_mixed`]: `--workload imap`, clients looping over a typical mail-client session.
//! - [`idle`]: `--workload idle`, thousands of IDLE connections and the server memory they cost.
//! - [`pop3`]: `--workload pop3`, parallel POP3 downloads.
//! - [`stats`]: percentiles, per-operation timings and CPU time from /proc.
//! - [`memory`], [`procs`]: the server's processes, their memory and CPU.
//! - [`report`]: CPU lines, latency tables and `--json`.
//! - [`accounts`]: `--create-users` through the `tern` CLI.
//!
//! Plain tokio and raw protocol lines on purpose: the client should cost little CPU and hide
//! nothing about what goes over the wire.

mod accounts;
mod idle;
mod imap;
mod imap_mixed;
mod memory;
mod pop3;
mod procs;
mod report;
mod sessions;
mod smtp;
mod stats;
mod wire;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use procs::Server;
use report::{CpuMeter, CpuUse};
use serde::Serialize;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Load generator for Tern (or any SMTP/IMAP/POP3 server): SMTP in, IMAP-visible out by default.
#[derive(Debug, Parser, Serialize)]
#[command(name = "tern-load", version)]
pub struct Args {
    /// What to run: smtp (send, then wait until IMAP-visible), imap (mixed client sessions),
    /// idle (many IDLE connections, server memory), pop3 (download every mailbox).
    #[arg(long, value_enum, default_value_t = Workload::Smtp)]
    workload: Workload,
    /// Server address (loopback for `tern serve --dev`).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// SMTP port (MX, no authentication).
    #[arg(long, default_value_t = 2525)]
    smtp_port: u16,
    /// IMAP port (plain LOGIN, allowed from loopback in --dev).
    #[arg(long, default_value_t = 1143)]
    imap_port: u16,
    /// POP3 port (plain USER/PASS), for --workload pop3.
    #[arg(long, default_value_t = 1110)]
    pop3_port: u16,
    /// Recipients are user1..userN at --domain.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// The users' password.
    #[arg(long, default_value = "load-test-password")]
    #[serde(skip)]
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
    /// Concurrent clients (imap: 50, idle: 2000 connections, pop3: 10).
    #[arg(long)]
    clients: Option<usize>,
    /// Seconds the imap workload runs.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Milliseconds each imap-workload session stays in IDLE before DONE.
    #[arg(long, default_value_t = 50)]
    idle_ms: u64,
    /// Seconds the idle workload holds all its connections in IDLE.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Seconds the idle workload waits, at most, for the server's memory to stop moving before
    /// it takes the "before" figure (an allocator still returning an earlier run's pages would
    /// otherwise count against the connections).
    #[arg(long, default_value_t = 30)]
    settle: u64,
    /// Connections the idle workload opens at a time.
    #[arg(long, default_value_t = 50)]
    open_concurrency: usize,
    /// Connect from this local address (imap, idle, pop3), e.g. 127.1.0.1: servers cap
    /// connections per client IP (Tern: 64, Dovecot: 10 per user and IP).
    #[arg(long)]
    source_ip: Option<IpAddr>,
    /// Spread connections over this many consecutive addresses from --source-ip.
    #[arg(long, default_value_t = 1)]
    source_ips: u32,
    /// Also write the report as one JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Create the domain and the users first, with the `tern` CLI.
    #[arg(long)]
    create_users: bool,
    /// The `tern` binary used by --create-users.
    #[arg(long, default_value = "tern")]
    tern_bin: String,
    /// Extra global arguments for the `tern` CLI, e.g. --tern-arg=--data=/tmp/tern-data.
    #[arg(long = "tern-arg", allow_hyphen_values = true)]
    tern_args: Vec<String>,
    /// Also report the CPU time (and for idle the memory) of this server process during the
    /// run; repeat for servers made of several processes.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Count every descendant of the --server-pid processes too (Dovecot's imap processes).
    #[arg(long)]
    server_tree: bool,
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// SMTP senders, then IMAP readers waiting for visibility.
    Smtp,
    /// Mixed IMAP client sessions.
    Imap,
    /// Many connections in IDLE.
    Idle,
    /// POP3 downloads.
    Pop3,
}

impl Workload {
    /// Its name in reports.
    fn name(self) -> &'static str {
        match self {
            Workload::Smtp => "smtp",
            Workload::Imap => "imap",
            Workload::Idle => "idle",
            Workload::Pop3 => "pop3",
        }
    }
}

impl Args {
    /// --clients, or the workload's default.
    pub fn clients(&self) -> usize {
        self.clients.unwrap_or(match self.workload {
            Workload::Idle => 2000,
            Workload::Pop3 => 10,
            Workload::Imap | Workload::Smtp => 50,
        })
    }

    /// The local address connection `i` comes from, if --source-ip is given.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        let base = self.source_ip?;
        let step = (i % self.source_ips.max(1) as usize) as u32;
        Some(match base {
            IpAddr::V4(a) => IpAddr::V4(u32::from(a).wrapping_add(step).into()),
            IpAddr::V6(a) => IpAddr::V6(u128::from(a).wrapping_add(step.into()).into()),
        })
    }

    /// The deadline of every single server reply.
    pub fn io_timeout(&self) -> Duration {
        Duration::from_secs(self.io_timeout)
    }
}

/// What a workload hands back for the summary and `--json`.
pub struct Outcome {
    /// Its figures.
    pub results: Value,
    /// CPU use over its measured phase (already printed).
    pub cpu: CpuUse,
    /// Whether everything went as it should; the exit status says so.
    pub clean: bool,
}

/// A user's login name.
pub fn user(args: &Args, i: usize) -> String {
    format!("user{i}@{}", args.domain)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.users == 0 || args.senders == 0 || args.readers == 0 || args.per_session == 0 {
        bail!("--users, --senders, --readers and --per-session must be at least 1");
    }
    if args.clients() == 0 || args.open_concurrency == 0 {
        bail!("--clients and --open-concurrency must be at least 1");
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
    let server = Server::new(args.server_pid.clone(), args.server_tree);
    let outcome = match args.workload {
        Workload::Smtp => smtp_workload(&args, &server).await?,
        Workload::Imap => imap_mixed::run(&args, &server).await?,
        Workload::Idle => idle::run(&args, &server).await?,
        Workload::Pop3 => pop3::run(&args, &server).await?,
    };
    if let Some(path) = &args.json {
        let mut params = serde_json::to_value(&args)?;
        if args.workload != Workload::Smtp {
            params["clients"] = json!(args.clients());
        }
        let report = json!({
            "workload": args.workload.name(),
            "params": params,
            "results": outcome.results,
            "cpu": outcome.cpu.json(),
            "clean": outcome.clean,
        });
        report::write_json(path, &report)?;
    }
    if !outcome.clean {
        bail!("the run was not clean");
    }
    Ok(())
}

/// `--workload smtp`: the SMTP senders, then the IMAP readers until every message is visible.
async fn smtp_workload(args: &Args, server: &Server) -> Result<Outcome> {
    let io_timeout = args.io_timeout();

    // What the INBOXes hold already, so that earlier runs do not count.
    let baseline = baseline(args, io_timeout).await?;

    let meter = CpuMeter::start(server);
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
            user: user(args, i),
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
    let cpu = meter.finish(server);

    latencies.sort_unstable();
    let accepted = latencies.len();
    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!();
    println!("messages sent:           {accepted} accepted, {failed} failed");
    if let Some(e) = &first_error {
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
    let ms = report::ms;
    println!(
        "SMTP transaction:        p50 {}, p99 {}, max {}",
        ms(stats::percentile(&latencies, 50.0)),
        ms(stats::percentile(&latencies, 99.0)),
        ms(latencies.last().copied())
    );
    cpu.print(server);
    let e2e = all_visible.map(|t| t - started);
    Ok(Outcome {
        results: json!({
            "accepted": accepted,
            "failed": failed,
            "first_error": first_error,
            "smtp_s": smtp_done.as_secs_f64(),
            "accepted_per_s": per_sec(accepted, smtp_done),
            "all_visible": all_visible.is_some(),
            "visible_s": e2e.map(|d| d.as_secs_f64()),
            "end_to_end_per_s": e2e.map(|d| per_sec(accepted, d)),
            "missing_users": missing,
            "smtp_transaction": {
                "p50_ms": report::ms_json(stats::percentile(&latencies, 50.0)),
                "p99_ms": report::ms_json(stats::percentile(&latencies, 99.0)),
                "max_ms": report::ms_json(latencies.last().copied()),
            },
        }),
        cpu,
        clean: failed == 0 && all_visible.is_some(),
    })
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
