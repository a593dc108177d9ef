//! The ESEARCH response of an extended SEARCH (RFC 4731) or SORT (RFC 5267), and what
//! `RETURN (SAVE)` keeps for `$` (RFC 5182).

use crate::proto::search::SearchReturn;

/// One matching message, in result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The number shown: sequence number, or UID for a UID command.
    pub number: u32,
    /// Its UID (what `$` keeps).
    pub uid: u32,
    /// Its MODSEQ.
    pub modseq: u64,
}

/// The hits a response returns: all of them for ALL or COUNT, otherwise the first (MIN)
/// and last (MAX). RFC 7162 §3.1.5 takes the MODSEQ over these; RFC 5182 saves these.
fn returned(hits: &[Hit], ret: &SearchReturn) -> Vec<Hit> {
    if !ret.saves_extremes() {
        return hits.to_vec();
    }
    let mut out = Vec::new();
    if let (true, Some(first)) = (ret.min, hits.first()) {
        out.push(*first);
    }
    if let (true, Some(last)) = (ret.max, hits.last())
        && out.last() != Some(last)
    {
        out.push(*last);
    }
    out
}

/// The UIDs `RETURN (SAVE)` keeps.
pub fn saved(hits: &[Hit], ret: &SearchReturn) -> Vec<u32> {
    returned(hits, ret).iter().map(|h| h.uid).collect()
}

/// `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ n]`. `hits` are
/// in result order (ascending for SEARCH, sort order for SORT): MIN is the first, MAX the
/// last, and ALL keeps their order. `modseq`: whether a MODSEQ key was used.
pub fn response(tag: &str, uid: bool, hits: &[Hit], ret: &SearchReturn, modseq: bool) -> String {
    // A tag is an atom: it never needs escaping inside the quotes.
    let mut line = format!("* ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if let (true, Some(first)) = (ret.min, hits.first()) {
        line.push_str(&format!(" MIN {}", first.number));
    }
    if let (true, Some(last)) = (ret.max, hits.last()) {
        line.push_str(&format!(" MAX {}", last.number));
    }
    if ret.count {
        line.push_str(&format!(" COUNT {}", hits.len()));
    }
    if ret.all && !hits.is_empty() {
        let numbers: Vec<u32> = hits.iter().map(|h| h.number).collect();
        line.push_str(&format!(" ALL {}", ordered_set(&numbers)));
    }
    if modseq && let Some(highest) = returned(hits, ret).iter().map(|h| h.modseq).max() {
        line.push_str(&format!(" MODSEQ {highest}"));
    }
    line
}

/// A sequence set listing `numbers` in their order: runs of consecutive ascending numbers
/// become ranges (`1 2 3 7 5` → `1:3,7,5`).
pub fn ordered_set(numbers: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && end.checked_add(1) == Some(numbers[i + 1]) {
            i += 1;
            end = numbers[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(numbers: &[u32]) -> Vec<Hit> {
        numbers
            .iter()
            .map(|&n| Hit {
                number: n,
                uid: n * 10,
                modseq: 100 - n as u64,
            })
            .collect()
    }

    fn ret(min: bool, max: bool, count: bool, all: bool) -> SearchReturn {
        SearchReturn {
            min,
            max,
            count,
            all,
            save: false,
        }
    }

    #[test]
    fn every_option_in_order() {
        let h = hits(&[1, 2, 3, 9]);
        assert_eq!(
            response("x", true, &h, &ret(true, true, true, true), false),
            "* ESEARCH (TAG \"x\") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9"
        );
        assert_eq!(
            response("a1", false, &h, &ret(false, true, false, false), false),
            "* ESEARCH (TAG \"a1\") MAX 9"
        );
    }

    #[test]
    fn no_match_gives_only_count() {
        assert_eq!(
            response("t", false, &[], &ret(true, true, true, true), true),
            "* ESEARCH (TAG \"t\") COUNT 0"
        );
        assert_eq!(
            response("t", true, &[], &ret(false, false, false, true), false),
            "* ESEARCH (TAG \"t\") UID"
        );
    }

    #[test]
    fn modseq_is_over_what_is_returned() {
        let h = hits(&[2, 3, 5]);
        // MODSEQs: 98, 97, 95.
        assert!(
            response("t", false, &h, &ret(false, true, false, false), true)
                .ends_with("MAX 5 MODSEQ 95")
        );
        assert!(
            response("t", false, &h, &ret(true, true, false, false), true).ends_with("MODSEQ 98")
        );
        assert!(
            response("t", false, &h, &ret(false, false, false, true), true)
                .ends_with("ALL 2:3,5 MODSEQ 98")
        );
    }

    #[test]
    fn sort_order_is_kept_and_save_keeps_uids() {
        assert_eq!(ordered_set(&[1, 2, 3, 7, 5, 4]), "1:3,7,5,4");
        assert_eq!(ordered_set(&[]), "");
        let h = hits(&[4, 1, 2]);
        assert_eq!(
            response("t", false, &h, &ret(true, true, false, true), false),
            "* ESEARCH (TAG \"t\") MIN 4 MAX 2 ALL 4,1:2"
        );
        let save_min = SearchReturn {
            min: true,
            save: true,
            ..SearchReturn::default()
        };
        assert_eq!(saved(&h, &save_min), vec![40]);
        let save_all = SearchReturn {
            min: true,
            count: true,
            save: true,
            ..SearchReturn::default()
        };
        assert_eq!(saved(&h, &save_all), vec![40, 10, 20]);
    }
}
