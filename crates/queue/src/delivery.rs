//! One pass over a partition's queue: every queued local recipient gets its `Deliver` in its
//! own partition, then leaves the queue. Remote recipients wait for the outbound relay.
//!
//! Each step is idempotent (`Deliver` by transaction and account, `Dequeue` by recipient), so a
//! pass that stops half-way, or two passes racing after a leadership change, never deliver
//! twice: the next pass simply finishes the work.

use crate::QueueError;
use crate::plan::INBOX;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_core::{AccountId, GroupId};
use tern_raft::RaftNode;
use tern_store::{Command, DeliveryOutcome, LocalRecipient, Rejection, Response};

/// At most this many queue entries are worked on per pass, so one huge backlog cannot starve
/// the actor's other messages; the rest waits for the next pass.
const ACTIVE_LIMIT: usize = 256;

/// What a pass needs: the partition it works for and the services it calls.
pub(crate) struct Courier {
    /// Proposals and reads.
    pub raft: RaftNode,
    /// The partition whose queue this is.
    pub group: GroupId,
}

impl Courier {
    /// Works through the queue once; returns how many recipients were delivered.
    pub(crate) async fn pass(&self) -> Result<usize, QueueError> {
        // Only the leader's actor delivers (a racing pass after a leadership change is
        // harmless: every step is idempotent).
        if !self.raft.leads(self.group) {
            return Ok(0);
        }
        let reader = self.raft.read(self.group).await?;
        let entries = self.blocking(move || Ok(reader.queue()?)).await?;
        let mut delivered = 0;
        for entry in entries.into_iter().take(ACTIVE_LIMIT) {
            delivered += self.entry(&entry).await?;
        }
        Ok(delivered)
    }

    /// Delivers the local recipients of one queued transaction.
    async fn entry(&self, entry: &QueueRecord) -> Result<usize, QueueError> {
        let locals: Vec<(AccountId, &str)> = entry
            .recipients
            .iter()
            .filter_map(|r| match r {
                QueuedRecipient::Local { account, address } => Some((*account, address.as_str())),
                QueuedRecipient::Remote { .. } => None,
            })
            .collect();
        if locals.is_empty() {
            return Ok(0);
        }
        let reader = self.raft.local_reader(self.group);
        let blob = entry.blob;
        let Some(body) = self.blocking(move || Ok(reader.blob(&blob)?)).await? else {
            // The queue entry holds a reference on its blob, so this is damage, not a race.
            tracing::error!(id = %entry.id, ?blob, "queued body missing; entry left alone");
            return Ok(0);
        };
        let mut delivered = 0;
        for (account, address) in locals {
            if self.recipient(entry, account, address, &body).await? {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Delivers to one recipient and dequeues it; true when a message landed in a mailbox.
    async fn recipient(
        &self,
        entry: &QueueRecord,
        account: AccountId,
        address: &str,
        body: &[u8],
    ) -> Result<bool, QueueError> {
        let meta = self.raft.local_reader(GroupId::META);
        let quota = self
            .blocking(move || Ok(meta.account_by_id(account)?.map(|a| a.quota)))
            .await?;
        let mut landed = false;
        match quota {
            // The account was deleted after the mail was accepted: nobody to deliver to.
            None => tracing::warn!(id = %entry.id, address, "recipient account gone; dropped"),
            Some(quota) => {
                let command = Command::Deliver {
                    id: entry.id,
                    sender: entry.sender.clone(),
                    body: body.to_vec(),
                    received_at: entry.created,
                    recipient: LocalRecipient {
                        account,
                        address: address.to_string(),
                        mailbox: INBOX.to_string(),
                        quota,
                    },
                };
                let target = self.raft.partition_of(account);
                let outcomes = match self.raft.propose(target, command).await? {
                    Response::Accepted(outcomes) => outcomes,
                    Response::Rejected(r) => {
                        // Left queued: the next pass tries again.
                        tracing::warn!(id = %entry.id, address, "delivery refused: {r}");
                        return Ok(false);
                    }
                    other => return Err(QueueError::unexpected(target, &other)),
                };
                for outcome in outcomes {
                    match outcome {
                        // Watchers hear of it from the apply, on every node.
                        DeliveryOutcome::Delivered { .. } => landed = true,
                        // Deliver remembers this outcome, so retrying cannot succeed; the
                        // bounce (DSN) belongs to the outbound issue.
                        DeliveryOutcome::OverQuota { .. } => {
                            tracing::warn!(id = %entry.id, address, "over quota; not delivered")
                        }
                    }
                }
            }
        }
        let dequeue = Command::Dequeue {
            id: entry.id,
            recipient: address.to_string(),
        };
        match self.raft.propose(self.group, dequeue).await? {
            // NotQueued: an earlier, interrupted pass already removed it.
            Response::Ok | Response::Rejected(Rejection::NotQueued) => Ok(landed),
            other => Err(QueueError::unexpected(self.group, &other)),
        }
    }

    /// Runs a RocksDB read on the blocking pool.
    async fn blocking<T, F>(&self, read: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, QueueError> + Send + 'static,
    {
        tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| QueueError::unavailable(self.group, format!("read failed: {e}")))?
    }
}
