//! [`Account`]: a session's handle to one account's mailboxes. Writes go through the
//! account's actor; reads take a linearizable reader of the account's partition; bodies come
//! from the local replica (blobs never change).

use crate::actor::{AccountMsg, call_write};
use crate::lease::MaildropLock;
use crate::registry::Shared;
use crate::snapshot;
use crate::{Appended, Copied, MailboxError, MailboxEvent, Snapshot, Stored};
use ractor::ActorRef;
use std::sync::Arc;
use tern_core::records::{MailboxRecord, SpecialUse};
use tern_core::{AccountId, BlobId, GroupId, MailboxId, Uid, flags};
use tern_directory::AccountInfo;
use tern_raft::RaftNode;
use tern_store::{Command, FlagOp, Reader, Rejection, Response};
use tokio::sync::broadcast;

/// A handle to one account's mailbox actor. Cheap to clone.
#[derive(Clone)]
pub struct Account {
    /// Who the session authenticated as (the quota comes from here).
    info: AccountInfo,
    /// The account's data partition.
    partition: GroupId,
    /// Reads and blob lookups.
    raft: RaftNode,
    /// Serialises this account's writes.
    actor: ActorRef<AccountMsg>,
    /// Event channel and maildrop lock, shared by every handle of the account on this node.
    shared: Arc<Shared>,
}

impl Account {
    pub(crate) fn new(
        info: AccountInfo,
        partition: GroupId,
        raft: RaftNode,
        actor: ActorRef<AccountMsg>,
        shared: Arc<Shared>,
    ) -> Account {
        Account {
            info,
            partition,
            raft,
            actor,
            shared,
        }
    }

    /// The account.
    pub fn info(&self) -> &AccountInfo {
        &self.info
    }

    /// All mailboxes with their counters, sorted by name (INBOX first).
    pub async fn list(&self) -> Result<Vec<MailboxRecord>, MailboxError> {
        self.read(|r, account| Ok(r.mailboxes(account)?)).await
    }

    /// One mailbox's counters (STATUS).
    pub async fn status(&self, name: &str) -> Result<MailboxRecord, MailboxError> {
        let name = name.to_string();
        self.read(move |r, account| {
            Ok(r.mailbox(account, &name)?.ok_or(Rejection::NoSuchMailbox)?)
        })
        .await
    }

    /// The mailbox's full index (SELECT, and resync after changes).
    pub async fn snapshot(&self, name: &str) -> Result<Snapshot, MailboxError> {
        let name = name.to_string();
        self.read(move |r, account| {
            let mailbox = r.mailbox(account, &name)?.ok_or(Rejection::NoSuchMailbox)?;
            snapshot::read(r, account, mailbox.id)
        })
        .await
    }

    /// The full index of a mailbox by id (after rename the session keeps its id).
    pub async fn snapshot_by_id(&self, id: MailboxId) -> Result<Snapshot, MailboxError> {
        self.read(move |r, account| snapshot::read(r, account, id))
            .await
    }

    /// CREATE.
    pub async fn create(
        &self,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError> {
        let command = Command::CreateMailbox {
            account: self.info.id,
            name: name.to_string(),
            special_use,
            now: now(),
        };
        self.write_ok(command).await
    }

    /// DELETE.
    pub async fn delete(&self, name: &str) -> Result<(), MailboxError> {
        let command = Command::DeleteMailbox {
            account: self.info.id,
            name: name.to_string(),
        };
        self.write_ok(command).await
    }

    /// RENAME.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), MailboxError> {
        let command = Command::RenameMailbox {
            account: self.info.id,
            from: from.to_string(),
            to: to.to_string(),
            now: now(),
        };
        self.write_ok(command).await
    }

    /// Bytes of mail the account holds (what its quota counts).
    pub async fn usage(&self) -> Result<u64, MailboxError> {
        self.read(|r, account| Ok(r.usage(account)?)).await
    }

    /// Messages of mailbox `name` flagged `\Deleted`, and their bytes (STATUS DELETED,
    /// DELETED-STORAGE).
    pub async fn deleted(&self, name: &str) -> Result<(u32, u64), MailboxError> {
        let name = name.to_string();
        self.read(move |r, account| {
            let mailbox = r.mailbox(account, &name)?.ok_or(Rejection::NoSuchMailbox)?;
            let mut found = (0u32, 0u64);
            for m in r.messages(account, mailbox.id)? {
                if m.flags.iter().any(|f| f == flags::DELETED) {
                    found = (found.0.saturating_add(1), found.1.saturating_add(m.size));
                }
            }
            Ok(found)
        })
        .await
    }

    /// Names subscribed to that are not mailboxes (LSUB, LIST (SUBSCRIBED)).
    pub async fn dangling_subscriptions(&self) -> Result<Vec<String>, MailboxError> {
        self.read(|r, account| Ok(r.dangling_subscriptions(account)?))
            .await
    }

    /// How many messages of mailbox `name` no IMAP session was shown yet (STATUS RECENT).
    pub async fn unclaimed_recent(&self, name: &str) -> Result<u32, MailboxError> {
        let name = name.to_string();
        self.read(move |r, account| {
            let mailbox = r.mailbox(account, &name)?.ok_or(Rejection::NoSuchMailbox)?;
            let first = r.first_recent(account, mailbox.id)?;
            Ok(r.count_from(account, mailbox.id, first)?)
        })
        .await
    }

    /// Claims for one session the messages of `mailbox` up to `up_to` that no session was
    /// shown yet (IMAP4rev1 `\Recent`); returns the first UID claimed (nothing is claimed
    /// when it is above `up_to`).
    pub async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> Result<Uid, MailboxError> {
        let command = Command::ClaimRecent {
            account: self.info.id,
            mailbox,
            up_to,
        };
        match self.write(command).await? {
            Response::RecentClaimed(first) => Ok(first),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }

    /// SUBSCRIBE / UNSUBSCRIBE.
    pub async fn subscribe(&self, name: &str, subscribed: bool) -> Result<(), MailboxError> {
        let command = Command::SetSubscribed {
            account: self.info.id,
            name: name.to_string(),
            subscribed,
        };
        self.write_ok(command).await
    }

    /// APPEND; `internal_date` defaults to now.
    pub async fn append(
        &self,
        mailbox: &str,
        body: Vec<u8>,
        flags: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<Appended, MailboxError> {
        let command = Command::Append {
            account: self.info.id,
            mailbox: mailbox.to_string(),
            body,
            flags: canonical(&flags),
            internal_date: internal_date.unwrap_or_else(now),
            quota: self.info.quota,
        };
        match self.write(command).await? {
            Response::Appended {
                mailbox,
                uidvalidity,
                uid,
            } => Ok(Appended {
                mailbox,
                uidvalidity,
                uid,
            }),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }

    /// STORE.
    pub async fn store(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        op: FlagOp,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<Stored, MailboxError> {
        let command = Command::StoreFlags {
            account: self.info.id,
            mailbox,
            uids,
            op,
            flags: canonical(&flags),
            unchanged_since,
        };
        match self.write(command).await? {
            Response::FlagsStored { changed, modified } => Ok(Stored { changed, modified }),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }

    /// COPY, or MOVE when `remove_source`.
    pub async fn copy(
        &self,
        from: MailboxId,
        uids: Vec<Uid>,
        to: &str,
        remove_source: bool,
    ) -> Result<Copied, MailboxError> {
        let command = Command::CopyMessages {
            account: self.info.id,
            from,
            uids,
            to: to.to_string(),
            remove_source,
            quota: self.info.quota,
        };
        match self.write(command).await? {
            Response::Copied {
                uidvalidity, uids, ..
            } => Ok(Copied { uidvalidity, uids }),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }

    /// EXPUNGE (all `\Deleted`) or UID EXPUNGE (only those in `uids`); returns removed UIDs.
    pub async fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Option<Vec<Uid>>,
    ) -> Result<Vec<Uid>, MailboxError> {
        let command = Command::Expunge {
            account: self.info.id,
            mailbox,
            uids,
        };
        match self.write(command).await? {
            Response::Expunged(uids) => Ok(uids),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }

    /// A message body (read from the local replica).
    pub async fn read_blob(&self, blob: BlobId) -> Result<Arc<Vec<u8>>, MailboxError> {
        // Every body of the account's messages is stored in the account's partition, and a
        // blob never changes once written, so the local replica is as good as the leader's.
        let reader = self.raft.local_reader(self.partition);
        let group = self.partition;
        tokio::task::spawn_blocking(move || reader.blob(&blob))
            .await
            .map_err(|e| MailboxError::unavailable(group, format!("blob read failed: {e}")))??
            .map(Arc::new)
            .ok_or(MailboxError::MissingBlob(blob))
    }

    /// Change events for this account.
    pub fn watch(&self) -> broadcast::Receiver<MailboxEvent> {
        self.shared.events.subscribe()
    }

    /// Takes the POP3 maildrop lock, a lease in the account's partition: `MailboxError::InUse`
    /// if another session on any node holds it. Released when the guard drops.
    pub async fn lock_maildrop(&self) -> Result<MaildropLock, MailboxError> {
        MaildropLock::take(
            &self.shared.maildrop,
            self.raft.clone(),
            self.partition,
            self.info.id,
        )
        .await
    }

    /// Creates the default mailboxes if the account has none (an account made before its
    /// partition ran `InitAccount`, or whose first `InitAccount` failed).
    pub(crate) async fn ensure_defaults(&self) -> Result<(), MailboxError> {
        if self.list().await?.is_empty() {
            let command = Command::InitAccount {
                account: self.info.id,
                now: now(),
            };
            self.write_ok(command).await?;
        }
        Ok(())
    }

    /// Runs `query` on a linearizable reader of the partition, on the blocking pool.
    async fn read<T, F>(&self, query: F) -> Result<T, MailboxError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader, AccountId) -> Result<T, MailboxError> + Send + 'static,
    {
        let reader = self.raft.read(self.partition).await?;
        let account = self.info.id;
        let group = self.partition;
        tokio::task::spawn_blocking(move || query(&reader, account))
            .await
            .map_err(|e| MailboxError::unavailable(group, format!("read failed: {e}")))?
    }

    async fn write(&self, command: Command) -> Result<Response, MailboxError> {
        call_write(&self.actor, self.partition, command).await
    }

    async fn write_ok(&self, command: Command) -> Result<(), MailboxError> {
        match self.write(command).await? {
            Response::Ok => Ok(()),
            other => Err(MailboxError::unexpected(self.partition, &other)),
        }
    }
}

/// Flags as the state machine stores them (`\SEEN` and `\Seen` are one flag).
fn canonical(flags: &[String]) -> Vec<String> {
    flags.iter().map(|f| flags::canonical(f)).collect()
}

/// Unix seconds now: the proposer chooses timestamps so every replica applies the same one.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
