//! `--workload idle`: opens `--clients` IMAP connections (LOGIN, SELECT INBOX, IDLE),
//! `--open-concurrency` at a time, holds them all for `--hold` seconds, and reports what they
//! cost the server in memory (with `--server-pid`) before ending each with DONE and LOGOUT.

use crate::imap::ImapSession;
use crate::memory::Memory;
use crate::report::{self, CpuMeter};
use crate::{Args, Outcome, procs::Server};
use anyhow::{Context, Result};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Runs the workload and prints its report.
pub async fn run(args: &Args, server: &Server) -> Result<Outcome> {
    let clients = args.clients();
    let files = raise_open_files();
    println!(
        "open files limit:        {} (hard {})",
        limit_text(files.current),
        limit_text(files.maximum)
    );
    if files.current.is_some_and(|n| n < clients as u64 + 64) {
        println!("warning:                 too low for {clients} connections; raise `ulimit -Hn`");
    }
    let before = settled_memory(server, Duration::from_secs(args.settle)).await;
    println!(
        "idle: {clients} connections to {}:{}, {} at a time, held {} s",
        args.host, args.imap_port, args.open_concurrency, args.hold
    );
    let meter = CpuMeter::start(server);
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(args.open_concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let permit = permits.clone().acquire_owned().await?;
        let (host, port, password) = (args.host.clone(), args.imap_port, args.password.clone());
        let user = crate::user(args, i % args.users + 1);
        let (source, timeout) = (args.source(i), args.io_timeout());
        tasks.spawn(async move {
            let _permit = permit;
            let mut session =
                ImapSession::login_from(&host, port, source, &user, &password, timeout).await?;
            session.select_inbox().await?;
            session.idle_start().await?;
            anyhow::Ok(session)
        });
    }
    let mut sessions = Vec::with_capacity(clients);
    let mut failed = 0;
    let mut first_error = None;
    while let Some(opened) = tasks.join_next().await {
        match opened.context("an IDLE task panicked")? {
            Ok(session) => sessions.push(session),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let opening = started.elapsed();
    let idling = sessions.len();
    println!(
        "{idling} of {clients} connections idling after {:.2} s; holding {} s",
        opening.as_secs_f64(),
        args.hold
    );
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let during = server.memory();

    // DONE and LOGOUT, as many at a time as were opened at a time.
    let mut closing = tokio::task::JoinSet::new();
    for mut session in sessions {
        let permit = permits.clone().acquire_owned().await?;
        closing.spawn(async move {
            let _permit = permit;
            session.idle_done().await?;
            session.logout_checked().await
        });
    }
    let mut done_ok = 0;
    while let Some(closed) = closing.join_next().await {
        match closed.context("a DONE task panicked")? {
            Ok(()) => done_ok += 1,
            Err(e) => {
                first_error.get_or_insert_with(|| format!("at DONE/LOGOUT: {e:#}"));
            }
        }
    }
    let cpu = meter.finish(server);
    let after = server.memory();

    println!();
    println!("connections idling:      {idling} of {clients} ({failed} failed to open)");
    if let Some(e) = &first_error {
        println!("first error:             {e}");
        if e.contains("Too many connections") {
            println!(
                "hint:                    spread the connections with --source-ip/--source-ips"
            );
        }
    }
    println!(
        "opening:                 {:.2} s = {:.1} connections/s (LOGIN + SELECT + IDLE)",
        opening.as_secs_f64(),
        report::per_sec(idling as f64, opening)
    );
    println!("still idling at the end: {done_ok} (DONE and LOGOUT answered OK)");
    let memory = memory_report(server, [before, during, after], idling);
    cpu.print(server);
    Ok(Outcome {
        results: json!({
            "connections": clients,
            "idling": idling,
            "failed_to_open": failed,
            "done_ok": done_ok,
            "first_error": first_error,
            "open_s": opening.as_secs_f64(),
            "open_per_s": report::per_sec(idling as f64, opening),
            "open_files_limit": files.current,
            "memory": memory,
        }),
        cpu,
        clean: failed == 0 && done_ok == idling,
    })
}

/// The server's memory once two readings a second apart differ by less than 1% (or after
/// `limit`, whichever comes first).
async fn settled_memory(server: &Server, limit: Duration) -> Option<Memory> {
    let started = Instant::now();
    let mut last = server.memory()?;
    loop {
        if started.elapsed() >= limit {
            println!("warning:                 server memory still moving after {limit:?}");
            return Some(last);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = server.memory()?;
        let moved = now.kib.abs_diff(last.kib) as f64;
        if moved <= now.kib as f64 / 100.0 {
            println!(
                "memory settled:          after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            return Some(now);
        }
        last = now;
    }
}

/// Prints the server's memory before, while idling and after LOGOUT, and returns it as JSON.
fn memory_report(
    server: &Server,
    [before, during, after]: [Option<Memory>; 3],
    idling: usize,
) -> Value {
    if server.is_empty() {
        return Value::Null;
    }
    let (Some(before), Some(during)) = (before, during) else {
        println!("server memory:           unreadable (is the pid right?)");
        return Value::Null;
    };
    let show = |m: Memory| {
        format!(
            "{:.1} MiB {} over {} processes",
            m.kib as f64 / 1024.0,
            m.measure.name(),
            m.processes
        )
    };
    let grown = during.kib as f64 - before.kib as f64;
    let per_connection = grown / idling.max(1) as f64;
    println!("server memory before:    {}", show(before));
    println!("server memory idling:    {}", show(during));
    if let Some(after) = after {
        // What the allocator keeps after the connections are gone.
        println!("server memory after:     {}", show(after));
    }
    println!(
        "per connection:          {per_connection:.1} KiB ({} grew by {:.1} MiB)",
        server.label(),
        grown / 1024.0
    );
    if before.measure != during.measure {
        println!("warning:                 PSS before, RSS while idling: not comparable");
    }
    json!({
        "before_kib": before.kib,
        "before_measure": before.measure.name(),
        "before_processes": before.processes,
        "idling_kib": during.kib,
        "idling_measure": during.measure.name(),
        "idling_processes": during.processes,
        "per_connection_kib": per_connection,
        "after_kib": after.map(|m| m.kib),
        "after_measure": after.map(|m| m.measure.name()),
        "after_processes": after.map(|m| m.processes),
    })
}

/// Raises the soft limit on open files to the hard one (thousands of sockets) and returns the
/// limits in force.
fn raise_open_files() -> Rlimit {
    let limits = getrlimit(Resource::Nofile);
    if limits.current.is_some() && limits.current != limits.maximum {
        let raised = Rlimit {
            current: limits.maximum,
            maximum: limits.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return getrlimit(Resource::Nofile);
        }
    }
    limits
}

/// A limit for the report.
fn limit_text(limit: Option<u64>) -> String {
    limit.map_or("unlimited".to_string(), |n| n.to_string())
}
