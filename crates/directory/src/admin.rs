//! Write-side operations for operators: domains, accounts and aliases. Each normalises its
//! input, proposes to the meta group and returns once the change is committed; account
//! creation and removal also touch the account's data partition.

use crate::resolve::info;
use crate::service::{no_such_account, now};
use crate::{AccountInfo, Directory, DirectoryError, password};
use tern_core::GroupId;
use tern_core::address::{Address, normalize_domain};
use tern_core::records::{AliasRecord, DomainRecord};
use tern_store::{Command, Rejection, Response};

impl Directory {
    /// Adds a domain.
    pub async fn add_domain(&self, name: &str) -> Result<(), DirectoryError> {
        let name = normalize_domain(name)?;
        let command = Command::AddDomain { name, now: now() };
        self.propose_ok(GroupId::META, command).await
    }

    /// Removes a domain.
    pub async fn delete_domain(&self, name: &str) -> Result<(), DirectoryError> {
        let name = normalize_domain(name)?;
        self.propose_ok(GroupId::META, Command::DeleteDomain { name })
            .await
    }

    /// All domains.
    pub async fn list_domains(&self) -> Result<Vec<DomainRecord>, DirectoryError> {
        self.read(|r| Ok(r.domains()?)).await
    }

    /// Adds an account and creates its default mailboxes.
    pub async fn add_account(
        &self,
        address: &str,
        password: &str,
        quota: u64,
    ) -> Result<AccountInfo, DirectoryError> {
        let address = Address::parse(address)?;
        // Checked before hashing so that a typo in the domain costs no Argon2 run; the state
        // machine checks again, so a domain deleted in between is still refused.
        if !self.is_local_domain(address.domain()).await? {
            return Err(DirectoryError::Rejected(Rejection::NoSuchDomain));
        }
        let password_hash = password::hash(password).await?;
        let address = address.to_string();
        let command = Command::AddAccount {
            address: address.clone(),
            password_hash,
            quota,
            now: now(),
        };
        let id = match self.propose(GroupId::META, command).await? {
            Response::AccountAdded(id) => id,
            other => return Err(DirectoryError::unexpected(GroupId::META, &other)),
        };
        // InitAccount is idempotent, and mailbox actors and deliveries create the defaults on
        // demand too, so a failure here leaves a usable account; the error still reaches the
        // operator, who may retry.
        let partition = self.raft.partition_of(id);
        let init = Command::InitAccount {
            account: id,
            now: now(),
        };
        self.propose_ok(partition, init).await?;
        Ok(AccountInfo { id, address, quota })
    }

    /// Removes an account and its mail.
    pub async fn delete_account(&self, address: &str) -> Result<(), DirectoryError> {
        let key = Address::parse(address)?.to_string();
        let lookup = key.clone();
        let record = self
            .read(move |r| Ok(r.account(&lookup)?))
            .await?
            .ok_or_else(no_such_account)?;
        self.propose_ok(GroupId::META, Command::DeleteAccount { address: key })
            .await?;
        // The account is gone from the directory first, so no new mail is accepted for it
        // while its mailboxes are purged.
        let purge = Command::PurgeAccount { account: record.id };
        self.propose_ok(self.raft.partition_of(record.id), purge)
            .await
    }

    /// Changes a password.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?.to_string();
        let password_hash = password::hash(password).await?;
        let command = Command::SetPassword {
            address,
            password_hash,
        };
        self.propose_ok(GroupId::META, command).await
    }

    /// All accounts.
    pub async fn list_accounts(&self) -> Result<Vec<AccountInfo>, DirectoryError> {
        self.read(|r| Ok(r.accounts()?.into_iter().map(info).collect()))
            .await
    }

    /// Adds `target` to alias `address`.
    pub async fn add_alias(&self, address: &str, target: &str) -> Result<(), DirectoryError> {
        let command = Command::AddAlias {
            address: Address::parse(address)?.to_string(),
            target: Address::parse(target)?.to_string(),
        };
        self.propose_ok(GroupId::META, command).await
    }

    /// Removes an alias.
    pub async fn delete_alias(&self, address: &str) -> Result<(), DirectoryError> {
        let address = Address::parse(address)?.to_string();
        self.propose_ok(GroupId::META, Command::DeleteAlias { address })
            .await
    }

    /// All aliases.
    pub async fn list_aliases(&self) -> Result<Vec<AliasRecord>, DirectoryError> {
        self.read(|r| Ok(r.aliases()?)).await
    }
}
