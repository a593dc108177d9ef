//! Matching a SEARCH string against header text: case-insensitive substrings of the value as
//! written, of its RFC 2047 decoding, and, for address fields, of each address written as
//! `Display Name <local@domain>` (so `user@example.org` matches `<user (c) @ example.org>`).

use super::fields::Field;
use mail_parser::parsers::MessageStream;
use mail_parser::{Addr, Address, HeaderValue};

/// Fields whose values are address lists (RFC 5322 §3.6.2, §3.6.3, §3.6.6).
const ADDRESS_FIELDS: [&str; 11] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-bcc",
];

/// `text` folded for case-insensitive comparison (Unicode lower case).
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Whether `field`'s value contains `needle`, which [`fold`] has folded. An empty needle
/// matches any field (RFC 9051: `HEADER name ""` finds the messages that have the field).
pub fn field_contains(field: &Field<'_>, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let has = |text: &str| fold(text).contains(needle);
    has(&field.unfolded())
        || decoded(field.raw).is_some_and(|t| has(&t))
        || (is_address_field(&field.name) && addresses(field.raw).is_some_and(|t| has(&t)))
}

fn is_address_field(name: &str) -> bool {
    ADDRESS_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The value with its RFC 2047 encoded words decoded, when it has any.
pub fn decoded(raw: &[u8]) -> Option<String> {
    if !raw.windows(2).any(|w| w == b"=?") {
        return None;
    }
    let line = value_line(raw);
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(text) => Some(text.into_owned()),
        _ => None,
    }
}

/// The address list in a normal form: `Name <address>` or `address`, groups as
/// `group: ...;`, separated by `, `, display names decoded.
pub fn addresses(raw: &[u8]) -> Option<String> {
    let line = value_line(raw);
    let list = match MessageStream::new(&line).parse_address() {
        HeaderValue::Address(Address::List(list)) => list.iter().map(address).collect(),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .map(|g| {
                let members: Vec<String> = g.addresses.iter().map(address).collect();
                format!(
                    "{}: {};",
                    g.name.as_deref().unwrap_or_default(),
                    members.join(", ")
                )
            })
            .collect::<Vec<String>>(),
        _ => return None,
    };
    Some(list.join(", "))
}

fn address(a: &Addr<'_>) -> String {
    match (a.name.as_deref(), a.address.as_deref()) {
        (Some(name), Some(addr)) => format!("{name} <{addr}>"),
        (Some(only), None) | (None, Some(only)) => only.to_string(),
        (None, None) => String::new(),
    }
}

/// A field value as mail-parser reads it: up to and including its end of line.
pub(crate) fn value_line(raw: &[u8]) -> Vec<u8> {
    let mut line = raw.to_vec();
    if !line.ends_with(b"\n") {
        line.push(b'\n');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::fields::fields;

    fn matches(header: &str, needle: &str) -> bool {
        fields(header.as_bytes())
            .iter()
            .any(|f| field_contains(f, &fold(needle)))
    }

    /// The address forms of ImapTest's search-addresses mailbox.
    #[test]
    fn addresses_match_in_every_form() {
        for from in [
            "From: user-from@domain.org\r\n",
            "From: RealFrom <user-from@domain.org>\r\n",
            "From: <user-from (comment)@ (comment) domain.org>\r\n",
            "From: user-from@domain.org (RealFrom)\r\n",
            "From: \"Real From\"\r\n <user-from@domain.org>\r\n",
        ] {
            assert!(matches(from, "user-from@domain.org"), "{from}");
            assert!(matches(from, "USER-FROM@Domain.ORG"), "{from}");
            assert!(matches(from, "ser-fro"), "{from}");
            assert!(!matches(from, "user-to@domain.org"), "{from}");
        }
        assert!(matches(
            "From: user-from@domain.org (RealFrom)\r\n",
            "ealfro"
        ));
        let groups = "To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n";
        for needle in ["groupname", "groupname2", "groupuser1", "groupuser3"] {
            assert!(matches(groups, needle), "{needle}");
        }
        assert!(!matches(groups, "groupuser4"));
        assert!(matches("To: groupname:;\r\n", "groupname"));
    }

    #[test]
    fn encoded_words_match_decoded_and_in_any_case() {
        let subject = "Subject: =?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?= =?ISO-8859-1?B?5HBmZWw=?=\r\n";
        assert!(matches(subject, "café crème"));
        assert!(matches(subject, "CAFÉ CRÈME"));
        assert!(matches(subject, "äpfel"));
        assert!(
            matches(subject, "=?UTF-8?Q?Caf"),
            "the encoded form still matches"
        );
        assert!(!matches(subject, "cafe"));
        let mixed =
            "Subject: Re: =?UTF-8?Q?Caf=C3=A9?= au\r\n lait =?UTF-8?B?w6A=?= =?UTF-8?B?w6A=?=\r\n";
        assert!(matches(mixed, "re: café au lait àà"));
        let from = "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <jm@example.org>\r\n";
        assert!(matches(from, "jürgen müller <jm@"));
        assert!(matches(from, "MÜLLER"));
        // Raw UTF-8 (RFC 6532) is compared as it is.
        assert!(matches("Subject: Grüße\r\n", "GRÜßE"));
    }

    #[test]
    fn an_empty_needle_finds_the_field() {
        assert!(matches("X-Empty:\r\n", ""));
        assert!(!matches("Subject: hello\r\n", "bye"));
        assert!(matches("Subject: hello\r\n", ""));
    }

    #[test]
    fn odd_values_do_not_panic() {
        for raw in [
            &b""[..],
            b"=?",
            b"=?utf-8?q?",
            b"<@>, ,;:",
            b"\xff\xfe =?x?b?////?=",
            b"a:b:c;;;<<>>",
        ] {
            let _ = decoded(raw);
            let _ = addresses(raw);
        }
    }
}
