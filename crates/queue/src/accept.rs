//! Committing a transaction: one `Accept` on the partition [`plan`](crate::plan) chooses. SMTP
//! and the queue's own DSNs both come through here, so a bounce to a local sender lands in
//! their INBOX and one to a remote sender is queued for the relay like any other mail.

use crate::plan::plan;
use crate::{Accepted, Envelope, QueueError};
use tern_core::{AccountId, DeliveryId};
use tern_raft::RaftNode;
use tern_store::{Command, DeliveryOutcome, Response};

/// Commits `envelope` as transaction `id` and returns after the commit. Idempotent by `id`:
/// committing the same id again returns the first outcome and delivers nothing twice.
pub(crate) async fn commit(
    raft: &RaftNode,
    envelope: Envelope,
    id: DeliveryId,
    received_at: i64,
) -> Result<Accepted, QueueError> {
    let plan = plan(&envelope, raft.partitions())?;
    let queued = plan.other_partitions.len() + plan.remote.len();
    let addresses: Vec<(AccountId, String)> = plan
        .local
        .iter()
        .map(|l| (l.account, l.address.clone()))
        .collect();
    let command = Command::Accept {
        id,
        sender: envelope.sender,
        body: envelope.body,
        received_at,
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
    // The partition's queue actor is woken by the apply itself (see `Queue::start`).
    Ok(Accepted {
        id,
        over_quota,
        accepted: delivered + queued,
    })
}

/// Whether transaction `id` of `envelope` is already committed, as far as this node's
/// replica of its partition knows. A cheap pre-check that saves a no-op commit; `false` when
/// unsure (the commit itself deduplicates).
pub(crate) fn already_committed(raft: &RaftNode, envelope: &Envelope, id: DeliveryId) -> bool {
    plan(envelope, raft.partitions())
        .ok()
        .filter(|p| raft.has_replica(p.group))
        .and_then(|p| raft.local_reader(p.group).accepted(id).ok())
        .unwrap_or(false)
}
