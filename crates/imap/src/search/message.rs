//! A stored message as SEARCH reads it: header fields split once, and the MIME structure
//! parsed only when a key looks into the body.

use super::date::sent_day;
use super::fields::{Field, fields, header_block};
use super::text::{field_contains, fold};
use crate::mime::Parsed;
use chrono::NaiveDate;
use std::sync::OnceLock;

/// One message's bytes with what SEARCH has derived from them so far.
pub struct Message<'a> {
    raw: &'a [u8],
    fields: Vec<Field<'a>>,
    parsed: OnceLock<Parsed<'a>>,
}

impl<'a> Message<'a> {
    /// Splits the header of `raw` (the body is parsed later, if at all).
    pub fn new(raw: &'a [u8]) -> Message<'a> {
        Message {
            raw,
            fields: fields(header_block(raw)),
            parsed: OnceLock::new(),
        }
    }

    /// Whether a field named `name` (any case) contains `needle` (see [`field_contains`]).
    pub fn header_contains(&self, name: &str, needle: &str) -> bool {
        let needle = fold(needle);
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .any(|f| field_contains(f, &needle))
    }

    /// Whether the body (decoded text parts, or the raw bytes) contains `needle`.
    pub fn body_contains(&self, needle: &str) -> bool {
        self.parsed
            .get_or_init(|| Parsed::new(self.raw))
            .body_contains(needle)
    }

    /// Whether the header (any field, by name or value) or the body contains `needle`.
    pub fn text_contains(&self, needle: &str) -> bool {
        let folded = fold(needle);
        fold(&String::from_utf8_lossy(header_block(self.raw))).contains(&folded)
            || self.fields.iter().any(|f| field_contains(f, &folded))
            || self.body_contains(needle)
    }

    /// The raw value of the first field named `name` (any case): still folded and encoded.
    pub fn field(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.raw)
    }

    /// The day of the first Date: field, as written; `None` when it is missing or names no day.
    pub fn sent_day(&self) -> Option<NaiveDate> {
        let date = self
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("Date"))?;
        sent_day(&date.unfolded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"Date: Sun, 25 Mar 2007 00:30:00 +0300\r\nSubject: =?utf-8?q?h=C3=A9llo?=\r\nX-Header: qwertyuiop\r\n\r\nzxcvbnm =C3=A9t=C3=A9\r\n";

    #[test]
    fn header_body_and_text() {
        let m = Message::new(MAIL);
        assert!(m.header_contains("subject", "HÉLLO"));
        assert!(m.header_contains("x-header", "wertyuio"));
        assert!(!m.header_contains("subject", "qwerty"));
        assert!(m.body_contains("XCVBN"));
        assert!(!m.body_contains("qwertyuiop"), "BODY is the body only");
        assert!(
            m.text_contains("qwertyuiop"),
            "TEXT includes every header field"
        );
        assert!(m.text_contains("x-header"), "and their names");
        assert!(m.text_contains("héllo"));
        assert!(m.text_contains("zxcvbnm"));
        assert!(!m.text_contains("asdfgh"));
    }

    #[test]
    fn the_sent_day_is_the_written_one() {
        assert_eq!(
            Message::new(MAIL).sent_day(),
            NaiveDate::from_ymd_opt(2007, 3, 25)
        );
        assert_eq!(
            Message::new(b"Subject: x\r\n\r\nDate: 1 Jan 2000\r\n").sent_day(),
            None
        );
        assert_eq!(Message::new(b"Date: soon\r\n\r\n").sent_day(), None);
    }
}
