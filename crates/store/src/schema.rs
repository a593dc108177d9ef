//! Column families and key encoding. Every key starts with the group id (u32 big-endian), so
//! one group's data is one contiguous range; then a one-byte table tag; then big-endian fields,
//! so RocksDB's byte order is the numeric order (UIDs iterate ascending).

use tern_core::{AccountId, BlobId, DeliveryId, GroupId, MailboxId, Uid};

/// Raft log entries: group | index.
pub const CF_RAFT_LOG: &str = "raft_log";
/// Raft vote, committed and purged ids: group | tag.
pub const CF_RAFT_META: &str = "raft_meta";
/// The replicated state: group | table | fields.
pub const CF_STATE: &str = "state";
/// Message bodies: group | blob id.
pub const CF_BLOBS: &str = "blobs";
/// Every column family Tern needs, in creation order.
pub const ALL_CFS: [&str; 4] = [CF_RAFT_LOG, CF_RAFT_META, CF_STATE, CF_BLOBS];

/// Table tags inside `CF_STATE`.
pub mod table {
    /// Meta: domain name → DomainRecord.
    pub const DOMAIN: u8 = 1;
    /// Meta: address → AccountRecord.
    pub const ACCOUNT: u8 = 2;
    /// Meta: account id → address.
    pub const ACCOUNT_ID: u8 = 3;
    /// Meta: address → AliasRecord.
    pub const ALIAS: u8 = 4;
    /// Meta: the next account id.
    pub const NEXT_ACCOUNT: u8 = 5;
    /// Meta: domain name → DkimKeyRecord.
    pub const DKIM_KEY: u8 = 6;
    /// Meta: node id → (): the nodes being drained.
    pub const DRAINING: u8 = 7;
    /// Meta: node id | incarnation → (): the data-dir incarnation each member joined with.
    pub const NODE_INCARNATION: u8 = 8;
    /// Meta: node id → (): removed nodes, whose ids are never used again.
    pub const REMOVED_NODE: u8 = 9;
    /// Partition: account → AccountState.
    pub const ACCOUNT_STATE: u8 = 10;
    /// Partition: account | mailbox id → MailboxRecord.
    pub const MAILBOX: u8 = 11;
    /// Partition: account | name → mailbox id.
    pub const MAILBOX_NAME: u8 = 12;
    /// Partition: account | mailbox | uid → MessageRecord.
    pub const MESSAGE: u8 = 13;
    /// Partition: blob id → reference count.
    pub const BLOB_REFS: u8 = 14;
    /// Partition: delivery id → outcomes of an Accept.
    pub const ACCEPTED: u8 = 15;
    /// Partition: delivery id | account → outcome of a Deliver.
    pub const DELIVERED: u8 = 16;
    /// Partition: delivery id → QueueRecord.
    pub const QUEUE: u8 = 17;
    /// Partition: account → messages sent in the current hour and day (sending limits).
    pub const SEND_COUNTER: u8 = 18;
    /// Partition: received-at | an ACCEPTED or DELIVERED key (without its group prefix) →
    /// (): the de-duplication records in the order they expire.
    pub const DEDUP_EXPIRY: u8 = 19;
    /// Partition: started-at | blob id → (): bodies proposed in parts whose message has not
    /// been applied yet, oldest first (see `crate::body`).
    pub const UPLOADS: u8 = 20;
    /// Partition: () → bytes of every message in every mailbox of the partition (the sum of
    /// its accounts' usage; what a move of the partition copies, roughly).
    pub const GROUP_USAGE: u8 = 21;
    /// Partition: account → `MaildropLease`: who holds the account's POP3 maildrop, until when.
    pub const MAILDROP_LEASE: u8 = 22;
    /// Partition: account | mailbox id → u32: the lowest UID no IMAP session has been shown
    /// yet, the first `\Recent` message (absent: 1).
    pub const RECENT: u8 = 23;
    /// Partition: account | name → (): subscriptions to names that are not mailboxes (a
    /// mailbox's own subscription is in its record).
    pub const SUBSCRIPTION: u8 = 24;
    /// Any group: the state machine's last applied log id and membership (not user state).
    pub const APPLIED: u8 = 0xF0;
}

/// The 4-byte prefix of everything `group` owns.
pub fn group_prefix(group: GroupId) -> [u8; 4] {
    group.0.to_be_bytes()
}

/// Builds keys field by field.
#[derive(Debug, Clone)]
pub struct Key(Vec<u8>);

impl Key {
    /// `group | table`.
    pub fn new(group: GroupId, table: u8) -> Key {
        let mut k = Vec::with_capacity(32);
        k.extend_from_slice(&group_prefix(group));
        k.push(table);
        Key(k)
    }
    /// Appends a u32, big-endian.
    pub fn u32(mut self, v: u32) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a u64, big-endian.
    pub fn u64(mut self, v: u64) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a u128, big-endian.
    pub fn u128(mut self, v: u128) -> Key {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends raw bytes (only as the last field: strings are not length-prefixed).
    pub fn bytes(mut self, v: &[u8]) -> Key {
        self.0.extend_from_slice(v);
        self
    }
    /// The encoded key.
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// Meta: a domain.
pub fn domain(g: GroupId, name: &str) -> Vec<u8> {
    Key::new(g, table::DOMAIN).bytes(name.as_bytes()).build()
}
/// Meta: an account by address.
pub fn account(g: GroupId, address: &str) -> Vec<u8> {
    Key::new(g, table::ACCOUNT)
        .bytes(address.as_bytes())
        .build()
}
/// Meta: an account's address by id.
pub fn account_id(g: GroupId, id: AccountId) -> Vec<u8> {
    Key::new(g, table::ACCOUNT_ID).u64(id.0).build()
}
/// Meta: an alias.
pub fn alias(g: GroupId, address: &str) -> Vec<u8> {
    Key::new(g, table::ALIAS).bytes(address.as_bytes()).build()
}
/// Meta: a domain's DKIM key.
pub fn dkim_key(g: GroupId, domain: &str) -> Vec<u8> {
    Key::new(g, table::DKIM_KEY)
        .bytes(domain.as_bytes())
        .build()
}
/// Meta: a node being drained.
pub fn draining(g: GroupId, node: u64) -> Vec<u8> {
    Key::new(g, table::DRAINING).u64(node).build()
}
/// Meta: the incarnation `node` joined with.
pub fn node_incarnation(g: GroupId, node: u64, incarnation: u64) -> Vec<u8> {
    Key::new(g, table::NODE_INCARNATION)
        .u64(node)
        .u64(incarnation)
        .build()
}
/// Meta: prefix of `node`'s incarnation row.
pub fn incarnations_of(g: GroupId, node: u64) -> Vec<u8> {
    Key::new(g, table::NODE_INCARNATION).u64(node).build()
}
/// Meta: a removed node.
pub fn removed_node(g: GroupId, node: u64) -> Vec<u8> {
    Key::new(g, table::REMOVED_NODE).u64(node).build()
}
/// Meta: the account id counter.
pub fn next_account(g: GroupId) -> Vec<u8> {
    Key::new(g, table::NEXT_ACCOUNT).build()
}
/// Partition: per-account counters.
pub fn account_state(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::ACCOUNT_STATE).u64(a.0).build()
}
/// Partition: bytes of mail in the partition's mailboxes.
pub fn group_usage(g: GroupId) -> Vec<u8> {
    Key::new(g, table::GROUP_USAGE).build()
}
/// Partition: a mailbox record.
pub fn mailbox(g: GroupId, a: AccountId, m: MailboxId) -> Vec<u8> {
    Key::new(g, table::MAILBOX).u64(a.0).u32(m.0).build()
}
/// Partition: prefix of all of an account's mailbox records.
pub fn mailboxes_of(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::MAILBOX).u64(a.0).build()
}
/// Partition: a mailbox id by name.
pub fn mailbox_name(g: GroupId, a: AccountId, name: &str) -> Vec<u8> {
    Key::new(g, table::MAILBOX_NAME)
        .u64(a.0)
        .bytes(name.as_bytes())
        .build()
}
/// Partition: prefix of all of an account's mailbox names.
pub fn mailbox_names_of(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::MAILBOX_NAME).u64(a.0).build()
}
/// Partition: a message.
pub fn message(g: GroupId, a: AccountId, m: MailboxId, uid: Uid) -> Vec<u8> {
    Key::new(g, table::MESSAGE)
        .u64(a.0)
        .u32(m.0)
        .u32(uid.0)
        .build()
}
/// Partition: prefix of all messages of a mailbox.
pub fn messages_of(g: GroupId, a: AccountId, m: MailboxId) -> Vec<u8> {
    Key::new(g, table::MESSAGE).u64(a.0).u32(m.0).build()
}
/// Partition: prefix of all messages of an account.
pub fn messages_of_account(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::MESSAGE).u64(a.0).build()
}
/// Partition: a blob's reference count.
pub fn blob_refs(g: GroupId, b: &BlobId) -> Vec<u8> {
    Key::new(g, table::BLOB_REFS).bytes(&b.0).build()
}
/// Blobs CF: a body.
pub fn blob(g: GroupId, b: &BlobId) -> Vec<u8> {
    let mut k = group_prefix(g).to_vec();
    k.extend_from_slice(&b.0);
    k
}
/// Blobs CF: part `seq` of a body proposed in parts.
pub fn blob_part(g: GroupId, b: &BlobId, seq: u32) -> Vec<u8> {
    let mut k = blob(g, b);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}
/// The blob id a blobs-CF key of `group` names (a whole body's key or one of its parts').
pub fn blob_id_of_key(g: GroupId, key: &[u8]) -> Option<BlobId> {
    let rest = key.strip_prefix(&group_prefix(g)[..])?;
    Some(BlobId(rest.get(..32)?.try_into().ok()?))
}
/// Partition: a body whose parts arrived and whose message has not.
pub fn upload(g: GroupId, started: i64, b: &BlobId) -> Vec<u8> {
    Key::new(g, table::UPLOADS)
        .u64(u64::try_from(started).unwrap_or(0))
        .bytes(&b.0)
        .build()
}
/// Partition: every pending upload, oldest first.
pub fn uploads_all(g: GroupId) -> Vec<u8> {
    Key::new(g, table::UPLOADS).build()
}
/// Partition: outcome of an Accept.
pub fn accepted(g: GroupId, id: DeliveryId) -> Vec<u8> {
    Key::new(g, table::ACCEPTED).u128(id.0).build()
}
/// Partition: outcome of a Deliver.
pub fn delivered(g: GroupId, id: DeliveryId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::DELIVERED).u128(id.0).u64(a.0).build()
}
/// Partition: a queue entry.
pub fn queue(g: GroupId, id: DeliveryId) -> Vec<u8> {
    Key::new(g, table::QUEUE).u128(id.0).build()
}
/// Partition: an account's sending-limit counters.
pub fn send_counter(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::SEND_COUNTER).u64(a.0).build()
}
/// Partition: the account's POP3 maildrop lease.
pub fn maildrop_lease(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::MAILDROP_LEASE).u64(a.0).build()
}
/// Partition: the first `\Recent` UID of a mailbox.
pub fn recent(g: GroupId, a: AccountId, m: MailboxId) -> Vec<u8> {
    Key::new(g, table::RECENT).u64(a.0).u32(m.0).build()
}
/// Partition: prefix of an account's first-`\Recent` rows.
pub fn recent_of(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::RECENT).u64(a.0).build()
}
/// Partition: a subscription to a name that is not a mailbox.
pub fn subscription(g: GroupId, a: AccountId, name: &str) -> Vec<u8> {
    Key::new(g, table::SUBSCRIPTION)
        .u64(a.0)
        .bytes(name.as_bytes())
        .build()
}
/// Partition: prefix of an account's subscriptions to names that are not mailboxes.
pub fn subscriptions_of(g: GroupId, a: AccountId) -> Vec<u8> {
    Key::new(g, table::SUBSCRIPTION).u64(a.0).build()
}
/// Any group: the applied-state record.
pub fn applied(g: GroupId) -> Vec<u8> {
    Key::new(g, table::APPLIED).build()
}
/// Raft log CF: one entry.
pub fn log_entry(g: GroupId, index: u64) -> Vec<u8> {
    Key(group_prefix(g).to_vec()).u64(index).build()
}
/// Raft meta CF: one item (vote, committed, purged).
pub fn raft_meta(g: GroupId, item: u8) -> Vec<u8> {
    let mut k = group_prefix(g).to_vec();
    k.push(item);
    k
}

/// Partition: the expiry index entry of the de-duplication record `row` (an `accepted` or
/// `delivered` key of group `g`) for a transaction received at `received_at`.
pub fn dedup_expiry(g: GroupId, received_at: i64, row: &[u8]) -> Vec<u8> {
    Key::new(g, table::DEDUP_EXPIRY)
        .u64(u64::try_from(received_at).unwrap_or(0))
        .bytes(row.get(4..).unwrap_or_default())
        .build()
}
/// Partition: every expiry index entry, oldest first.
pub fn dedup_expiry_all(g: GroupId) -> Vec<u8> {
    Key::new(g, table::DEDUP_EXPIRY).build()
}

/// The key just past every key starting with `prefix` (for range deletes and bounded scans).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_order_is_byte_order() {
        let g = GroupId(3);
        let a = message(g, AccountId(1), MailboxId(1), Uid(9));
        let b = message(g, AccountId(1), MailboxId(1), Uid(10));
        let c = message(g, AccountId(1), MailboxId(2), Uid(1));
        assert!(a < b && b < c);
        assert!(log_entry(g, 255) < log_entry(g, 256));
        assert!(log_entry(GroupId(1), u64::MAX) < log_entry(GroupId(2), 0));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        let p = messages_of(GroupId(1), AccountId(7), MailboxId(2));
        let inside = message(GroupId(1), AccountId(7), MailboxId(2), Uid(u32::MAX));
        let outside = message(GroupId(1), AccountId(7), MailboxId(3), Uid(0));
        assert!(inside < prefix_end(&p) && outside >= prefix_end(&p));
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }
}
