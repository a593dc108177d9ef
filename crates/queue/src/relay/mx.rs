//! Finding where a domain's mail goes (RFC 5321 §5.1): its MX records in preference order
//! (equal preferences in random order, to spread load), or the domain itself when it has no
//! MX (the implicit MX); a null MX (RFC 7505) means it accepts no mail. Then each host's
//! A/AAAA addresses.
//!
//! Failures are sorted the way the queue needs them: a domain that does not exist, has a null
//! MX or has no address at all fails for good; a server failure or timeout is temporary.

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{Resolver, TokioResolver};
use rand::seq::SliceRandom;
use std::net::IpAddr;
use std::time::Duration;
use tern_core::config::DnsConfig;

/// A lookup that did not produce a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsFailure {
    /// Whether retrying is pointless.
    pub permanent: bool,
    /// RFC 3463 status, e.g. `5.1.10`.
    pub status: &'static str,
    /// For logs, `tern queue` and the DSN.
    pub message: String,
}

impl DnsFailure {
    fn temporary(message: String) -> DnsFailure {
        DnsFailure {
            permanent: false,
            status: "4.4.3",
            message,
        }
    }
}

/// Where to try delivering: host names in order (an address literal is its own host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// MX hosts (or the implicit MX) to resolve, best first.
    Hosts(Vec<String>),
    /// `user@[192.0.2.1]`: connect to this address.
    Literal(IpAddr),
}

/// The DNS resolver of the relay.
pub(crate) struct MxResolver {
    /// `None` when no resolver could be built (no usable system configuration): every lookup
    /// is then a temporary failure with this reason.
    resolver: Result<TokioResolver, String>,
}

impl MxResolver {
    /// A resolver asking `dns.servers` (or the system's resolvers when empty).
    pub(crate) fn new(dns: &DnsConfig) -> Result<MxResolver, String> {
        let servers = dns.server_addrs()?;
        let mut options = ResolverOpts::default();
        (options.timeout, options.attempts) = dns.tries();
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = ResolveHosts::Never;
        // Short negative caching: a domain fixed by its owner is retried with fresh answers.
        options.negative_max_ttl = Some(Duration::from_secs(60));
        options.positive_max_ttl = Some(Duration::from_secs(3600));
        let provider = TokioRuntimeProvider::default();
        let builder = if servers.is_empty() {
            match Resolver::builder(provider) {
                Ok(b) => b,
                Err(e) => {
                    let why = format!("no DNS resolver: cannot read the system configuration: {e}");
                    tracing::warn!("{why}; set [dns] servers");
                    return Ok(MxResolver { resolver: Err(why) });
                }
            }
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                    for c in &mut ns.connections {
                        c.port = addr.port();
                    }
                    ns
                })
                .collect();
            Resolver::builder_with_config(ResolverConfig::from_name_servers(name_servers), provider)
        };
        let mut builder = builder;
        let configured = builder.options_mut();
        configured.timeout = options.timeout;
        configured.attempts = options.attempts;
        configured.ip_strategy = options.ip_strategy;
        configured.use_hosts_file = options.use_hosts_file;
        configured.negative_max_ttl = options.negative_max_ttl;
        configured.positive_max_ttl = options.positive_max_ttl;
        let resolver = builder.build().map_err(|e| format!("no DNS resolver: {e}"));
        Ok(MxResolver { resolver })
    }

    /// The route to `domain` (lower-case, as in the recipient address).
    pub(crate) async fn route(&self, domain: &str) -> Result<Route, DnsFailure> {
        if let Some(literal) = address_literal(domain) {
            return literal;
        }
        let resolver = self.resolver()?;
        let name = fqdn(domain)?;
        match resolver.mx_lookup(name).await {
            Ok(lookup) => {
                let records: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_utf8())),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    return Ok(Route::Hosts(vec![domain.to_string()]));
                }
                order(records, domain, &mut rand::rng()).map(Route::Hosts)
            }
            Err(e) if e.is_nx_domain() => Err(DnsFailure {
                permanent: true,
                status: "5.1.2",
                message: format!("domain {domain} does not exist (NXDOMAIN)"),
            }),
            // No MX at all: the domain itself is the implicit MX (RFC 5321 §5.1).
            Err(e) if e.is_no_records_found() => Ok(Route::Hosts(vec![domain.to_string()])),
            Err(e) => Err(DnsFailure::temporary(format!(
                "MX lookup for {domain} failed: {}",
                describe(&e)
            ))),
        }
    }

    /// The addresses of one MX host. `Ok(empty)` when the host has none (NXDOMAIN or no
    /// A/AAAA), so the caller can try the next host.
    pub(crate) async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        if let Ok(ip) = host.trim_end_matches('.').parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = self.resolver()?;
        match resolver.lookup_ip(fqdn(host)?).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(DnsFailure::temporary(format!(
                "address lookup for {host} failed: {}",
                describe(&e)
            ))),
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, DnsFailure> {
        self.resolver
            .as_ref()
            .map_err(|why| DnsFailure::temporary(why.clone()))
    }
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
fn address_literal(domain: &str) -> Option<Result<Route, DnsFailure>> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let text = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
        .unwrap_or(inner);
    Some(
        text.parse::<IpAddr>()
            .map(Route::Literal)
            .map_err(|_| DnsFailure {
                permanent: true,
                status: "5.1.2",
                message: format!("bad address literal {domain}"),
            }),
    )
}

/// `domain.` as a fully qualified name, so no search domain is ever appended.
fn fqdn(domain: &str) -> Result<Name, DnsFailure> {
    let absolute = format!("{}.", domain.trim_end_matches('.'));
    Name::from_utf8(&absolute).map_err(|e| DnsFailure {
        permanent: true,
        status: "5.1.2",
        message: format!("bad domain {domain}: {e}"),
    })
}

/// MX records to hosts: ascending preference, equal preferences shuffled; a null MX (one
/// record whose exchange is the root, RFC 7505) refuses mail for good.
pub(crate) fn order(
    mut records: Vec<(u16, String)>,
    domain: &str,
    rng: &mut impl rand::Rng,
) -> Result<Vec<String>, DnsFailure> {
    let is_root = |host: &str| host.is_empty() || host == ".";
    if records.iter().any(|(_, host)| is_root(host)) && records.len() == 1 {
        return Err(DnsFailure {
            permanent: true,
            status: "5.1.10",
            message: format!("domain {domain} accepts no mail (null MX)"),
        });
    }
    // A root exchange next to real ones is a misconfiguration: ignore it.
    records.retain(|(_, host)| !is_root(host));
    records.shuffle(rng);
    records.sort_by_key(|(preference, _)| *preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for (_, host) in records {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

fn describe(e: &NetError) -> String {
    match e {
        NetError::Timeout => "timed out".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    #[test]
    fn preference_order_with_equal_preferences_shuffled() {
        let records = vec![
            (20, "b2.example.".to_string()),
            (10, "A1.example.".to_string()),
            (20, "b1.example.".to_string()),
            (30, "c.example.".to_string()),
            (20, "b3.example.".to_string()),
        ];
        let mut seen_first_b = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let hosts = order(records.clone(), "example", &mut rng(seed)).unwrap();
            assert_eq!(hosts.len(), 5);
            assert_eq!(hosts[0], "a1.example");
            assert_eq!(hosts[4], "c.example");
            let mut middle = hosts[1..4].to_vec();
            seen_first_b.insert(middle[0].clone());
            middle.sort();
            assert_eq!(middle, ["b1.example", "b2.example", "b3.example"]);
        }
        assert!(
            seen_first_b.len() > 1,
            "equal preferences were never shuffled"
        );
    }

    #[test]
    fn null_mx_is_permanent_and_duplicates_collapse() {
        let null = order(vec![(0, ".".into())], "nomail.example", &mut rng(1)).unwrap_err();
        assert!(null.permanent);
        assert_eq!(null.status, "5.1.10");
        let mixed = vec![
            (0, ".".into()),
            (10, "mx.example.".into()),
            (20, "MX.example".into()),
        ];
        assert_eq!(order(mixed, "x", &mut rng(1)).unwrap(), vec!["mx.example"]);
    }

    #[test]
    fn address_literals() {
        assert_eq!(
            address_literal("[127.0.0.1]"),
            Some(Ok(Route::Literal("127.0.0.1".parse().unwrap())))
        );
        assert_eq!(
            address_literal("[IPv6:::1]"),
            Some(Ok(Route::Literal("::1".parse().unwrap())))
        );
        assert!(address_literal("[nonsense]").unwrap().is_err());
        assert_eq!(address_literal("example.com"), None);
    }

    #[tokio::test]
    async fn an_unreachable_resolver_is_a_temporary_failure() {
        // Port 9 (discard) on loopback: nothing answers DNS there.
        let dns = DnsConfig {
            servers: vec!["127.0.0.1:9".into()],
            timeout_secs: 1,
        };
        let mx = MxResolver::new(&dns).unwrap();
        let failure = mx.route("example.com").await.unwrap_err();
        assert!(!failure.permanent, "{failure:?}");
        assert_eq!(failure.status, "4.4.3");
        assert_eq!(
            mx.route("[10.0.0.1]").await,
            Ok(Route::Literal("10.0.0.1".parse().unwrap()))
        );
    }
}
