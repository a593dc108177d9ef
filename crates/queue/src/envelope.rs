//! What SMTP hands to the queue, and what it gets back.

use tern_core::DeliveryId;
use tern_directory::Recipient;

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
    /// Where local recipients file it; `None` = INBOX. The inbound filter sets `Junk` for a
    /// DMARC quarantine.
    pub mailbox: Option<String>,
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
