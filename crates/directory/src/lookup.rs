//! Read-side operations: authentication, recipient resolution and account lookups, all served
//! from the local replica of the meta group. Logins and recipient resolution read it fresh
//! (`fresh`): a deleted account, a changed password or alias holds on every node as soon as
//! the operator's command returned.

use crate::resolve::{self, info};
use crate::{AccountInfo, Directory, DirectoryError, Resolution, password};
use tern_core::address::{Address, normalize_domain};

impl Directory {
    /// Checks a login name (full address) and password.
    pub async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<AccountInfo, DirectoryError> {
        // A malformed login name is just another unknown user: same answer, same cost.
        let record = match Address::parse(user) {
            Ok(address) => {
                let key = address.to_string();
                self.read_fresh(move |r| Ok(r.account(&key)?)).await?
            }
            Err(_) => None,
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        if password::verify(password, stored).await
            && let Some(record) = record
        {
            return Ok(info(record));
        }
        Err(DirectoryError::AuthFailed)
    }

    /// Resolves an envelope recipient, expanding aliases (one level of nesting and more, with a
    /// depth limit).
    pub async fn resolve(&self, address: &str) -> Result<Resolution, DirectoryError> {
        let address = Address::parse(address)?;
        self.read_fresh(move |r| Ok(resolve::resolve(r, &address)?))
            .await
    }

    /// Whether `domain` is one of ours.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, DirectoryError> {
        let domain = normalize_domain(domain)?;
        self.read(move |r| Ok(r.domain(&domain)?.is_some())).await
    }

    /// Looks up an account by address.
    pub async fn account(&self, address: &str) -> Result<Option<AccountInfo>, DirectoryError> {
        let key = Address::parse(address)?.to_string();
        self.read(move |r| Ok(r.account(&key)?.map(info))).await
    }
}
