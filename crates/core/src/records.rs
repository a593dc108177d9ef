//! The records the replicated state machine keeps. They are plain data: the store encodes them
//! with bincode, the mailbox and directory layers hand them to protocol sessions.

use crate::ids::{AccountId, BlobId, DeliveryId, MailboxId, ModSeq, Uid};
use serde::{Deserialize, Serialize};

/// A local mail domain (meta group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRecord {
    /// Lower-case domain name.
    pub name: String,
    /// Unix seconds when it was added.
    pub created: i64,
}

/// The signing algorithm of a domain's DKIM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DkimAlgorithm {
    /// rsa-sha256 with a 2048-bit key (RFC 6376).
    Rsa,
    /// ed25519-sha256 (RFC 8463).
    Ed25519,
}

impl DkimAlgorithm {
    /// The DNS record's `k=` value: `rsa` or `ed25519`.
    pub fn key_type(self) -> &'static str {
        match self {
            DkimAlgorithm::Rsa => "rsa",
            DkimAlgorithm::Ed25519 => "ed25519",
        }
    }
}

/// Private key bytes, kept out of `Debug` output so they never reach a log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretBytes(pub Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} secret bytes>", self.0.len())
    }
}

/// A domain's DKIM signing key (meta group), one per domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKeyRecord {
    /// Lower-case domain name (the signature's `d=`).
    pub domain: String,
    /// The selector (`s=`): the key is published at `SELECTOR._domainkey.DOMAIN`.
    pub selector: String,
    /// Signing algorithm.
    pub algorithm: DkimAlgorithm,
    /// The private key, PKCS#8 DER.
    pub private_key: SecretBytes,
    /// Unix seconds when it was stored.
    pub created: i64,
}

/// A mail account (meta group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Assigned by the state machine, never reused.
    pub id: AccountId,
    /// Normalised address `local@domain` (domain lower-case).
    pub address: String,
    /// Argon2id PHC string; never the password itself.
    pub password_hash: String,
    /// Storage quota in bytes; 0 means unlimited.
    pub quota: u64,
    /// Unix seconds when it was added.
    pub created: i64,
}

/// An alias: mail to `address` goes to each of `targets` (meta group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    /// Normalised alias address.
    pub address: String,
    /// Normalised target addresses (local accounts or remote addresses).
    pub targets: Vec<String>,
}

/// RFC 6154 special-use attribute of a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpecialUse {
    /// `\Sent`
    Sent,
    /// `\Drafts`
    Drafts,
    /// `\Trash`
    Trash,
    /// `\Junk`
    Junk,
    /// `\Archive`
    Archive,
}

impl SpecialUse {
    /// The IMAP attribute, e.g. `\Sent`.
    pub fn attribute(self) -> &'static str {
        match self {
            SpecialUse::Sent => "\\Sent",
            SpecialUse::Drafts => "\\Drafts",
            SpecialUse::Trash => "\\Trash",
            SpecialUse::Junk => "\\Junk",
            SpecialUse::Archive => "\\Archive",
        }
    }
}

/// The mailboxes every new account gets, in LIST order.
pub const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// A mailbox (folder) of one account, with the counters IMAP STATUS reports (partition group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxRecord {
    /// Id within the account, never reused.
    pub id: MailboxId,
    /// Full hierarchical name with `/` as separator; `INBOX` is always spelled so.
    pub name: String,
    /// RFC 9051 UIDVALIDITY; changes only if the mailbox is deleted and re-created.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: u32,
    /// The highest MODSEQ of any change in this mailbox.
    pub highest_modseq: u64,
    /// RFC 6154 attribute, if any.
    pub special_use: Option<SpecialUse>,
    /// Whether the user subscribed to it (LSUB / LIST (SUBSCRIBED)).
    pub subscribed: bool,
    /// Number of messages.
    pub messages: u32,
    /// Number of messages without `\Seen`.
    pub unseen: u32,
    /// Sum of message sizes in bytes.
    pub size: u64,
}

/// One message in one mailbox (partition group). The body lives in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The message's UID in its mailbox.
    pub uid: Uid,
    /// The body.
    pub blob: BlobId,
    /// RFC822.SIZE: the body length in bytes.
    pub size: u64,
    /// INTERNALDATE as unix seconds.
    pub internal_date: i64,
    /// Flags in canonical spelling, sorted, without duplicates.
    pub flags: Vec<String>,
    /// MODSEQ of the last change to this message.
    pub modseq: ModSeq,
}

/// A message waiting in the durable queue for recipients not yet delivered (partition group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// The SMTP transaction that queued it.
    pub id: DeliveryId,
    /// Envelope sender (empty for the null sender `<>`).
    pub sender: String,
    /// Recipients still to deliver.
    pub recipients: Vec<QueuedRecipient>,
    /// The body.
    pub blob: BlobId,
    /// Body size in bytes.
    pub size: u64,
    /// Unix seconds when it was accepted.
    pub created: i64,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueuedRecipient {
    /// A local account in another partition: the queue actor delivers it with `Deliver`.
    Local {
        /// The account.
        account: AccountId,
        /// Its address, for operators.
        address: String,
        /// The mailbox to file it in (`INBOX`, or `Junk` when a filter said so).
        mailbox: String,
    },
    /// A remote address, for the outbound relay.
    Remote {
        /// The address.
        address: String,
        /// Delivery attempts so far.
        attempts: u32,
        /// Unix seconds of the next attempt.
        next_attempt: i64,
        /// The last error, if any attempt failed.
        last_error: Option<String>,
    },
}
