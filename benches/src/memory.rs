//! Resident memory of processes from /proc: PSS (`/proc/PID/smaps_rollup`, shared pages split
//! among their users, so sums over many processes are fair) where readable, else RSS
//! (`VmRSS` in `/proc/PID/status`).

/// Which measure a total is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Proportional set size.
    Pss,
    /// Resident set size (counts shared pages once per process).
    Rss,
}

impl Measure {
    /// The name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Measure::Pss => "PSS",
            Measure::Rss => "RSS",
        }
    }
}

/// The memory of a set of processes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// The sum, in KiB.
    pub kib: u64,
    /// PSS if it was readable for every process, else RSS.
    pub measure: Measure,
    /// Processes counted.
    pub processes: usize,
}

/// The total memory of `pids`, in PSS if every one's smaps_rollup is readable, else in RSS;
/// processes that are gone are left out. `None` if none could be read.
pub fn total(pids: &[u32]) -> Option<Memory> {
    let pss: Vec<Option<u64>> = pids.iter().map(|&p| pss_kib(p)).collect();
    let rss: Vec<Option<u64>> = pids.iter().map(|&p| rss_kib(p)).collect();
    // A process readable for RSS but not for PSS (another user's) forces RSS for all.
    let pss_complete = pss
        .iter()
        .zip(&rss)
        .all(|(p, r)| p.is_some() || r.is_none());
    let (values, measure) = if pss_complete {
        (pss, Measure::Pss)
    } else {
        (rss, Measure::Rss)
    };
    let counted: Vec<u64> = values.into_iter().flatten().collect();
    if counted.is_empty() {
        return None;
    }
    Some(Memory {
        kib: counted.iter().sum(),
        measure,
        processes: counted.len(),
    })
}

/// The PSS of `pid` in KiB.
fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    field_kib(&rollup, "Pss:")
}

/// The RSS of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&status, "VmRSS:")
}

/// The number in a `Name:   1234 kB` line.
fn field_kib(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields() {
        let rollup = "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:  9000 kB\nPss:   4321 kB\n\
                      Pss_Anon:  100 kB\n";
        assert_eq!(field_kib(rollup, "Pss:"), Some(4321));
        assert_eq!(field_kib("VmRSS:\t  812 kB\n", "VmRSS:"), Some(812));
        assert_eq!(field_kib("VmHWM: 1 kB\n", "VmRSS:"), None);
    }

    #[test]
    fn measures_this_process() {
        let me = std::process::id();
        let m = total(&[me]).unwrap();
        assert!(m.kib > 0);
        assert_eq!(m.processes, 1);
    }
}
