//! The [`Directory`] handle and the ways it touches the meta group: blocking reads of the
//! local replica (fresh ones first catch up with the group), and proposals.

use crate::DirectoryError;
use crate::fresh::Freshness;
use crate::throttle::{LoginPolicy, Throttle};
use std::sync::Arc;
use tern_core::GroupId;
use tern_raft::RaftNode;
use tern_store::{Command, Reader, Rejection, Response};

/// The directory service. Cheap to clone.
#[derive(Clone)]
pub struct Directory {
    /// Proposals go to the meta group; lookups read its local replica, which every node holds.
    pub(crate) raft: RaftNode,
    /// The shared catch-up rounds of [`Directory::read_fresh`].
    fresh: Freshness,
    /// Failed logins per client and per account (`throttle`).
    pub(crate) throttle: Arc<Throttle>,
}

impl Directory {
    /// A directory over the meta group of `raft`.
    pub fn new(raft: RaftNode) -> Directory {
        Directory::with_login_policy(raft, LoginPolicy::default())
    }

    /// A directory whose logins are throttled by `policy`.
    pub fn with_login_policy(raft: RaftNode, policy: LoginPolicy) -> Directory {
        Directory {
            raft,
            fresh: Freshness::default(),
            throttle: Arc::new(Throttle::new(policy)),
        }
    }

    /// Like [`read`](Self::read), after the local replica has applied everything the meta
    /// group had committed when the call began (see `fresh`): what logins and recipient
    /// lookups use, so an operator's change holds on every node once its command returned.
    pub(crate) async fn read_fresh<T, F>(&self, lookup: F) -> Result<T, DirectoryError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, DirectoryError> + Send + 'static,
    {
        self.fresh.catch_up(&self.raft).await?;
        self.read(lookup).await
    }

    /// Runs `lookup` against the local meta replica on the blocking pool (RocksDB reads block).
    pub(crate) async fn read<T, F>(&self, lookup: F) -> Result<T, DirectoryError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, DirectoryError> + Send + 'static,
    {
        let reader = self.raft.local_reader(GroupId::META);
        tokio::task::spawn_blocking(move || lookup(&reader))
            .await
            .map_err(|e| DirectoryError::task_failed(GroupId::META, &e))?
    }

    /// Proposes `command` to `group`; a deterministic refusal becomes `Rejected`.
    pub(crate) async fn propose(
        &self,
        group: GroupId,
        command: Command,
    ) -> Result<Response, DirectoryError> {
        match self.raft.propose(group, command).await? {
            Response::Rejected(r) => Err(DirectoryError::Rejected(r)),
            other => Ok(other),
        }
    }

    /// Proposes a command whose only success is `Response::Ok`.
    pub(crate) async fn propose_ok(
        &self,
        group: GroupId,
        command: Command,
    ) -> Result<(), DirectoryError> {
        match self.propose(group, command).await? {
            Response::Ok => Ok(()),
            other => Err(DirectoryError::unexpected(group, &other)),
        }
    }
}

/// Unix seconds now, as the proposer chooses timestamps for the state machine.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `NoSuchAccount` as an error, for lookups that precede a proposal.
pub(crate) fn no_such_account() -> DirectoryError {
    DirectoryError::Rejected(Rejection::NoSuchAccount)
}
