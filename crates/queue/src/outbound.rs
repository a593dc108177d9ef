//! The remote half of a queue pass: recipients whose next attempt is due are grouped by
//! destination domain and handed to one delivery task per domain, which runs beside the
//! actor (a slow MX never holds up local delivery) and then commits what happened:
//!
//! - delivered: `Dequeue`;
//! - refused for good (5xx, null MX, no such domain, loop), or failing past
//!   `give_up_after_secs`: a DSN to the sender, then `Dequeue`;
//! - failed for now (4xx, DNS or connection trouble): `Defer` with the next attempt from the
//!   backoff schedule (and, once, a "delayed" DSN when configured).
//!
//! A recipient is in flight from the moment its task is started until the task has committed
//! its outcome; the actor will not start it again before. A node that dies between the
//! remote's `250` and the `Dequeue` commit makes the next leader send that message once more:
//! the one duplicate SMTP cannot avoid.

use crate::QueueError;
use crate::actor::QueueMsg;
use crate::bounce::{self, Original};
use crate::delivery::Courier;
use crate::dsn::{DsnKind, RecipientStatus};
use crate::headers::{received_count, without_return_path};
use crate::relay::{Failure, Outcome, Parcel};
use ractor::ActorRef;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tern_core::DeliveryId;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_store::{Command, Rejection, Response};
use tokio::task::JoinHandle;

/// Delivery tasks one partition runs at a time; more due domains wait for a later pass.
pub(crate) const MAX_TASKS: usize = 32;

/// A remote recipient being worked on: (transaction, address).
pub(crate) type Key = (DeliveryId, String);

/// What a delivery task needs to know about one message beyond its [`Parcel`].
struct Work {
    parcel: Parcel,
    /// Unix seconds the message was accepted.
    created: i64,
    /// Failed attempts so far, per recipient (same order as `parcel.recipients`).
    attempts: Vec<u32>,
}

/// Returns the recipients to this actor when their task ends, however it ends.
struct Release {
    actor: ActorRef<QueueMsg>,
    keys: Vec<Key>,
}

impl Drop for Release {
    fn drop(&mut self) {
        let keys = std::mem::take(&mut self.keys);
        // A stopped actor has nothing left to release.
        let _ = self.actor.cast(QueueMsg::Released(keys));
    }
}

/// The domain of an address, lower-case (address literals keep their brackets).
fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

/// The remote recipients of `entry` that wait for a later attempt, with its time.
fn waiting<'a>(
    entry: &'a QueueRecord,
    in_flight: &'a HashSet<Key>,
) -> impl Iterator<Item = i64> + 'a {
    entry.recipients.iter().filter_map(move |r| match r {
        QueuedRecipient::Remote {
            address,
            next_attempt,
            ..
        } if !in_flight.contains(&(entry.id, address.clone())) => Some(*next_attempt),
        _ => None,
    })
}

/// Whether `entry` has a remote recipient due at `now` that no task is working on.
pub(crate) fn remote_due(entry: &QueueRecord, now: i64, in_flight: &HashSet<Key>) -> bool {
    waiting(entry, in_flight).any(|at| at <= now)
}

/// Whether `entry` has a local recipient in another partition (always due).
pub(crate) fn has_local(entry: &QueueRecord) -> bool {
    entry
        .recipients
        .iter()
        .any(|r| matches!(r, QueuedRecipient::Local { .. }))
}

/// The earliest attempt after `now` among all remote recipients not in flight: when the
/// actor should look again.
pub(crate) fn earliest_retry(
    entries: &[QueueRecord],
    now: i64,
    in_flight: &HashSet<Key>,
) -> Option<i64> {
    entries
        .iter()
        .flat_map(|e| waiting(e, in_flight))
        .filter(|at| *at > now)
        .min()
}

impl Courier {
    /// Starts delivery tasks for the due remote recipients of `entries` that are not in flight.
    pub(crate) async fn relay_due(
        &self,
        entries: &[QueueRecord],
        now: i64,
        in_flight: &mut HashSet<Key>,
        running: usize,
        myself: &ActorRef<QueueMsg>,
    ) -> Result<Vec<JoinHandle<()>>, QueueError> {
        let mut by_domain: BTreeMap<String, Vec<Work>> = BTreeMap::new();
        for entry in entries {
            let mut due: Vec<(String, u32)> = Vec::new();
            for r in &entry.recipients {
                let QueuedRecipient::Remote {
                    address,
                    attempts,
                    next_attempt,
                    ..
                } = r
                else {
                    continue;
                };
                if in_flight.contains(&(entry.id, address.clone())) {
                    continue;
                }
                if *next_attempt > now {
                    continue;
                }
                due.push((address.clone(), *attempts));
            }
            if due.is_empty() {
                continue;
            }
            let reader = self.raft.local_reader(self.group);
            let blob = entry.blob;
            let Some(body) = self.blocking(move || Ok(reader.blob(&blob)?)).await? else {
                tracing::error!(id = %entry.id, ?blob, "queued body missing; entry left alone");
                continue;
            };
            let body = Arc::new(without_return_path(&body).into_owned());
            let mut per_domain: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
            for (address, attempts) in due {
                match domain_of(&address) {
                    Some(domain) => per_domain
                        .entry(domain)
                        .or_default()
                        .push((address, attempts)),
                    None => {
                        tracing::error!(id = %entry.id, %address, "queued address has no domain")
                    }
                }
            }
            for (domain, rcpts) in per_domain {
                let (recipients, attempts) = rcpts.into_iter().unzip();
                by_domain.entry(domain).or_default().push(Work {
                    parcel: Parcel {
                        id: entry.id,
                        sender: entry.sender.clone(),
                        body: body.clone(),
                        recipients,
                    },
                    created: entry.created,
                    attempts,
                });
            }
        }
        let mut tasks = Vec::new();
        for (domain, work) in by_domain {
            if running + tasks.len() >= MAX_TASKS {
                // The rest stays due: the pass after the next task ends starts it.
                break;
            }
            let keys: Vec<Key> = work
                .iter()
                .flat_map(|w| w.parcel.recipients.iter().map(|r| (w.parcel.id, r.clone())))
                .collect();
            in_flight.extend(keys.iter().cloned());
            let release = Release {
                actor: myself.clone(),
                keys,
            };
            let courier = self.clone();
            tasks.push(tokio::spawn(async move {
                let _release = release;
                courier.relay_domain(&domain, work).await;
            }));
        }
        Ok(tasks)
    }

    /// One delivery task: loops bounce at once, the rest goes to the domain's MX.
    async fn relay_domain(&self, domain: &str, work: Vec<Work>) {
        let max_hops = self.relay.config().max_hops;
        let (looping, work): (Vec<Work>, Vec<Work>) = work
            .into_iter()
            .partition(|w| received_count(&w.parcel.body) > max_hops);
        for w in &looping {
            let hops = received_count(&w.parcel.body);
            let failure = Failure {
                permanent: true,
                status: "5.4.6".into(),
                diagnostic: format!(
                    "554 5.4.6 mail loop: too many hops ({hops} Received headers, limit {max_hops})"
                ),
                remote_mta: None,
            };
            for i in 0..w.parcel.recipients.len() {
                self.settle(w, i, Outcome::Failed(failure.clone())).await;
            }
        }
        if work.is_empty() {
            return;
        }
        let parcels: Vec<Parcel> = work.iter().map(|w| w.parcel.clone()).collect();
        let outcomes = self.relay.deliver(self.group, domain, &parcels).await;
        for (w, outcomes) in work.iter().zip(outcomes) {
            for (i, outcome) in outcomes.into_iter().enumerate() {
                self.settle(w, i, outcome).await;
            }
        }
    }

    /// Commits the outcome of recipient `i` of `w`. Errors are logged: whatever did not
    /// commit is simply tried again by a later pass.
    async fn settle(&self, w: &Work, i: usize, outcome: Outcome) {
        let (Some(rcpt), Some(&attempts)) = (w.parcel.recipients.get(i), w.attempts.get(i)) else {
            return;
        };
        let id = w.parcel.id;
        let result = match outcome {
            Outcome::Delivered { host, reply } => {
                tracing::info!(%id, %rcpt, relay = %host, attempts = attempts + 1,
                    reply = %reply, "delivered");
                self.dequeue(id, rcpt).await
            }
            Outcome::Failed(f) if f.permanent => {
                tracing::info!(%id, %rcpt, status = %f.status, reason = %f.diagnostic, "bounced");
                self.bounce_and_dequeue(w, rcpt, f).await
            }
            Outcome::Failed(f) => self.defer(w, rcpt, attempts, f).await,
        };
        if let Err(e) = result {
            tracing::warn!(%id, %rcpt, "queue state not updated, retried later: {e}");
        }
    }

    /// A temporary failure: retry later, or give up when the message is too old.
    async fn defer(
        &self,
        w: &Work,
        rcpt: &str,
        attempts: u32,
        f: Failure,
    ) -> Result<(), QueueError> {
        let schedule = self.relay.schedule();
        let now = chrono::Utc::now().timestamp();
        let id = w.parcel.id;
        if schedule.expired(w.created, now) {
            tracing::info!(%id, %rcpt, reason = %f.diagnostic, "expired; bounced");
            let expired = Failure {
                status: "4.4.7".into(),
                ..f
            };
            return self.bounce_and_dequeue(w, rcpt, expired).await;
        }
        let attempts = attempts.saturating_add(1);
        let next_attempt = schedule.next_attempt(w.created, now, attempts);
        tracing::info!(%id, %rcpt, attempts, retry_in = next_attempt - now,
            reason = %f.diagnostic, "deferred");
        let command = Command::Defer {
            id,
            recipient: rcpt.to_string(),
            attempts,
            next_attempt,
            error: f.diagnostic.clone(),
        };
        match self.raft.propose(self.group, command).await? {
            Response::Ok | Response::Rejected(Rejection::NotQueued) => {}
            other => return Err(QueueError::unexpected(self.group, &other)),
        }
        if schedule.delay_notice_due(w.created, now) {
            let until = w.created.saturating_add(schedule.give_up);
            self.notify(w, rcpt, DsnKind::Delayed, &f, Some(until))
                .await?;
        }
        Ok(())
    }

    /// A DSN of `kind` about `rcpt` (once, by its derived id).
    async fn notify(
        &self,
        w: &Work,
        rcpt: &str,
        kind: DsnKind,
        f: &Failure,
        retry_until: Option<i64>,
    ) -> Result<(), QueueError> {
        let original = Original {
            id: w.parcel.id,
            sender: &w.parcel.sender,
            created: w.created,
            body: &w.parcel.body,
        };
        let status = RecipientStatus {
            address: rcpt.to_string(),
            status: f.status.clone(),
            diagnostic: f.diagnostic.clone(),
            remote_mta: f.remote_mta.clone(),
        };
        bounce::send(
            &self.raft,
            &self.directory,
            self.relay.hostname(),
            &original,
            kind,
            status,
            retry_until,
        )
        .await
    }

    /// A final failure: the DSN, then the recipient leaves the queue.
    async fn bounce_and_dequeue(&self, w: &Work, rcpt: &str, f: Failure) -> Result<(), QueueError> {
        // The DSN first: should the node die in between, the next pass bounces again (the
        // same DSN id, so once) rather than forgetting the bounce.
        self.notify(w, rcpt, DsnKind::Failed, &f, None).await?;
        self.dequeue(w.parcel.id, rcpt).await
    }

    /// Removes one recipient from the queue (idempotent).
    pub(crate) async fn dequeue(&self, id: DeliveryId, rcpt: &str) -> Result<(), QueueError> {
        let command = Command::Dequeue {
            id,
            recipient: rcpt.to_string(),
        };
        match self.raft.propose(self.group, command).await? {
            // NotQueued: an operator deleted it, or an earlier pass already removed it.
            Response::Ok | Response::Rejected(Rejection::NotQueued) => Ok(()),
            other => Err(QueueError::unexpected(self.group, &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: u128, remote: &[(&str, i64)], local: bool) -> QueueRecord {
        let mut recipients: Vec<QueuedRecipient> = remote
            .iter()
            .map(|(address, next_attempt)| QueuedRecipient::Remote {
                address: address.to_string(),
                attempts: 1,
                next_attempt: *next_attempt,
                last_error: None,
            })
            .collect();
        if local {
            recipients.push(QueuedRecipient::Local {
                account: tern_core::AccountId(1),
                address: "a@here.example".into(),
                mailbox: "INBOX".into(),
            });
        }
        QueueRecord {
            id: DeliveryId(id),
            sender: "s@here.example".into(),
            recipients,
            blob: tern_core::BlobId::of(b"x"),
            size: 1,
            created: 0,
        }
    }

    #[test]
    fn due_and_waiting_recipients() {
        let deferred = queued(1, &[("x@far.example", 500)], false);
        let due = queued(2, &[("y@far.example", 100), ("z@far.example", 900)], false);
        let local = queued(3, &[], true);
        let mut in_flight = HashSet::new();
        assert!(!remote_due(&deferred, 200, &in_flight));
        assert!(remote_due(&due, 200, &in_flight));
        assert!(!remote_due(&local, 200, &in_flight) && has_local(&local));
        let all = [deferred, due.clone(), local];
        assert_eq!(earliest_retry(&all, 200, &in_flight), Some(500));
        // A recipient a task is working on is neither due nor waited for.
        in_flight.insert((DeliveryId(2), "y@far.example".to_string()));
        assert!(!remote_due(&due, 200, &in_flight));
        in_flight.insert((DeliveryId(1), "x@far.example".to_string()));
        assert_eq!(earliest_retry(&all, 200, &in_flight), Some(900));
        assert_eq!(earliest_retry(&all, 1_000, &in_flight), None);
    }

    #[test]
    fn domains_are_lower_case_and_literals_kept() {
        assert_eq!(domain_of("A@Far.Example").as_deref(), Some("far.example"));
        assert_eq!(domain_of("a@[127.0.0.1]").as_deref(), Some("[127.0.0.1]"));
        assert_eq!(domain_of("x@y@z.example").as_deref(), Some("z.example"));
        assert_eq!(domain_of("nodomain"), None);
        assert_eq!(domain_of("a@"), None);
    }
}
