//! Recipient resolution: an envelope address becomes local accounts and remote addresses,
//! through aliases (nested up to [`MAX_DEPTH`], cycle-safe) and `+` sub-addressing.
//!
//! The logic is synchronous and works over the [`View`] trait, so it runs on the blocking pool
//! against the local replica and is tested here against plain maps.

use crate::{AccountInfo, Recipient, Resolution};
use std::collections::HashSet;
use tern_core::address::Address;
use tern_core::records::{AccountRecord, AliasRecord};
use tern_store::{Reader, StoreError};

/// How deep aliases may nest; deeper targets are dropped (with a warning) rather than looping.
pub(crate) const MAX_DEPTH: usize = 8;

/// The three lookups resolution needs, keyed by normalised names.
pub(crate) trait View {
    /// Whether `domain` is local.
    fn has_domain(&self, domain: &str) -> Result<bool, StoreError>;
    /// The account with this address.
    fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// The alias with this address.
    fn alias(&self, address: &str) -> Result<Option<AliasRecord>, StoreError>;
}

impl View for Reader {
    fn has_domain(&self, domain: &str) -> Result<bool, StoreError> {
        Ok(self.domain(domain)?.is_some())
    }
    fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
        Reader::account(self, address)
    }
    fn alias(&self, address: &str) -> Result<Option<AliasRecord>, StoreError> {
        Reader::alias(self, address)
    }
}

/// The session-facing summary of an account record.
pub(crate) fn info(record: AccountRecord) -> AccountInfo {
    AccountInfo {
        id: record.id,
        address: record.address,
        quota: record.quota,
    }
}

/// Resolves an already-normalised address.
pub(crate) fn resolve(view: &impl View, address: &Address) -> Result<Resolution, StoreError> {
    if !view.has_domain(address.domain())? {
        return Ok(Resolution::NotLocal);
    }
    let mut walk = Walk {
        view,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    walk.expand(address, 0)?;
    if walk.out.is_empty() {
        Ok(Resolution::UnknownUser)
    } else {
        Ok(Resolution::Deliver(walk.out))
    }
}

/// One resolution in progress: the addresses already expanded and the recipients found.
struct Walk<'v, V> {
    view: &'v V,
    seen: HashSet<String>,
    out: Vec<Recipient>,
}

impl<V: View> Walk<'_, V> {
    fn expand(&mut self, address: &Address, depth: usize) -> Result<(), StoreError> {
        let key = address.to_string();
        // An address reached twice (a cycle, or two aliases sharing a target) adds nothing new.
        if !self.seen.insert(key.clone()) {
            return Ok(());
        }
        if !self.view.has_domain(address.domain())? {
            self.push(Recipient::Remote(key));
            return Ok(());
        }
        if self.expand_local(&key, depth)? {
            return Ok(());
        }
        // user+tag@domain reaches user@domain when nothing owns the tagged address itself.
        if let Some((base, _tag)) = address.local().split_once('+')
            && !base.is_empty()
        {
            let base = format!("{base}@{}", address.domain());
            if self.seen.insert(base.clone()) {
                self.expand_local(&base, depth)?;
            }
        }
        Ok(())
    }

    /// Expands a local address that is an account or an alias; false when it is neither.
    fn expand_local(&mut self, key: &str, depth: usize) -> Result<bool, StoreError> {
        if let Some(account) = self.view.account(key)? {
            self.push(Recipient::Local(info(account)));
            return Ok(true);
        }
        let Some(alias) = self.view.alias(key)? else {
            return Ok(false);
        };
        if depth >= MAX_DEPTH {
            tracing::warn!(alias = key, "alias nesting too deep; targets dropped");
            return Ok(true);
        }
        for target in &alias.targets {
            match Address::parse(target) {
                Ok(target) => self.expand(&target, depth + 1)?,
                // Targets are validated when added; a bad one is skipped, not fatal.
                Err(e) => tracing::warn!(alias = key, target, "bad alias target: {e}"),
            }
        }
        Ok(true)
    }

    fn push(&mut self, recipient: Recipient) {
        let duplicate = self.out.iter().any(|r| match (r, &recipient) {
            (Recipient::Local(a), Recipient::Local(b)) => a.id == b.id,
            (Recipient::Remote(a), Recipient::Remote(b)) => a == b,
            _ => false,
        });
        if !duplicate {
            self.out.push(recipient);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tern_core::AccountId;

    #[derive(Default)]
    struct Maps {
        domains: Vec<&'static str>,
        accounts: HashMap<String, AccountRecord>,
        aliases: HashMap<String, AliasRecord>,
    }

    impl Maps {
        fn account(mut self, id: u64, address: &str) -> Self {
            let record = AccountRecord {
                id: AccountId(id),
                address: address.to_string(),
                password_hash: String::new(),
                quota: 0,
                created: 0,
            };
            self.accounts.insert(address.to_string(), record);
            self
        }
        fn alias(mut self, address: &str, targets: &[&str]) -> Self {
            let record = AliasRecord {
                address: address.to_string(),
                targets: targets.iter().map(|t| t.to_string()).collect(),
            };
            self.aliases.insert(address.to_string(), record);
            self
        }
    }

    impl View for Maps {
        fn has_domain(&self, domain: &str) -> Result<bool, StoreError> {
            Ok(self.domains.contains(&domain))
        }
        fn account(&self, address: &str) -> Result<Option<AccountRecord>, StoreError> {
            Ok(self.accounts.get(address).cloned())
        }
        fn alias(&self, address: &str) -> Result<Option<AliasRecord>, StoreError> {
            Ok(self.aliases.get(address).cloned())
        }
    }

    fn world() -> Maps {
        Maps {
            domains: vec!["example.com", "example.org"],
            ..Maps::default()
        }
        .account(1, "alice@example.com")
        .account(2, "bob@example.org")
        .account(3, "carol+work@example.com")
        .alias(
            "team@example.com",
            &["alice@example.com", "bob@example.org"],
        )
        .alias(
            "all@example.com",
            &["team@example.com", "alice@example.com", "x@remote.net"],
        )
        .alias("loop1@example.com", &["loop2@example.com"])
        .alias(
            "loop2@example.com",
            &["loop1@example.com", "bob@example.org"],
        )
        .alias("ghost@example.com", &["nobody@example.com"])
        .alias("list@example.com", &["alice@example.com"])
    }

    fn ids(r: Resolution) -> Vec<String> {
        match r {
            Resolution::Deliver(v) => v
                .into_iter()
                .map(|r| match r {
                    Recipient::Local(a) => format!("local:{}", a.id),
                    Recipient::Remote(s) => format!("remote:{s}"),
                })
                .collect(),
            Resolution::UnknownUser => vec!["unknown".into()],
            Resolution::NotLocal => vec!["notlocal".into()],
        }
    }

    #[test]
    fn table() {
        let w = world();
        let cases: &[(&str, &[&str])] = &[
            ("Alice@EXAMPLE.com", &["local:a1"]),
            ("nobody@example.com", &["unknown"]),
            ("alice@elsewhere.net", &["notlocal"]),
            ("team@example.com", &["local:a1", "local:a2"]),
            // Nested aliases, a duplicate target and a remote target.
            (
                "all@example.com",
                &["local:a1", "local:a2", "remote:x@remote.net"],
            ),
            // A cycle terminates and still finds bob.
            ("loop1@example.com", &["local:a2"]),
            ("ghost@example.com", &["unknown"]),
            // Sub-addressing: the tag is dropped when nothing owns the tagged address.
            ("alice+news@example.com", &["local:a1"]),
            ("list+x@example.com", &["local:a1"]),
            // ... but an exact match wins.
            ("carol+work@example.com", &["local:a3"]),
            ("carol+home@example.com", &["unknown"]),
            ("+tag@example.com", &["unknown"]),
        ];
        for (input, want) in cases {
            let addr = Address::parse(input).unwrap();
            assert_eq!(ids(resolve(&w, &addr).unwrap()), *want, "{input}");
        }
    }

    #[test]
    fn deep_nesting_is_cut_off() {
        let mut w = world();
        // chain0 -> chain1 -> ... -> chain11 -> alice: deeper than MAX_DEPTH.
        for i in 0..12 {
            let next = format!("chain{}@example.com", i + 1);
            w = w.alias(&format!("chain{i}@example.com"), &[next.as_str()]);
        }
        w = w.alias("chain12@example.com", &["alice@example.com"]);
        let addr = Address::parse("chain0@example.com").unwrap();
        assert_eq!(ids(resolve(&w, &addr).unwrap()), ["unknown"]);
        let shallow = Address::parse("chain6@example.com").unwrap();
        assert_eq!(ids(resolve(&w, &shallow).unwrap()), ["local:a1"]);
    }
}
