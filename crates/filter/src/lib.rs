//! Tern's inbound mail policy and DKIM signing: SPF (MAIL FROM and HELO), DKIM verification,
//! DMARC with alignment, DNS block lists, the Authentication-Results header, and DKIM keys and
//! signatures for submitted mail. The checks run through mail-auth over one resolver built
//! from `[dns]`.
//!
//! It decides, it does not act: the SMTP session asks [`Filter`] at connect, MAIL FROM and the
//! end of DATA, and replies, files to Junk or signs according to the answer. Keys are stored
//! by the directory (meta group); this crate only makes and uses them. Every check fails open:
//! a DNS failure is recorded as `temperror` and never delays a message past the configured
//! timeout or refuses it.
//!
//! - [`dns`]: the resolver from `[dns]`, and the TXT cache.
//! - [`verdict`]: SPF, DKIM and DMARC results, [`Checks`], [`Verdict`], [`Disposition`].
//! - [`results`]: the RFC 8601 header text; renaming forged ones.
//! - [`dnsbl`]: block-list query names and answers.
//! - [`keys`]: generating rsa-2048 / ed25519 keys, public keys, the DKIM TXT record.
//! - [`sign`]: DKIM-Signature for submitted mail.
//! - [`dns_records`]: the records `tern domain dns` prints.
//! - `error`: [`FilterError`].
//! - `tests`: the checks against a private DNS server.
//!
//! A new check gets its own module returning a result for [`Verdict`], is run from
//! [`Filter::verify`] (end of DATA) or earlier phases, and is switched by `[filter]` in the
//! configuration.
#![warn(missing_docs)]

pub mod dns;
pub mod dns_records;
pub mod dnsbl;
mod error;
pub mod keys;
pub mod results;
pub mod sign;
pub mod verdict;

pub use dnsbl::Listing;
pub use error::FilterError;
pub use verdict::{Checks, Disposition, SpfChecks, Verdict};

use crate::dns::TxtCache;
use crate::results::{AuthResult, MethodResult};
use crate::verdict::{dkim_results, dmarc_result, domain_of};
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, MessageAuthenticator, Parameters, SpfOutput, SpfResult};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::{DnsConfig, FilterConfig};
use tokio::task::JoinHandle;

/// The inbound policy of one node. Cheap to share behind an `Arc`.
pub struct Filter {
    /// Which checks run, globally and per recipient domain.
    config: FilterConfig,
    /// Our host name: the authserv-id of our Authentication-Results headers.
    hostname: String,
    /// `None` when no resolver configuration could be read: every check is then `temperror`.
    resolver: Option<MessageAuthenticator>,
    /// SPF, DKIM-key and DMARC answers, kept for their TTL.
    txt_cache: TxtCache,
    /// The longest one phase (connect, MAIL FROM, end of DATA) waits for DNS.
    budget: Duration,
}

/// What the end-of-DATA checks look at.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// The client's address.
    pub ip: IpAddr,
    /// The EHLO/HELO name.
    pub helo: &'a str,
    /// The envelope sender, empty for `<>`.
    pub mail_from: &'a str,
    /// The message as received (before our trace headers).
    pub message: &'a [u8],
}

impl Filter {
    /// A filter with `config`, resolving through `dns`. Fails only when `[dns] servers` is
    /// malformed; a system without a resolver configuration gets a filter whose checks all
    /// end in `temperror` (and a warning in the log).
    pub fn new(
        config: &FilterConfig,
        dns: &DnsConfig,
        hostname: &str,
    ) -> Result<Filter, FilterError> {
        dns.server_addrs().map_err(FilterError::Resolver)?;
        let resolver = match dns::authenticator(dns) {
            Ok(resolver) => Some(resolver),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS resolver: SPF, DKIM, DMARC and DNSBL checks \
                                             will all end in temperror");
                None
            }
        };
        Ok(Filter {
            config: config.clone(),
            hostname: hostname.to_string(),
            resolver,
            txt_cache: TxtCache::new(),
            budget: Duration::from_secs(2 * dns.timeout_secs.max(1)),
        })
    }

    /// Our host name (authserv-id, and the MX host in published records).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The checks wanted for a message to these recipient domains: each one runs when any of
    /// the domains wants it (its override, else the global switch).
    pub fn checks_for<'a>(&self, domains: impl IntoIterator<Item = &'a str>) -> Checks {
        let global = Checks {
            spf: self.config.spf,
            dkim: self.config.dkim,
            dmarc: self.config.dmarc,
        };
        let mut wanted = Checks {
            spf: false,
            dkim: false,
            dmarc: false,
        };
        let mut any_domain = false;
        for domain in domains {
            any_domain = true;
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            let o = self.config.domains.get(&domain);
            let pick = |f: fn(&tern_core::config::FilterOverride) -> Option<bool>, g: bool| {
                o.and_then(f).unwrap_or(g)
            };
            wanted.spf |= pick(|o| o.spf, global.spf);
            wanted.dkim |= pick(|o| o.dkim, global.dkim);
            wanted.dmarc |= pick(|o| o.dmarc, global.dmarc);
        }
        if any_domain { wanted } else { global }
    }

    /// Whether SPF may be wanted for some recipient domain (it starts before RCPT).
    pub fn spf_wanted(&self) -> bool {
        self.config.spf || self.config.domains.values().any(|o| o.spf == Some(true))
    }

    /// Whether any DNSBL zone is configured.
    pub fn has_dnsbl(&self) -> bool {
        !self.config.dnsbl.is_empty()
    }

    /// The first configured block list that lists `ip`, if any. Loopback and private
    /// addresses are checked like any other. A list that does not answer in time, or at all,
    /// does not list anybody.
    pub async fn dnsbl(&self, ip: IpAddr) -> Option<Listing> {
        let resolver = self.resolver.as_ref()?;
        let lookups = self
            .config
            .dnsbl
            .iter()
            .map(|zone| dnsbl_zone(resolver, ip, zone));
        match tokio::time::timeout(self.budget, futures::future::join_all(lookups)).await {
            Ok(found) => found.into_iter().flatten().next(),
            Err(_) => {
                tracing::warn!(%ip, "DNSBL lookups timed out; client not refused");
                None
            }
        }
    }

    /// Starts the SPF checks of a transaction in the background, so that DNS runs while the
    /// client sends RCPT and DATA.
    pub fn start_spf(self: &Arc<Self>, ip: IpAddr, helo: &str, mail_from: &str) -> SpfTask {
        let filter = self.clone();
        let (h, m) = (helo.to_string(), mail_from.to_string());
        let handle = tokio::spawn(async move { filter.spf(ip, &h, &m).await });
        SpfTask {
            handle,
            ip,
            helo: helo.to_string(),
            mail_from: mail_from.to_string(),
            budget: self.budget,
        }
    }

    /// SPF for the HELO and MAIL FROM identities (RFC 7208), side by side.
    pub async fn spf(&self, ip: IpAddr, helo: &str, mail_from: &str) -> SpfChecks {
        let Some(resolver) = &self.resolver else {
            return SpfChecks::unfinished(ip, helo, mail_from, SpfResult::TempError);
        };
        let host = self.hostname.as_str();
        let check_helo = async {
            // An address literal or a bare name has no SPF record to look up.
            if helo.starts_with('[') || helo.parse::<IpAddr>().is_ok() || !helo.contains('.') {
                return SpfOutput::new(helo.to_string()).with_result(SpfResult::None);
            }
            let params = Parameters::new(SpfParameters::verify_ehlo(ip, helo, host))
                .with_txt_cache(&self.txt_cache);
            resolver.verify_spf(params).await
        };
        let check_mail_from = async {
            if mail_from.is_empty() {
                return None;
            }
            let params =
                Parameters::new(SpfParameters::verify_mail_from(ip, helo, host, mail_from))
                    .with_txt_cache(&self.txt_cache);
            Some(resolver.verify_spf(params).await)
        };
        let (helo_output, mail_from_output) = tokio::join!(check_helo, check_mail_from);
        SpfChecks {
            ip,
            helo: helo.to_string(),
            mail_from: mail_from.to_string(),
            // RFC 7208 §2.4: for the null sender, the HELO identity stands for MAIL FROM.
            mail_from_output: mail_from_output.unwrap_or_else(|| helo_output.clone()),
            helo_output,
        }
    }

    /// The end-of-DATA verdict: `spf` (from [`Filter::start_spf`]) reported if `checks.spf`,
    /// DKIM verified if `checks.dkim`, DMARC evaluated if `checks.dmarc`, all within the
    /// DNS budget.
    pub async fn verify(
        &self,
        inbound: Inbound<'_>,
        spf: Option<&SpfChecks>,
        checks: Checks,
    ) -> Verdict {
        let spf = spf.filter(|_| checks.spf);
        let Some(resolver) = &self.resolver else {
            return unfinished(spf, checks, "no DNS resolver");
        };
        let evaluate = self.evaluate(resolver, inbound, spf, checks);
        match tokio::time::timeout(self.budget, evaluate).await {
            Ok(verdict) => verdict,
            Err(_) => {
                tracing::warn!(from = %inbound.mail_from, "DKIM/DMARC checks timed out");
                unfinished(spf, checks, "DNS timeout")
            }
        }
    }

    async fn evaluate(
        &self,
        resolver: &MessageAuthenticator,
        inbound: Inbound<'_>,
        spf: Option<&SpfChecks>,
        checks: Checks,
    ) -> Verdict {
        let mut results: Vec<MethodResult> = spf.map(SpfChecks::results).unwrap_or_default();
        let parsed = AuthenticatedMessage::parse(inbound.message);
        let dkim = match (&parsed, checks.dkim) {
            (Some(message), true) => {
                let params = Parameters::new(message).with_txt_cache(&self.txt_cache);
                resolver.verify_dkim(params).await
            }
            _ => Vec::new(),
        };
        if checks.dkim {
            results.extend(dkim_results(&dkim));
        }
        let mut disposition = Disposition::Accept;
        if checks.dmarc {
            let no_spf = SpfOutput::default();
            let spf_output = spf.map_or(&no_spf, |s| &s.mail_from_output);
            let mail_from_domain = if inbound.mail_from.is_empty() {
                inbound.helo
            } else {
                domain_of(inbound.mail_from)
            };
            match &parsed {
                Some(message) => {
                    let params = DmarcParameters::new(message, &dkim, mail_from_domain, spf_output);
                    let params = Parameters::new(params).with_txt_cache(&self.txt_cache);
                    let output = resolver.verify_dmarc(params).await;
                    let (result, d) = dmarc_result(&output);
                    results.push(result);
                    disposition = d;
                }
                None => results.push(
                    MethodResult::new("dmarc", AuthResult::None).comment("unparsable message"),
                ),
            }
        }
        Verdict {
            results,
            disposition,
        }
    }

    /// The Authentication-Results header of submitted mail: SMTP AUTH as `user`.
    pub fn submission_header(&self, user: &str) -> String {
        results::submission_header(&self.hostname, user)
    }
}

/// SPF checks running in the background; dropping it cancels them.
pub struct SpfTask {
    handle: JoinHandle<SpfChecks>,
    ip: IpAddr,
    helo: String,
    mail_from: String,
    budget: Duration,
}

impl SpfTask {
    /// The results, waiting at most the DNS budget; unfinished checks are `temperror`.
    pub async fn finish(mut self) -> SpfChecks {
        match tokio::time::timeout(self.budget, &mut self.handle).await {
            Ok(Ok(checks)) => checks,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "SPF task failed");
                self.unfinished()
            }
            Err(_) => {
                tracing::warn!(from = %self.mail_from, "SPF checks timed out");
                self.unfinished()
            }
        }
    }

    fn unfinished(&self) -> SpfChecks {
        SpfChecks::unfinished(self.ip, &self.helo, &self.mail_from, SpfResult::TempError)
    }
}

impl Drop for SpfTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// A verdict for checks that could not run: `temperror` for each, and the message accepted.
fn unfinished(spf: Option<&SpfChecks>, checks: Checks, why: &str) -> Verdict {
    let mut results: Vec<MethodResult> = spf.map(SpfChecks::results).unwrap_or_default();
    for (wanted, method) in [(checks.dkim, "dkim"), (checks.dmarc, "dmarc")] {
        if wanted {
            results.push(MethodResult::new(method, AuthResult::TempError).comment(why));
        }
    }
    Verdict {
        results,
        disposition: Disposition::Accept,
    }
}

/// One block list's answer for `ip`.
async fn dnsbl_zone(resolver: &MessageAuthenticator, ip: IpAddr, zone: &str) -> Option<Listing> {
    let name = dnsbl::query_name(ip, zone);
    let answers = match resolver.ipv4_lookup_raw(&name).await {
        Ok(answers) => answers.entry,
        Err(e) => {
            tracing::debug!(%name, error = %e, "DNSBL: not listed");
            return None;
        }
    };
    if !answers.iter().any(|a| dnsbl::is_listing(*a)) {
        if !answers.is_empty() {
            tracing::warn!(%name, ?answers, "DNSBL answered outside 127.0.0.0/8; ignored");
        }
        return None;
    }
    let reason = match resolver.txt_raw_lookup(name.as_str()).await {
        Ok(raw) => dnsbl::reason_text(&raw),
        Err(_) => None,
    };
    Some(Listing {
        ip,
        zone: zone.trim_end_matches('.').to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests;
