//! Mail addresses as Tern stores and looks them up: `local@domain`, compared case-insensitively
//! (as nearly every provider does), with the domain validated as a hostname.

use thiserror::Error;

/// Why a string is not an acceptable address.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum AddressError {
    /// No `@`, or an empty local part or domain.
    #[error("address must look like user@domain")]
    Shape,
    /// Longer than RFC 5321 allows (64 local, 255 domain, 254 in all).
    #[error("address too long")]
    TooLong,
    /// Spaces, controls or other characters that do not belong.
    #[error("address contains invalid characters")]
    Characters,
    /// The domain is not a valid hostname.
    #[error("invalid domain {0:?}")]
    Domain(String),
}

/// A normalised address: lower-case, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

impl Address {
    /// Parses and normalises `user@domain`.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let text = text.trim();
        if text.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(AddressError::Shape)?;
        if local.is_empty() || domain.is_empty() {
            return Err(AddressError::Shape);
        }
        if local.len() > 64 {
            return Err(AddressError::TooLong);
        }
        let bad = |c: char| c.is_control() || c.is_whitespace() || "<>()[]\\,;:\"@".contains(c);
        if local.chars().any(bad) || local.starts_with('.') || local.ends_with('.') {
            return Err(AddressError::Characters);
        }
        Ok(Address {
            local: local.to_lowercase(),
            domain: normalize_domain(domain)?,
        })
    }

    /// The local part (before `@`).
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain (after `@`).
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Validates a hostname and returns it lower-case without a trailing dot.
pub fn normalize_domain(domain: &str) -> Result<String, AddressError> {
    let d = domain.trim().trim_end_matches('.').to_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if d.is_empty() || d.len() > 255 || !d.split('.').all(label_ok) {
        return Err(AddressError::Domain(domain.to_string()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Result<&str, AddressError>)] = &[
            ("Alice@Example.COM", Ok("alice@example.com")),
            ("a.b+tag@mail.example.org.", Ok("a.b+tag@mail.example.org")),
            ("jörg@bücher.example", Ok("jörg@bücher.example")),
            ("noat", Err(AddressError::Shape)),
            ("@example.com", Err(AddressError::Shape)),
            ("user@", Err(AddressError::Shape)),
            ("us er@example.com", Err(AddressError::Characters)),
            (
                "user@exa mple.com",
                Err(AddressError::Domain("exa mple.com".into())),
            ),
            (
                "user@-bad.com",
                Err(AddressError::Domain("-bad.com".into())),
            ),
        ];
        for (input, want) in cases {
            let got = Address::parse(input).map(|a| a.to_string());
            assert_eq!(got, want.clone().map(String::from), "{input}");
        }
    }
}
