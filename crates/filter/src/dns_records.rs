//! The DNS records a domain publishes for mail (`tern domain dns`), one per line in zone-file
//! form: MX, SPF, DKIM (when the domain has a key), DMARC, and MTA-STS / TLS-RPT as comments
//! until Tern serves them.

use crate::keys::{quoted_strings, txt_record};
use tern_core::records::DkimAlgorithm;

/// A domain's published DKIM key, for its record.
pub struct DkimPublic<'a> {
    /// The selector.
    pub selector: &'a str,
    /// The algorithm (`k=`).
    pub algorithm: DkimAlgorithm,
    /// The base64 public key (`p=`).
    pub public_b64: &'a str,
}

/// The records for `domain`, whose mail is received by `mx_host` (our host name).
pub fn zone_lines(domain: &str, mx_host: &str, dkim: Option<DkimPublic<'_>>) -> Vec<String> {
    let domain = domain.trim_end_matches('.');
    let mx_host = mx_host.trim_end_matches('.');
    let mut lines = vec![
        format!("{domain}. IN MX 10 {mx_host}."),
        format!("{domain}. IN TXT {}", quoted_strings("v=spf1 mx -all")),
    ];
    if let Some(key) = dkim {
        lines.push(txt_record(
            domain,
            key.selector,
            key.algorithm,
            key.public_b64,
        ));
    }
    lines.push(format!(
        "_dmarc.{domain}. IN TXT {}",
        quoted_strings(&format!(
            "v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}"
        ))
    ));
    lines.push(format!(
        "; MTA-STS (later): _mta-sts.{domain}. IN TXT \"v=STSv1; id=...\""
    ));
    lines.push(format!(
        "; TLS-RPT (later): _smtp._tls.{domain}. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@{domain}\""
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_in_zone_file_form() {
        let key = DkimPublic {
            selector: "tern",
            algorithm: DkimAlgorithm::Ed25519,
            public_b64: "KEY=",
        };
        let lines = zone_lines("example.com", "mail.example.com", Some(key));
        assert_eq!(
            lines,
            vec![
                "example.com. IN MX 10 mail.example.com.",
                "example.com. IN TXT \"v=spf1 mx -all\"",
                "tern._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p=KEY=\"",
                "_dmarc.example.com. IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com\"",
                "; MTA-STS (later): _mta-sts.example.com. IN TXT \"v=STSv1; id=...\"",
                "; TLS-RPT (later): _smtp._tls.example.com. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@example.com\"",
            ]
        );
        let without = zone_lines("example.com", "mail.example.com", None);
        assert_eq!(without.len(), 5);
        assert!(!without.iter().any(|l| l.contains("_domainkey")));
    }
}
