//! Committing a transaction: one `Accept` on the partition [`plan`](crate::plan) chooses. SMTP
//! and the queue's own DSNs both come through here, so a bounce to a local sender lands in
//! their INBOX and one to a remote sender is queued for the relay like any other mail.
//!
//! The commit is idempotent by transaction id (the partition's `ACCEPTED` row), so an outcome
//! this node could not learn — a proposal that timed out, a leader that changed or a link that
//! dropped the reply — is resolved here by proposing the same command again until it commits
//! or [`RESOLVE_WITHIN`] has passed: only then does the sender see a temporary failure.

use std::time::Duration;

use tokio::time::Instant;

use crate::plan::{Plan, plan};
use crate::{Accepted, Envelope, QueueError};
use tern_core::DeliveryId;
use tern_raft::{RaftError, RaftNode};
use tern_store::{Command, DeliveryOutcome, Response};

/// How long an accept keeps proposing while the outcome is unknown. Far inside the ten
/// minutes an SMTP client waits for the reply to the final dot (RFC 5321 §4.5.3.2.6), and
/// short enough that a cluster without quorum answers `451` within a minute.
pub(crate) const RESOLVE_WITHIN: Duration = Duration::from_secs(60);

/// The first pause between attempts; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Commits `envelope` as transaction `id` and returns after the commit. Idempotent by `id`:
/// committing the same id again returns the first outcome and delivers nothing twice.
pub(crate) async fn commit(
    raft: &RaftNode,
    envelope: Envelope,
    id: DeliveryId,
    received_at: i64,
) -> Result<Accepted, QueueError> {
    let plan = plan(&envelope, raft.partitions())?;
    // A retry of a transaction this replica has already seen committed needs no proposal
    // (and a large body is not uploaded again).
    if let Some(outcomes) = local_outcome(raft, &plan, id) {
        return Ok(summarise(id, &plan, outcomes));
    }
    let command = Command::Accept {
        id,
        sender: envelope.sender,
        body: envelope.body,
        received_at,
        local: plan.local.clone(),
        other_partitions: plan.other_partitions.clone(),
        remote: plan.remote.clone(),
    };
    let outcomes = match propose_until_known(raft, &plan, command).await? {
        Response::Accepted(outcomes) => outcomes,
        other => return Err(QueueError::unexpected(plan.group, &other)),
    };
    // The partition's queue actor is woken by the apply itself (see `Queue::start`).
    Ok(summarise(id, &plan, outcomes))
}

/// Proposes `command` (idempotent by its id) until it commits, storage fails, the node shuts
/// down or [`RESOLVE_WITHIN`] passes.
async fn propose_until_known(
    raft: &RaftNode,
    plan: &Plan,
    command: Command,
) -> Result<Response, RaftError> {
    let deadline = Instant::now() + RESOLVE_WITHIN;
    let mut pause = FIRST_PAUSE;
    loop {
        let error = match raft.propose(plan.group, command.clone()).await {
            Ok(response) => return Ok(response),
            Err(e @ (RaftError::Store(_) | RaftError::Shutdown)) => return Err(e),
            Err(e) => e,
        };
        if let Command::Accept { id, .. } = &command
            && let Some(outcomes) = local_outcome(raft, plan, *id)
        {
            // It committed after all; this replica has applied it.
            return Ok(Response::Accepted(outcomes));
        }
        if Instant::now() + pause >= deadline {
            return Err(error);
        }
        tracing::info!(group = %plan.group, error = %error,
            "accept outcome unknown; proposing the same transaction again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// The outcome of transaction `id` if this node's replica of its partition has applied it.
fn local_outcome(raft: &RaftNode, plan: &Plan, id: DeliveryId) -> Option<Vec<DeliveryOutcome>> {
    if !raft.has_replica(plan.group) {
        return None;
    }
    raft.local_reader(plan.group)
        .accept_outcome(id)
        .ok()
        .flatten()
}

/// What the sender is told about a committed transaction.
fn summarise(id: DeliveryId, plan: &Plan, outcomes: Vec<DeliveryOutcome>) -> Accepted {
    let queued = plan.other_partitions.len() + plan.remote.len();
    let mut over_quota = Vec::new();
    let mut delivered = 0;
    for outcome in outcomes {
        match outcome {
            // Watchers hear of it from the apply, on every node.
            DeliveryOutcome::Delivered { .. } => delivered += 1,
            DeliveryOutcome::OverQuota { account } => {
                let address = plan.local.iter().find(|l| l.account == account);
                over_quota.extend(address.map(|l| l.address.clone()));
            }
        }
    }
    Accepted {
        id,
        over_quota,
        accepted: delivered + queued,
    }
}

/// Whether transaction `id` of `envelope` is already committed, as far as this node's
/// replica of its partition knows. A cheap pre-check that saves a no-op commit; `false` when
/// unsure (the commit itself deduplicates).
pub(crate) fn already_committed(raft: &RaftNode, envelope: &Envelope, id: DeliveryId) -> bool {
    plan(envelope, raft.partitions())
        .ok()
        .is_some_and(|p| local_outcome(raft, &p, id).is_some())
}
