//! Sequence sets (`1:3,5,7:*`), resolved against a mailbox's size or highest UID, and `$`,
//! the saved search result (RFC 5182), which the session replaces before running a command.

use super::lexer::{Lexer, ParseError, Parsed};

/// One element: a number, `*` (None), or a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqSet(pub Vec<(Option<u32>, Option<u32>)>);

impl SeqSet {
    /// Every number: `1:4294967295`.
    pub fn every() -> SeqSet {
        SeqSet(vec![(Some(1), Some(u32::MAX))])
    }

    /// `$`: the result a `SEARCH RETURN (SAVE)` saved. Parsing gives no other set without
    /// elements, so an empty set stands for it.
    pub fn saved() -> SeqSet {
        SeqSet(Vec::new())
    }

    /// Whether this is `$` (see [`SeqSet::saved`]).
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a sequence set or `$`.
    pub fn parse(l: &mut Lexer<'_>) -> Parsed<SeqSet> {
        let text = l.atom_with(b"*")?;
        if text == "$" {
            return Ok(SeqSet::saved());
        }
        SeqSet::from_text(&text)
    }

    /// The set of exactly these numbers (none: a set that contains nothing, shown as `$`).
    pub fn of(values: &[u32]) -> SeqSet {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut out: Vec<(Option<u32>, Option<u32>)> = Vec::new();
        for v in sorted {
            match out.last_mut() {
                Some((_, Some(hi))) if hi.checked_add(1) == Some(v) => *hi = v,
                _ => out.push((Some(v), Some(v))),
            }
        }
        SeqSet(out)
    }

    /// Parses the text form.
    pub fn from_text(text: &str) -> Parsed<SeqSet> {
        let num = |s: &str| -> Parsed<Option<u32>> {
            if s == "*" {
                return Ok(None);
            }
            match s.parse::<u32>() {
                Ok(0) | Err(_) => Err(ParseError("invalid sequence set")),
                Ok(n) => Ok(Some(n)),
            }
        };
        let mut out = Vec::new();
        for part in text.split(',') {
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            out.push((a, b));
        }
        Ok(SeqSet(out))
    }

    /// Whether `n` is in the set, with `*` meaning `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|&(a, b)| {
            let a = a.unwrap_or(largest);
            let b = b.unwrap_or(largest);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        })
    }

    /// The set as ascending, disjoint, non-adjacent closed intervals, with `*` meaning
    /// `largest`. However many elements a client lists (`1,2,3,...`, `1:*,1:*`), the result
    /// has at most one interval per element and is computed in `O(n log n)`.
    pub fn intervals(&self, largest: u32) -> Vec<(u32, u32)> {
        let mut spans: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|&(a, b)| {
                let a = a.unwrap_or(largest);
                let b = b.unwrap_or(largest);
                (a.min(b), a.max(b))
            })
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(spans.len());
        for (lo, hi) in spans {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
    }

    /// Closed intervals as set text, e.g. `[(1, 3), (7, 7)]` → `1:3,7`.
    pub fn ranges_text(ranges: &[(u32, u32)]) -> String {
        let parts: Vec<String> = ranges
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}:{b}")
                }
            })
            .collect();
        parts.join(",")
    }

    /// Compact text for responses (COPYUID, SEARCH ranges).
    pub fn compact(mut values: Vec<u32>) -> String {
        values.sort_unstable();
        values.dedup();
        let mut out = Vec::new();
        let mut i = 0;
        while i < values.len() {
            let start = values[i];
            let mut end = start;
            while i + 1 < values.len() && values[i + 1] == end + 1 {
                i += 1;
                end = values[i];
            }
            out.push(if start == end {
                start.to_string()
            } else {
                format!("{start}:{end}")
            });
            i += 1;
        }
        out.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contains() {
        let s = SeqSet::from_text("1:3,5,7:*").unwrap();
        assert!(s.contains(2, 10) && s.contains(5, 10) && s.contains(10, 10) && !s.contains(4, 10));
        assert!(SeqSet::from_text("*").unwrap().contains(9, 9));
        assert!(SeqSet::from_text("5:2").unwrap().contains(3, 9));
        for bad in ["0", "0:x", "", "1,,2", "a"] {
            assert!(SeqSet::from_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_are_sorted_merged_and_resolve_star() {
        let s = SeqSet::from_text("7:*,1,2,3,5,3:1,9").unwrap();
        assert_eq!(s.intervals(10), vec![(1, 3), (5, 5), (7, 10)]);
        assert_eq!(SeqSet::from_text("*:4").unwrap().intervals(2), vec![(2, 4)]);
        assert_eq!(
            SeqSet::from_text("1:*,1:*").unwrap().intervals(0),
            vec![(0, 1)]
        );
    }

    #[test]
    fn dollar_is_the_saved_result() {
        let mut l = Lexer::new(b"$");
        let set = SeqSet::parse(&mut l).unwrap();
        assert!(set.is_saved() && !set.contains(1, 1));
        assert!(
            SeqSet::from_text("$").is_err(),
            "only where a set is parsed"
        );
        assert!(SeqSet::of(&[3, 1]).contains(3, 9) && !SeqSet::of(&[3, 1]).contains(2, 9));
    }

    #[test]
    fn compacts() {
        assert_eq!(SeqSet::compact(vec![5, 1, 2, 3, 7]), "1:3,5,7");
    }

    proptest::proptest! {
        #[test]
        fn compact_round_trips(values in proptest::collection::vec(1u32..500, 1..40)) {
            let set = SeqSet::from_text(&SeqSet::compact(values.clone())).unwrap();
            let intervals = set.intervals(499);
            for v in 1..500 {
                proptest::prop_assert_eq!(set.contains(v, 499), values.contains(&v));
                let inside = intervals.iter().any(|&(lo, hi)| (lo..=hi).contains(&v));
                proptest::prop_assert_eq!(inside, values.contains(&v));
            }
        }
    }
}
