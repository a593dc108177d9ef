//! Progress of a long command (`tern backup`): a bar redrawn in place on a terminal, plain
//! lines otherwise (logs, CI), both on stderr so stdout stays for results.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws at most this often on a terminal.
const REDRAW: Duration = Duration::from_millis(100);
/// Writes a plain line at most this often otherwise (and one at the end).
const PLAIN_EVERY: Duration = Duration::from_secs(1);
const BAR: usize = 24;

/// Progress over a known number of steps (groups) moving an unknown number of bytes.
pub struct Progress {
    label: &'static str,
    total: u64,
    done: u64,
    bytes: u64,
    started: Instant,
    drawn: Option<Instant>,
    terminal: bool,
}

impl Progress {
    /// Starts showing progress of `total` steps.
    pub fn new(label: &'static str, total: u64) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            bytes: 0,
            started: Instant::now(),
            drawn: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// More bytes moved within the current step.
    pub fn bytes(&mut self, n: u64) {
        self.bytes += n;
        if self.terminal && self.drawn.is_none_or(|t| t.elapsed() >= REDRAW) {
            self.draw();
        }
    }

    /// One more step done; `what` names it in the plain output.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        if self.terminal {
            self.draw();
        } else if self.drawn.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) || self.done == self.total {
            eprintln!("{}: {what} ({})", self.label, self.summary());
            self.drawn = Some(Instant::now());
        }
    }

    /// Ends the display with a last summary line.
    pub fn finish(&mut self) {
        if self.terminal {
            self.draw();
            eprintln!();
        }
        eprintln!(
            "{}: done, {} in {:.1}s",
            self.label,
            size(self.bytes),
            self.started.elapsed().as_secs_f64()
        );
    }

    fn summary(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.bytes as f64 / secs;
        let eta = if self.done == 0 || self.done >= self.total {
            String::from("-")
        } else {
            let left = secs / self.done as f64 * (self.total - self.done) as f64;
            format!("{}s", left.ceil() as u64)
        };
        format!(
            "{}/{} groups, {}, {}/s, ETA {eta}",
            self.done,
            self.total,
            size(self.bytes),
            size(rate as u64)
        )
    }

    fn draw(&mut self) {
        let filled = (self.done * BAR as u64)
            .checked_div(self.total)
            .unwrap_or(0)
            .min(BAR as u64) as usize;
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR - filled));
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K{} [{bar}] {}", self.label, self.summary());
        let _ = err.flush();
        self.drawn = Some(Instant::now());
    }
}

/// A byte count for people: 512 B, 3.4 KiB, 12.0 MiB, 1.5 GiB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 + 400), "3.4 KiB");
        assert_eq!(size(12 << 20), "12.0 MiB");
        assert_eq!(size(3 << 39), "1.5 TiB");
    }
}
