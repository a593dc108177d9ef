//! SEARCH keys (RFC 9051 §6.4.4) and their parser.

use super::lexer::{Lexer, ParseError, Parsed};
use super::seqset::SeqSet;
use chrono::NaiveDate;

/// A search key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    /// Every message.
    All,
    /// Has the flag.
    Flag(String),
    /// Lacks the flag.
    NoFlag(String),
    /// \Recent in this session (`RECENT`; `NEW` and `OLD` are built on it).
    Recent,
    /// Header field contains the text (case-insensitive).
    Header(String, String),
    /// Body contains the text.
    Body(String),
    /// Header or body contains the text.
    Text(String),
    /// Internal date before the day.
    Before(NaiveDate),
    /// Internal date on the day.
    On(NaiveDate),
    /// Internal date on or after the day.
    Since(NaiveDate),
    /// Date header before the day.
    SentBefore(NaiveDate),
    /// Date header on the day.
    SentOn(NaiveDate),
    /// Date header on or after the day.
    SentSince(NaiveDate),
    /// Larger than n bytes.
    Larger(u64),
    /// Smaller than n bytes.
    Smaller(u64),
    /// UIDs in the set.
    Uid(SeqSet),
    /// Sequence numbers in the set.
    Seq(SeqSet),
    /// MODSEQ at least n.
    ModSeq(u64),
    /// Negation.
    Not(Box<SearchKey>),
    /// Either.
    Or(Box<SearchKey>, Box<SearchKey>),
    /// All of them.
    And(Vec<SearchKey>),
}

/// The charsets SEARCH accepts (strings are UTF-8 either way), as `[BADCHARSET]` lists them.
pub const CHARSETS: &str = "UTF-8 US-ASCII";

/// Whether SEARCH can take strings in `charset`.
pub fn charset_supported(charset: &str) -> bool {
    CHARSETS.split(' ').any(|c| c.eq_ignore_ascii_case(charset))
}

/// Parses `date` as in `1-Feb-2026`.
pub fn date(l: &mut Lexer<'_>) -> Parsed<NaiveDate> {
    let text = if l.peek() == Some(b'"') {
        String::from_utf8(l.quoted()?).map_err(|_| ParseError("bad date"))?
    } else {
        l.atom_with(b"")?
    };
    NaiveDate::parse_from_str(&text, "%d-%b-%Y").map_err(|_| ParseError("bad date"))
}

/// Parses one or more keys (an implicit AND) up to the end of input or a `)`.
pub fn keys(l: &mut Lexer<'_>) -> Parsed<SearchKey> {
    let mut all = vec![key(l)?];
    while l.eat(b' ') {
        all.push(key(l)?);
    }
    Ok(if all.len() == 1 {
        all.remove(0)
    } else {
        SearchKey::And(all)
    })
}

fn text(l: &mut Lexer<'_>) -> Parsed<String> {
    l.space()?;
    l.astring_text()
}

fn key(l: &mut Lexer<'_>) -> Parsed<SearchKey> {
    use SearchKey::*;
    if l.peek() == Some(b'(') {
        l.eat(b'(');
        let inner = keys(l)?;
        l.expect(b')', "expected )")?;
        return Ok(inner);
    }
    if l.peek().is_some_and(|b| b.is_ascii_digit() || b == b'*') {
        return Ok(Seq(SeqSet::parse(l)?));
    }
    let word = l.atom()?.to_ascii_uppercase();
    let flag = |f: &str| Flag(f.to_string());
    let noflag = |f: &str| NoFlag(f.to_string());
    Ok(match word.as_str() {
        "ALL" => All,
        "ANSWERED" => flag("\\Answered"),
        "DELETED" => flag("\\Deleted"),
        "DRAFT" => flag("\\Draft"),
        "FLAGGED" => flag("\\Flagged"),
        "SEEN" => flag("\\Seen"),
        "UNANSWERED" => noflag("\\Answered"),
        "UNDELETED" => noflag("\\Deleted"),
        "UNDRAFT" => noflag("\\Draft"),
        "UNFLAGGED" => noflag("\\Flagged"),
        "UNSEEN" => noflag("\\Seen"),
        "RECENT" => Recent,
        "NEW" => And(vec![Recent, noflag("\\Seen")]),
        "OLD" => Not(Box::new(Recent)),
        "KEYWORD" => {
            l.space()?;
            Flag(l.flag()?)
        }
        "UNKEYWORD" => {
            l.space()?;
            NoFlag(l.flag()?)
        }
        "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => Header(word.clone(), text(l)?),
        "HEADER" => {
            let field = text(l)?;
            Header(field.to_ascii_uppercase(), text(l)?)
        }
        "BODY" => Body(text(l)?),
        "TEXT" => Text(text(l)?),
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
            l.space()?;
            let d = date(l)?;
            match word.as_str() {
                "BEFORE" => Before(d),
                "ON" => On(d),
                "SINCE" => Since(d),
                "SENTBEFORE" => SentBefore(d),
                "SENTON" => SentOn(d),
                _ => SentSince(d),
            }
        }
        "LARGER" => {
            l.space()?;
            Larger(l.number()?)
        }
        "SMALLER" => {
            l.space()?;
            Smaller(l.number()?)
        }
        "UID" => {
            l.space()?;
            Uid(SeqSet::parse(l)?)
        }
        "MODSEQ" => {
            l.space()?;
            ModSeq(l.number()?)
        }
        "NOT" => {
            l.space()?;
            Not(Box::new(key(l)?))
        }
        "OR" => {
            l.space()?;
            let a = key(l)?;
            l.space()?;
            Or(Box::new(a), Box::new(key(l)?))
        }
        _ => return Err(ParseError("unknown search key")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Parsed<SearchKey> {
        let mut l = Lexer::new(s.as_bytes());
        let k = keys(&mut l)?;
        l.end()?;
        Ok(k)
    }

    #[test]
    fn table() {
        use SearchKey::*;
        assert_eq!(parse("ALL"), Ok(All));
        assert_eq!(parse("unseen"), Ok(NoFlag("\\Seen".into())));
        assert_eq!(
            parse("SUBJECT \"message 2\" FLAGGED"),
            Ok(And(vec![
                Header("SUBJECT".into(), "message 2".into()),
                Flag("\\Flagged".into())
            ]))
        );
        assert_eq!(
            parse("OR SEEN (NOT DELETED)"),
            Ok(Or(
                Box::new(Flag("\\Seen".into())),
                Box::new(Not(Box::new(Flag("\\Deleted".into()))))
            ))
        );
        assert!(matches!(parse("SINCE 1-Feb-2026"), Ok(Since(_))));
        assert!(matches!(parse("UID 2:*"), Ok(Uid(_))));
        assert!(parse("SINCE yesterday").is_err());
        assert_eq!(parse("recent"), Ok(Recent));
        assert_eq!(parse("OLD"), Ok(Not(Box::new(Recent))));
        assert_eq!(parse("NEW"), Ok(And(vec![Recent, NoFlag("\\Seen".into())])));
        assert_eq!(
            parse("SUBJECT \"café\""),
            Ok(Header("SUBJECT".into(), "café".into()))
        );
        assert!(parse("FROB").is_err());
        assert!(charset_supported("utf-8") && charset_supported("US-ASCII"));
        assert!(!charset_supported("ISO-8859-1") && !charset_supported("UTF"));
        assert!(parse("(SEEN").is_err());
    }
}
