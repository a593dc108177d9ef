//! DKIM signing keys: one per local domain, stored in the meta group so that every node can
//! sign with its local replica. Generating keys is not done here (tern-filter does it).

use crate::service::now;
use crate::{Directory, DirectoryError};
use tern_core::GroupId;
use tern_core::address::normalize_domain;
use tern_core::records::{DkimAlgorithm, DkimKeyRecord, SecretBytes};
use tern_store::Command;

impl Directory {
    /// Stores `domain`'s DKIM key (PKCS#8 DER), replacing an older one. The domain must be
    /// local (`NoSuchDomain` otherwise).
    pub async fn set_dkim_key(
        &self,
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_key_pkcs8_der: Vec<u8>,
    ) -> Result<(), DirectoryError> {
        let command = Command::SetDkimKey {
            domain: normalize_domain(domain)?,
            selector: selector.to_string(),
            algorithm,
            private_key_pkcs8_der: SecretBytes(private_key_pkcs8_der),
            now: now(),
        };
        self.propose_ok(GroupId::META, command).await
    }

    /// `domain`'s DKIM key, read from the local meta replica.
    pub async fn dkim_key(&self, domain: &str) -> Result<Option<DkimKeyRecord>, DirectoryError> {
        let domain = normalize_domain(domain)?;
        self.read(move |r| Ok(r.dkim_key(&domain)?)).await
    }
}
