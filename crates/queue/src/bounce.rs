//! Sending DSNs. A DSN is a new transaction from the null sender to the original envelope
//! sender, committed through [`accept::commit`]. Its id is derived from (original id,
//! recipient, kind), so the same bounce proposed again — by a pass that stopped half-way or by
//! the next leader after a failover — is deduplicated by `Accept` and delivered once.
//!
//! Nothing is ever sent to the null sender: a DSN that cannot be delivered is dropped.

use crate::accept;
use crate::dsn::{self, DsnKind, RecipientStatus, Report};
use crate::headers::header_section;
use crate::{Envelope, QueueError};
use tern_core::{BlobId, DeliveryId};
use tern_directory::{Directory, DirectoryError, Recipient, Resolution};
use tern_raft::RaftNode;

/// The original message a DSN reports on.
pub(crate) struct Original<'a> {
    /// Its transaction.
    pub id: DeliveryId,
    /// Its envelope sender, who gets the DSN.
    pub sender: &'a str,
    /// Unix seconds it was accepted.
    pub created: i64,
    /// The message (only its header is quoted).
    pub body: &'a [u8],
}

/// The id of the DSN of `kind` about `recipient` of transaction `original`.
pub(crate) fn dsn_id(original: DeliveryId, recipient: &str, kind: DsnKind) -> DeliveryId {
    let mut seed = Vec::with_capacity(64);
    seed.extend_from_slice(b"tern-dsn\0");
    seed.extend_from_slice(&original.0.to_be_bytes());
    seed.extend_from_slice(recipient.to_ascii_lowercase().as_bytes());
    seed.push(0);
    seed.extend_from_slice(kind.name().as_bytes());
    let digest = BlobId::of(&seed).0;
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    DeliveryId(u128::from_be_bytes(first))
}

/// Sends (once) the DSN of `kind` about one recipient. `Ok` also when there is nobody to
/// send it to (null sender, sender unknown here).
pub(crate) async fn send(
    raft: &RaftNode,
    directory: &Directory,
    reporting_mta: &str,
    original: &Original<'_>,
    kind: DsnKind,
    status: RecipientStatus,
    retry_until: Option<i64>,
) -> Result<(), QueueError> {
    let rcpt = status.address.clone();
    if original.sender.is_empty() {
        tracing::info!(id = %original.id, %rcpt, kind = kind.name(),
            "no DSN: the message came from the null sender");
        return Ok(());
    }
    let recipients = match directory.resolve(original.sender).await {
        Ok(Resolution::Deliver(targets)) => targets,
        Ok(Resolution::NotLocal) => vec![Recipient::Remote(original.sender.to_string())],
        Ok(Resolution::UnknownUser) => {
            tracing::warn!(id = %original.id, sender = original.sender,
                "no DSN: the sender's local account no longer exists");
            return Ok(());
        }
        Err(DirectoryError::InvalidAddress(e)) => {
            tracing::warn!(id = %original.id, sender = original.sender,
                "no DSN: the sender address is invalid: {e}");
            return Ok(());
        }
        Err(e) => {
            return Err(QueueError::unavailable(
                tern_core::GroupId::META,
                format!("sender lookup failed: {e}"),
            ));
        }
    };
    if recipients.is_empty() {
        return Ok(());
    }
    let id = dsn_id(original.id, &rcpt, kind);
    let now = chrono::Utc::now().timestamp();
    let probe = Envelope {
        sender: String::new(),
        recipients,
        body: Vec::new(),
        sender_account: None,
        mailbox: None,
    };
    if accept::already_committed(raft, &probe, id) {
        return Ok(());
    }
    let report = Report {
        kind,
        reporting_mta,
        original_id: original.id,
        original_sender: original.sender,
        arrival: original.created,
        now,
        retry_until,
        recipients: vec![status],
        original_headers: header_section(original.body),
        id,
    };
    // Stored like every message SMTP delivers, with the envelope sender on top (RFC 5321
    // §4.4); the relay removes it again should the DSN go to a remote sender.
    let mut body = b"Return-Path: <>\r\n".to_vec();
    body.extend_from_slice(&dsn::build(&report));
    let envelope = Envelope { body, ..probe };
    let accepted = accept::commit(raft, envelope, id, now).await?;
    tracing::info!(id = %original.id, %rcpt, dsn = %accepted.id, kind = kind.name(),
        sender = original.sender, "DSN sent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_ids_are_stable_and_distinct() {
        let id = DeliveryId(7);
        let a = dsn_id(id, "X@far.example", DsnKind::Failed);
        assert_eq!(a, dsn_id(id, "x@far.example", DsnKind::Failed), "stable");
        assert_ne!(a, dsn_id(id, "x@far.example", DsnKind::Delayed));
        assert_ne!(a, dsn_id(id, "y@far.example", DsnKind::Failed));
        assert_ne!(a, dsn_id(DeliveryId(8), "x@far.example", DsnKind::Failed));
    }
}
