//! [`Queue`]: accepting transactions with one commit, and owning the partition actors.

use crate::actor::{QueueActor, QueueMsg};
use crate::delivery::Courier;
use crate::plan::plan;
use crate::{Accepted, Envelope, QueueError};
use ractor::{Actor, ActorRef};
use std::sync::{Arc, Mutex};
use tern_core::records::QueueRecord;
use tern_core::{DeliveryId, GroupId};
use tern_mailbox::Mailboxes;
use tern_raft::RaftNode;
use tern_store::{Command, DeliveryOutcome, Response};
use tokio::task::JoinHandle;

struct Inner {
    raft: RaftNode,
    mailboxes: Mailboxes,
    /// One actor per data partition; index `g - 1` serves partition `g`.
    actors: Vec<ActorRef<QueueMsg>>,
    /// The actors' tasks, taken and awaited by `shutdown`.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The queue service and its partition actors. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl Queue {
    /// Starts one queue actor per partition.
    pub async fn start(raft: RaftNode, mailboxes: Mailboxes) -> Result<Queue, QueueError> {
        let partitions = raft.partitions();
        let mut actors = Vec::with_capacity(partitions as usize);
        let mut tasks = Vec::with_capacity(partitions as usize);
        for g in 1..=partitions {
            let group = GroupId(g);
            let courier = Courier {
                raft: raft.clone(),
                mailboxes: mailboxes.clone(),
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
        Ok(Queue {
            inner: Arc::new(Inner {
                raft,
                mailboxes,
                actors,
                tasks: Mutex::new(tasks),
            }),
        })
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
                DeliveryOutcome::Delivered {
                    account, mailbox, ..
                } => {
                    delivered += 1;
                    self.inner.mailboxes.notify_changed(account, mailbox).await;
                }
                DeliveryOutcome::OverQuota { account } => {
                    let address = addresses.iter().find(|(a, _)| *a == account);
                    over_quota.extend(address.map(|(_, addr)| addr.clone()));
                }
            }
        }
        if queued > 0 {
            self.wake(plan.group);
        }
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
        for actor in &self.inner.actors {
            actor.stop(Some("shutdown".into()));
        }
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            if let Err(e) = task.await {
                tracing::warn!("queue actor ended badly: {e}");
            }
        }
    }

    /// Asks `group`'s actor for a pass now instead of at its next tick.
    fn wake(&self, group: GroupId) {
        let actor = (group.0 as usize)
            .checked_sub(1)
            .and_then(|i| self.inner.actors.get(i));
        if let Some(actor) = actor
            && actor.cast(QueueMsg::Wake).is_err()
        {
            tracing::debug!(%group, "queue actor stopped; the mail waits for the next start");
        }
    }
}
