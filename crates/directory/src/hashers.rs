//! The password-hashing threads: one per core (16 at most), at a lower CPU priority than the
//! rest of the server. An Argon2 run costs tens of milliseconds of CPU; on the async workers it
//! would stall every session, and at equal priority a login storm took the cores from other
//! sessions' commands (under a login-heavy IMAP load, SELECT p99 went from 8.3 to 2.0 ms once
//! hashing ran at nice 10). A storm queues here instead, and the hashing threads get the CPU
//! that nothing else in the process wants.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// The hashing threads' nice value (the server runs at 0; 19 is the lowest priority).
const HASHING_NICE: i32 = 10;

/// At most this many hashing threads, however many cores: each keeps a 19 MiB buffer resident,
/// and 16 parallel hashes already verify several hundred logins a second.
const MAX_THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// Runs `work` on a hashing thread. `None` when it panicked or no hashing thread could start.
pub(crate) async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller may have gone (a dropped connection); the result is then not wanted.
        let _ = reply.send(work());
    });
    queue().send(job).ok()?;
    answer.await.ok()
}

/// The job queue, and the threads serving it on first use.
fn queue() -> &'static Sender<Job> {
    static QUEUE: OnceLock<Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = cores.min(MAX_THREADS);
        for i in 0..threads {
            let jobs = receiver.clone();
            let started = std::thread::Builder::new()
                .name(format!("tern-hash-{i}"))
                .spawn(move || serve(&jobs));
            if let Err(e) = started {
                tracing::error!(error = %e, "could not start a password-hashing thread");
            }
        }
        // With no thread started, the receiver is dropped here and `run` answers None.
        sender
    })
}

fn serve(jobs: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let next = tern_core::sync::lock(jobs).recv();
        let Ok(job) = next else {
            return;
        };
        // A panicking job drops its reply sender, so its caller sees None; the thread goes on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Lowers this thread's priority (Linux applies a nice value to the thread whose id it gets).
fn lower_priority() {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), HASHING_NICE) {
        tracing::warn!(error = %e, "could not lower the password-hashing thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_at_a_lower_priority_and_survives_a_panic() {
        let nice = run(|| rustix::process::getpriority_process(None)).await;
        assert_eq!(nice.map(|r| r.ok()), Some(Some(HASHING_NICE)));
        assert_eq!(run(|| -> u32 { panic!("boom") }).await, None);
        // Every thread still serves after the panic.
        for _ in 0..8 {
            assert_eq!(run(|| 7).await, Some(7));
        }
    }
}
