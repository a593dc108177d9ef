//! The calendar day of a Date: header as its writer wrote it, for SENTBEFORE/SENTON/SENTSINCE.
//!
//! RFC 9051 §6.4.4 compares "disregarding time and timezone": `Sun, 25 Mar 2007 00:30 +0300`
//! is on 25 March, although it is 24 March in UTC. Only the day, month and year are read, so
//! an odd time or zone does not lose the date; both the RFC 5322 order (`[Sun,] 25 Mar 2007`)
//! the asctime order (`Sun Mar 25 00:30:00 2007`) and `25-Mar-2007` are understood, with comments removed
//! and obsolete two- and three-digit years widened as RFC 5322 §4.3 says.

use chrono::NaiveDate;

/// The day a Date: header value names, or `None` when it names no valid day.
pub fn sent_day(value: &str) -> Option<NaiveDate> {
    let text = without_comments(value);
    let tokens: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|t| !t.is_empty())
        .collect();
    let m = tokens.iter().position(|t| month(t).is_some())?;
    let month = month(tokens[m])?;
    let before = m.checked_sub(1).and_then(|i| tokens.get(i));
    let (day, year) = match before.and_then(|t| day(t)) {
        // RFC 5322: day month year.
        Some(day) => (day, tokens.get(m + 1).and_then(|t| year(t))?),
        // asctime: month day time year.
        None => {
            let day = tokens.get(m + 1).and_then(|t| day(t))?;
            let year = tokens.iter().skip(m + 2).find_map(|t| year(t))?;
            (day, year)
        }
    };
    NaiveDate::from_ymd_opt(year, month, day)
}

/// `value` with its parenthesised comments (which nest, and may quote with `\`) as spaces.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut escaped) = (0usize, false);
    for c in value.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                out.push(' ');
            }
        } else if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out
}

/// A month name (its first three letters decide, as in `Mar` or `March`).
fn month(token: &str) -> Option<u32> {
    const NAMES: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if token.len() < 3 || !token.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let prefix = token[..3].to_ascii_lowercase();
    NAMES
        .iter()
        .position(|n| *n == prefix)
        .map(|i| i as u32 + 1)
}

/// A day of the month: one or two digits.
fn day(token: &str) -> Option<u32> {
    (token.len() <= 2 && token.bytes().all(|b| b.is_ascii_digit()))
        .then(|| token.parse().ok())
        .flatten()
}

/// A year: four digits, or an obsolete two (49 and less: 20xx) or three (+1900) digits.
fn year(token: &str) -> Option<i32> {
    if !(2..=4).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = token.parse().ok()?;
    Some(match token.len() {
        2 if n < 50 => 2000 + n,
        2 | 3 => 1900 + n,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(y, m, d)
    }

    #[test]
    fn the_day_as_written_whatever_the_zone() {
        assert_eq!(
            sent_day("Sun, 25 Mar 2007 00:00:00 +0200"),
            ymd(2007, 3, 25)
        );
        assert_eq!(
            sent_day("Sun, 25 Mar 2007 04:00:00 +0300"),
            ymd(2007, 3, 25)
        );
        assert_eq!(
            sent_day("Sat, 24 Mar 2007 23:00:00 +0200"),
            ymd(2007, 3, 24)
        );
        assert_eq!(
            sent_day("Mon, 29 Oct 2007 00:00:00 -1200"),
            ymd(2007, 10, 29)
        );
        assert_eq!(
            sent_day("Sun, 28 Oct 2007 23:59:59 +1400"),
            ymd(2007, 10, 28)
        );
    }

    #[test]
    fn odd_but_readable_dates() {
        // No weekday, no seconds, a named or missing zone, comments, folding spaces, case.
        assert_eq!(sent_day("25 Mar 2007 10:00 GMT"), ymd(2007, 3, 25));
        assert_eq!(sent_day("5 mar 2007 10:00:00"), ymd(2007, 3, 5));
        assert_eq!(
            sent_day("Sun (weekday), 25 (day) Mar 2007 10:00 +0000 (UTC)"),
            ymd(2007, 3, 25)
        );
        assert_eq!(sent_day("  Sun,  25   March  2007 "), ymd(2007, 3, 25));
        assert_eq!(sent_day("Sun,25 Mar 2007 10:00:00 +0000"), ymd(2007, 3, 25));
        // Obsolete years, and the asctime order some old software writes.
        assert_eq!(sent_day("Sun, 25 Mar 07 10:00 EST"), ymd(2007, 3, 25));
        assert_eq!(sent_day("Thu, 25 Mar 99 10:00 EST"), ymd(1999, 3, 25));
        assert_eq!(sent_day("Thu, 25 Mar 107 10:00 EST"), ymd(2007, 3, 25));
        assert_eq!(sent_day("Sun Mar 25 10:00:00 2007"), ymd(2007, 3, 25));
        assert_eq!(sent_day("25-Mar-2007 10:00:00 -0500"), ymd(2007, 3, 25));
    }

    #[test]
    fn no_day_named() {
        for bad in [
            "",
            "yesterday",
            "Sun, 31 Feb 2007 10:00 +0000",
            "Sun, 25 Xyz 2007",
            "Sun, 250 Mar 2007",
            "Sun, 25 Mar",
            "Sun, 25 Mar 20071",
            "(Mar 25 2007)",
            "2007-03-25T10:00:00Z",
        ] {
            assert_eq!(sent_day(bad), None, "{bad:?}");
        }
    }
}
