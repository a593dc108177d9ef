//! The storage a POP3 session needs, as two small traits: check credentials and open an
//! account ([`Backend`]), then lock, read and update its INBOX ([`MailAccount`]).
//!
//! [`crate::Pop3Context`] implements them over `tern_directory` and `tern_mailbox`; the session
//! tests implement them in memory, so the whole protocol is tested without Raft or RocksDB.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tern_core::ops::FlagOp;
use tern_core::{BlobId, MailboxId, Uid};
use tern_directory::{AccountInfo, DirectoryError};
use tern_mailbox::relay::RelayStream;
use tern_mailbox::{MailboxError, RelayProtocol, RelayRequest, Snapshot};

/// Authentication and account lookup.
pub trait Backend: Send + Sync {
    /// The handle of an opened account.
    type Account: MailAccount;

    /// Checks a login name and password sent by `client` (whose failures are throttled).
    fn authenticate(
        &self,
        client: IpAddr,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<AccountInfo, DirectoryError>> + Send;

    /// Opens the account's mailboxes. [`MailboxError::Elsewhere`]: they are on other nodes,
    /// and the session is relayed there ([`Backend::relay`]).
    fn open(
        &self,
        account: &AccountInfo,
    ) -> impl Future<Output = Result<Self::Account, MailboxError>> + Send;

    /// Opens a relay to a node that holds the account's mail; that node locks the maildrop
    /// and answers the login (see `tern_mailbox::relay`).
    fn relay(
        &self,
        account: &AccountInfo,
        client: SocketAddr,
    ) -> impl Future<Output = Result<RelayStream, MailboxError>> + Send;
}

/// One account's INBOX, as POP3 sees it.
pub trait MailAccount: Send + Sync {
    /// Held while the session owns the maildrop; dropping it releases the lock.
    type Lock: Send;

    /// The account.
    fn info(&self) -> &AccountInfo;

    /// Takes the exclusive maildrop lock (RFC 1939 §8), cluster-wide; `MailboxError::InUse`
    /// if it is held.
    fn lock_maildrop(&self) -> impl Future<Output = Result<Self::Lock, MailboxError>> + Send;

    /// Lets go of the maildrop and returns once another session could take it (dropping the
    /// lock releases it too, in the background).
    fn unlock(&self, lock: Self::Lock) -> impl Future<Output = ()> + Send {
        async move { drop(lock) }
    }

    /// The INBOX and its messages in UID order.
    fn inbox(&self) -> impl Future<Output = Result<Snapshot, MailboxError>> + Send;

    /// A message body.
    fn read_blob(
        &self,
        blob: BlobId,
    ) -> impl Future<Output = Result<Arc<Vec<u8>>, MailboxError>> + Send;

    /// Adds `flag` to the messages `uids` of `mailbox`.
    fn add_flag(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        flag: &str,
    ) -> impl Future<Output = Result<(), MailboxError>> + Send;

    /// Removes the messages `uids` (which must carry `\Deleted`) from `mailbox`.
    fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
    ) -> impl Future<Output = Result<Vec<Uid>, MailboxError>> + Send;
}

impl Backend for crate::Pop3Context {
    type Account = tern_mailbox::Account;

    fn authenticate(
        &self,
        client: IpAddr,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<AccountInfo, DirectoryError>> + Send {
        self.directory.authenticate(client, user, password)
    }

    fn open(
        &self,
        account: &AccountInfo,
    ) -> impl Future<Output = Result<Self::Account, MailboxError>> + Send {
        self.mailboxes.open(account)
    }

    async fn relay(
        &self,
        account: &AccountInfo,
        client: SocketAddr,
    ) -> Result<RelayStream, MailboxError> {
        let request = RelayRequest {
            protocol: RelayProtocol::Pop3,
            address: account.address.clone(),
            client,
            tag: String::new(),
        };
        self.mailboxes.relay(account, &request).await
    }
}

impl MailAccount for tern_mailbox::Account {
    type Lock = tern_mailbox::MaildropLock;

    fn info(&self) -> &AccountInfo {
        tern_mailbox::Account::info(self)
    }

    fn lock_maildrop(&self) -> impl Future<Output = Result<Self::Lock, MailboxError>> + Send {
        tern_mailbox::Account::lock_maildrop(self)
    }

    fn unlock(&self, lock: Self::Lock) -> impl Future<Output = ()> + Send {
        lock.release()
    }

    fn inbox(&self) -> impl Future<Output = Result<Snapshot, MailboxError>> + Send {
        self.snapshot("INBOX")
    }

    fn read_blob(
        &self,
        blob: BlobId,
    ) -> impl Future<Output = Result<Arc<Vec<u8>>, MailboxError>> + Send {
        tern_mailbox::Account::read_blob(self, blob)
    }

    fn add_flag(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
        flag: &str,
    ) -> impl Future<Output = Result<(), MailboxError>> + Send {
        let flags = vec![flag.to_string()];
        async move {
            self.store(mailbox, uids, FlagOp::Add, flags, None)
                .await
                .map(|_| ())
        }
    }

    fn expunge(
        &self,
        mailbox: MailboxId,
        uids: Vec<Uid>,
    ) -> impl Future<Output = Result<Vec<Uid>, MailboxError>> + Send {
        tern_mailbox::Account::expunge(self, mailbox, Some(uids))
    }
}
