//! SORT (RFC 5256 §3, RFC 5957): the keys a message sorts by, and the order they give.
//!
//! Strings compare after case folding (upper case, as i;ascii-casemap does for ASCII);
//! equal keys fall back to the next criterion and finally to the sequence number.

mod address;
mod subject;

pub use address::{display_key, mailbox_key};
pub use subject::base_subject;

use crate::proto::sort::{SortCriterion, SortKey};
use crate::search::Message;
use crate::search::text::value_line;
use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;
use std::cmp::Ordering;
use tern_core::records::MessageRecord;

/// One sort key's value for one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// A number (dates as Unix time, sizes).
    Number(i64),
    /// Case-folded text.
    Text(String),
}

/// Whether any criterion needs the message's header (all but ARRIVAL and SIZE).
pub fn needs_message(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// The values `criteria` compare for one message (`message`: its bytes when needed).
pub fn values(
    criteria: &[SortCriterion],
    record: &MessageRecord,
    message: Option<&Message<'_>>,
) -> Vec<Value> {
    let field = |name: &str| message.and_then(|m| m.field(name));
    let text = |s: String| Value::Text(s.to_uppercase());
    criteria
        .iter()
        .map(|c| match c.key {
            SortKey::Arrival => Value::Number(record.internal_date),
            SortKey::Size => Value::Number(record.size as i64),
            SortKey::Date => Value::Number(sent_time(message, record)),
            SortKey::Subject => text(base_subject(&subject(message)).0),
            SortKey::From => text(mailbox_key(field("From"))),
            SortKey::To => text(mailbox_key(field("To"))),
            SortKey::Cc => text(mailbox_key(field("Cc"))),
            SortKey::DisplayFrom => text(display_key(field("From"))),
            SortKey::DisplayTo => text(display_key(field("To"))),
        })
        .collect()
}

/// Sorts `items` (sequence number, values from [`values`], anything) by the criteria,
/// then by sequence number.
pub fn order<T>(criteria: &[SortCriterion], items: &mut [(u32, Vec<Value>, T)]) {
    items.sort_by(|a, b| {
        for (i, c) in criteria.iter().enumerate() {
            let o = a.1.get(i).cmp(&b.1.get(i));
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.0.cmp(&b.0)
    });
}

/// The sent time: the Date: header as Unix time (UTC), or the internal date when there is
/// no Date: header that can be read (RFC 5256 §3, DATE).
pub fn sent_time(message: Option<&Message<'_>>, record: &MessageRecord) -> i64 {
    let parsed = message.and_then(|m| m.field("Date")).and_then(|raw| {
        match MessageStream::new(&value_line(raw)).parse_date() {
            HeaderValue::DateTime(dt) if dt.is_valid() => Some(dt.to_timestamp()),
            _ => None,
        }
    });
    parsed.unwrap_or(record.internal_date)
}

/// The Subject: decoded (RFC 2047) and unfolded; empty when there is none.
pub fn subject(message: Option<&Message<'_>>) -> String {
    let Some(raw) = message.and_then(|m| m.field("Subject")) else {
        return String::new();
    };
    match MessageStream::new(&value_line(raw)).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lexer::Lexer;
    use crate::proto::sort::criteria;
    use tern_core::{BlobId, ModSeq, Uid};

    fn record(seq: u32, internal_date: i64, size: u64) -> MessageRecord {
        MessageRecord {
            uid: Uid(seq),
            blob: BlobId([0; 32]),
            size,
            internal_date,
            flags: Vec::new(),
            modseq: ModSeq(1),
        }
    }

    /// Sorts messages given as (internal date, size, raw) by `spec`; returns sequence numbers.
    fn sorted(spec: &str, mails: &[(i64, u64, &str)]) -> Vec<u32> {
        let criteria = criteria(&mut Lexer::new(spec.as_bytes())).unwrap();
        let mut items: Vec<(u32, Vec<Value>, ())> = mails
            .iter()
            .enumerate()
            .map(|(i, (date, size, raw))| {
                let m = Message::new(raw.as_bytes());
                let r = record(i as u32 + 1, *date, *size);
                (i as u32 + 1, values(&criteria, &r, Some(&m)), ())
            })
            .collect();
        order(&criteria, &mut items);
        items.iter().map(|i| i.0).collect()
    }

    #[test]
    fn dates_in_utc_fall_back_to_the_internal_date() {
        let mails = [
            (0, 0, "Date: Fri, 22 Feb 2008 00:00:00 +0200\r\n\r\n"),
            (0, 0, "Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\r\n"),
            (0, 0, "Date: Fri, 22 Feb 2008 01:00:00 +0200\r\n\r\n"),
            // Fri Feb 22 01:30:23 2008 +0200, no Date:.
            (1_203_636_623, 0, "Subject: foo\r\n\r\n"),
            (1_203_634_800, 0, "Date: nonsense\r\n\r\n"),
        ];
        assert_eq!(sorted("(DATE)", &mails), [1, 3, 5, 4, 2]);
        assert_eq!(sorted("(REVERSE DATE)", &mails), [2, 4, 3, 5, 1]);
    }

    #[test]
    fn ties_keep_sequence_order_even_reversed() {
        let mails = [
            (0, 5, "From: b@x\r\n\r\n"),
            (0, 3, "From: a@x\r\n\r\n"),
            (0, 5, "From: B@y\r\n\r\n"),
        ];
        assert_eq!(sorted("(FROM)", &mails), [2, 1, 3]);
        assert_eq!(sorted("(REVERSE FROM)", &mails), [1, 3, 2]);
        assert_eq!(sorted("(SIZE REVERSE ARRIVAL)", &mails), [2, 1, 3]);
    }

    #[test]
    fn subjects_sort_by_base_subject_case_folded() {
        let mails = [
            (0, 0, "Subject: Re: b\r\n\r\n"),
            (0, 0, "Subject: =?utf-8?q?A?=\r\n\r\n"),
            (0, 0, "Subject: _\r\n\r\n"),
            (0, 0, "\r\n"),
            (0, 0, "Subject: [list] Fwd: a\r\n\r\n"),
        ];
        assert_eq!(sorted("(SUBJECT)", &mails), [4, 2, 5, 1, 3]);
    }

    #[test]
    fn display_names_or_addresses() {
        let mails = [
            (0, 0, "From: foo bar <a@b.c>\r\n\r\n"),
            (0, 0, "From: b@c.d\r\n\r\n"),
            (0, 0, "From: d\r\n\r\n"),
            (0, 0, "From: =?iso-8859-1?q?foo_aar?= <e@f.g>\r\n\r\n"),
            (0, 0, "From: =?iso-8859-1?q?foo_car?= <f@g.h>\r\n\r\n"),
        ];
        assert_eq!(sorted("(DISPLAYFROM)", &mails), [2, 3, 4, 1, 5]);
        assert_eq!(sorted("(REVERSE DISPLAYFROM)", &mails), [5, 1, 4, 3, 2]);
    }
}
