//! Typed read-only queries over one group's state. STUB SIGNATURES: implemented by the store
//! work; callers may rely on these names and types.

use crate::{Db, StoreError};
use tern_core::records::{
    AccountRecord, AliasRecord, DomainRecord, MailboxRecord, MessageRecord, QueueRecord,
};
use tern_core::{AccountId, BlobId, GroupId, MailboxId};

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

    // ---- meta group ----

    /// One domain.
    pub fn domain(&self, name: &str) -> Result<Option<DomainRecord>, StoreError> {
        let _ = (&self.db, name);
        todo!()
    }
    /// All domains, sorted by name.
    pub fn domains(&self) -> Result<Vec<DomainRecord>, StoreError> {
        todo!()
    }
    /// One account by normalised address.
    pub fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        let _ = address;
        todo!()
    }
    /// One account by id.
    pub fn account_by_id(&self, id: AccountId) -> Result<Option<AccountRecord>, StoreError> {
        let _ = id;
        todo!()
    }
    /// All accounts, sorted by address.
    pub fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        todo!()
    }
    /// One alias by normalised address.
    pub fn alias(&self, address: &str) -> Result<Option<AliasRecord>, StoreError> {
        let _ = address;
        todo!()
    }
    /// All aliases, sorted by address.
    pub fn aliases(&self) -> Result<Vec<AliasRecord>, StoreError> {
        todo!()
    }

    // ---- data partitions ----

    /// Bytes stored by the account in this partition (all mailboxes).
    pub fn usage(&self, account: AccountId) -> Result<u64, StoreError> {
        let _ = account;
        todo!()
    }
    /// The account's mailboxes, sorted by name (INBOX first).
    pub fn mailboxes(&self, account: AccountId) -> Result<Vec<MailboxRecord>, StoreError> {
        let _ = account;
        todo!()
    }
    /// One mailbox by name (`INBOX` matched case-insensitively).
    pub fn mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        let _ = (account, name);
        todo!()
    }
    /// One mailbox by id.
    pub fn mailbox_by_id(
        &self,
        account: AccountId,
        id: MailboxId,
    ) -> Result<Option<MailboxRecord>, StoreError> {
        let _ = (account, id);
        todo!()
    }
    /// The mailbox's messages in ascending UID order.
    pub fn messages(
        &self,
        account: AccountId,
        mailbox: MailboxId,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let _ = (account, mailbox);
        todo!()
    }
    /// A message body.
    pub fn blob(&self, blob: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = blob;
        todo!()
    }
    /// The queue of this partition, oldest first.
    pub fn queue(&self) -> Result<Vec<QueueRecord>, StoreError> {
        todo!()
    }
    /// A digest of the group's whole state (for replica convergence checks).
    pub fn digest(&self) -> Result<[u8; 32], StoreError> {
        todo!()
    }
}
