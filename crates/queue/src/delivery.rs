//! One pass over a partition's queue: every queued local recipient gets its `Deliver` in its
//! own partition, then leaves the queue; due remote recipients are handed to delivery tasks
//! (see `outbound`).
//!
//! Each step is idempotent (`Deliver` by transaction and account, `Dequeue` by recipient), so a
//! pass that stops half-way, or two passes racing after a leadership change, never deliver
//! twice: the next pass simply finishes the work.

use crate::QueueError;
use crate::actor::QueueMsg;
use crate::bounce::{self, Original};
use crate::dsn::{DsnKind, RecipientStatus};
use crate::outbound::{Key, earliest_retry, has_local, remote_due};
use crate::relay::Relay;
use ractor::ActorRef;
use std::collections::HashSet;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_core::{AccountId, GroupId};
use tern_directory::Directory;
use tern_raft::RaftNode;
use tern_store::{Command, DeliveryOutcome, LocalRecipient, Rejection, Response};
use tokio::task::JoinHandle;

/// At most this many queue entries are worked on per pass, so one huge backlog cannot starve
/// the actor's other messages; the rest waits for the next pass.
const ACTIVE_LIMIT: usize = 256;

/// What a pass needs: the partition it works for and the services it calls.
#[derive(Clone)]
pub(crate) struct Courier {
    /// Proposals and reads.
    pub raft: RaftNode,
    /// The partition whose queue this is.
    pub group: GroupId,
    /// Remote delivery.
    pub relay: Relay,
    /// Resolves the senders that DSNs go to.
    pub directory: Directory,
    /// How long de-duplication records are kept.
    pub dedup_window: std::time::Duration,
}

/// What a pass did.
#[derive(Default)]
pub(crate) struct Pass {
    /// Local recipients delivered.
    pub delivered: usize,
    /// Remote delivery tasks started.
    pub tasks: Vec<JoinHandle<()>>,
    /// The earliest later attempt among the remote recipients seen (unix seconds).
    pub next_due: Option<i64>,
}

/// The most de-duplication records one sweep removes.
pub(crate) const EXPIRE_LIMIT: u32 = 10_000;

impl Courier {
    /// On the partition's leader, forgets the de-duplication records older than the window;
    /// returns how many went (`EXPIRE_LIMIT` means there may be more).
    pub(crate) async fn expire_dedup(&self) -> Result<u32, QueueError> {
        if !self.raft.leads(self.group) {
            return Ok(0);
        }
        let window = i64::try_from(self.dedup_window.as_secs()).unwrap_or(i64::MAX);
        let before = chrono::Utc::now().timestamp().saturating_sub(window);
        let command = Command::ExpireDedup {
            before,
            limit: EXPIRE_LIMIT,
        };
        match self.raft.propose(self.group, command).await? {
            Response::Expired(n) => Ok(n),
            other => Err(QueueError::unexpected(self.group, &other)),
        }
    }

    /// Works through the queue once: starts delivery tasks for the due remote recipients not
    /// in `in_flight` (this actor has `running` tasks already), delivers the local ones.
    pub(crate) async fn pass(
        &self,
        in_flight: &mut HashSet<Key>,
        running: usize,
        myself: &ActorRef<QueueMsg>,
    ) -> Result<Pass, QueueError> {
        // Only the leader's actor delivers (a racing pass after a leadership change is
        // harmless: every step is idempotent).
        if !self.raft.leads(self.group) {
            return Ok(Pass::default());
        }
        let reader = self.raft.read(self.group).await?;
        let entries = self.blocking(move || Ok(reader.queue()?)).await?;
        let now = chrono::Utc::now().timestamp();
        let next_due = earliest_retry(&entries, now, in_flight);
        // Only entries with work to do now count against the limit: a backlog of deferred
        // messages (a remote domain down for days) must not hide newer mail behind it.
        let active: Vec<QueueRecord> = entries
            .into_iter()
            .filter(|e| has_local(e) || remote_due(e, now, in_flight))
            .take(ACTIVE_LIMIT)
            .collect();
        // Remote first: it only starts tasks, so a failing local delivery cannot hold it up.
        let tasks = self
            .relay_due(&active, now, in_flight, running, myself)
            .await?;
        let mut pass = Pass {
            delivered: 0,
            tasks,
            next_due,
        };
        for entry in &active {
            pass.delivered += self.entry(entry).await?;
        }
        Ok(pass)
    }

    /// Delivers the local recipients of one queued transaction.
    async fn entry(&self, entry: &QueueRecord) -> Result<usize, QueueError> {
        let locals: Vec<(AccountId, &str, &str)> = entry
            .recipients
            .iter()
            .filter_map(|r| match r {
                QueuedRecipient::Local {
                    account,
                    address,
                    mailbox,
                } => Some((*account, address.as_str(), mailbox.as_str())),
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
        for (account, address, mailbox) in locals {
            if self
                .recipient(entry, account, address, mailbox, &body)
                .await?
            {
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
        mailbox: &str,
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
                        mailbox: mailbox.to_string(),
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
                        // Deliver remembers this outcome, so retrying cannot succeed: the
                        // sender gets a DSN (once, by its derived id).
                        DeliveryOutcome::OverQuota { .. } => {
                            tracing::warn!(id = %entry.id, address, "over quota; bounced");
                            self.over_quota(entry, address, body).await?;
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

    /// Bounces a queued message a local recipient had no room for.
    async fn over_quota(
        &self,
        entry: &QueueRecord,
        address: &str,
        body: &[u8],
    ) -> Result<(), QueueError> {
        let original = Original {
            id: entry.id,
            sender: &entry.sender,
            created: entry.created,
            body,
        };
        let status = RecipientStatus {
            address: address.to_string(),
            status: "5.2.2".into(),
            diagnostic: "552 5.2.2 mailbox full".into(),
            remote_mta: None,
        };
        let hostname = self.relay.hostname();
        bounce::send(
            &self.raft,
            &self.directory,
            hostname,
            &original,
            DsnKind::Failed,
            status,
            None,
        )
        .await
    }

    /// Runs a RocksDB read on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, read: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, QueueError> + Send + 'static,
    {
        tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| QueueError::unavailable(self.group, format!("read failed: {e}")))?
    }
}
