//! Numbers for the report: latency percentiles and process CPU time.

use std::time::Duration;

/// The `p`-th percentile (0 < p <= 100) of sorted samples, by the nearest-rank method.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// User plus system CPU time consumed so far by process `pid` (`self` for this one), from
/// `/proc/<pid>/stat`; `None` where that file does not exist (not Linux) or the process is gone.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_millis(ticks * 1000 / USER_HZ))
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
    fn reads_cpu_ticks_past_odd_process_names() {
        let line = "1234 (tern (x) y) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 30 0 0 20 0 \
                    4 0 100 1000000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(line), Some(280));
        assert!(cpu_time("self").is_some());
    }
}
