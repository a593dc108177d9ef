//! Evaluating SEARCH keys against a mailbox view, reading a message only when a key needs it.
//!
//! Keys on the record (flags, sizes, dates, sets) are decided first; a message's bytes are read
//! only for the messages those keys leave undecided. Header keys match substrings of the value
//! as written, decoded (RFC 2047) and, for address fields, in `Name <address>` form; dates are
//! compared by day, disregarding time and zone (RFC 9051 §6.4.4).

mod date;
mod fields;
mod message;
pub(crate) mod text;

pub use message::Message;

use crate::proto::search::SearchKey;
use chrono::NaiveDate;
use tern_core::records::MessageRecord;

/// The day of the internal date. It is stored as an instant and shown in UTC (`+0000`), so
/// its day in UTC is the day as the client sees it.
fn internal_day(unix: i64) -> NaiveDate {
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
    /// The message's bytes, once read (`None`: keys that need them are undecided).
    pub message: Option<&'a Message<'a>>,
    /// Highest sequence number and UID (for `*`).
    pub largest: (u32, u32),
    /// Whether the message is \Recent in this session (RECENT, NEW, OLD).
    pub recent: bool,
}

/// Whether `c` matches `key`: `None` when that depends on bytes `c` does not have yet.
pub fn eval(key: &SearchKey, c: &Candidate<'_>) -> Option<bool> {
    use SearchKey::*;
    let has = |f: &str| c.record.flags.iter().any(|x| x.eq_ignore_ascii_case(f));
    let internal = || internal_day(c.record.internal_date);
    let msg = c.message;
    // RFC 5256 §2.2 (SORT): with no readable Date:, the internal date stands for the sent date.
    let sent = || msg.map(|m| m.sent_day().unwrap_or_else(internal));
    Some(match key {
        All => true,
        Flag(f) => has(f),
        NoFlag(f) => !has(f),
        Recent => c.recent,
        Header(field, text) => msg?.header_contains(field, text),
        Body(text) => msg?.body_contains(text),
        Text(text) => msg?.text_contains(text),
        Before(d) => internal() < *d,
        On(d) => internal() == *d,
        Since(d) => internal() >= *d,
        SentBefore(d) => sent()? < *d,
        SentOn(d) => sent()? == *d,
        SentSince(d) => sent()? >= *d,
        Larger(n) => c.record.size > *n,
        Smaller(n) => c.record.size < *n,
        Uid(set) => set.contains(c.record.uid.0, c.largest.1),
        Seq(set) => set.contains(c.seq, c.largest.0),
        ModSeq(n) => c.record.modseq.0 >= *n,
        Not(k) => !eval(k, c)?,
        Or(a, b) => match (eval(a, c), eval(b, c)) {
            (Some(true), _) | (_, Some(true)) => true,
            (Some(false), Some(false)) => false,
            _ => return None,
        },
        And(all) => {
            let mut known = true;
            for k in all {
                match eval(k, c) {
                    Some(false) => return Some(false),
                    Some(true) => {}
                    None => known = false,
                }
            }
            if !known {
                return None;
            }
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::lexer::Lexer;
    use crate::proto::search::keys;
    use tern_core::{ModSeq, Uid};

    fn key(text: &str) -> SearchKey {
        match keys(&mut Lexer::new(text.as_bytes())) {
            Ok(k) => k,
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    fn record(uid: u32, internal_date: i64, flags: &[&str]) -> MessageRecord {
        MessageRecord {
            uid: Uid(uid),
            blob: tern_core::BlobId([0; 32]),
            size: 100,
            internal_date,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            modseq: ModSeq(1),
        }
    }

    fn eval_on(
        key_text: &str,
        r: &MessageRecord,
        raw: Option<&[u8]>,
        recent: bool,
    ) -> Option<bool> {
        let message = raw.map(Message::new);
        let c = Candidate {
            seq: 1,
            record: r,
            message: message.as_ref(),
            largest: (1, r.uid.0),
            recent,
        };
        eval(&key(key_text), &c)
    }

    /// 2007-03-25 00:30:00 +0300, which is 2007-03-24 21:30 UTC.
    const DATED: &[u8] =
        b"Date: Sun, 25 Mar 2007 00:30:00 +0300\r\nFrom: A <a@example.org>\r\n\r\nbody\r\n";
    const MAR_24_2130_UTC: i64 = 1_174_771_800;

    #[test]
    fn sent_dates_use_the_header_day_as_written() {
        let r = record(1, MAR_24_2130_UTC, &[]);
        let on = |k: &str| eval_on(k, &r, Some(DATED), false);
        assert_eq!(on("SENTON 25-Mar-2007"), Some(true));
        assert_eq!(on("SENTON 24-Mar-2007"), Some(false));
        assert_eq!(on("SENTBEFORE 25-Mar-2007"), Some(false));
        assert_eq!(on("SENTBEFORE 26-Mar-2007"), Some(true));
        assert_eq!(on("SENTSINCE 25-Mar-2007"), Some(true));
        assert_eq!(on("SENTSINCE 26-Mar-2007"), Some(false));
        assert_eq!(on("NOT SENTON 25-Mar-2007"), Some(false));
    }

    #[test]
    fn internal_dates_use_the_day_fetch_shows() {
        let r = record(1, MAR_24_2130_UTC, &[]);
        let on = |k: &str| eval_on(k, &r, None, false);
        assert_eq!(on("ON 24-Mar-2007"), Some(true));
        assert_eq!(on("BEFORE 24-Mar-2007"), Some(false));
        assert_eq!(on("BEFORE 25-Mar-2007"), Some(true));
        assert_eq!(on("SINCE 24-Mar-2007"), Some(true));
        assert_eq!(on("SINCE 25-Mar-2007"), Some(false));
    }

    #[test]
    fn without_a_readable_date_the_internal_date_is_the_sent_date() {
        let r = record(1, MAR_24_2130_UTC, &[]);
        for raw in [&b"Subject: no date\r\n\r\nx"[..], b"Date: someday\r\n\r\nx"] {
            assert_eq!(
                eval_on("SENTON 24-Mar-2007", &r, Some(raw), false),
                Some(true)
            );
            assert_eq!(
                eval_on("SENTBEFORE 24-Mar-2007", &r, Some(raw), false),
                Some(false)
            );
        }
    }

    #[test]
    fn keys_on_the_record_decide_without_the_message() {
        let r = record(7, MAR_24_2130_UTC, &["\\Seen"]);
        let on = |k: &str| eval_on(k, &r, None, false);
        assert_eq!(on("SEEN FROM a"), None);
        assert_eq!(on("UNSEEN FROM a"), Some(false));
        assert_eq!(on("OR SEEN FROM a"), Some(true));
        assert_eq!(on("OR UNSEEN FROM a"), None);
        assert_eq!(on("NOT (UNSEEN BODY x)"), Some(true));
        assert_eq!(on("UID 1:6 SENTON 1-Jan-2000"), Some(false));
        assert_eq!(
            eval_on("SEEN FROM a@EXAMPLE", &r, Some(DATED), false),
            Some(true)
        );
    }

    #[test]
    fn recent_new_and_old_follow_the_session() {
        let seen = record(1, 0, &["\\Seen"]);
        let unseen = record(2, 0, &[]);
        for (k, r, recent, want) in [
            ("RECENT", &seen, true, true),
            ("RECENT", &seen, false, false),
            ("OLD", &seen, true, false),
            ("OLD", &unseen, false, true),
            ("NEW", &unseen, true, true),
            ("NEW", &seen, true, false),
            ("NEW", &unseen, false, false),
        ] {
            assert_eq!(eval_on(k, r, None, recent), Some(want), "{k} {recent}");
        }
    }
}
