//! The resolver behind every check: built from `[dns]` (the configured servers, or the system's
//! resolv.conf when none is given), one attempt per query with the configured timeout, and a
//! small TXT cache that honours the records' TTLs.

use crate::FilterError;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use mail_auth::{MessageAuthenticator, ResolverCache, Txt};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;
use tern_core::config::DnsConfig;

/// Most TXT answers kept; past that, expired entries are dropped, then everything.
const TXT_CACHE_ENTRIES: usize = 10_000;

/// Builds the resolver for `config`. An unreachable server is not an error here: lookups
/// then fail with a temporary error after the timeout.
pub fn authenticator(config: &DnsConfig) -> Result<MessageAuthenticator, FilterError> {
    let servers = config.server_addrs().map_err(FilterError::Resolver)?;
    let (resolver, mut opts) = if servers.is_empty() {
        read_system_conf().map_err(|e| FilterError::Resolver(format!("resolv.conf: {e}")))?
    } else {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                server
            })
            .collect();
        (
            ResolverConfig::from_name_servers(name_servers),
            ResolverOpts::default(),
        )
    };
    // Short tries: every check fails open (temperror) within the filter's budget, and a lost
    // packet should cost one second, not the whole timeout.
    (opts.timeout, opts.attempts) = config.tries();
    MessageAuthenticator::new(resolver, opts).map_err(|e| FilterError::Resolver(e.to_string()))
}

/// A TXT cache for mail-auth's lookups (SPF, DKIM keys, DMARC policies).
pub(crate) struct TxtCache {
    entries: Mutex<HashMap<Box<str>, (Txt, Instant)>>,
}

impl TxtCache {
    pub(crate) fn new() -> TxtCache {
        TxtCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, (Txt, Instant)>> {
        tern_core::sync::lock(&self.entries)
    }
}

impl ResolverCache<Box<str>, Txt> for TxtCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let (txt, valid_until) = entries.get(name)?;
        (*valid_until > Instant::now()).then(|| txt.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(txt, _)| txt)
    }

    fn insert(&self, name: Box<str>, txt: Txt, valid_until: Instant) {
        let mut entries = self.lock();
        if entries.len() >= TXT_CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= TXT_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(name, (txt, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn configured_servers_take_their_port() {
        let config = DnsConfig {
            servers: vec!["127.0.0.1:5353".into()],
            timeout_secs: 2,
        };
        assert!(authenticator(&config).is_ok());
        let bad = DnsConfig {
            servers: vec!["not an address".into()],
            timeout_secs: 2,
        };
        assert!(matches!(authenticator(&bad), Err(FilterError::Resolver(_))));
    }

    #[test]
    fn expired_entries_are_not_served() {
        let cache = TxtCache::new();
        let now = Instant::now();
        let txt = || Txt::Error(mail_auth::Error::ParseError);
        cache.insert(
            "fresh.example.".into(),
            txt(),
            now + Duration::from_secs(60),
        );
        cache.insert("old.example.".into(), txt(), now);
        assert!(cache.get("fresh.example.").is_some());
        assert!(cache.get("old.example.").is_none());
    }
}
