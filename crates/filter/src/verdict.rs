//! The inbound verdict: SPF for the HELO and MAIL FROM identities, DKIM signatures, and DMARC
//! with alignment, turned into Authentication-Results entries and one [`Disposition`].
//!
//! Every check fails open: a DNS failure is a `temperror` recorded in the header, never a
//! reason to refuse or delay mail. Only a DMARC `fail` under the sender domain's `p=reject`
//! or `p=quarantine` changes what happens to the message (RFC 9989 drops `pct`; a record's
//! `t=y` lowers the policy by one step, which mail-auth applies).

use crate::results::{AuthResult, MethodResult};
use base64::Engine;
use mail_auth::dmarc::Policy;
use mail_auth::{DkimOutput, DkimResult, DmarcOutput, DmarcResult, SpfOutput, SpfResult};
use std::net::IpAddr;

/// Which checks run for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// SPF for HELO and MAIL FROM.
    pub spf: bool,
    /// DKIM verification.
    pub dkim: bool,
    /// DMARC evaluation and policy.
    pub dmarc: bool,
}

impl Checks {
    /// Whether anything runs at all.
    pub fn any(self) -> bool {
        self.spf || self.dkim || self.dmarc
    }
}

/// What to do with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver to INBOX.
    Accept,
    /// Deliver to the Junk mailbox (DMARC `p=quarantine`).
    Junk,
    /// Refuse at the end of DATA with `550 5.7.1` and this text (DMARC `p=reject`).
    Reject(String),
}

/// SPF results for one transaction, computed at MAIL FROM.
#[derive(Debug, Clone)]
pub struct SpfChecks {
    /// The client's address.
    pub ip: IpAddr,
    /// The EHLO/HELO name.
    pub helo: String,
    /// The envelope sender, empty for `<>`.
    pub mail_from: String,
    /// The HELO identity's result.
    pub helo_output: SpfOutput,
    /// The MAIL FROM identity's result (for `<>`: the HELO identity's, RFC 7208 §2.4).
    pub mail_from_output: SpfOutput,
}

impl SpfChecks {
    /// Both identities at `result`: for a check that did not finish in time.
    pub fn unfinished(ip: IpAddr, helo: &str, mail_from: &str, result: SpfResult) -> SpfChecks {
        SpfChecks {
            ip,
            helo: helo.to_string(),
            mail_from: mail_from.to_string(),
            helo_output: SpfOutput::new(helo.to_string()).with_result(result),
            mail_from_output: SpfOutput::new(domain_of(mail_from).to_string()).with_result(result),
        }
    }

    /// The header entries: MAIL FROM first (the identity DMARC uses), then HELO.
    pub fn results(&self) -> Vec<MethodResult> {
        let mut out = Vec::with_capacity(2);
        if !self.mail_from.is_empty() {
            let r = spf_result(&self.mail_from_output, &self.mail_from, self.ip);
            out.push(r.property("smtp.mailfrom", &self.mail_from));
        }
        let helo = format!("postmaster@{}", self.helo);
        let r = spf_result(&self.helo_output, &helo, self.ip);
        out.push(r.property("smtp.helo", &self.helo));
        out
    }
}

/// The outcome of the end-of-DATA checks.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// One entry per check, in header order.
    pub results: Vec<MethodResult>,
    /// What to do with the message.
    pub disposition: Disposition,
}

impl Verdict {
    /// The Authentication-Results header line for this verdict.
    pub fn header(&self, authserv_id: &str) -> String {
        crate::results::header(authserv_id, &self.results)
    }
}

/// The domain part of an address (the whole text if it has no `@`).
pub(crate) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

fn spf_result(output: &SpfOutput, identity: &str, ip: IpAddr) -> MethodResult {
    let (result, comment) = match output.result() {
        SpfResult::Pass => (
            AuthResult::Pass,
            format!("domain of {identity} designates {ip} as permitted sender"),
        ),
        SpfResult::Fail => (
            AuthResult::Fail,
            format!("domain of {identity} does not designate {ip} as permitted sender"),
        ),
        SpfResult::SoftFail => (
            AuthResult::SoftFail,
            format!("domain of transitioning {identity} does not designate {ip}"),
        ),
        SpfResult::Neutral => (
            AuthResult::Neutral,
            format!("{ip} is neither permitted nor denied by {identity}"),
        ),
        SpfResult::None => (AuthResult::None, format!("no SPF record for {identity}")),
        SpfResult::TempError => (
            AuthResult::TempError,
            format!("DNS error looking up the SPF record of {identity}"),
        ),
        SpfResult::PermError => (
            AuthResult::PermError,
            format!("invalid SPF record for {identity}"),
        ),
    };
    MethodResult::new("spf", result).comment(comment)
}

/// The header entries for DKIM: one per signature, or `dkim=none` without any.
pub(crate) fn dkim_results(outputs: &[DkimOutput<'_>]) -> Vec<MethodResult> {
    if outputs.is_empty() {
        return vec![MethodResult::new("dkim", AuthResult::None).comment("no signature")];
    }
    outputs
        .iter()
        .map(|o| {
            let (result, reason) = match o.result() {
                DkimResult::Pass => (AuthResult::Pass, None),
                DkimResult::Neutral(e) => (AuthResult::Neutral, Some(e.to_string())),
                DkimResult::Fail(e) => (AuthResult::Fail, Some(e.to_string())),
                DkimResult::PermError(e) => (AuthResult::PermError, Some(e.to_string())),
                DkimResult::TempError(e) => (AuthResult::TempError, Some(e.to_string())),
                DkimResult::None => (AuthResult::None, None),
            };
            let mut r = MethodResult::new("dkim", result);
            if let Some(reason) = reason {
                r = r.comment(reason);
            }
            if let Some(sig) = o.signature() {
                r = r.property("header.d", &sig.d).property("header.s", &sig.s);
                // RFC 6008: the first bytes of the signature tell several apart.
                let b = base64::engine::general_purpose::STANDARD.encode(&sig.b);
                r = r.property("header.b", b.chars().take(8).collect::<String>());
            }
            r
        })
        .collect()
}

/// The sender domain's DMARC policy, reduced to what a receiver acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    /// `p=none` or no usable record.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

impl DmarcPolicy {
    fn name(self) -> &'static str {
        match self {
            DmarcPolicy::None => "none",
            DmarcPolicy::Quarantine => "quarantine",
            DmarcPolicy::Reject => "reject",
        }
    }
}

/// What a DMARC result under a policy means for the message: only a `fail` is acted on, so a
/// DNS error (`temperror`) or a broken record (`permerror`) never loses mail.
pub fn disposition(result: AuthResult, policy: DmarcPolicy, domain: &str) -> Disposition {
    match (result, policy) {
        (AuthResult::Fail, DmarcPolicy::Reject) => Disposition::Reject(format!(
            "Message rejected: it fails the DMARC policy of {domain}"
        )),
        (AuthResult::Fail, DmarcPolicy::Quarantine) => Disposition::Junk,
        _ => Disposition::Accept,
    }
}

/// The DMARC header entry and the disposition it leads to.
pub(crate) fn dmarc_result(output: &DmarcOutput) -> (MethodResult, Disposition) {
    let result = match output.result() {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    };
    let policy = match output.policy() {
        Policy::Reject => DmarcPolicy::Reject,
        Policy::Quarantine => DmarcPolicy::Quarantine,
        Policy::None | Policy::Unspecified => DmarcPolicy::None,
    };
    let domain = output.domain();
    let disposition = disposition(result, policy, domain);
    let applied = match &disposition {
        Disposition::Accept => "none",
        Disposition::Junk => "quarantine",
        Disposition::Reject(_) => "reject",
    };
    let mut r = MethodResult::new("dmarc", result);
    if output.dmarc_record().is_some() {
        r = r.comment(format!("p={} dis={applied}", policy.name()));
    }
    if !domain.is_empty() {
        r = r.property("header.from", domain);
    }
    (r, disposition)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dmarc_fail_is_acted_on() {
        use AuthResult::*;
        use DmarcPolicy as P;
        let cases = [
            (Fail, P::Reject, "reject"),
            (Fail, P::Quarantine, "junk"),
            (Fail, P::None, "accept"),
            (Pass, P::Reject, "accept"),
            (Pass, P::Quarantine, "accept"),
            (TempError, P::Reject, "accept"),
            (PermError, P::Reject, "accept"),
            (None, P::Reject, "accept"),
        ];
        for (result, policy, want) in cases {
            let got = match disposition(result, policy, "example.org") {
                Disposition::Accept => "accept",
                Disposition::Junk => "junk",
                Disposition::Reject(text) => {
                    assert!(text.contains("example.org"), "{text}");
                    "reject"
                }
            };
            assert_eq!(got, want, "{result:?} under {policy:?}");
        }
    }

    #[test]
    fn spf_entries_name_both_identities() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let mut checks =
            SpfChecks::unfinished(ip, "mx.example.org", "a@example.org", SpfResult::Pass);
        checks.helo_output = SpfOutput::new("mx.example.org".into()).with_result(SpfResult::None);
        let h = crate::results::header("mx.test", &checks.results());
        assert!(h.contains("\tspf=pass (domain of a@example.org designates 192.0.2.7 as permitted sender) smtp.mailfrom=a@example.org;"), "{h}");
        assert!(h.contains("\tspf=none (no SPF record for postmaster@mx.example.org) smtp.helo=mx.example.org\r\n"), "{h}");
        let bounce = SpfChecks::unfinished(ip, "mx.example.org", "", SpfResult::TempError);
        let h = crate::results::header("mx.test", &bounce.results());
        assert!(
            !h.contains("smtp.mailfrom") && h.contains("spf=temperror"),
            "{h}"
        );
    }

    #[test]
    fn no_signature_is_dkim_none() {
        let r = dkim_results(&[]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].result, AuthResult::None);
    }
}
