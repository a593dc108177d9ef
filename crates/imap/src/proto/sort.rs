//! SORT (RFC 5256, RFC 5957 DISPLAYFROM/DISPLAYTO) and THREAD criteria and their parsers.

use super::lexer::{Lexer, ParseError, Parsed};

/// What a SORT criterion compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// The first Cc: address's mailbox.
    Cc,
    /// The Date: header in UTC (the internal date when there is none).
    Date,
    /// The first From: address's mailbox.
    From,
    /// RFC822.SIZE.
    Size,
    /// The base subject (RFC 5256 §2.1).
    Subject,
    /// The first To: address's mailbox.
    To,
    /// The first From: address's display name, or its address (RFC 5957).
    DisplayFrom,
    /// The first To: address's display name, or its address (RFC 5957).
    DisplayTo,
}

/// One SORT criterion: a key, maybe reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    /// What is compared.
    pub key: SortKey,
    /// REVERSE.
    pub reverse: bool,
}

/// A THREAD algorithm (RFC 5256 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    /// ORDEREDSUBJECT.
    OrderedSubject,
    /// REFERENCES.
    References,
}

/// Parses the parenthesised sort criteria list, e.g. `(REVERSE DATE SUBJECT)`.
pub fn criteria(l: &mut Lexer<'_>) -> Parsed<Vec<SortCriterion>> {
    let words = l.list(|l| l.atom())?;
    let mut out = Vec::new();
    let mut reverse = false;
    for word in words {
        let key = match word.to_ascii_uppercase().as_str() {
            "REVERSE" if !reverse => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => SortKey::Arrival,
            "CC" => SortKey::Cc,
            "DATE" => SortKey::Date,
            "FROM" => SortKey::From,
            "SIZE" => SortKey::Size,
            "SUBJECT" => SortKey::Subject,
            "TO" => SortKey::To,
            "DISPLAYFROM" => SortKey::DisplayFrom,
            "DISPLAYTO" => SortKey::DisplayTo,
            _ => return Err(ParseError("unknown sort criterion")),
        };
        out.push(SortCriterion { key, reverse });
        reverse = false;
    }
    if out.is_empty() || reverse {
        return Err(ParseError("expected a sort criterion"));
    }
    Ok(out)
}

/// Parses a THREAD algorithm name.
pub fn algorithm(l: &mut Lexer<'_>) -> Parsed<ThreadAlgorithm> {
    match l.atom()?.to_ascii_uppercase().as_str() {
        "ORDEREDSUBJECT" => Ok(ThreadAlgorithm::OrderedSubject),
        "REFERENCES" => Ok(ThreadAlgorithm::References),
        _ => Err(ParseError("unknown thread algorithm")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Parsed<Vec<SortCriterion>> {
        criteria(&mut Lexer::new(s.as_bytes()))
    }

    #[test]
    fn criteria_lists() {
        let c = parse("(reverse DATE subject DISPLAYFROM)").unwrap();
        assert_eq!(c.len(), 3);
        assert!(c[0].reverse && c[0].key == SortKey::Date);
        assert!(!c[1].reverse && c[1].key == SortKey::Subject);
        assert_eq!(c[2].key, SortKey::DisplayFrom);
        for bad in ["()", "(REVERSE)", "(REVERSE REVERSE DATE)", "(FOO)", "DATE"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let a = |s: &str| algorithm(&mut Lexer::new(s.as_bytes()));
        assert_eq!(a("references"), Ok(ThreadAlgorithm::References));
        assert_eq!(a("OrderedSubject"), Ok(ThreadAlgorithm::OrderedSubject));
        assert!(a("REFS").is_err());
    }
}
