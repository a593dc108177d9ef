//! Fresh directory reads: before a login or a recipient lookup trusts the local meta replica,
//! the replica catches up with everything the meta group had committed when the lookup began
//! (a ReadIndex: the leader confirms its leadership with a quorum, this node applies up to the
//! leader's commit index). So once `tern account del` or `tern account passwd` has returned,
//! no node accepts the old credentials: a node that lags catches up first, and one cut off
//! from the quorum answers "temporarily unavailable" rather than from stale state.
//!
//! Confirmations are shared: one task runs them one after another, and every lookup waiting
//! when a confirmation starts is answered by it. A lookup never joins a confirmation that
//! began before it asked (that one might predate the change it must see), so each waits at
//! most for the one in flight and then its own.

use std::sync::{Arc, OnceLock};

use tern_core::GroupId;
use tern_core::ops::Unavailable;
use tern_raft::RaftNode;
use tokio::sync::{mpsc, oneshot};

use crate::DirectoryError;

/// One waiting lookup: answered with the outcome of the confirmation that served it.
type Waiter = oneshot::Sender<Result<(), String>>;

/// The shared confirmations of one [`Directory`](crate::Directory) (and its clones).
#[derive(Clone, Default)]
pub(crate) struct Freshness {
    waiters: Arc<OnceLock<mpsc::UnboundedSender<Waiter>>>,
}

impl Freshness {
    /// Returns once the local meta replica has applied everything committed before the call.
    pub(crate) async fn catch_up(&self, raft: &RaftNode) -> Result<(), DirectoryError> {
        let waiters = self.waiters.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(confirm_in_rounds(raft.clone(), rx));
            tx
        });
        let (tx, rx) = oneshot::channel();
        let stopped =
            || DirectoryError::Unavailable(Unavailable("the directory is shutting down".into()));
        waiters.send(tx).map_err(|_| stopped())?;
        rx.await
            .map_err(|_| stopped())?
            .map_err(|reason| DirectoryError::Unavailable(Unavailable(reason)))
    }
}

/// Serves waiters in rounds: takes every waiter queued so far, runs one linearizable read of
/// the meta group for all of them, answers them, and starts over. Ends when every handle is
/// gone.
async fn confirm_in_rounds(raft: RaftNode, mut waiters: mpsc::UnboundedReceiver<Waiter>) {
    while let Some(first) = waiters.recv().await {
        let mut round = vec![first];
        while let Ok(next) = waiters.try_recv() {
            round.push(next);
        }
        let outcome = raft
            .read(GroupId::META)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
        if let Err(reason) = &outcome {
            tracing::info!(waiting = round.len(), %reason, "directory read barrier failed");
        }
        for waiter in round {
            let _ = waiter.send(outcome.clone());
        }
    }
}
