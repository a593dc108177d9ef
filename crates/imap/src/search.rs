//! Evaluating SEARCH keys against a mailbox view, reading bodies only when a key needs them.

use crate::mime::Parsed;
use crate::proto::search::SearchKey;
use chrono::NaiveDate;
use tern_core::records::MessageRecord;

/// Whether evaluating `key` needs the message body.
pub fn needs_body(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        Header(..) | Body(_) | Text(_) | SentBefore(_) | SentOn(_) | SentSince(_) => true,
        Not(k) => needs_body(k),
        Or(a, b) => needs_body(a) || needs_body(b),
        And(all) => all.iter().any(needs_body),
        _ => false,
    }
}

fn day(unix: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .date_naive()
}

/// One message as SEARCH sees it.
pub struct Candidate<'a> {
    /// Sequence number.
    pub seq: u32,
    /// The record.
    pub record: &'a MessageRecord,
    /// The parsed body, when a key needs it.
    pub body: Option<&'a Parsed<'a>>,
    /// Highest sequence number and UID (for `*`).
    pub largest: (u32, u32),
}

/// Whether `c` matches `key`.
pub fn eval(key: &SearchKey, c: &Candidate<'_>) -> bool {
    use SearchKey::*;
    let has = |f: &str| c.record.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let sent = || c.body.and_then(|b| b.sent_date()).map(day);
    match key {
        All => true,
        Flag(f) => has(f),
        NoFlag(f) => !has(f),
        Header(field, text) => c.body.is_some_and(|b| b.header_contains(field, text)),
        Body(text) => c.body.is_some_and(|b| b.body_contains(text)),
        Text(text) => c.body.is_some_and(|b| {
            b.body_contains(text)
                || ["FROM", "TO", "CC", "SUBJECT"]
                    .iter()
                    .any(|f| b.header_contains(f, text))
        }),
        Before(d) => day(c.record.internal_date) < *d,
        On(d) => day(c.record.internal_date) == *d,
        Since(d) => day(c.record.internal_date) >= *d,
        SentBefore(d) => sent().is_some_and(|s| s < *d),
        SentOn(d) => sent().is_some_and(|s| s == *d),
        SentSince(d) => sent().is_some_and(|s| s >= *d),
        Larger(n) => c.record.size > *n,
        Smaller(n) => c.record.size < *n,
        Uid(set) => set.contains(c.record.uid.0, c.largest.1),
        Seq(set) => set.contains(c.seq, c.largest.0),
        ModSeq(n) => c.record.modseq.0 >= *n,
        Not(k) => !eval(k, c),
        Or(a, b) => eval(a, c) || eval(b, c),
        And(all) => all.iter().all(|k| eval(k, c)),
    }
}
