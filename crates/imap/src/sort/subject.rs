//! The base subject of RFC 5256 §2.1: the subject without `Re:`, `Fwd:`, `[blob]`,
//! `(fwd)` and `[fwd: ...]`, whitespace normalised, for SORT SUBJECT and threading.

/// The base subject of a decoded subject, and whether it was a reply or forward (anything
/// but a bare `[blob]` was removed).
pub fn base_subject(decoded: &str) -> (String, bool) {
    // (1) Runs of whitespace (tabs, folds) become one space.
    let mut s = decoded.split_whitespace().collect::<Vec<&str>>().join(" ");
    let mut reply = false;
    loop {
        // (2) Trailers: `(fwd)` and whitespace.
        loop {
            let trimmed = s.trim_end();
            if let Some(rest) = strip_suffix_ci(trimmed, "(fwd)") {
                s = rest.to_string();
                reply = true;
            } else {
                s = trimmed.to_string();
                break;
            }
        }
        // (3)–(5) Leaders and blobs, until neither removes anything.
        loop {
            let before = s.len();
            while let Some(rest) = leader(&s) {
                reply |= rest.1;
                s = rest.0.to_string();
            }
            if let Some(rest) = blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) `[fwd: subject]`, then again from (2).
        match strip_prefix_ci(&s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            Some(inner) => {
                s = inner.to_string();
                reply = true;
            }
            None => return (s, reply),
        }
    }
}

/// One subj-leader removed from the front: a space, or `*blob ("re" / "fw" / "fwd") *WSP
/// [blob] ":"`. The flag tells whether it was a reply/forward marker.
fn leader(s: &str) -> Option<(&str, bool)> {
    if let Some(rest) = s.strip_prefix(' ') {
        return Some((rest, false));
    }
    let mut rest = s;
    while let Some(r) = blob(rest) {
        rest = r;
    }
    rest = ["re", "fwd", "fw"]
        .iter()
        .find_map(|p| strip_prefix_ci(rest, p))?;
    rest = rest.trim_start_matches(' ');
    if let Some(r) = blob(rest) {
        rest = r;
    }
    Some((rest.strip_prefix(':')?, true))
}

/// `[` characters other than brackets `]` and the spaces after it, removed from the front.
fn blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    let rest = inner[end..].strip_prefix(']')?;
    Some(rest.trim_start_matches(' '))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> String {
        base_subject(s).0
    }

    #[test]
    fn rfc_5256_forms() {
        assert_eq!(base("Re: hello"), "hello");
        assert_eq!(base("RE:hello"), "hello");
        assert_eq!(base("Fwd: Re: re: hello"), "hello");
        assert_eq!(base("fw: hello (fwd)"), "hello");
        assert_eq!(base("hello (FWD)  (fwd) "), "hello");
        assert_eq!(base("[list] Re: hello"), "hello");
        assert_eq!(base("Re [list]: hello"), "hello");
        assert_eq!(base("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)"), "b");
        assert_eq!(base("Re: [FWD: c]"), "c");
        assert_eq!(base("re: [fwd: [fwd: re: [fwd: babylon]]]"), "babylon");
        assert_eq!(base("[xyz]"), "[xyz]", "a blob alone stays");
        assert_eq!(base("  hello \t  world  "), "hello world");
        assert_eq!(base("Ad: Re: Ad: Re: Ad: x"), "Ad: Re: Ad: Re: Ad: x");
        assert_eq!(base("Reply: x"), "Reply: x");
        assert_eq!(base(""), "");
        assert_eq!(base(" "), "");
        assert_eq!(base("Re:"), "");
        assert_eq!(base("é [ü"), "é [ü");
    }

    #[test]
    fn replies_are_marked() {
        assert!(base_subject("Re: x").1);
        assert!(base_subject("x (fwd)").1);
        assert!(base_subject("[fwd: x]").1);
        assert!(!base_subject("[list] x").1);
        assert!(!base_subject("x").1);
    }
}
