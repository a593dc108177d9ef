//! SASL mechanisms shared by SMTP, IMAP and POP3: PLAIN (RFC 4616) and LOGIN.
//! STUB SIGNATURES.

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
    let _ = base64;
    todo!()
}

/// Decodes one base64 step of LOGIN (user name or password). `*` cancels.
pub fn decode_login_step(base64: &str) -> Result<String, SaslError> {
    let _ = base64;
    todo!()
}
