//! Typed read-only queries over one group's applied state.

use crate::apply::directory_decode_all as decode_all;
use crate::codec::decode;
use crate::schema::{self, CF_BLOBS, CF_STATE, Key, table};
use crate::{Db, StoreError};
use tern_core::records::{
    AccountRecord, AliasRecord, DkimKeyRecord, DomainRecord, MailboxRecord, MessageRecord,
    QueueRecord,
};
use tern_core::{AccountId, BlobId, DeliveryId, GroupId, MailboxId, Uid};

/// A read-only view of one group's applied state.
#[derive(Clone)]
pub struct Reader {
    db: Db,
    group: GroupId,
}

impl Reader {
    /// A reader over `group`'s state in `db`.
    pub fn new(db: Db, group: GroupId) -> Reader {
        Reader { db, group }
    }

    /// The group this reader reads.
    pub fn group(&self) -> GroupId {
        self.group
    }

    fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.db
            .get(CF_STATE, key)?
            .map(|v| decode(key, &v))
            .transpose()
    }

    fn table<T: serde::de::DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        decode_all(self.db.scan(CF_STATE, prefix)?)
    }

    // ---- meta group ----

    /// One domain.
    pub fn domain(&self, name: &str) -> Result<Option<DomainRecord>, StoreError> {
        self.get(&schema::domain(self.group, name))
    }
    /// All domains, sorted by name.
    pub fn domains(&self) -> Result<Vec<DomainRecord>, StoreError> {
        self.table(&Key::new(self.group, table::DOMAIN).build())
    }
    /// The nodes being drained (meta).
    pub fn draining(&self) -> Result<Vec<u64>, StoreError> {
        let prefix = Key::new(self.group, table::DRAINING).build();
        let mut nodes = Vec::new();
        for (key, _) in self.db.scan(CF_STATE, &prefix)? {
            let id: [u8; 8] = key[prefix.len()..]
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    key: format!("{key:02x?}"),
                    reason: "draining key".into(),
                })?;
            nodes.push(u64::from_be_bytes(id));
        }
        Ok(nodes)
    }
    /// One account by normalised address.
    pub fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.get(&schema::account(self.group, address))
    }
    /// One account by id.
    pub fn account_by_id(&self, id: AccountId) -> Result<Option<AccountRecord>, StoreError> {
        match self.get::<String>(&schema::account_id(self.group, id))? {
            Some(address) => self.account(&address),
            None => Ok(None),
        }
    }
    /// All accounts, sorted by address.
    pub fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.table(&Key::new(self.group, table::ACCOUNT).build())
    }
    /// One alias by normalised address.
    pub fn alias(&self, address: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.get(&schema::alias(self.group, address))
    }
    /// All aliases, sorted by address.
    pub fn aliases(&self) -> Result<Vec<AliasRecord>, StoreError> {
        self.table(&Key::new(self.group, table::ALIAS).build())
    }
    /// A domain's DKIM signing key, if it has one.
    pub fn dkim_key(&self, domain: &str) -> Result<Option<DkimKeyRecord>, StoreError> {
        self.get(&schema::dkim_key(self.group, domain))
    }

    // ---- data partitions ----

    /// Bytes stored by the account in this partition (all mailboxes).
    pub fn usage(&self, account: AccountId) -> Result<u64, StoreError> {
        Ok(self
            .get::<crate::apply::AccountState>(&schema::account_state(self.group, account))?
            .map(|s| s.usage)
            .unwrap_or(0))
    }
    /// Bytes of mail in all of this partition's mailboxes.
    pub fn group_usage(&self) -> Result<u64, StoreError> {
        Ok(self.get(&schema::group_usage(self.group))?.unwrap_or(0))
    }
    /// The account's mailboxes, sorted by name (INBOX first).
    pub fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, StoreError> {
        let mut all: Vec<MailboxRecord> = self.table(&schema::mailboxes_of(self.group, account))?;
        all.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
        Ok(all)
    }
    /// Names the account subscribed to that are not mailboxes, sorted.
    pub fn dangling_subscriptions(&self, account: AccountId) -> Result<Vec<String>, StoreError> {
        let prefix = schema::subscriptions_of(self.group, account);
        let mut names = Vec::new();
        for (k, _) in self.db.scan(CF_STATE, &prefix)? {
            let name = k.get(prefix.len()..).unwrap_or_default();
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        Ok(names)
    }
    /// The lowest UID of `mailbox` no IMAP session was shown yet: the first `\Recent` one.
    pub fn first_recent(&self, account: AccountId, mailbox: MailboxId) -> Result<Uid, StoreError> {
        let key = schema::recent(self.group, account, mailbox);
        Ok(Uid(self.get::<u32>(&key)?.unwrap_or(1)))
    }
    /// How many messages of `mailbox` have a UID of at least `from`.
    pub fn count_from(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        from: Uid,
    ) -> Result<u32, StoreError> {
        let prefix = schema::messages_of(self.group, account, mailbox);
        let start = schema::message(self.group, account, mailbox, from);
        let mut n = 0u32;
        for item in self
            .db
            .iter_from(CF_STATE, &start, crate::db::Direction::Forward)?
        {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            n = n.saturating_add(1);
        }
        Ok(n)
    }
    /// One mailbox by name (`INBOX` matched case-insensitively).
    pub fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        let name = crate::apply::normalize_name(name);
        match self.get::<MailboxId>(&schema::mailbox_name(self.group, account, &name))? {
            Some(id) => self.mailbox_by_id(account, id),
            None => Ok(None),
        }
    }
    /// One mailbox by id.
    pub fn mailbox_by_id(
        &self,
        account: AccountId,
        id: MailboxId,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        self.get(&schema::mailbox(self.group, account, id))
    }
    /// The mailbox's messages in ascending UID order.
    pub fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.table(&schema::messages_of(self.group, account, mailbox))
    }
    /// A message body.
    pub fn blob(&self, blob: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        // One row, or the parts of a body proposed in parts (keys `blob | seq`), in order.
        let key = schema::blob(self.group, blob);
        let mut body: Option<Vec<u8>> = None;
        for item in self.db.iter_prefix(CF_BLOBS, &key)? {
            let (_, v) = item?;
            body.get_or_insert_with(Vec::new).extend_from_slice(&v);
        }
        Ok(body)
    }
    /// One queued message of this partition.
    pub fn queued(&self, id: DeliveryId) -> Result<Option<QueueRecord>, StoreError> {
        self.get(&schema::queue(self.group, id))
    }
    /// Whether this partition has committed the `Accept` of transaction `id` (remembered for
    /// `[storage] dedup_window_secs`).
    pub fn accepted(&self, id: DeliveryId) -> Result<bool, StoreError> {
        Ok(self
            .db
            .get(CF_STATE, &schema::accepted(self.group, id))?
            .is_some())
    }
    /// What the committed `Accept` of transaction `id` did to its local recipients, if this
    /// replica has applied it.
    pub fn accept_outcome(
        &self,
        id: DeliveryId,
    ) -> Result<Option<Vec<crate::DeliveryOutcome>>, StoreError> {
        self.get(&schema::accepted(self.group, id))
    }
    /// The account's sending-limit counters (all zero when it never sent).
    pub fn send_counter(
        &self,
        account: AccountId,
    ) -> Result<crate::apply::SendCounter, StoreError> {
        Ok(self
            .get(&schema::send_counter(self.group, account))?
            .unwrap_or_default())
    }
    /// The queue of this partition, oldest first.
    pub fn queue(&self) -> Result<Vec<QueueRecord>, StoreError> {
        let mut q: Vec<QueueRecord> = self.table(&Key::new(self.group, table::QUEUE).build())?;
        q.sort_by_key(|r| (r.created, r.id));
        Ok(q)
    }
    fn blob_referenced(&self, key: &[u8]) -> Result<bool, StoreError> {
        let Some(id) = schema::blob_id_of_key(self.group, key) else {
            return Ok(false);
        };
        self.db
            .exists(CF_STATE, &schema::blob_refs(self.group, &id))
    }

    /// A digest of the group's whole state (for replica convergence checks). The applied-log
    /// record is left out: it names log positions, not state.
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        let mut hasher = blake3::Hasher::new();
        let prefix = schema::group_prefix(self.group);
        let applied = schema::applied(self.group);
        for cf in [CF_STATE, CF_BLOBS] {
            // Streamed: a group can be far larger than memory.
            for item in self.db.iter_prefix(cf, &prefix)? {
                let (k, v) = item?;
                if cf == CF_STATE && *k == *applied {
                    continue;
                }
                if cf == CF_BLOBS && !self.blob_referenced(&k)? {
                    continue; // staged for an entry not applied yet
                }
                hasher.update(&(k.len() as u64).to_be_bytes());
                hasher.update(&k);
                hasher.update(&(v.len() as u64).to_be_bytes());
                hasher.update(&v);
            }
        }
        Ok(*hasher.finalize().as_bytes())
    }
}
