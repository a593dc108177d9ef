//! The replicated commands and their responses: the contract between proposers (directory,
//! mailbox, queue) and the state machine. Everything a replica needs to apply a command
//! deterministically is inside it: timestamps and quotas are chosen by the proposer, while
//! UIDs, MODSEQs, account ids and quota enforcement are decided in `apply`.

use serde::{Deserialize, Serialize};
pub use tern_core::ops::{FlagOp, Rejection};
use tern_core::records::{DkimAlgorithm, SecretBytes, SpecialUse};
use tern_core::{AccountId, BlobId, DeliveryId, MailboxId, ModSeq, Uid};

/// A command proposed to one Raft group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    // ---- meta group (GroupId::META) ----
    /// Add a local domain. Rejects `DomainExists`.
    AddDomain {
        /// Normalised domain.
        name: String,
        /// Unix seconds.
        now: i64,
    },
    /// Remove a domain. Rejects `NoSuchDomain`, or `DomainNotEmpty` while accounts or aliases
    /// use it.
    DeleteDomain {
        /// Normalised domain.
        name: String,
    },
    /// Add an account; the state machine assigns the next `AccountId`. Rejects `NoSuchDomain`,
    /// `AccountExists` (also when an alias has that address).
    AddAccount {
        /// Normalised address.
        address: String,
        /// Argon2id PHC string.
        password_hash: String,
        /// Bytes, 0 = unlimited.
        quota: u64,
        /// Unix seconds.
        now: i64,
    },
    /// Remove an account from the directory. Rejects `NoSuchAccount`.
    DeleteAccount {
        /// Normalised address.
        address: String,
    },
    /// Replace an account's password hash. Rejects `NoSuchAccount`.
    SetPassword {
        /// Normalised address.
        address: String,
        /// Argon2id PHC string.
        password_hash: String,
    },
    /// Change an account's quota. Rejects `NoSuchAccount`.
    SetQuota {
        /// Normalised address.
        address: String,
        /// Bytes, 0 = unlimited.
        quota: u64,
    },
    /// Add a target to an alias (creating it). Rejects `NoSuchDomain` for the alias's domain and
    /// `AccountExists` when an account has that address.
    AddAlias {
        /// Normalised alias address.
        address: String,
        /// Normalised target address.
        target: String,
    },
    /// Remove an alias. Rejects `NoSuchAlias`.
    DeleteAlias {
        /// Normalised alias address.
        address: String,
    },
    /// Store (or replace) a domain's DKIM signing key. Rejects `NoSuchDomain`.
    SetDkimKey {
        /// Normalised domain.
        domain: String,
        /// The selector the public key is published under.
        selector: String,
        /// Signing algorithm.
        algorithm: DkimAlgorithm,
        /// The private key, PKCS#8 DER.
        private_key_pkcs8_der: SecretBytes,
        /// Unix seconds.
        now: i64,
    },

    // ---- data partitions ----
    /// Create the account's default mailboxes (INBOX, Sent, Drafts, Trash, Junk, Archive) if
    /// they do not exist yet. Idempotent.
    InitAccount {
        /// The account.
        account: AccountId,
        /// Unix seconds (seeds UIDVALIDITY).
        now: i64,
    },
    /// Remove all of an account's mailboxes and messages from this partition. Idempotent.
    PurgeAccount {
        /// The account.
        account: AccountId,
    },
    /// An SMTP transaction: store the body once, append it to the INBOX (or `mailbox`) of every
    /// local recipient in this partition, and queue the other recipients. Idempotent by `id`:
    /// applying the same id twice returns the first outcome and changes nothing.
    Accept {
        /// The transaction.
        id: DeliveryId,
        /// Envelope sender, empty for `<>`.
        sender: String,
        /// The full message as stored (with Received and Return-Path added).
        #[serde(with = "tern_core::byte_buf")]
        body: Vec<u8>,
        /// Unix seconds: INTERNALDATE of the new messages.
        received_at: i64,
        /// Recipients whose account lives in this partition.
        local: Vec<LocalRecipient>,
        /// Local recipients in other partitions, delivered later by the queue actor:
        /// (account, address, target mailbox).
        other_partitions: Vec<(AccountId, String, String)>,
        /// Remote addresses, for the outbound relay.
        remote: Vec<String>,
    },
    /// Deliver a queued message to one recipient of this partition. Idempotent by `(id,
    /// recipient.account)`.
    Deliver {
        /// The original transaction.
        id: DeliveryId,
        /// Envelope sender.
        sender: String,
        /// The body.
        #[serde(with = "tern_core::byte_buf")]
        body: Vec<u8>,
        /// Unix seconds.
        received_at: i64,
        /// The recipient.
        recipient: LocalRecipient,
    },
    /// Remove one recipient from a queued message; the entry goes when no recipient is left.
    Dequeue {
        /// The queued transaction.
        id: DeliveryId,
        /// Which recipient: the local account or remote address, as queued.
        recipient: String,
    },
    /// Remove a queued message entirely (operator action).
    DeleteQueued {
        /// The queued transaction.
        id: DeliveryId,
    },
    /// A delivery attempt to a remote recipient failed temporarily: record the error and when
    /// to try again. Absolute values, so a replay changes nothing; a stale proposal with fewer
    /// `attempts` than already recorded is ignored. Rejects `NotQueued`.
    Defer {
        /// The queued transaction.
        id: DeliveryId,
        /// The remote address, as queued.
        recipient: String,
        /// Attempts made so far, this one included.
        attempts: u32,
        /// Unix seconds of the next attempt.
        next_attempt: i64,
        /// What went wrong, for operators and the eventual DSN.
        error: String,
    },
    /// Operator retry: the remote recipients of `id` (of every queued message in this
    /// partition when `None`) become due at `now`. Rejects `NotQueued` for an unknown `id`.
    RetryQueued {
        /// The queued transaction, or all of them.
        id: Option<DeliveryId>,
        /// Unix seconds.
        now: i64,
    },
    /// Count one message sent by an authenticated account against its sending limits (in the
    /// account's partition, so the limits hold cluster-wide). Rejects `SendLimitExceeded`
    /// without counting.
    ChargeSend {
        /// The sending account.
        account: AccountId,
        /// Unix seconds: picks the hour and day windows.
        at: i64,
        /// The limits in force.
        limits: SendLimits,
    },
    /// IMAP APPEND. Rejects `NoSuchMailbox`, `OverQuota`.
    Append {
        /// The account.
        account: AccountId,
        /// Target mailbox name.
        mailbox: String,
        /// The message.
        #[serde(with = "tern_core::byte_buf")]
        body: Vec<u8>,
        /// Initial flags (canonical spelling).
        flags: Vec<String>,
        /// INTERNALDATE, unix seconds.
        internal_date: i64,
        /// The account's quota in bytes (0 = unlimited), read from the directory.
        quota: u64,
    },
    /// IMAP CREATE. Rejects `MailboxExists`, `InvalidName`. Creates missing parents.
    CreateMailbox {
        /// The account.
        account: AccountId,
        /// Full name, `/`-separated.
        name: String,
        /// RFC 6154 attribute (CREATE-SPECIAL-USE).
        special_use: Option<SpecialUse>,
        /// Unix seconds (seeds UIDVALIDITY).
        now: i64,
    },
    /// IMAP DELETE: the mailbox and its messages. Rejects `NoSuchMailbox`, `CannotDeleteInbox`,
    /// `HasChildren` (RFC 9051: a mailbox with inferiors and \Noselect... we simply refuse).
    DeleteMailbox {
        /// The account.
        account: AccountId,
        /// Full name.
        name: String,
    },
    /// IMAP RENAME, children included. Renaming INBOX moves its messages to a new mailbox and
    /// leaves INBOX empty (RFC 9051 §6.3.6). Rejects `NoSuchMailbox`, `MailboxExists`.
    RenameMailbox {
        /// The account.
        account: AccountId,
        /// Old full name.
        from: String,
        /// New full name.
        to: String,
        /// Unix seconds.
        now: i64,
    },
    /// IMAP SUBSCRIBE / UNSUBSCRIBE. A name that is not a mailbox can be subscribed too
    /// (RFC 9051 §6.3.7), and deleting a mailbox keeps its subscription.
    SetSubscribed {
        /// The account.
        account: AccountId,
        /// Full name.
        name: String,
        /// New state.
        subscribed: bool,
    },
    /// IMAP STORE: change flags of the given UIDs (missing UIDs are ignored). With
    /// `unchanged_since`, messages whose MODSEQ is higher are left alone and reported.
    StoreFlags {
        /// The account.
        account: AccountId,
        /// The mailbox.
        mailbox: MailboxId,
        /// Target messages.
        uids: Vec<Uid>,
        /// How to combine.
        op: FlagOp,
        /// Flags in canonical spelling.
        flags: Vec<String>,
        /// CONDSTORE UNCHANGEDSINCE.
        unchanged_since: Option<u64>,
    },
    /// IMAP COPY / MOVE: new UIDs in the target, in source UID order. MOVE also expunges the
    /// sources. Rejects `NoSuchMailbox` (target: the session answers TRYCREATE), `OverQuota`
    /// (COPY only).
    CopyMessages {
        /// The account.
        account: AccountId,
        /// Source mailbox.
        from: MailboxId,
        /// Source UIDs (missing ones are skipped).
        uids: Vec<Uid>,
        /// Target mailbox name.
        to: String,
        /// MOVE instead of COPY.
        remove_source: bool,
        /// Quota, bytes (0 = unlimited).
        quota: u64,
    },
    /// IMAP EXPUNGE / UID EXPUNGE / POP3 QUIT: remove messages flagged `\Deleted` (all of
    /// them, or only those in `uids`).
    Expunge {
        /// The account.
        account: AccountId,
        /// The mailbox.
        mailbox: MailboxId,
        /// Restrict to these UIDs.
        uids: Option<Vec<Uid>>,
    },
    /// Forget the de-duplication records (`ACCEPTED`, `DELIVERED`) of transactions received
    /// before `before` (unix seconds), oldest first, at most `limit` of them. Proposed by the
    /// partition's queue actor once the records are older than `[storage]
    /// dedup_window_secs`, which outlasts every sender retry and the queue's own lifetime.
    /// Parts of large bodies started before `before` whose message never came go too (within
    /// the same `limit`).
    ExpireDedup {
        /// Unix seconds: records of transactions received earlier go.
        before: i64,
        /// The most records one command removes (bounds the apply).
        limit: u32,
    },
    /// One part of a large body, proposed before the command that carries the message (whose
    /// body is then a reference to the parts; see [`crate::body`]). The log store keeps the
    /// bytes under the body's id; apply only notes the upload, so `ExpireDedup` can remove
    /// the parts of a message that never came.
    BodyPart {
        /// The id the whole body will have.
        blob: BlobId,
        /// The part's position, from 0.
        seq: u32,
        /// Unix seconds when the first part was proposed.
        started: i64,
        /// The part's bytes.
        #[serde(with = "tern_core::byte_buf")]
        body: Vec<u8>,
    },
    /// Meta: mark a node as draining (the placement puts no replica on it, so its replicas
    /// move to the other nodes) or not.
    SetDraining {
        /// The node id.
        node: u64,
        /// Draining or not.
        draining: bool,
    },
    /// Meta: what the cluster knows of node `node`'s identity. `Some(incarnation)`: the random
    /// id of the node's data dir, recorded when it joins (the first record for a node wins;
    /// later ones change nothing). `None`: the node was removed; its id is refused for ever
    /// and later records for it change nothing.
    RecordNode {
        /// The node id.
        node: u64,
        /// Its data dir's incarnation, or `None` for a removed node.
        incarnation: Option<u64>,
    },
    /// POP3: take or renew the account's maildrop lease (RFC 1939 §8: one session per
    /// maildrop, across the cluster) for `holder` until `until`. Granted when nobody holds it,
    /// the held lease ended before `now`, or `holder` already holds it; otherwise rejects
    /// `MaildropInUse`.
    LeaseMaildrop {
        /// The account.
        account: AccountId,
        /// The session asking (a random id it keeps for its life).
        holder: u128,
        /// Unix seconds, the proposer's clock.
        now: i64,
        /// Unix seconds when the lease ends unless renewed.
        until: i64,
    },
    /// POP3: end `holder`'s maildrop lease (nothing if another session holds it now).
    ReleaseMaildrop {
        /// The account.
        account: AccountId,
        /// The session letting go.
        holder: u128,
    },
    /// IMAP4rev1 `\Recent` (RFC 3501 §2.3.2): one session claims the messages of `mailbox` up
    /// to `up_to` that no session was shown yet. Answers `RecentClaimed(first)`: the session's
    /// recent messages are those from UID `first` to `up_to` (none when `first > up_to`).
    ClaimRecent {
        /// The account.
        account: AccountId,
        /// The mailbox.
        mailbox: MailboxId,
        /// The highest UID the session shows.
        up_to: Uid,
    },
}

/// Messages an account may send per fixed window (UTC hour, UTC day); 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SendLimits {
    /// Per hour.
    pub per_hour: u32,
    /// Per day.
    pub per_day: u32,
}

impl SendLimits {
    /// Whether any limit is set (otherwise nothing needs counting).
    pub fn any(&self) -> bool {
        self.per_hour > 0 || self.per_day > 0
    }
}

/// A local recipient of an `Accept` or `Deliver`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRecipient {
    /// The account.
    pub account: AccountId,
    /// The address it was reached by (for logs).
    pub address: String,
    /// Target mailbox name (INBOX unless a filter said otherwise).
    pub mailbox: String,
    /// The account's quota in bytes (0 = unlimited), read from the directory.
    pub quota: u64,
}

/// What happened to one local recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryOutcome {
    /// Stored with this UID.
    Delivered {
        /// The account.
        account: AccountId,
        /// The mailbox.
        mailbox: MailboxId,
        /// The new message's UID.
        uid: Uid,
    },
    /// Refused: the account is over quota.
    OverQuota {
        /// The account.
        account: AccountId,
    },
}

/// The result of applying a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to report.
    Ok,
    /// Refused; state unchanged.
    Rejected(Rejection),
    /// `AddAccount`: the new id.
    AccountAdded(AccountId),
    /// `Accept` / `Deliver`: one outcome per local recipient, in order.
    Accepted(Vec<DeliveryOutcome>),
    /// `Append`.
    Appended {
        /// Target mailbox.
        mailbox: MailboxId,
        /// Its UIDVALIDITY.
        uidvalidity: u32,
        /// The new UID.
        uid: Uid,
    },
    /// `StoreFlags`: the messages that changed (new flags and MODSEQ), and the UIDs skipped
    /// because of `unchanged_since`.
    FlagsStored {
        /// Changed messages: UID, flags after, new MODSEQ.
        changed: Vec<(Uid, Vec<String>, ModSeq)>,
        /// UIDs not changed because their MODSEQ was above `unchanged_since`.
        modified: Vec<Uid>,
    },
    /// `CopyMessages`: UIDPLUS data.
    Copied {
        /// Target mailbox.
        mailbox: MailboxId,
        /// Its UIDVALIDITY.
        uidvalidity: u32,
        /// (source UID, new UID) pairs.
        uids: Vec<(Uid, Uid)>,
    },
    /// `Expunge`: the UIDs removed, ascending.
    Expunged(Vec<Uid>),
    /// `ExpireDedup`: how many records went.
    Expired(u32),
    /// `ClaimRecent`: the first UID claimed.
    RecentClaimed(Uid),
}
