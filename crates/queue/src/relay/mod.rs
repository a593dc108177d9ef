//! The outbound relay: delivering queued messages to one destination domain's MX hosts.
//!
//! [`Relay::deliver`] takes every due message for one domain, finds the domain's MX hosts,
//! connects to the first address that answers (trying up to [`MAX_ADDRESSES`]), negotiates
//! STARTTLS per policy and sends all the messages over that one session. It reports an
//! [`Outcome`] per recipient and changes nothing itself: the queue actor commits the results.
//!
//! - `mx`: MX and address lookups, null MX, address literals.
//! - `client`: the SMTP client session.
//! - `reply`: the SMTP reply parser.
//! - `tls`: the TLS client configuration (no certificate checks, see there why).
//! - `pool`: per-destination connection limits.

mod client;
mod mx;
mod pool;
mod reply;
mod tls;

use crate::QueueError;
use crate::headers::needs_smtputf8;
use crate::schedule::Schedule;
use client::{ClientError, SmtpClient, Timeouts, Transaction};
use mx::{DnsFailure, MxResolver, Route};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tern_core::DeliveryId;
use tern_core::GroupId;
use tern_core::config::{DnsConfig, RelayConfig, StartTls};

/// Addresses tried per delivery before the rest waits for the next attempt (Postfix's
/// `smtp_mx_address_limit`).
pub(crate) const MAX_ADDRESSES: usize = 5;

/// One message to send to a destination.
#[derive(Debug, Clone)]
pub(crate) struct Parcel {
    /// The queued transaction.
    pub id: DeliveryId,
    /// Envelope sender, empty for `<>`.
    pub sender: String,
    /// The message as it goes out (without our Return-Path).
    pub body: Arc<Vec<u8>>,
    /// Its recipients at this destination.
    pub recipients: Vec<String>,
}

/// Why a recipient was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Whether retrying is pointless (5xx, null MX, no such domain, loop).
    pub permanent: bool,
    /// RFC 3463 status.
    pub status: String,
    /// The reply that settled it, as an SMTP reply line.
    pub diagnostic: String,
    /// The MX host that answered, if one did.
    pub remote_mta: Option<String>,
}

impl Failure {
    fn local(permanent: bool, status: &str, text: impl std::fmt::Display) -> Failure {
        let code = if permanent { 550 } else { 451 };
        Failure {
            permanent,
            status: status.to_string(),
            diagnostic: format!("{code} {status} {text}"),
            remote_mta: None,
        }
    }

    fn dns(f: DnsFailure) -> Failure {
        Failure::local(f.permanent, f.status, f.message)
    }
}

/// What happened to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The remote accepted it.
    Delivered {
        /// The MX host.
        host: String,
        /// Its final reply.
        reply: String,
    },
    /// It was not delivered.
    Failed(Failure),
}

struct Inner {
    /// `[server] hostname`: Reporting-MTA of DSNs.
    hostname: String,
    /// The EHLO name.
    helo: String,
    config: RelayConfig,
    schedule: Schedule,
    resolver: MxResolver,
    tls: Arc<rustls::ClientConfig>,
    pool: pool::Pool,
}

/// The node's outbound relay, shared by every queue partition actor. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl Relay {
    /// The relay of a node called `hostname`, configured by `[relay]` and `[dns]`.
    pub fn new(hostname: &str, relay: &RelayConfig, dns: &DnsConfig) -> Result<Relay, QueueError> {
        let invalid = |why: String| QueueError::Config(why);
        let helo = if relay.helo.is_empty() {
            hostname.to_string()
        } else {
            relay.helo.clone()
        };
        if helo.is_empty() || helo.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!("[relay] helo {helo:?} is not a host name")));
        }
        let resolver = MxResolver::new(dns).map_err(invalid)?;
        let tls = tls::client_config().map_err(|e| invalid(format!("TLS client: {e}")))?;
        Ok(Relay {
            inner: Arc::new(Inner {
                hostname: hostname.to_string(),
                helo,
                config: relay.clone(),
                schedule: Schedule::new(relay),
                resolver,
                tls,
                pool: pool::Pool::new(relay.max_connections_per_destination),
            }),
        })
    }

    /// Our host name (DSN Reporting-MTA).
    pub(crate) fn hostname(&self) -> &str {
        &self.inner.hostname
    }

    /// The retry schedule.
    pub(crate) fn schedule(&self) -> Schedule {
        self.inner.schedule
    }

    /// The `[relay]` settings.
    pub(crate) fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// Delivers `parcels` to `domain`; one outcome per recipient of each parcel, in order.
    pub(crate) async fn deliver(
        &self,
        group: GroupId,
        domain: &str,
        parcels: &[Parcel],
    ) -> Vec<Vec<Outcome>> {
        let _permit = self.inner.pool.acquire(domain).await;
        let all = |failure: Failure| -> Vec<Vec<Outcome>> {
            parcels
                .iter()
                .map(|p| vec![Outcome::Failed(failure.clone()); p.recipients.len()])
                .collect()
        };
        let hosts: Vec<(String, Option<IpAddr>)> = match self.inner.resolver.route(domain).await {
            Ok(Route::Literal(ip)) => vec![(ip.to_string(), Some(ip))],
            Ok(Route::Hosts(hosts)) => hosts.into_iter().map(|h| (h, None)).collect(),
            Err(f) => return all(Failure::dns(f)),
        };
        let mut last = Failure::local(false, "4.4.1", format!("no MX host of {domain} answered"));
        let mut any_address = false;
        let mut dns_trouble = false;
        let mut tried = 0;
        for (host, literal) in hosts {
            let addresses = match literal {
                Some(ip) => vec![ip],
                None => match self.inner.resolver.addresses(&host).await {
                    Ok(a) => a,
                    Err(f) => {
                        dns_trouble = true;
                        last = Failure::dns(f);
                        continue;
                    }
                },
            };
            if addresses.is_empty() {
                continue;
            }
            any_address = true;
            for ip in addresses {
                if tried == MAX_ADDRESSES {
                    return all(last);
                }
                tried += 1;
                let addr = SocketAddr::new(ip, self.inner.config.port);
                match self.open(domain, &host, addr).await {
                    Ok(session) => {
                        tracing::debug!(%group, domain, %host, %addr, tls = session.tls,
                            "relay session open");
                        return self.send_all(session, &host, parcels).await;
                    }
                    Err(failure) if failure.permanent => return all(failure),
                    Err(failure) => {
                        tracing::debug!(%group, domain, %host, %addr,
                            "cannot use this MX: {}", failure.diagnostic);
                        last = failure;
                    }
                }
            }
        }
        if !any_address && !dns_trouble {
            return all(Failure::local(
                true,
                "5.4.4",
                format!("no MX host of {domain} has an address"),
            ));
        }
        all(last)
    }

    /// A session to one address, TLS negotiated per policy.
    async fn open(
        &self,
        domain: &str,
        host: &str,
        addr: SocketAddr,
    ) -> Result<SmtpClient, Failure> {
        let config = &self.inner.config;
        let timeouts = Timeouts {
            connect: Duration::from_secs(config.connect_timeout_secs.max(1)),
            command: Duration::from_secs(config.command_timeout_secs.max(1)),
        };
        let helo = &self.inner.helo;
        let broken = |e: ClientError| {
            let mut f = Failure::local(false, "4.4.2", format!("{host}[{addr}]: {e}"));
            if let ClientError::Refused { reply, .. } = &e {
                f.remote_mta = Some(host.to_string());
                f.diagnostic = reply.one_line();
                f.status = reply.status();
                // A refusing greeting still means "try elsewhere or later", never bounce.
                f.permanent = false;
            }
            f
        };
        let session = SmtpClient::connect(addr, helo, timeouts)
            .await
            .map_err(broken)?;
        if session.server_name.eq_ignore_ascii_case(helo) {
            session.quit().await;
            return Err(Failure::local(
                true,
                "5.4.6",
                format!("mail for {domain} loops back to myself ({host})"),
            ));
        }
        match (config.starttls, session.extensions.starttls) {
            (StartTls::Disabled, _) | (StartTls::Opportunistic, false) => Ok(session),
            (StartTls::Required, false) => {
                session.quit().await;
                Err(Failure::local(
                    false,
                    "4.7.4",
                    format!("{host}[{addr}] does not offer STARTTLS, which [relay] requires"),
                ))
            }
            (policy, true) => match session.starttls(&self.inner.tls, host, helo).await {
                Ok(session) => Ok(session),
                Err(e) if policy == StartTls::Opportunistic => {
                    // Like Postfix at level `may`: a failed handshake is retried in plaintext.
                    tracing::info!(%host, %addr, "STARTTLS failed ({e}); retrying without TLS");
                    SmtpClient::connect(addr, helo, timeouts)
                        .await
                        .map_err(broken)
                }
                Err(e) => Err(broken(e)),
            },
        }
    }

    /// Sends every parcel over one session, then QUIT.
    async fn send_all(
        &self,
        mut session: SmtpClient,
        host: &str,
        parcels: &[Parcel],
    ) -> Vec<Vec<Outcome>> {
        let mut outcomes: Vec<Vec<Outcome>> = Vec::with_capacity(parcels.len());
        for (i, parcel) in parcels.iter().enumerate() {
            let fail_all = |f: Failure| vec![Outcome::Failed(f); parcel.recipients.len()];
            let limit = session.extensions.size.unwrap_or(0);
            if limit > 0 && parcel.body.len() as u64 > limit {
                outcomes.push(fail_all(Failure {
                    remote_mta: Some(host.to_string()),
                    ..Failure::local(
                        true,
                        "5.3.4",
                        format!("message too big for {host} (limit {limit} bytes)"),
                    )
                }));
                continue;
            }
            let utf8_envelope = needs_smtputf8(&parcel.sender)
                || parcel.recipients.iter().any(|r| needs_smtputf8(r));
            if utf8_envelope && !session.extensions.smtputf8 {
                outcomes.push(fail_all(Failure {
                    remote_mta: Some(host.to_string()),
                    ..Failure::local(
                        true,
                        "5.6.7",
                        format!("{host} does not support SMTPUTF8, which the addresses need"),
                    )
                }));
                continue;
            }
            let utf8_header = !crate::headers::header_section(&parcel.body).is_ascii();
            let transaction = Transaction {
                from: &parcel.sender,
                to: &parcel.recipients,
                body: &parcel.body,
                smtputf8: session.extensions.smtputf8 && (utf8_envelope || utf8_header),
            };
            match session.send(&transaction).await {
                Ok(replies) => outcomes.push(
                    replies
                        .into_iter()
                        .map(|reply| {
                            if reply.is_positive() {
                                Outcome::Delivered {
                                    host: host.to_string(),
                                    reply: reply.one_line(),
                                }
                            } else {
                                Outcome::Failed(Failure {
                                    permanent: reply.is_permanent(),
                                    status: reply.status(),
                                    diagnostic: reply.one_line(),
                                    remote_mta: Some(host.to_string()),
                                })
                            }
                        })
                        .collect(),
                ),
                Err(e) => {
                    // The session is gone and this parcel's fate unknown: it and everything
                    // after it wait for the next attempt.
                    let f = Failure {
                        remote_mta: Some(host.to_string()),
                        ..Failure::local(
                            false,
                            "4.4.2",
                            format!("lost connection with {host}: {e}"),
                        )
                    };
                    for rest in &parcels[i..] {
                        outcomes.push(vec![Outcome::Failed(f.clone()); rest.recipients.len()]);
                    }
                    return outcomes;
                }
            }
        }
        session.quit().await;
        outcomes
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("hostname", &self.inner.hostname)
            .field("helo", &self.inner.helo)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_failures_read_like_smtp_replies() {
        let f = Failure::local(true, "5.1.10", "domain accepts no mail");
        assert_eq!(f.diagnostic, "550 5.1.10 domain accepts no mail");
        let t = Failure::local(false, "4.4.3", "DNS timed out");
        assert_eq!(t.diagnostic, "451 4.4.3 DNS timed out");
        assert!(!t.permanent);
    }

    #[test]
    fn a_bad_helo_is_a_config_error() {
        let relay = RelayConfig {
            helo: "two words".into(),
            ..RelayConfig::default()
        };
        assert!(Relay::new("mx.example", &relay, &DnsConfig::default()).is_err());
    }
}
