//! The POP3 maildrop lock (RFC 1939 §8), held across the cluster: a lease in the account's
//! partition (`Command::LeaseMaildrop`) that the session renews while it lives and releases
//! when it ends. A second session on any node is refused while the lease runs; a session on
//! a node that died stops holding it [`LEASE`] after its last renewal at the latest.

use std::sync::Arc;
use std::time::Duration;

use tern_core::{AccountId, DeliveryId, GroupId};
use tern_raft::RaftNode;
use tern_store::{Command, Rejection, Response};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinHandle;

use crate::MailboxError;

/// How long a lease runs unless renewed.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often a live session renews its lease: three chances before it runs out.
const RENEW_EVERY: Duration = Duration::from_secs(20);

/// Holds the POP3 maildrop lock of one account until released or dropped. [`release`]
/// (Self::release) returns once the lease has ended, so the user's next session is not
/// refused; dropping it releases in the background.
pub struct MaildropLock {
    /// Refuses a second session on this node without a round trip.
    _local: OwnedMutexGuard<()>,
    /// `None` once released.
    lease: Option<Lease>,
    renewal: JoinHandle<()>,
}

/// One session's claim on an account's maildrop.
#[derive(Clone)]
struct Lease {
    raft: RaftNode,
    partition: GroupId,
    account: AccountId,
    holder: u128,
}

impl MaildropLock {
    /// Takes the account's maildrop: `MailboxError::InUse` if a session on this node or a
    /// live lease from any node holds it.
    pub(crate) async fn take(
        local: &Arc<Mutex<()>>,
        raft: RaftNode,
        partition: GroupId,
        account: AccountId,
    ) -> Result<MaildropLock, MailboxError> {
        let local = Arc::clone(local)
            .try_lock_owned()
            .map_err(|_| MailboxError::InUse)?;
        let lease = Lease {
            raft,
            partition,
            account,
            holder: DeliveryId::random().0,
        };
        lease.renew().await?;
        let renewal = tokio::spawn(lease.clone().keep_renewed());
        Ok(MaildropLock {
            _local: local,
            lease: Some(lease),
            renewal,
        })
    }

    /// Ends the lease and returns once that committed (or failed: then it runs out by itself).
    pub async fn release(mut self) {
        self.renewal.abort();
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.renewal.abort();
        // Best effort: a release that does not commit leaves a lease that runs out by itself.
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(lease.release());
        }
    }
}

impl Lease {
    /// Takes or extends the lease to [`LEASE`] from now.
    async fn renew(&self) -> Result<(), MailboxError> {
        let now = chrono::Utc::now().timestamp();
        let command = Command::LeaseMaildrop {
            account: self.account,
            holder: self.holder,
            now,
            until: now + LEASE.as_secs() as i64,
        };
        match self.raft.propose(self.partition, command).await {
            Ok(Response::Ok) => Ok(()),
            Ok(Response::Rejected(Rejection::MaildropInUse)) => Err(MailboxError::InUse),
            Ok(other) => Err(MailboxError::unexpected(self.partition, &other)),
            Err(e) => Err(MailboxError::from(e)),
        }
    }

    /// Renews the lease until the lock is dropped (which aborts this task).
    async fn keep_renewed(self) {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.renew().await {
                Ok(()) => {}
                Err(MailboxError::InUse) => {
                    tracing::warn!(account = %self.account,
                        "POP3 maildrop lease lost to another session");
                    return;
                }
                Err(e) => {
                    tracing::info!(account = %self.account, error = %e,
                        "POP3 maildrop lease renewal failed; trying again");
                }
            }
        }
    }

    async fn release(self) {
        let command = Command::ReleaseMaildrop {
            account: self.account,
            holder: self.holder,
        };
        if let Err(e) = self.raft.propose(self.partition, command).await {
            tracing::info!(account = %self.account, error = %e,
                "POP3 maildrop release did not commit; the lease will run out");
        }
    }
}
