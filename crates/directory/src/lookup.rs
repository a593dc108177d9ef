//! Read-side operations: authentication, recipient resolution and account lookups, all served
//! from the local replica of the meta group. Logins and recipient resolution read it fresh
//! (`fresh`): a deleted account, a changed password or alias holds on every node as soon as
//! the operator's command returned.

use crate::hashers::{HashError, Lane};
use crate::resolve::{self, info};
use crate::throttle::{Standing, Verdict};
use crate::{AccountInfo, Directory, DirectoryError, Resolution, password};
use std::net::IpAddr;
use tern_core::address::{Address, normalize_domain};
use tern_core::ops::Unavailable;

/// How long a login that found the hashing queue full waits before it is answered.
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

impl Directory {
    /// Checks a login name (full address) and password, sent by `client`.
    ///
    /// Failures count against the client (its /64 for IPv6) and the account, across every
    /// protocol on this node (`throttle`): after a few, the next attempt waits before its
    /// password is checked; after more, it is refused without checking
    /// ([`DirectoryError::Throttled`]). A full hashing queue is a temporary failure
    /// ([`DirectoryError::Unavailable`]), never a wrong password.
    pub async fn authenticate(
        &self,
        client: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<AccountInfo, DirectoryError> {
        // A malformed login name is just another unknown user: same answer, same cost.
        let address = Address::parse(user).ok();
        // Malformed names share one key: counting each would let junk fill the table.
        let key = address
            .as_ref()
            .map_or_else(|| "<malformed>".to_string(), ToString::to_string);
        let (verdict, standing) = self.throttle.verdict(client, &key);
        match verdict {
            Verdict::Go => {}
            Verdict::Wait(delay) => tokio::time::sleep(delay).await,
            Verdict::Refuse => {
                // Answered late too, so a refused guesser cannot knock at full speed.
                tokio::time::sleep(self.throttle.policy().max_delay).await;
                return Err(DirectoryError::Throttled);
            }
        }
        let record = match address {
            Some(_) => {
                let account = key.clone();
                self.read_fresh(move |r| Ok(r.account(&account)?)).await?
            }
            None => None,
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        let lane = match standing {
            Standing::Known => Lane::Known,
            Standing::Clean => Lane::Clean,
            Standing::Suspect => Lane::Suspect,
        };
        match password::verify(password, stored, lane).await {
            Ok(true) if record.is_some() => {
                self.throttle.succeeded(client, &key);
                record.map(info).ok_or(DirectoryError::AuthFailed)
            }
            Ok(_) => {
                self.throttle.failed(client, &key);
                Err(DirectoryError::AuthFailed)
            }
            Err(HashError::Busy) => {
                // The queue's lane is full: "try later", answered after a pause so that a
                // flood does not retry at once (not a strike: a real user meets it too).
                tokio::time::sleep(BUSY_PAUSE).await;
                Err(DirectoryError::Unavailable(Unavailable(
                    "too many logins in progress".into(),
                )))
            }
            Err(HashError::Failed) => Err(DirectoryError::Hash("the hashing task failed".into())),
        }
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
