//! The durable queue: accepting SMTP transactions with one Raft commit, and queue partition
//! actors that deliver to other partitions (and, later, to remote MX hosts).
//! STUB SIGNATURES: implemented by the queue work; SMTP and the admin API rely on these.
#![warn(missing_docs)]

use tern_core::DeliveryId;
use tern_core::records::QueueRecord;
use tern_directory::Recipient;
use tern_mailbox::Mailboxes;
use tern_raft::{RaftError, RaftNode};

/// An SMTP transaction ready to commit.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// Final recipients (aliases already expanded, duplicates removed).
    pub recipients: Vec<Recipient>,
    /// The message as it will be stored (Received and Return-Path already added).
    pub body: Vec<u8>,
    /// The account of an authenticated sender: outbound-only mail is queued in its partition.
    pub sender_account: Option<tern_core::AccountId>,
}

/// What happened to an accepted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The transaction id (shown in the 250 reply and `tern queue list`).
    pub id: DeliveryId,
    /// Local recipients refused for quota (addresses).
    pub over_quota: Vec<String>,
    /// Recipients delivered or queued.
    pub accepted: usize,
}

/// Queue failures.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The commit did not happen or its outcome is unknown: SMTP answers 451 4.3.0.
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// No recipient to deliver to.
    #[error("no recipients")]
    NoRecipients,
}

/// The queue service and its partition actors. Cheap to clone.
#[derive(Clone)]
pub struct Queue {}

impl Queue {
    /// Starts one queue actor per partition.
    pub async fn start(raft: RaftNode, mailboxes: Mailboxes) -> Result<Queue, QueueError> {
        let _ = (raft, mailboxes);
        todo!()
    }
    /// Commits `envelope` (one Raft commit in the common case) and returns after the commit.
    pub async fn accept(&self, envelope: Envelope) -> Result<Accepted, QueueError> {
        let _ = envelope;
        todo!()
    }
    /// Everything queued, in every partition.
    pub async fn list(&self) -> Result<Vec<QueueRecord>, QueueError> {
        todo!()
    }
    /// Stops the queue actors.
    pub async fn shutdown(&self) {
        todo!()
    }
}
