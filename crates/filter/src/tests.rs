//! End-to-end checks of the filter without a network: the DNS answers the checks need are put
//! in the TXT cache first, so SPF, DKIM and DMARC run for real against them.

use super::*;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{ResolverCache, Txt};
use std::time::Instant;
use tern_core::config::FilterOverride;
use tern_core::records::{DkimAlgorithm, DkimKeyRecord, SecretBytes};

const MESSAGE: &str = "From: Alice <alice@example.org>\r\n\
    To: bob@example.com\r\n\
    Subject: quarterly report\r\n\
    Date: Tue, 25 Nov 2026 10:00:00 +0000\r\n\
    Message-ID: <1@example.org>\r\n\
    \r\n\
    Numbers attached.\r\n";

/// A filter whose resolver points nowhere: every answer must come from the cache.
fn offline(config: FilterConfig) -> Filter {
    let dns = DnsConfig {
        servers: vec!["127.0.0.1:9".into()],
        timeout_secs: 1,
    };
    Filter::new(&config, &dns, "mx.example.com").unwrap()
}

fn publish(filter: &Filter, name: &str, txt: Txt) {
    let until = Instant::now() + Duration::from_secs(600);
    filter.txt_cache.insert(name.into(), txt, until);
}

fn nxdomain() -> Txt {
    Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
        ResponseCode::NXDomain,
    )))
}

/// example.org's records: SPF allowing 192.0.2.1, a DMARC policy, and (later) a DKIM key.
fn zone(filter: &Filter, dmarc: &str) {
    let spf = Spf::parse(b"v=spf1 ip4:192.0.2.1 -all").unwrap();
    publish(filter, "example.org.", spf.into());
    publish(
        filter,
        "_dmarc.example.org.",
        Dmarc::parse(dmarc.as_bytes()).unwrap().into(),
    );
    publish(filter, "_dmarc.org.", nxdomain());
}

fn key_for(algorithm: DkimAlgorithm) -> (DkimKeyRecord, String) {
    let generated = keys::generate("example.org", algorithm).unwrap();
    let record = DkimKeyRecord {
        domain: "example.org".into(),
        selector: "tern".into(),
        algorithm,
        private_key: SecretBytes(generated.private_pkcs8),
        created: 0,
    };
    (record, generated.public_b64)
}

fn publish_key(filter: &Filter, record: &DkimKeyRecord, public: &str) {
    let txt = keys::txt_record("example.org", "tern", record.algorithm, public);
    // The zone-file line's quoted strings, joined as a resolver joins them.
    let value: String = txt.split('"').skip(1).step_by(2).collect();
    let key = DomainKey::parse(value.as_bytes()).unwrap();
    publish(filter, "tern._domainkey.example.org.", key.into());
}

fn inbound<'a>(ip: &str, message: &'a [u8]) -> Inbound<'a> {
    Inbound {
        ip: ip.parse().unwrap(),
        helo: "client",
        mail_from: "alice@example.org",
        message,
    }
}

const ALL: Checks = Checks {
    spf: true,
    dkim: true,
    dmarc: true,
};

async fn judge(filter: &Filter, ip: &str, message: &[u8]) -> (Verdict, String) {
    let spf = filter
        .spf(ip.parse().unwrap(), "client", "alice@example.org")
        .await;
    let verdict = filter.verify(inbound(ip, message), Some(&spf), ALL).await;
    let header = verdict.header(filter.hostname());
    (verdict, header)
}

#[tokio::test]
async fn signed_mail_verifies_and_passes_dmarc_for_both_algorithms() {
    for algorithm in [DkimAlgorithm::Rsa, DkimAlgorithm::Ed25519] {
        let filter = offline(FilterConfig::default());
        zone(&filter, "v=DMARC1; p=reject");
        let (record, public) = key_for(algorithm);
        assert_eq!(keys::public_b64(&record).unwrap(), public);
        publish_key(&filter, &record, &public);

        let signature = sign::sign(MESSAGE.as_bytes(), &record).unwrap();
        assert!(signature.starts_with("DKIM-Signature: "), "{signature}");
        let signed = format!("{signature}{MESSAGE}");
        // From another address than SPF allows: DMARC passes on DKIM alone.
        let (verdict, header) = judge(&filter, "198.51.100.9", signed.as_bytes()).await;
        assert_eq!(verdict.disposition, Disposition::Accept, "{header}");
        assert!(
            header.contains("\tdkim=pass header.d=example.org header.s=tern"),
            "{header}"
        );
        assert!(header.contains("\tspf=fail"), "{header}");
        assert!(
            header.contains("\tdmarc=pass (p=reject dis=none) header.from=example.org"),
            "{header}"
        );
    }
}

#[tokio::test]
async fn forged_mail_meets_the_domain_policy() {
    let (record, public) = key_for(DkimAlgorithm::Ed25519);
    let signature = sign::sign(MESSAGE.as_bytes(), &record).unwrap();
    let tampered = format!("{signature}{}", MESSAGE.replace("Numbers", "Bank details"));
    for (policy, want) in [
        ("v=DMARC1; p=reject", "reject"),
        ("v=DMARC1; p=quarantine", "junk"),
        ("v=DMARC1; p=none", "accept"),
        ("v=DMARC1; p=reject; t=y", "junk"),
    ] {
        let filter = offline(FilterConfig::default());
        zone(&filter, policy);
        publish_key(&filter, &record, &public);
        let (verdict, header) = judge(&filter, "198.51.100.9", tampered.as_bytes()).await;
        let got = match verdict.disposition {
            Disposition::Accept => "accept",
            Disposition::Junk => "junk",
            Disposition::Reject(_) => "reject",
        };
        assert_eq!(got, want, "{policy}: {header}");
        assert!(
            header.contains("\tdkim=neutral") || header.contains("\tdkim=fail"),
            "{header}"
        );
        assert!(header.contains("\tdmarc=fail"), "{header}");
    }
}

#[tokio::test]
async fn spf_alone_passes_dmarc_from_the_right_address() {
    let filter = offline(FilterConfig::default());
    zone(&filter, "v=DMARC1; p=reject");
    let (verdict, header) = judge(&filter, "192.0.2.1", MESSAGE.as_bytes()).await;
    assert_eq!(verdict.disposition, Disposition::Accept, "{header}");
    assert!(header.contains("\tspf=pass"), "{header}");
    assert!(header.contains("\tdkim=none"), "{header}");
    assert!(header.contains("\tdmarc=pass"), "{header}");
}

#[tokio::test]
async fn switched_off_checks_are_neither_run_nor_reported() {
    let filter = offline(FilterConfig::default());
    zone(&filter, "v=DMARC1; p=reject");
    let none = Checks {
        spf: false,
        dkim: false,
        dmarc: false,
    };
    let spf = filter
        .spf(
            "198.51.100.9".parse().unwrap(),
            "client",
            "alice@example.org",
        )
        .await;
    let verdict = filter
        .verify(
            inbound("198.51.100.9", MESSAGE.as_bytes()),
            Some(&spf),
            none,
        )
        .await;
    assert_eq!(verdict.disposition, Disposition::Accept);
    assert_eq!(
        verdict.header("mx.example.com"),
        "Authentication-Results: mx.example.com; none\r\n"
    );
}

#[tokio::test]
async fn an_unreachable_resolver_is_a_temperror_not_a_rejection() {
    let filter = offline(FilterConfig::default());
    // Nothing cached: every lookup goes to a port where no server listens.
    let (verdict, header) = judge(&filter, "198.51.100.9", MESSAGE.as_bytes()).await;
    assert_eq!(verdict.disposition, Disposition::Accept, "{header}");
    assert!(header.contains("\tspf=temperror"), "{header}");
    assert!(header.contains("\tdmarc=temperror"), "{header}");
}

#[test]
fn recipient_domains_choose_the_checks() {
    let mut config = FilterConfig {
        dmarc: false,
        ..FilterConfig::default()
    };
    let off = FilterOverride {
        spf: Some(false),
        dkim: Some(false),
        dmarc: None,
    };
    let on = FilterOverride {
        dmarc: Some(true),
        ..FilterOverride::default()
    };
    config.domains.insert("quiet.example".into(), off);
    config.domains.insert("strict.example".into(), on);
    let filter = offline(config);
    let checks = |domains: &[&str]| filter.checks_for(domains.iter().copied());
    let none = Checks {
        spf: false,
        dkim: false,
        dmarc: false,
    };
    assert_eq!(checks(&["Quiet.Example"]), none);
    assert_eq!(
        checks(&["other.example"]),
        Checks {
            spf: true,
            dkim: true,
            dmarc: false
        }
    );
    assert_eq!(checks(&["quiet.example", "strict.example"]), ALL);
    assert!(!checks(&[]).dmarc);
    assert!(filter.spf_wanted());
}
