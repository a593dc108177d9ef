//! SASL mechanisms shared by SMTP, IMAP and POP3: PLAIN (RFC 4616) and LOGIN.
//!
//! Only the decoding lives here; the protocol sessions own the exchange (challenges, the `*`
//! cancel line as their grammar delivers it) and call [`crate::Directory::authenticate`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A malformed SASL exchange (SMTP 501, IMAP BAD, POP3 -ERR).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    /// Not valid base64.
    #[error("invalid base64")]
    Base64,
    /// Not `authzid NUL authcid NUL passwd`, or not UTF-8.
    #[error("malformed credentials")]
    Malformed,
    /// The client sent `*`.
    #[error("authentication cancelled")]
    Cancelled,
}

/// Decodes a PLAIN response (base64 of `authzid\0user\0password`) into (user, password).
/// A non-empty authzid different from the user is refused as `Malformed`.
pub fn decode_plain(base64: &str) -> Result<(String, String), SaslError> {
    let text = decode_text(base64)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    // RFC 4616 requires a non-empty authcid and passwd. We never act on behalf of another user,
    // so an authzid is only acceptable when it names the user itself (addresses compare
    // case-insensitively, as the directory stores them).
    if user.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(user) {
        return Err(SaslError::Malformed);
    }
    Ok((user.to_string(), password.to_string()))
}

/// Decodes one base64 step of LOGIN (user name or password). `*` cancels.
pub fn decode_login_step(base64: &str) -> Result<String, SaslError> {
    let text = decode_text(base64)?;
    // A NUL cannot be part of a user name or a password we could have stored from a login.
    if text.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(text)
}

/// Base64 (surrounding whitespace ignored) to UTF-8 text; `*` is the client's cancel line.
fn decode_text(base64: &str) -> Result<String, SaslError> {
    let trimmed = base64.trim();
    if trimmed == "*" {
        return Err(SaslError::Cancelled);
    }
    let bytes = STANDARD.decode(trimmed).map_err(|_| SaslError::Base64)?;
    String::from_utf8(bytes).map_err(|_| SaslError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> String {
        STANDARD.encode(raw)
    }

    type PlainCase = (String, Result<(String, String), SaslError>);

    #[test]
    fn plain_table() {
        let ok = |u: &str, p: &str| Ok((u.to_string(), p.to_string()));
        let cases: Vec<PlainCase> = vec![
            (
                b64(b"\0alice@example.com\0secret"),
                ok("alice@example.com", "secret"),
            ),
            (
                b64(b"alice@example.com\0alice@example.com\0pw"),
                ok("alice@example.com", "pw"),
            ),
            (
                b64(b"Alice@Example.com\0alice@example.com\0pw"),
                ok("alice@example.com", "pw"),
            ),
            (
                b64("\0jörg@bücher.example\0pässword".as_bytes()),
                ok("jörg@bücher.example", "pässword"),
            ),
            (format!("  {}\r\n", b64(b"\0bob\0pw")), ok("bob", "pw")),
            // Someone else's authzid: we do not support proxy authorisation.
            (
                b64(b"admin@example.com\0alice@example.com\0pw"),
                Err(SaslError::Malformed),
            ),
            (b64(b"alice\0pw"), Err(SaslError::Malformed)),
            (b64(b"alicepw"), Err(SaslError::Malformed)),
            (b64(b"\0alice\0pw\0extra"), Err(SaslError::Malformed)),
            (b64(b"\0\0pw"), Err(SaslError::Malformed)),
            (b64(b"\0alice\0"), Err(SaslError::Malformed)),
            (b64(b"\0alice\0\xff\xfe"), Err(SaslError::Malformed)),
            ("not base64!".to_string(), Err(SaslError::Base64)),
            ("AGFsaWNlAHB3=".to_string(), Err(SaslError::Base64)),
            ("*".to_string(), Err(SaslError::Cancelled)),
            (String::new(), Err(SaslError::Malformed)),
        ];
        for (input, want) in cases {
            assert_eq!(decode_plain(&input), want, "{input:?}");
        }
    }

    #[test]
    fn login_table() {
        let cases: Vec<(String, Result<String, SaslError>)> = vec![
            (
                b64(b"alice@example.com"),
                Ok("alice@example.com".to_string()),
            ),
            (b64(b"p\xc3\xa4ss"), Ok("päss".to_string())),
            (b64(b""), Ok(String::new())),
            ("*".to_string(), Err(SaslError::Cancelled)),
            (" * ".to_string(), Err(SaslError::Cancelled)),
            ("%%%".to_string(), Err(SaslError::Base64)),
            (b64(b"a\0b"), Err(SaslError::Malformed)),
            (b64(b"\xff"), Err(SaslError::Malformed)),
        ];
        for (input, want) in cases {
            assert_eq!(decode_login_step(&input), want, "{input:?}");
        }
    }
}
