//! Numbers for the report: latency percentiles, per-operation timings and process CPU time.

use std::time::Duration;

/// The `p`-th percentile (0 < p <= 100) of sorted samples, by the nearest-rank method.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Latencies by operation type, in the order the operations were first seen.
#[derive(Debug, Default)]
pub struct OpTimes(Vec<(&'static str, Vec<Duration>)>);

impl OpTimes {
    /// Timings with `ops` listed first, in that order, even if none is recorded.
    pub fn new(ops: &[&'static str]) -> OpTimes {
        OpTimes(ops.iter().map(|&op| (op, Vec::new())).collect())
    }

    /// Records one operation of type `op` that took `took`.
    pub fn record(&mut self, op: &'static str, took: Duration) {
        match self.0.iter_mut().find(|(name, _)| *name == op) {
            Some((_, times)) => times.push(took),
            None => self.0.push((op, vec![took])),
        }
    }

    /// Adds another client's timings.
    pub fn merge(&mut self, other: OpTimes) {
        for (op, times) in other.0 {
            match self.0.iter_mut().find(|(name, _)| *name == op) {
                Some((_, mine)) => mine.extend(times),
                None => self.0.push((op, times)),
            }
        }
    }

    /// Operations recorded, of all types.
    pub fn count(&self) -> usize {
        self.0.iter().map(|(_, times)| times.len()).sum()
    }

    /// Each operation type with its timings sorted, ready for [`percentile`].
    pub fn sorted(mut self) -> Vec<(&'static str, Vec<Duration>)> {
        for (_, times) in &mut self.0 {
            times.sort_unstable();
        }
        self.0
    }
}

/// User plus system CPU time consumed so far by process `pid` (`self` for this one), from
/// `/proc/<pid>/stat`; `None` where that file does not exist (not Linux) or the process is gone.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// Like [`cpu_time`], plus the CPU time of the children `pid` has reaped (cutime + cstime):
/// summed over a process tree, this counts each process once, alive or gone.
pub fn cpu_time_with_children(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let own = parse_cpu_ticks(&stat)?;
    let children = parse_children_ticks(&stat)?;
    Some(Duration::from_millis((own + children) * 1000 / USER_HZ))
}

/// Clock ticks per second in /proc: USER_HZ is part of the kernel ABI, 100 on every
/// mainstream architecture, so no libc call (and no unsafe) is needed to learn it.
const USER_HZ: u64 = 100;

/// utime + stime (fields 14 and 15) of a /proc stat line. The command name (field 2) may
/// contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name come field 3 (state) onwards; utime is field 14, i.e. the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// cutime + cstime (fields 16 and 17) of a /proc stat line.
fn parse_children_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let cutime: u64 = fields.nth(13)?.parse().ok()?;
    let cstime: u64 = fields.next()?.parse().ok()?;
    Some(cutime + cstime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&ms[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn op_times_keep_first_seen_order_and_merge() {
        let mut a = OpTimes::new(&["login", "select", "store"]);
        a.record("login", Duration::from_millis(3));
        a.record("select", Duration::from_millis(1));
        let mut b = OpTimes::default();
        b.record("select", Duration::from_millis(2));
        b.record("idle", Duration::from_millis(5));
        a.merge(b);
        assert_eq!(a.count(), 4);
        let ops: Vec<_> = a
            .sorted()
            .into_iter()
            .map(|(op, t)| (op, t.len()))
            .collect();
        assert_eq!(
            ops,
            [("login", 1), ("select", 2), ("store", 0), ("idle", 1)]
        );
    }

    #[test]
    fn reads_cpu_ticks_past_odd_process_names() {
        let line = "1234 (tern (x) y) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 30 0 0 20 0 \
                    4 0 100 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(line), Some(280));
        assert_eq!(parse_children_ticks(line), Some(0));
        let reaped = "7 (dovecot) S 1 7 7 0 -1 0 0 0 0 0 10 5 40 2 20 0";
        assert_eq!(parse_children_ticks(reaped), Some(42));
        assert!(cpu_time("self").is_some());
    }
}
