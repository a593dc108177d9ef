//! What the session workloads (imap, pop3) share: where their clients connect and as whom, and
//! the tally of sessions that every client keeps and the run sums up.

use crate::Args;
use crate::stats::OpTimes;
use std::time::Duration;

/// Where a session workload's clients connect, and as whom.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub password: String,
    /// user1..userN at the domain, precomputed.
    pub users: Vec<String>,
    pub io_timeout: Duration,
}

impl Target {
    /// The server of `args` on `port`, with its users.
    pub fn new(args: &Args, port: u16) -> Target {
        Target {
            host: args.host.clone(),
            port,
            password: args.password.clone(),
            users: (1..=args.users).map(|i| crate::user(args, i)).collect(),
            io_timeout: args.io_timeout(),
        }
    }
}

/// Sessions completed and failed, the first failure, and every operation's time.
#[derive(Default)]
pub struct Tally {
    pub times: OpTimes,
    pub sessions: usize,
    pub failed_sessions: usize,
    pub first_error: Option<String>,
}

impl Tally {
    /// An empty tally whose report lists `ops` first, in that order.
    pub fn new(ops: &[&'static str]) -> Tally {
        Tally {
            times: OpTimes::new(ops),
            ..Tally::default()
        }
    }

    /// Counts one session of `user`; true when it completed.
    pub fn session(&mut self, user: &str, outcome: anyhow::Result<()>) -> bool {
        match outcome {
            Ok(()) => {
                self.sessions += 1;
                true
            }
            Err(e) => {
                self.failed_sessions += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{user}: {e:#}"));
                false
            }
        }
    }

    /// Adds another client's tally.
    pub fn merge(&mut self, other: Tally) {
        self.times.merge(other.times);
        self.sessions += other.sessions;
        self.failed_sessions += other.failed_sessions;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Prints the sessions line and the first error, if any.
    pub fn print(&self) {
        println!(
            "sessions:                {} complete, {} failed",
            self.sessions, self.failed_sessions
        );
        if let Some(e) = &self.first_error {
            println!("first error:             {e}");
        }
    }
}
