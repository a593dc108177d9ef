//! DKIM signing of submitted mail with the sender domain's stored key: rsa-sha256 or
//! ed25519-sha256, relaxed/relaxed canonicalization, over the headers a reader sees.

use crate::FilterError;
use crate::keys::{ed25519_key, rsa_key};
use mail_auth::common::crypto::SigningKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use tern_core::records::{DkimAlgorithm, DkimKeyRecord};

/// The headers signed when present; a header absent at signing time is left out, so that an
/// MTA on the way may still add it (a missing Date, say).
pub const SIGNED_HEADERS: [&str; 14] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Reply-To",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The `h=` list for `message`: the [`SIGNED_HEADERS`] it has, and From once more
/// ("oversigned"), so that a From added after signing breaks the signature instead of being
/// shown to the reader.
fn headers_to_sign(message: &[u8]) -> Vec<&'static str> {
    let names = crate::results::header_names(message);
    let mut h: Vec<&'static str> = SIGNED_HEADERS
        .iter()
        .copied()
        .filter(|wanted| {
            names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(wanted.as_bytes()))
        })
        .collect();
    h.push("From");
    h
}

/// The `DKIM-Signature: ...\r\n` header for `message` (to prepend to it).
pub fn sign(message: &[u8], key: &DkimKeyRecord) -> Result<String, FilterError> {
    let der = &key.private_key.0;
    match key.algorithm {
        DkimAlgorithm::Rsa => sign_with(rsa_key(&key.domain, der)?, message, key),
        DkimAlgorithm::Ed25519 => sign_with(ed25519_key(&key.domain, der)?, message, key),
    }
}

fn sign_with<K: SigningKey>(
    signing_key: K,
    message: &[u8],
    key: &DkimKeyRecord,
) -> Result<String, FilterError> {
    let signature = DkimSigner::from_key(signing_key)
        .domain(key.domain.as_str())
        .selector(key.selector.as_str())
        .headers(headers_to_sign(message))
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| FilterError::Sign {
            domain: key.domain.clone(),
            reason: e.to_string(),
        })?;
    Ok(signature.to_header())
}
