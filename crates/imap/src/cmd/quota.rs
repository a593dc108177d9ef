//! QUOTA (RFC 9208): one quota root, `""`, holding the whole account, with the STORAGE
//! resource in KiB. Quotas are the administrator's (`tern account add --quota`), so SETQUOTA
//! is refused; an account without a quota has no quota root.

use crate::session::{Session, no_for};
use tern_mailbox::Account;

/// The name of the account's only quota root.
const ROOT: &str = "\"\"";

impl Session {
    /// `* QUOTA "" (STORAGE used limit)`, or `None` when the account has no quota.
    async fn quota_line(&self, account: &Account) -> Result<Option<String>, String> {
        let limit = account.info().quota;
        if limit == 0 {
            return Ok(None);
        }
        let used = account.usage().await.map_err(|e| no_for(&e))?;
        Ok(Some(format!(
            "* QUOTA {ROOT} (STORAGE {} {})",
            used.div_ceil(1024),
            limit / 1024
        )))
    }

    pub(crate) async fn get_quota(&mut self, tag: &str, account: &Account, root: &str) {
        match self.quota_line(account).await {
            Ok(Some(line)) if root.is_empty() => {
                self.untagged(&line);
                self.tagged(tag, "OK GETQUOTA completed");
            }
            Ok(_) => self.tagged(tag, "NO [NONEXISTENT] No such quota root"),
            Err(no) => self.tagged(tag, &no),
        }
    }

    pub(crate) async fn get_quota_root(&mut self, tag: &str, account: &Account, name: &str) {
        let exists = account.status(name).await;
        if let Err(e) = exists {
            return self.tagged(tag, &no_for(&e));
        }
        let mut quoted = Vec::new();
        crate::proto::encode::mailbox(&mut quoted, name);
        let quoted = String::from_utf8_lossy(&quoted).into_owned();
        match self.quota_line(account).await {
            Ok(Some(line)) => {
                self.untagged(&format!("* QUOTAROOT {quoted} {ROOT}"));
                self.untagged(&line);
            }
            Ok(None) => self.untagged(&format!("* QUOTAROOT {quoted}")),
            Err(no) => return self.tagged(tag, &no),
        }
        self.tagged(tag, "OK GETQUOTAROOT completed");
    }
}
