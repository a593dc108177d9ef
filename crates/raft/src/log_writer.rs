//! Group commit: one WAL syncer per node. Log appends of every group are written to RocksDB
//! without sync (visible at once), then queue a completion here; this thread fsyncs the WAL
//! once for everything queued and then completes all of them. One fsync serves many groups and
//! many messages, and no append is acknowledged to Raft before its fsync.

use openraft::storage::LogFlushed;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tern_store::Db;
use tokio::sync::{mpsc, oneshot};

use crate::TypeConfig;

/// Something waiting for the next fsync.
pub(crate) enum Waiter {
    /// openraft's callback for an append.
    Flushed(LogFlushed<TypeConfig>),
    /// A plain waiter (vote, truncate).
    Notify(oneshot::Sender<io::Result<()>>),
    /// Stop the syncer after this batch (shutdown).
    Stop,
}

impl Waiter {
    fn complete(self, result: &Result<(), String>) {
        let r = result.clone().map_err(io::Error::other);
        match self {
            Waiter::Flushed(cb) => cb.log_io_completed(r),
            Waiter::Notify(tx) => {
                let _ = tx.send(r);
            }
            Waiter::Stop => {}
        }
    }
}

/// Where the syncer runs.
enum Syncer {
    /// Its own thread (a real node).
    Thread(std::thread::JoinHandle<()>),
    /// A task that syncs on the runtime's thread (the simulator: see [`LogWriter::start_inline`]).
    Task(tokio::task::JoinHandle<()>),
}

/// Handle to the node's WAL syncer. Cheap to clone.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::UnboundedSender<Waiter>,
    syncs: Arc<AtomicU64>,
    syncer: Arc<std::sync::Mutex<Option<Syncer>>>,
}

impl LogWriter {
    /// Starts the syncer thread for `db`. It ends when every handle is dropped.
    pub fn start(db: Db) -> io::Result<LogWriter> {
        let (tx, rx) = mpsc::unbounded_channel();
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = syncs.clone();
        let thread = std::thread::Builder::new()
            .name("tern-wal-sync".into())
            .spawn(move || run(db, rx, counter))?;
        Ok(LogWriter {
            tx,
            syncs,
            syncer: Arc::new(std::sync::Mutex::new(Some(Syncer::Thread(thread)))),
        })
    }

    /// Starts a syncer for `db` as a task that fsyncs on the runtime's own thread, blocking it.
    /// Only for the simulator: on a current-thread runtime with a paused clock, nothing runs
    /// and no time passes during an fsync, so the order of events does not depend on how long
    /// the disk takes.
    pub fn start_inline(db: Db) -> LogWriter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = syncs.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while let Ok(more) = rx.try_recv() {
                    batch.push(more);
                }
                if sync_batch(&db, &mut batch, &counter) {
                    return;
                }
            }
        });
        LogWriter {
            tx,
            syncs,
            syncer: Arc::new(std::sync::Mutex::new(Some(Syncer::Task(task)))),
        }
    }

    /// Queues `waiter` for the next fsync.
    pub(crate) fn after_sync(&self, waiter: Waiter) {
        if let Err(mpsc::error::SendError(w)) = self.tx.send(waiter) {
            w.complete(&Err("WAL syncer stopped".into()));
        }
    }

    /// Waits until everything written so far is on disk.
    pub async fn sync(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.after_sync(Waiter::Notify(tx));
        rx.await
            .unwrap_or_else(|_| Err(io::Error::other("WAL syncer stopped")))
    }

    /// Syncs what is pending, stops the thread and waits for it, so its handle on RocksDB is
    /// gone when this returns (the database must not be closed by a thread that outlives the
    /// runtime).
    pub async fn stop(&self) {
        let _ = self.tx.send(Waiter::Stop);
        let syncer = tern_core::sync::lock(&self.syncer).take();
        match syncer {
            Some(Syncer::Thread(handle)) => {
                let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            }
            Some(Syncer::Task(task)) => {
                let _ = task.await;
            }
            None => {}
        }
    }

    /// How many fsyncs the syncer has done (a metric; fewer than appends means batching works).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Waiter>, syncs: Arc<AtomicU64>) {
    let mut batch = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        if sync_batch(&db, &mut batch, &syncs) {
            return;
        }
    }
}

/// Fsyncs the WAL once and completes every waiter of `batch`; true if one asked to stop.
fn sync_batch(db: &Db, batch: &mut Vec<Waiter>, syncs: &AtomicU64) -> bool {
    let result = db.sync_wal().map_err(|e| e.to_string());
    syncs.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &result {
        tracing::error!(error = %e, "WAL fsync failed");
    }
    let stop = batch.iter().any(|w| matches!(w, Waiter::Stop));
    for waiter in batch.drain(..) {
        waiter.complete(&result);
    }
    stop
}
