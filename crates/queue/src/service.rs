//! [`Queue`]: accepting transactions with one commit, and owning the partition actors.

use crate::actor::{QueueActor, QueueMsg};
use crate::delivery::Courier;
use crate::plan::plan;
use crate::{Accepted, Envelope, QueueError};
use ractor::{Actor, ActorRef};
use std::sync::{Arc, Mutex};
use tern_core::records::QueueRecord;
use tern_core::{DeliveryId, GroupId};
use tern_raft::RaftNode;
use tern_store::{Command, DeliveryOutcome, Response};
use tokio::task::JoinHandle;

struct Inner {
    raft: RaftNode,
    /// One actor per data partition; index `g - 1` serves partition `g`. Empty until the node
    /// has its partitions (a cluster member that has not joined yet).
    actors: Mutex<Vec<ActorRef<QueueMsg>>>,
    /// The actors' tasks, taken and awaited by `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Starts the actors once the partitions run.
    starter: Mutex<Option<JoinHandle<()>>>,
}

/// The queue service and its partition actors. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Queue {
    /// Starts one queue actor per partition (once the node has its partitions), and wakes a
    /// partition's actor whenever this replica applies a transaction that queued something
    /// there — wherever it was accepted.
    pub async fn start(raft: RaftNode) -> Result<Queue, QueueError> {
        let queue = Queue {
            inner: Arc::new(Inner {
                raft: raft.clone(),
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

    /// Commits `envelope` (one Raft commit in the common case) and returns after the commit.
    pub async fn accept(&self, envelope: Envelope) -> Result<Accepted, QueueError> {
        let raft = &self.inner.raft;
        let plan = plan(&envelope, raft.partitions())?;
        let id = DeliveryId::random();
        let queued = plan.other_partitions.len() + plan.remote.len();
        let addresses: Vec<(tern_core::AccountId, String)> = plan
            .local
            .iter()
            .map(|l| (l.account, l.address.clone()))
            .collect();
        let command = Command::Accept {
            id,
            sender: envelope.sender,
            body: envelope.body,
            received_at: chrono::Utc::now().timestamp(),
            local: plan.local,
            other_partitions: plan.other_partitions,
            remote: plan.remote,
        };
        let outcomes = match raft.propose(plan.group, command).await? {
            Response::Accepted(outcomes) => outcomes,
            other => return Err(QueueError::unexpected(plan.group, &other)),
        };
        let mut over_quota = Vec::new();
        let mut delivered = 0;
        for outcome in outcomes {
            match outcome {
                // Watchers hear of it from the apply, on every node.
                DeliveryOutcome::Delivered { .. } => delivered += 1,
                DeliveryOutcome::OverQuota { account } => {
                    let address = addresses.iter().find(|(a, _)| *a == account);
                    over_quota.extend(address.map(|(_, addr)| addr.clone()));
                }
            }
        }
        // The partition's queue actor is woken by the apply itself (see `start`).
        Ok(Accepted {
            id,
            over_quota,
            accepted: delivered + queued,
        })
    }

    /// Whether `account` is already at or over its quota, read from this node's replica of its
    /// partition. A pre-check for SMTP RCPT (452 4.2.2): the commit itself enforces the quota
    /// exactly, in the state machine.
    pub fn is_full(&self, account: &tern_directory::AccountInfo) -> Result<bool, QueueError> {
        if account.quota == 0 {
            return Ok(false);
        }
        let reader = self
            .inner
            .raft
            .local_reader(self.inner.raft.partition_of(account.id));
        Ok(reader.usage(account.id)? >= account.quota)
    }

    /// Everything queued, in every partition.
    pub async fn list(&self) -> Result<Vec<QueueRecord>, QueueError> {
        let raft = self.inner.raft.clone();
        let readers: Vec<_> = (1..=raft.partitions())
            .map(|g| raft.local_reader(GroupId(g)))
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
