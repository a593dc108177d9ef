//! [`Queue`]: accepting transactions with one commit, and owning the partition actors.

use crate::actor::{QueueActor, QueueMsg};
use crate::delivery::Courier;
use crate::relay::Relay;
use crate::{Accepted, Envelope, QueueError};
use ractor::{Actor, ActorRef};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_core::sync::lock;
use tern_core::{AccountId, DeliveryId, GroupId};
use tern_directory::Directory;
use tern_raft::RaftNode;
use tern_store::{Command, Rejection, Response, SendLimits};
use tokio::task::JoinHandle;

struct Inner {
    raft: RaftNode,
    /// Remote delivery, shared by the partition actors.
    relay: Relay,
    /// One actor per data partition; index `g - 1` serves partition `g`. Empty until the node
    /// has its partitions (a cluster member that has not joined yet).
    actors: Mutex<Vec<ActorRef<QueueMsg>>>,
    /// The actors' tasks, taken and awaited by `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// How long de-duplication records are kept.
    dedup_window: Duration,
    /// Starts the actors once the partitions run.
    starter: Mutex<Option<JoinHandle<()>>>,
}

/// The queue service and its partition actors. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl Queue {
    /// Starts one queue actor per partition (once the node has its partitions), and wakes a
    /// partition's actor whenever this replica applies a transaction that queued something
    /// there — wherever it was accepted — or an operator's retry.
    /// Each actor also forgets, on its partition, the de-duplication records of transactions
    /// older than `dedup_window`.
    pub async fn start(
        raft: RaftNode,
        relay: Relay,
        dedup_window: Duration,
    ) -> Result<Queue, QueueError> {
        let queue = Queue {
            inner: Arc::new(Inner {
                raft: raft.clone(),
                relay,
                dedup_window,
                actors: Mutex::new(Vec::new()),
                tasks: Mutex::new(Vec::new()),
                starter: Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&queue.inner);
        raft.observe(Arc::new(move |group, command, _response| {
            let queued = match command {
                Command::Accept {
                    other_partitions,
                    remote,
                    ..
                } => !other_partitions.is_empty() || !remote.is_empty(),
                Command::RetryQueued { .. } => true,
                _ => false,
            };
            if queued && let Some(inner) = weak.upgrade() {
                Queue { inner }.wake(group);
            }
        }));
        if raft.has_groups() {
            queue.spawn_actors().await?;
        } else {
            let later = queue.clone();
            let starter = tokio::spawn(async move {
                later.inner.raft.wait_started().await;
                if let Err(e) = later.spawn_actors().await {
                    tracing::error!("queue actors did not start: {e}");
                }
            });
            *lock(&queue.inner.starter) = Some(starter);
        }
        Ok(queue)
    }

    async fn spawn_actors(&self) -> Result<(), QueueError> {
        let raft = &self.inner.raft;
        let partitions = raft.partitions();
        let mut actors = Vec::with_capacity(partitions as usize);
        let mut tasks = Vec::with_capacity(partitions as usize);
        for g in 1..=partitions {
            let group = GroupId(g);
            let courier = Courier {
                raft: raft.clone(),
                group,
                relay: self.inner.relay.clone(),
                directory: Directory::new(raft.clone()),
                dedup_window: self.inner.dedup_window,
            };
            match Actor::spawn(None, QueueActor, courier).await {
                Ok((actor, task)) => {
                    actors.push(actor);
                    tasks.push(task);
                }
                Err(e) => {
                    // Do not leave the partitions started so far running without an owner.
                    for actor in &actors {
                        actor.stop(None);
                    }
                    let reason = format!("cannot start queue actor: {e}");
                    return Err(QueueError::unavailable(group, reason));
                }
            }
        }
        *lock(&self.inner.actors) = actors;
        *lock(&self.inner.tasks) = tasks;
        Ok(())
    }

    /// Commits `envelope` under a fresh transaction id (one Raft commit in the common case)
    /// and returns after the commit.
    pub async fn accept(&self, envelope: Envelope) -> Result<Accepted, QueueError> {
        self.accept_once(envelope, DeliveryId::random()).await
    }

    /// Commits `envelope` as transaction `id` and returns after the commit. Within the dedup
    /// window, committing the same id again stores nothing and returns the first outcome:
    /// SMTP passes [`transaction_id`](crate::transaction_id) so a sender's retry is stored once.
    pub async fn accept_once(
        &self,
        envelope: Envelope,
        id: DeliveryId,
    ) -> Result<Accepted, QueueError> {
        let now = chrono::Utc::now().timestamp();
        crate::accept::commit(&self.inner.raft, envelope, id, now).await
    }

    /// Counts one message `account` is about to send against `limits`, in the account's
    /// partition so the count holds cluster-wide. `Ok(false)`: over the limit, refuse it.
    /// Without limits nothing is committed.
    pub async fn charge_send(
        &self,
        account: AccountId,
        limits: SendLimits,
    ) -> Result<bool, QueueError> {
        if !limits.any() {
            return Ok(true);
        }
        let raft = &self.inner.raft;
        let group = raft.partition_of(account);
        let command = Command::ChargeSend {
            account,
            at: chrono::Utc::now().timestamp(),
            limits,
        };
        match raft.propose(group, command).await? {
            Response::Ok => Ok(true),
            Response::Rejected(Rejection::SendLimitExceeded) => Ok(false),
            other => Err(QueueError::unexpected(group, &other)),
        }
    }

    /// Whether `account` is already at or over its quota, read from this node's replica of its
    /// partition (false on a node without one). A pre-check for SMTP RCPT (452 4.2.2): the
    /// commit itself enforces the quota exactly, in the state machine.
    pub fn is_full(&self, account: &tern_directory::AccountInfo) -> Result<bool, QueueError> {
        let partition = self.inner.raft.partition_of(account.id);
        if account.quota == 0 || !self.inner.raft.has_replica(partition) {
            return Ok(false);
        }
        let reader = self.inner.raft.local_reader(partition);
        Ok(reader.usage(account.id)? >= account.quota)
    }

    /// Everything queued, in every partition.
    pub async fn list(&self) -> Result<Vec<QueueRecord>, QueueError> {
        let raft = self.inner.raft.clone();
        let readers: Vec<_> = local_partitions(&raft)
            .map(|g| raft.local_reader(g))
            .collect();
        let all = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            for reader in readers {
                all.extend(reader.queue()?);
            }
            Ok::<_, QueueError>(all)
        })
        .await
        .map_err(|e| QueueError::unavailable(GroupId::META, format!("queue read failed: {e}")))?;
        let mut all = all?;
        all.sort_by_key(|r| (r.created, r.id));
        Ok(all)
    }

    /// One queued message, from this node's replicas.
    pub async fn get(&self, id: DeliveryId) -> Result<Option<QueueRecord>, QueueError> {
        Ok(self.find(id).await?.map(|(_, record)| record))
    }

    /// Makes every remote recipient of `id` due now (`tern queue retry`).
    pub async fn retry(&self, id: DeliveryId) -> Result<(), QueueError> {
        let (group, _) = self.find(id).await?.ok_or(QueueError::NotQueued(id))?;
        let now = chrono::Utc::now().timestamp();
        let command = Command::RetryQueued { id: Some(id), now };
        match self.inner.raft.propose(group, command).await? {
            Response::Ok => Ok(()),
            Response::Rejected(Rejection::NotQueued) => Err(QueueError::NotQueued(id)),
            other => Err(QueueError::unexpected(group, &other)),
        }
    }

    /// Removes `id` from the queue without delivering or bouncing it (`tern queue delete`).
    pub async fn delete(&self, id: DeliveryId) -> Result<(), QueueError> {
        let (group, _) = self.find(id).await?.ok_or(QueueError::NotQueued(id))?;
        match self
            .inner
            .raft
            .propose(group, Command::DeleteQueued { id })
            .await?
        {
            Response::Ok => Ok(()),
            Response::Rejected(Rejection::NotQueued) => Err(QueueError::NotQueued(id)),
            other => Err(QueueError::unexpected(group, &other)),
        }
    }

    /// Makes every remote recipient in the queue due now (`tern queue flush`); returns how
    /// many messages had remote recipients waiting.
    pub async fn flush(&self) -> Result<usize, QueueError> {
        let raft = &self.inner.raft;
        let now = chrono::Utc::now().timestamp();
        let mut waiting = 0;
        for group in local_partitions(raft) {
            let reader = raft.local_reader(group);
            let queued = tokio::task::spawn_blocking(move || reader.queue())
                .await
                .map_err(|e| QueueError::unavailable(group, format!("queue read failed: {e}")))??;
            let remote = queued
                .iter()
                .filter(|q| {
                    q.recipients
                        .iter()
                        .any(|r| matches!(r, QueuedRecipient::Remote { .. }))
                })
                .count();
            if remote == 0 {
                continue;
            }
            waiting += remote;
            match raft
                .propose(group, Command::RetryQueued { id: None, now })
                .await?
            {
                Response::Ok => {}
                other => return Err(QueueError::unexpected(group, &other)),
            }
        }
        Ok(waiting)
    }

    /// The partition holding `id` and its record, from this node's replicas.
    async fn find(&self, id: DeliveryId) -> Result<Option<(GroupId, QueueRecord)>, QueueError> {
        let raft = self.inner.raft.clone();
        let readers: Vec<_> = local_partitions(&raft)
            .map(|g| raft.local_reader(g))
            .collect();
        tokio::task::spawn_blocking(move || {
            for reader in readers {
                if let Some(record) = reader.queued(id)? {
                    return Ok(Some((reader.group(), record)));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|e| QueueError::unavailable(GroupId::META, format!("queue read failed: {e}")))?
    }

    /// Stops the queue actors.
    pub async fn shutdown(&self) {
        if let Some(starter) = lock(&self.inner.starter).take() {
            starter.abort();
        }
        for actor in lock(&self.inner.actors).iter() {
            actor.stop(Some("shutdown".into()));
        }
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!("queue actor ended badly: {e}");
            }
        }
    }

    /// Asks `group`'s actor for a pass now instead of at its next tick.
    fn wake(&self, group: GroupId) {
        let actors = lock(&self.inner.actors);
        let actor = (group.0 as usize)
            .checked_sub(1)
            .and_then(|i| actors.get(i));
        if let Some(actor) = actor
            && actor.cast(QueueMsg::Wake).is_err()
        {
            tracing::debug!(%group, "queue actor stopped; the mail waits for the next start");
        }
    }
}

/// The partitions this node holds a replica of: queue commands read those (on a cluster
/// larger than the replication factor, each node sees its share of the queue).
fn local_partitions(raft: &RaftNode) -> impl Iterator<Item = GroupId> + '_ {
    (1..=raft.partitions())
        .map(GroupId)
        .filter(|g| raft.has_replica(*g))
}
