//! DNS block lists (RFC 5782): the client's address, reversed (octets for IPv4, nibbles for
//! IPv6), is looked up as an A record under each zone; an answer in 127.0.0.0/8 means listed,
//! and the TXT record at the same name says why. A lookup that fails means "not listed": a
//! broken list must not stop mail.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

/// A client found on a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The client's address.
    pub ip: IpAddr,
    /// The zone that lists it.
    pub zone: String,
    /// The list's TXT explanation, if it has one.
    pub reason: Option<String>,
}

impl Listing {
    /// The reply text after `554 5.7.1`, worded like Postfix's.
    pub fn reply_text(&self) -> String {
        let mut text = format!(
            "Service unavailable; client [{}] blocked using {}",
            self.ip, self.zone
        );
        if let Some(reason) = &self.reason {
            let _ = write!(text, ": {reason}");
        }
        text
    }
}

/// The name to look up for `ip` under `zone`, fully qualified: `4.3.2.1.zone.` for 1.2.3.4,
/// 32 reversed nibbles for IPv6 (an IPv4-mapped IPv6 address counts as IPv4).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    let mut name = String::with_capacity(80);
    match ip {
        IpAddr::V4(v4) => push_v4(&mut name, v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => push_v4(&mut name, v4),
            None => {
                for byte in v6.octets().iter().rev() {
                    let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
                }
            }
        },
    }
    name.push_str(zone);
    name.push('.');
    name
}

fn push_v4(name: &mut String, ip: Ipv4Addr) {
    for octet in ip.octets().iter().rev() {
        let _ = write!(name, "{octet}.");
    }
}

/// Whether an A answer means "listed": 127.0.0.0/8 (RFC 5782 §2.3), except 127.255.255.0/24,
/// which lists use for errors such as "queries through a public resolver are refused".
pub fn is_listing(answer: Ipv4Addr) -> bool {
    let [a, b, c, _] = answer.octets();
    a == 127 && !(b == 255 && c == 255)
}

/// A TXT answer made safe for an SMTP reply line.
pub(crate) fn reason_text(raw: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        let v4: IpAddr = "192.0.2.99".parse().unwrap();
        assert_eq!(query_name(v4, "zen.example."), "99.2.0.192.zen.example.");
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(query_name(loopback, "bl.test"), "1.0.0.127.bl.test.");
        let v6: IpAddr = "2001:db8::567:89ab".parse().unwrap();
        assert_eq!(
            query_name(v6, "bl.test"),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test."
        );
        let mapped: IpAddr = "::ffff:198.51.100.1".parse().unwrap();
        assert_eq!(query_name(mapped, "bl.test"), "1.100.51.198.bl.test.");
    }

    #[test]
    fn listing_answers_and_reply() {
        assert!(is_listing("127.0.0.2".parse().unwrap()));
        assert!(!is_listing("127.255.255.254".parse().unwrap()));
        assert!(!is_listing("192.0.2.1".parse().unwrap()));
        let listing = Listing {
            ip: "127.0.0.1".parse().unwrap(),
            zone: "bl.test".into(),
            reason: reason_text(b"spam source\r\n"),
        };
        assert_eq!(
            listing.reply_text(),
            "Service unavailable; client [127.0.0.1] blocked using bl.test: spam source"
        );
    }
}
