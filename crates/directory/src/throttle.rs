//! Password-guessing throttle: failed logins are counted per client (an IPv4 address, an IPv6
//! /64) and per account, across connections and protocols, on this node.
//!
//! After `delay_after` recent failures a key's next attempt waits before its password is even
//! checked, doubling from a quarter of a second up to `max_delay`; after `refuse_after` it is
//! refused outright, without hashing, until `window` has passed since its last failure. A client
//! that keeps knocking while refused keeps its refusal. Neither count holds back a client that
//! logged into that account successfully lately (30 days): a guessing campaign against an
//! address, or a neighbour's typos behind the same NAT, does not lock the owner out of the
//! devices they already use. A success does not wipe a client's count, or a guesser with an
//! account of its own could reset its streak between guesses.
//!
//! The counts live in memory on each node: a guesser spread over a cluster's N nodes by a load
//! balancer gets N times the budget (replicating every failure through Raft would turn a login
//! flood into a write flood). Both tables are bounded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use tern_core::net::client_key;
use tern_core::sync::lock;
use tokio::time::Instant;

/// Most keys each table tracks; beyond it, expired entries are dropped, then new keys wait.
const MAX_TRACKED: usize = 100_000;
/// How long a successful login makes its client known to the account.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 86_400);
/// The first delay; each further failure doubles it.
const FIRST_DELAY: Duration = Duration::from_millis(250);

/// The throttle's settings (`[limits]` `login_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Recent failures of a key before its attempts are delayed; 0 turns the throttle off.
    pub delay_after: u32,
    /// Recent failures of a key before its attempts are refused.
    pub refuse_after: u32,
    /// Longest delay.
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            delay_after: 3,
            refuse_after: 10,
            max_delay: Duration::from_secs(15),
            window: Duration::from_secs(900),
        }
    }
}

/// What a login attempt must do before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Check it now.
    Go,
    /// Wait this long, then check it.
    Wait(Duration),
    /// Refuse it without checking.
    Refuse,
}

/// How far the attempt's client is trusted, which decides where its hashing waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// It logged into this account lately.
    Known,
    /// No recent failure.
    Clean,
    /// Failed lately.
    Suspect,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
struct Tables {
    clients: HashMap<IpAddr, Failures>,
    accounts: HashMap<String, Failures>,
    /// (account, client) pairs that logged in successfully, and when.
    known: HashMap<(String, IpAddr), Instant>,
}

/// The node's login throttle.
#[derive(Default)]
pub(crate) struct Throttle {
    policy: LoginPolicy,
    tables: std::sync::Mutex<Tables>,
}

impl Throttle {
    pub(crate) fn new(policy: LoginPolicy) -> Throttle {
        Throttle {
            policy,
            tables: std::sync::Mutex::default(),
        }
    }

    /// What an attempt by `client` as `account` (a normalised address) must do now.
    pub(crate) fn verdict(&self, client: IpAddr, account: &str) -> (Verdict, Standing) {
        let client = client_key(client);
        let now = Instant::now();
        let mut tables = lock(&self.tables);
        let known = tables
            .known
            .get(&(account.to_string(), client))
            .is_some_and(|at| now.duration_since(*at) < KNOWN_FOR);
        if known {
            return (Verdict::Go, Standing::Known);
        }
        if self.policy.delay_after == 0 {
            return (Verdict::Go, Standing::Clean);
        }
        let by_client = self.recent(tables.clients.get(&client), now);
        let by_account = self.recent(tables.accounts.get(account), now);
        let standing = if by_client > 0 {
            Standing::Suspect
        } else {
            Standing::Clean
        };
        if by_client >= self.policy.refuse_after {
            // Knocking while refused keeps the refusal.
            if let Some(f) = tables.clients.get_mut(&client) {
                f.last = now;
            }
            return (Verdict::Refuse, standing);
        }
        if by_account >= self.policy.refuse_after {
            return (Verdict::Refuse, standing);
        }
        let worst = by_client.max(by_account);
        (self.delay_for(worst), standing)
    }

    /// Records a wrong password (or unknown user) from `client` for `account`.
    pub(crate) fn failed(&self, client: IpAddr, account: &str) {
        if self.policy.delay_after == 0 {
            return;
        }
        let client = client_key(client);
        let now = Instant::now();
        let window = self.policy.window;
        let mut tables = lock(&self.tables);
        let client_count = bump(&mut tables.clients, client, now, window);
        let account_count = bump(&mut tables.accounts, account.to_string(), now, window);
        for (what, key, count) in [
            ("client", client.to_string(), client_count),
            ("account", account.to_string(), account_count),
        ] {
            if count == self.policy.refuse_after {
                tracing::warn!(
                    %what, key = ?key, failures = count,
                    window_secs = window.as_secs(),
                    "too many failed logins: further attempts are refused for the window"
                );
            }
        }
    }

    /// The settings.
    pub(crate) fn policy(&self) -> LoginPolicy {
        self.policy
    }

    /// Records a successful login: the client is known to the account from now on.
    pub(crate) fn succeeded(&self, client: IpAddr, account: &str) {
        let client = client_key(client);
        let now = Instant::now();
        let mut tables = lock(&self.tables);
        if tables.known.len() >= MAX_TRACKED {
            tables
                .known
                .retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
        }
        if tables.known.len() < MAX_TRACKED {
            tables.known.insert((account.to_string(), client), now);
        }
    }

    /// Failures of an entry that still count at `now`.
    fn recent(&self, entry: Option<&Failures>, now: Instant) -> u32 {
        match entry {
            Some(f) if now.duration_since(f.last) < self.policy.window => f.count,
            _ => 0,
        }
    }

    fn delay_for(&self, failures: u32) -> Verdict {
        if failures < self.policy.delay_after {
            return Verdict::Go;
        }
        let doublings = (failures - self.policy.delay_after).min(16);
        let delay = FIRST_DELAY.saturating_mul(1 << doublings);
        Verdict::Wait(delay.min(self.policy.max_delay))
    }
}

/// Counts one more failure for `key`, forgetting an old streak; returns the new count.
fn bump<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, Failures>,
    key: K,
    now: Instant,
    window: Duration,
) -> u32 {
    if table.len() >= MAX_TRACKED && !table.contains_key(&key) {
        table.retain(|_, f| now.duration_since(f.last) < window);
        if table.len() >= MAX_TRACKED {
            tracing::warn!("login throttle table full; a new key is not tracked");
            return 0;
        }
    }
    let entry = table.entry(key).or_insert(Failures {
        count: 0,
        last: now,
    });
    if now.duration_since(entry.last) >= window {
        entry.count = 0;
    }
    entry.count = entry.count.saturating_add(1);
    entry.last = now;
    entry.count
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "bob@example.test";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn throttle() -> Throttle {
        Throttle::new(LoginPolicy {
            delay_after: 2,
            refuse_after: 4,
            max_delay: Duration::from_secs(1),
            window: Duration::from_secs(60),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn delays_grow_then_a_client_is_refused_until_the_window_passes() {
        let t = throttle();
        let guesser = ip("192.0.2.7");
        assert_eq!(t.verdict(guesser, ACCOUNT).0, Verdict::Go);
        t.failed(guesser, "x@example.test");
        assert_eq!(
            t.verdict(guesser, ACCOUNT),
            (Verdict::Go, Standing::Suspect)
        );
        t.failed(guesser, "y@example.test");
        assert_eq!(
            t.verdict(guesser, "z@example.test").0,
            Verdict::Wait(FIRST_DELAY)
        );
        t.failed(guesser, "z@example.test");
        assert_eq!(
            t.verdict(guesser, "w@example.test").0,
            Verdict::Wait(2 * FIRST_DELAY)
        );
        t.failed(guesser, "w@example.test");
        assert_eq!(t.verdict(guesser, "v@example.test").0, Verdict::Refuse);
        // Knocking while refused keeps the refusal going.
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(t.verdict(guesser, "v@example.test").0, Verdict::Refuse);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(t.verdict(guesser, "v@example.test").0, Verdict::Refuse);
        // Silence for a whole window ends it.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            t.verdict(guesser, "v@example.test"),
            (Verdict::Go, Standing::Clean)
        );
        // Another client was never held back.
        assert_eq!(
            t.verdict(ip("192.0.2.8"), ACCOUNT),
            (Verdict::Go, Standing::Clean)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_client_counts_by_its_64() {
        let t = throttle();
        for i in 1..=4 {
            t.failed(ip(&format!("2001:db8:1:2::{i}")), ACCOUNT);
        }
        assert_eq!(
            t.verdict(ip("2001:db8:1:2:ffff::9"), "a@b.test").0,
            Verdict::Refuse
        );
        assert_eq!(t.verdict(ip("2001:db8:1:3::1"), "a@b.test").0, Verdict::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attacked_account_refuses_strangers_but_not_its_owners_devices() {
        let t = throttle();
        let owner = ip("198.51.100.1");
        t.succeeded(owner, ACCOUNT);
        for i in 1..=4 {
            t.failed(ip(&format!("203.0.113.{i}")), ACCOUNT);
        }
        assert_eq!(t.verdict(ip("203.0.113.99"), ACCOUNT).0, Verdict::Refuse);
        assert_eq!(t.verdict(owner, ACCOUNT), (Verdict::Go, Standing::Known));
        // Other accounts are not affected.
        assert_eq!(t.verdict(ip("203.0.113.99"), "eve@b.test").0, Verdict::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_exempts_its_account_only() {
        let t = throttle();
        let c = ip("192.0.2.1");
        t.succeeded(c, "mine@b.test");
        for _ in 0..4 {
            t.failed(c, ACCOUNT);
        }
        // A guesser's own account does not reset its streak against others...
        t.succeeded(c, "mine@b.test");
        assert_eq!(t.verdict(c, ACCOUNT).0, Verdict::Refuse);
        // ...and a refused NAT address still lets a known user into their own account.
        assert_eq!(t.verdict(c, "mine@b.test"), (Verdict::Go, Standing::Known));
    }

    #[test]
    fn zero_turns_it_off() {
        let t = Throttle::new(LoginPolicy {
            delay_after: 0,
            ..LoginPolicy::default()
        });
        for _ in 0..100 {
            t.failed(ip("192.0.2.1"), ACCOUNT);
        }
        assert_eq!(t.verdict(ip("192.0.2.1"), ACCOUNT).0, Verdict::Go);
    }
}
