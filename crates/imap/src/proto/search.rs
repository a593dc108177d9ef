//! SEARCH keys (RFC 9051 §6.4.4) and their parser, and the RETURN options of an extended
//! SEARCH or SORT (RFC 4731, RFC 5267, RFC 5182).

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

impl SearchKey {
    /// Whether a MODSEQ key is part of this (RFC 7162 §3.1.5: the result then names the
    /// highest MODSEQ of the messages it returns).
    pub fn has_modseq(&self) -> bool {
        match self {
            SearchKey::ModSeq(_) => true,
            SearchKey::Not(k) => k.has_modseq(),
            SearchKey::Or(a, b) => a.has_modseq() || b.has_modseq(),
            SearchKey::And(all) => all.iter().any(SearchKey::has_modseq),
            _ => false,
        }
    }

    /// Replaces `$` (as a sequence set or a UID set) by the saved UIDs (RFC 5182 §2.1).
    pub fn resolve_saved(&mut self, saved: &[u32]) {
        match self {
            SearchKey::Seq(set) | SearchKey::Uid(set) if set.is_saved() => {
                *self = SearchKey::Uid(SeqSet::of(saved));
            }
            SearchKey::Not(k) => k.resolve_saved(saved),
            SearchKey::Or(a, b) => {
                a.resolve_saved(saved);
                b.resolve_saved(saved);
            }
            SearchKey::And(all) => all.iter_mut().for_each(|k| k.resolve_saved(saved)),
            _ => {}
        }
    }

    /// Whether `$` appears in this.
    pub fn uses_saved(&self) -> bool {
        match self {
            SearchKey::Seq(set) | SearchKey::Uid(set) => set.is_saved(),
            SearchKey::Not(k) => k.uses_saved(),
            SearchKey::Or(a, b) => a.uses_saved() || b.uses_saved(),
            SearchKey::And(all) => all.iter().any(SearchKey::uses_saved),
            _ => false,
        }
    }
}

/// What an extended SEARCH or SORT returns: `RETURN (MIN MAX COUNT ALL SAVE)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    /// MIN: the lowest number (for SORT, the first in sort order).
    pub min: bool,
    /// MAX: the highest number (for SORT, the last).
    pub max: bool,
    /// COUNT: how many matched.
    pub count: bool,
    /// ALL: every match, as a set.
    pub all: bool,
    /// SAVE (RFC 5182): keep the result for `$`.
    pub save: bool,
}

impl SearchReturn {
    /// Whether an ESEARCH response is sent: not when SAVE is the only option (RFC 5182 §2.1).
    pub fn responds(&self) -> bool {
        self.min || self.max || self.count || self.all
    }

    /// Whether SAVE keeps only the MIN and/or MAX (RFC 5182 §2.1: when neither ALL nor
    /// COUNT is asked for).
    pub fn saves_extremes(&self) -> bool {
        (self.min || self.max) && !(self.all || self.count)
    }
}

/// Parses `RETURN (...)` options, the word RETURN already read: `()` means `(ALL)`.
pub fn return_options(l: &mut Lexer<'_>) -> Parsed<SearchReturn> {
    l.space()?;
    let mut ret = SearchReturn::default();
    for option in l.list(|l| l.atom())? {
        match option.to_ascii_uppercase().as_str() {
            "MIN" => ret.min = true,
            "MAX" => ret.max = true,
            "COUNT" => ret.count = true,
            "ALL" => ret.all = true,
            "SAVE" => ret.save = true,
            _ => return Err(ParseError("unknown RETURN option")),
        }
    }
    if !ret.responds() && !ret.save {
        ret.all = true;
    }
    Ok(ret)
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
    if l.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
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
            // An optional entry name and type (RFC 7162 §3.1.5): flags' MODSEQs are not
            // kept apart, so the message's MODSEQ stands for every entry.
            if l.peek() == Some(b'"') {
                l.quoted()?;
                l.space()?;
                let kind = l.atom()?.to_ascii_lowercase();
                if !matches!(kind.as_str(), "priv" | "shared" | "all") {
                    return Err(ParseError("bad MODSEQ entry type"));
                }
                l.space()?;
            }
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
        assert_eq!(parse("MODSEQ \"/flags/\\\\seen\" all 5"), Ok(ModSeq(5)));
        assert!(parse("MODSEQ \"/flags/x\" any 5").is_err());
        assert_eq!(parse("$"), Ok(Seq(SeqSet::saved())));
    }

    #[test]
    fn saved_result_and_modseq_in_keys() {
        let mut k = parse("OR $ UID $").unwrap();
        assert!(k.uses_saved() && !k.has_modseq());
        k.resolve_saved(&[4, 5, 9]);
        let uids = SearchKey::Uid(SeqSet::of(&[4, 5, 9]));
        assert_eq!(k, SearchKey::Or(Box::new(uids.clone()), Box::new(uids)));
        assert!(!k.uses_saved());
        assert!(parse("NOT (SEEN MODSEQ 3)").unwrap().has_modseq());
    }

    #[test]
    fn return_options_parse() {
        let ret = |s: &str| return_options(&mut Lexer::new(s.as_bytes()));
        let all = SearchReturn {
            all: true,
            ..SearchReturn::default()
        };
        assert_eq!(ret(" ()"), Ok(all));
        assert_eq!(ret(" (all)"), Ok(all));
        let r = ret(" (MIN max Count SAVE)").unwrap();
        assert!(r.min && r.max && r.count && r.save && !r.all);
        let save = ret(" (SAVE)").unwrap();
        assert!(save.save && !save.responds());
        assert!(ret(" (PARTIAL 1:5)").is_err());
        assert!(ret(" (MIN MAX SAVE)").unwrap().saves_extremes());
        assert!(!ret(" (MIN COUNT SAVE)").unwrap().saves_extremes());
    }
}
