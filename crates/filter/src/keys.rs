//! DKIM keys: generating them (rsa-2048 or ed25519, stored as PKCS#8 DER), deriving the public
//! key for the DNS record, and checking selectors.
//!
//! The RSA public key is published as a SubjectPublicKeyInfo, as `openssl rsa -pubout` and
//! opendkim do, because some verifiers accept nothing else (RFC 6376 §3.6.1 names the bare
//! RSAPublicKey, which every verifier that accepts one also accepts inside the SPKI).

use crate::FilterError;
use base64::Engine;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::generate::DkimKeyPair;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tern_core::records::{DkimAlgorithm, DkimKeyRecord};

/// RSA modulus size of generated keys.
const RSA_BITS: usize = 2048;

/// DER of the rsaEncryption AlgorithmIdentifier (OID 1.2.840.113549.1.1.1, NULL parameters).
const RSA_ALGORITHM: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// A new key pair.
pub struct GeneratedKey {
    /// The private key, PKCS#8 DER, to store.
    pub private_pkcs8: Vec<u8>,
    /// The public key as the DNS record's `p=` value (base64).
    pub public_b64: String,
}

/// Generates a key. RSA generation takes a noticeable fraction of a second: call it off the
/// async threads.
pub fn generate(domain: &str, algorithm: DkimAlgorithm) -> Result<GeneratedKey, FilterError> {
    let key_error = |e: mail_auth::Error| FilterError::Key {
        domain: domain.to_string(),
        reason: e.to_string(),
    };
    let (private_pkcs8, public) = match algorithm {
        DkimAlgorithm::Rsa => {
            let (pkcs1, public_pkcs1) = DkimKeyPair::generate_rsa(RSA_BITS)
                .map_err(key_error)?
                .into_inner();
            (rsa_pkcs8(&pkcs1), rsa_spki(&public_pkcs1))
        }
        DkimAlgorithm::Ed25519 => DkimKeyPair::generate_ed25519()
            .map_err(key_error)?
            .into_inner(),
    };
    Ok(GeneratedKey {
        private_pkcs8,
        public_b64: base64::engine::general_purpose::STANDARD.encode(public),
    })
}

/// The base64 public key of a stored key.
pub fn public_b64(key: &DkimKeyRecord) -> Result<String, FilterError> {
    let der = &key.private_key.0;
    let public = match key.algorithm {
        DkimAlgorithm::Rsa => rsa_spki(&rsa_key(&key.domain, der)?.public_key()),
        DkimAlgorithm::Ed25519 => ed25519_key(&key.domain, der)?.public_key(),
    };
    Ok(base64::engine::general_purpose::STANDARD.encode(public))
}

/// The TXT record to publish, in zone-file form:
/// `SEL._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..."`. A value longer than one DNS
/// character-string (255 bytes, as a 2048-bit RSA key is) is split into several quoted strings,
/// which resolvers join again.
pub fn txt_record(domain: &str, selector: &str, algorithm: DkimAlgorithm, public: &str) -> String {
    let value = format!("v=DKIM1; k={}; p={public}", algorithm.key_type());
    format!(
        "{selector}._domainkey.{domain}. IN TXT {}",
        quoted_strings(&value)
    )
}

/// `text` as one or more zone-file quoted strings of at most 255 bytes each.
pub(crate) fn quoted_strings(text: &str) -> String {
    text.as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `selector` can name a DNS label sequence: letters, digits, `-` and `_`, dots
/// between non-empty labels of at most 63 bytes.
pub fn valid_selector(selector: &str) -> bool {
    !selector.is_empty()
        && selector.len() <= 63
        && selector.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

pub(crate) fn rsa_key(domain: &str, pkcs8: &[u8]) -> Result<RsaKey<Sha256>, FilterError> {
    RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8))).map_err(
        |e| FilterError::Key {
            domain: domain.to_string(),
            reason: e.to_string(),
        },
    )
}

pub(crate) fn ed25519_key(domain: &str, pkcs8: &[u8]) -> Result<Ed25519Key, FilterError> {
    Ed25519Key::from_pkcs8_der(pkcs8).map_err(|e| FilterError::Key {
        domain: domain.to_string(),
        reason: e.to_string(),
    })
}

/// PKCS#8 PrivateKeyInfo around a PKCS#1 RSAPrivateKey (RFC 5208 §5).
fn rsa_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00]; // version 0
    body.extend_from_slice(&RSA_ALGORITHM);
    body.extend_from_slice(&der(0x04, pkcs1));
    der(0x30, &body)
}

/// SubjectPublicKeyInfo around a PKCS#1 RSAPublicKey (RFC 5280 §4.1).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut bits = vec![0x00]; // no unused bits
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend_from_slice(&der(0x03, &bits));
    der(0x30, &body)
}

/// One DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = der(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(long.len(), 304);
    }

    #[test]
    fn selectors() {
        assert!(valid_selector("tern"));
        assert!(valid_selector("2026-01.mail"));
        assert!(!valid_selector(""));
        assert!(!valid_selector("a..b"));
        assert!(!valid_selector("bad selector"));
        assert!(!valid_selector("x;y"));
    }

    #[test]
    fn long_records_are_split_into_strings() {
        let short = txt_record("example.com", "tern", DkimAlgorithm::Ed25519, "AAAA");
        assert_eq!(
            short,
            "tern._domainkey.example.com. IN TXT \"v=DKIM1; k=ed25519; p=AAAA\""
        );
        let key = "A".repeat(392);
        let long = txt_record("example.com", "tern", DkimAlgorithm::Rsa, &key);
        let strings: Vec<&str> = long.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2);
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), format!("v=DKIM1; k=rsa; p={key}"));
    }
}
