//! The password-hashing threads: one per core (16 at most), at a lower CPU priority than the
//! rest of the server. An Argon2 run costs tens of milliseconds of CPU; on the async workers it
//! would stall every session, and at equal priority a login storm took the cores from other
//! sessions' commands (under a login-heavy IMAP load, SELECT p99 went from 8.3 to 2.0 ms once
//! hashing ran at nice 10). A storm queues here instead, and the hashing threads get the CPU
//! that nothing else in the process wants.
//!
//! The queue is bounded and has three lanes, served in order: logins by a client that has
//! logged into that account before (and administration), then clients with no recent failed
//! login, then suspects (see `throttle`). A guessing flood thus waits behind real users rather
//! than in front of them; when a lane is full its caller is told to come back later. A job
//! whose caller has gone (the client hung up, the future was dropped) is skipped.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, OnceLock};

/// The hashing threads' nice value (the server runs at 0; 19 is the lowest priority).
const HASHING_NICE: i32 = 10;

/// At most this many hashing threads, however many cores: each keeps a 19 MiB buffer resident,
/// and 16 parallel hashes already verify several hundred logins a second.
const MAX_THREADS: usize = 16;

/// Jobs that may wait per hashing thread in each lane (the first two: about two seconds of
/// work each).
const QUEUE_PER_THREAD: [usize; 3] = [48, 48, 16];

/// Which lane a job waits in, first served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Administration, and logins by a client known to the account.
    Known = 0,
    /// Logins by clients with no recent failure.
    Clean = 1,
    /// Logins by clients that failed lately.
    Suspect = 2,
}

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashError {
    /// Its lane was full: too many logins in progress; try later.
    Busy,
    /// It panicked, or no hashing thread could start.
    Failed,
}

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    /// One queue per [`Lane`].
    jobs: Mutex<[VecDeque<Job>; 3]>,
    ready: Condvar,
    threads: usize,
}

/// Runs `work` on a hashing thread, in `lane`.
pub(crate) async fn run<T: Send + 'static>(
    lane: Lane,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashError> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The caller may have gone (a dropped connection): its work is not wanted.
        if !reply.is_closed() {
            let _ = reply.send(work());
        }
    });
    pool().ok_or(HashError::Failed)?.submit(lane, job)?;
    answer.await.map_err(|_| HashError::Failed)
}

impl Pool {
    fn submit(&self, lane: Lane, job: Job) -> Result<(), HashError> {
        let mut jobs = tern_core::sync::lock(&self.jobs);
        let queue = &mut jobs[lane as usize];
        if queue.len() >= QUEUE_PER_THREAD[lane as usize] * self.threads {
            return Err(HashError::Busy);
        }
        queue.push_back(job);
        drop(jobs);
        self.ready.notify_one();
        Ok(())
    }

    fn serve(&self) {
        lower_priority();
        loop {
            let job = {
                let mut jobs = tern_core::sync::lock(&self.jobs);
                loop {
                    if let Some(job) = jobs.iter_mut().find_map(VecDeque::pop_front) {
                        break job;
                    }
                    jobs = self
                        .ready
                        .wait(jobs)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            // A panicking job drops its reply sender, so its caller sees Failed; the thread
            // goes on.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        }
    }
}

/// The pool, its threads started on first use; `None` if none could start.
fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = cores.min(MAX_THREADS);
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            jobs: Mutex::default(),
            ready: Condvar::new(),
            threads,
        }));
        let mut started = 0;
        for i in 0..threads {
            match std::thread::Builder::new()
                .name(format!("tern-hash-{i}"))
                .spawn(move || pool.serve())
            {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start a password-hashing thread"),
            }
        }
        (started > 0).then_some(pool)
    })
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
        // The Known lane only: the other test fills the Clean and Suspect ones.
        let nice = run(Lane::Known, || rustix::process::getpriority_process(None)).await;
        assert_eq!(nice.map(|r| r.ok()), Ok(Some(HASHING_NICE)));
        assert_eq!(
            run(Lane::Known, || -> u32 { panic!("boom") }).await,
            Err(HashError::Failed)
        );
        // Every thread still serves after the panic.
        for _ in 0..8 {
            assert_eq!(run(Lane::Known, || 7).await, Ok(7));
        }
    }

    #[tokio::test]
    async fn a_full_lane_says_busy_earlier_lanes_go_first_and_abandoned_work_is_skipped() {
        let pool = pool().unwrap();
        // Hold every thread so that the queue fills.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(Mutex::new(gate));
        let holding = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let held: Vec<_> = (0..pool.threads)
            .map(|_| {
                let (gate, holding) = (gate.clone(), holding.clone());
                tokio::spawn(run(Lane::Clean, move || {
                    holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tern_core::sync::lock(&gate).recv();
                }))
            })
            .collect();
        // Wait until every thread has taken its blocking job.
        while holding.load(std::sync::atomic::Ordering::SeqCst) < pool.threads {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut queued = Vec::new();
        let suspects = QUEUE_PER_THREAD[Lane::Suspect as usize] * pool.threads;
        for i in 0..suspects {
            let order = order.clone();
            queued.push(tokio::spawn(run(Lane::Suspect, move || {
                tern_core::sync::lock(&order).push(("suspect", i))
            })));
        }
        while tern_core::sync::lock(&pool.jobs)[Lane::Suspect as usize].len() < suspects {
            tokio::task::yield_now().await;
        }
        assert_eq!(run(Lane::Suspect, || ()).await, Err(HashError::Busy));
        // A clean job queued behind them, then one whose caller leaves.
        let clean = {
            let order = order.clone();
            tokio::spawn(run(Lane::Clean, move || {
                tern_core::sync::lock(&order).push(("clean", 0))
            }))
        };
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let abandoned = {
            let ran = ran.clone();
            tokio::spawn(run(Lane::Clean, move || {
                ran.store(true, std::sync::atomic::Ordering::SeqCst)
            }))
        };
        while tern_core::sync::lock(&pool.jobs)[Lane::Clean as usize].len() < 2 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        for _ in 0..pool.threads {
            release.send(()).unwrap();
        }
        for h in held {
            h.await.unwrap().unwrap();
        }
        clean.await.unwrap().unwrap();
        for q in queued {
            q.await.unwrap().unwrap();
        }
        assert_eq!(tern_core::sync::lock(&order).first(), Some(&("clean", 0)));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
