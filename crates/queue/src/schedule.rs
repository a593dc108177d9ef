//! When to try a remote recipient again, and when to give up: the delay doubles after every
//! failed attempt (like Postfix's), from `retry_initial_secs` up to `retry_max_secs`; a
//! message older than `give_up_after_secs` is bounced after its next failure.

use tern_core::config::RelayConfig;

/// The retry schedule of the relay, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Delay after the first failure.
    pub initial: i64,
    /// Longest delay.
    pub max: i64,
    /// Age at which a failing message is bounced.
    pub give_up: i64,
    /// Age at which one "delayed" DSN is sent; 0 = never.
    pub delay_notice: i64,
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Schedule {
    /// The schedule configured in `[relay]`.
    pub(crate) fn new(relay: &RelayConfig) -> Schedule {
        let initial = secs(relay.retry_initial_secs).max(1);
        Schedule {
            initial,
            max: secs(relay.retry_max_secs).max(initial),
            give_up: secs(relay.give_up_after_secs),
            delay_notice: secs(relay.delay_notice_after_secs),
        }
    }

    /// The delay after `attempts` failed attempts (1 = the first failure).
    pub(crate) fn backoff(&self, attempts: u32) -> i64 {
        let doublings = attempts.saturating_sub(1).min(62);
        self.initial
            .checked_mul(1i64 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// When to try again after `attempts` failures at `now`: the backoff, but never later
    /// than the moment the message expires, so the final attempt is not hours late.
    pub(crate) fn next_attempt(&self, created: i64, now: i64, attempts: u32) -> i64 {
        let next = now.saturating_add(self.backoff(attempts));
        let expiry = created.saturating_add(self.give_up);
        if expiry > now { next.min(expiry) } else { next }
    }

    /// Whether a message accepted at `created` has been failing too long by `now`.
    pub(crate) fn expired(&self, created: i64, now: i64) -> bool {
        now.saturating_sub(created) >= self.give_up
    }

    /// Whether a message still queued at `now` deserves its "delayed" notice.
    pub(crate) fn delay_notice_due(&self, created: i64, now: i64) -> bool {
        self.delay_notice > 0 && now.saturating_sub(created) >= self.delay_notice
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_doubles_from_five_minutes_to_four_hours() {
        let s = Schedule::new(&RelayConfig::default());
        let delays: Vec<i64> = (1..=8).map(|n| s.backoff(n)).collect();
        assert_eq!(
            delays,
            [300, 600, 1200, 2400, 4800, 9600, 14400, 14400],
            "5 min doubling, capped at 4 h"
        );
        assert_eq!(s.backoff(0), 300);
        assert_eq!(s.backoff(u32::MAX), 14400);
        assert!(!s.expired(0, 432_000 - 1));
        assert!(s.expired(0, 432_000));
        assert!(
            !s.delay_notice_due(0, 1_000_000),
            "no delay notice by default"
        );
    }

    #[test]
    fn the_last_attempt_happens_at_expiry_and_odd_configs_are_tamed() {
        let relay = RelayConfig {
            retry_initial_secs: 0,
            retry_max_secs: 0,
            give_up_after_secs: 100,
            delay_notice_after_secs: 30,
            ..RelayConfig::default()
        };
        let s = Schedule::new(&relay);
        assert_eq!(
            (s.initial, s.max),
            (1, 1),
            "at least a second between attempts"
        );
        let long = Schedule {
            initial: 60,
            max: 3600,
            ..s
        };
        assert_eq!(
            long.next_attempt(1_000, 1_050, 1),
            1_100,
            "clamped to expiry"
        );
        assert_eq!(long.next_attempt(1_000, 1_010, 1), 1_070);
        assert_eq!(long.next_attempt(1_000, 1_200, 1), 1_260, "already expired");
        assert!(s.delay_notice_due(0, 30) && !s.delay_notice_due(0, 29));
    }
}
