//! The address sort keys: the first address's mailbox (RFC 5256 FROM, TO, CC) and its
//! display name or address (RFC 5957 DISPLAYFROM, DISPLAYTO). For a group, its name stands
//! for the first address, as the group start does in an ENVELOPE.

use crate::search::text::value_line;
use mail_parser::parsers::MessageStream;
use mail_parser::{Addr, Address, HeaderValue};

/// What the first address of a field offers for sorting.
enum First {
    /// A group: its name.
    Group(String),
    /// A mailbox.
    Mailbox {
        name: Option<String>,
        address: Option<String>,
    },
}

fn first(raw: &[u8]) -> Option<First> {
    let line = value_line(raw);
    let mailbox = |a: &Addr<'_>| First::Mailbox {
        name: a.name.as_deref().map(str::to_string),
        address: a.address.as_deref().map(str::to_string),
    };
    match MessageStream::new(&line).parse_address() {
        HeaderValue::Address(Address::List(list)) => list.first().map(mailbox),
        HeaderValue::Address(Address::Group(groups)) => {
            let g = groups.first()?;
            match &g.name {
                Some(name) => Some(First::Group(name.to_string())),
                None => g.addresses.first().map(mailbox),
            }
        }
        _ => None,
    }
}

/// The RFC 5256 key: the first address's local part (the group name for a group); empty
/// when there is none.
pub fn mailbox_key(raw: Option<&[u8]>) -> String {
    match raw.and_then(first) {
        Some(First::Group(name)) => name,
        Some(First::Mailbox { address, name }) => match address {
            Some(a) => match a.rfind('@') {
                Some(at) => a[..at].to_string(),
                None => a,
            },
            None => name.unwrap_or_default(),
        },
        None => String::new(),
    }
}

/// The RFC 5957 key: the first address's display name (decoded), or else its address
/// (`local@domain`); the group name for a group; empty when there is none.
pub fn display_key(raw: Option<&[u8]>) -> String {
    match raw.and_then(first) {
        Some(First::Group(name)) => name,
        Some(First::Mailbox { name, address }) => name
            .filter(|n| !n.trim().is_empty())
            .or(address)
            .unwrap_or_default(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(s: &str) -> String {
        mailbox_key(Some(s.as_bytes()))
    }

    fn dk(s: &str) -> String {
        display_key(Some(s.as_bytes()))
    }

    #[test]
    fn mailbox_keys() {
        assert_eq!(mk(" user2@domain2.org\r\n"), "user2");
        assert_eq!(mk(" foo bar <user2@domain2.org>, x@y"), "user2");
        assert_eq!(mk(" user2@domain2.org (foo bar)"), "user2");
        assert_eq!(mk(" user2: blah@domain1.org;"), "user2");
        assert_eq!(mk(""), "");
        assert_eq!(mailbox_key(None), "");
    }

    #[test]
    fn display_keys() {
        assert_eq!(dk(" foo bar <a@b.c>"), "foo bar");
        assert_eq!(dk(" b@c.d"), "b@c.d");
        assert_eq!(dk(" d"), "d");
        assert_eq!(dk(" =?iso-8859-1?q?foo_aar?= <e@f.g>"), "foo aar");
        assert_eq!(dk(" a: xx@xx.org, yy@yy.org;"), "a");
        assert_eq!(dk(" empty:;"), "empty");
        assert_eq!(display_key(None), "");
    }
}
