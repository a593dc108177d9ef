//! What IMAP shows of a message: ENVELOPE, BODYSTRUCTURE and BODY[section] from the part tree
//! of [`crate::parts`] (so a section is an exact byte range of the stored message, or of an
//! encoded attached message once decoded), and what SEARCH looks at, from mail-parser.

use crate::binary;
use crate::parts::{self, Kind, Part, Tree};
use crate::proto::command::{Section, SectionText};
use crate::proto::encode::{nstring, string};
use mail_parser::{Address, Message, MessageParser};
use std::borrow::Cow;
use std::sync::OnceLock;

/// A message, parsed as far as asked: the part tree for FETCH, mail-parser's decoded view for
/// SEARCH BODY/TEXT, each built on first use.
pub struct Parsed<'a> {
    raw: &'a [u8],
    /// Where the top-level header ends (after the blank line).
    body_offset: usize,
    /// The top-level header fields.
    head: OnceLock<Option<Message<'a>>>,
    /// The whole message as mail-parser decodes it.
    message: OnceLock<Option<Message<'a>>>,
    /// The part tree; `None` if building it failed (the message is then one text part).
    tree: OnceLock<Option<Tree<'a>>>,
}

/// mail-parser 0.11 panics on some input ("Invalid part ID, could not find multipart", found
/// by fuzzing) and 1.x needs a newer rustc: what it fails on is shown as unparsed rather than
/// failing every FETCH and SEARCH that touches the message.
fn guarded<T>(f: impl FnOnce() -> Option<T> + std::panic::UnwindSafe) -> Option<T> {
    std::panic::catch_unwind(f).ok().flatten()
}

impl<'a> Parsed<'a> {
    /// Wraps `raw` (never fails: unparseable mail is shown as a single text part).
    pub fn new(raw: &'a [u8]) -> Parsed<'a> {
        Parsed {
            raw,
            body_offset: parts::header_end(raw),
            head: OnceLock::new(),
            message: OnceLock::new(),
            tree: OnceLock::new(),
        }
    }

    fn head(&self) -> Option<&Message<'a>> {
        let header = &self.raw[..self.body_offset];
        self.head
            .get_or_init(|| guarded(|| MessageParser::default().parse_headers(header)))
            .as_ref()
    }

    fn message(&self) -> Option<&Message<'a>> {
        let raw = self.raw;
        self.message
            .get_or_init(|| guarded(|| MessageParser::default().parse(raw)))
            .as_ref()
    }

    fn tree(&self) -> Option<&Tree<'a>> {
        let raw = self.raw;
        self.tree
            .get_or_init(|| guarded(|| Some(Tree::new(raw))))
            .as_ref()
    }

    /// The raw value of a top-level header field, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_values(&self.raw[..self.body_offset], name)
            .into_iter()
            .next()
    }

    /// The Date header as a unix timestamp.
    pub fn sent_date(&self) -> Option<i64> {
        self.head()?.date().map(|d| d.to_timestamp())
    }

    /// Case-insensitive substring search in a header field (FROM/TO/.. use the raw value).
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        header_values(&self.raw[..self.body_offset], field)
            .iter()
            .any(|v| v.to_lowercase().contains(&needle))
    }

    /// Case-insensitive substring search in the body (decoded text parts and the raw text).
    pub fn body_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        if let Some(m) = self.message()
            && m.text_bodies().any(|p| {
                p.text_contents()
                    .is_some_and(|t| t.to_lowercase().contains(&needle))
            })
        {
            return true;
        }
        String::from_utf8_lossy(&self.raw[self.body_offset..])
            .to_lowercase()
            .contains(&needle)
    }

    /// ENVELOPE (RFC 9051 §7.5.2).
    pub fn envelope(&self, out: &mut Vec<u8>) {
        envelope(out, &self.raw[..self.body_offset], self.head());
    }

    /// BODYSTRUCTURE (with extension data) or BODY (without).
    pub fn body_structure(&self, out: &mut Vec<u8>, extended: bool) {
        match self.tree() {
            Some(tree) => {
                let mut budget = Budget {
                    parts: MAX_PARTS_SHOWN,
                    out_limit: out.len() + 4 * self.raw.len() + STRUCTURE_SLACK,
                };
                structure(out, tree, &tree.root, extended, 0, &mut budget)
            }
            None => {
                let body = &self.raw[self.body_offset..];
                out.extend_from_slice(
                    format!(
                        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {} {})",
                        body.len(),
                        lines(body)
                    )
                    .as_bytes(),
                );
            }
        }
    }

    /// The bytes of a section (before any partial range). A part that does not exist, or a
    /// HEADER/TEXT of a part that is not a message, is empty (as Dovecot answers).
    pub fn section(&self, section: &Section) -> Cow<'_, [u8]> {
        let Some(tree) = self.tree() else {
            return self.unparsed_section(section);
        };
        if section.part.is_empty() {
            return message_section(tree, &tree.root, &section.text, self.raw);
        }
        let Some(part) = tree.find(&section.part) else {
            return Cow::Borrowed(&[]);
        };
        match (&section.text, &part.kind) {
            (SectionText::Full, _) => Cow::Borrowed(tree.body(part)),
            (SectionText::Mime, _) => Cow::Borrowed(tree.header(part)),
            (text, Kind::Message(inner)) => message_section(tree, inner, text, &[]),
            _ => Cow::Borrowed(&[]),
        }
    }

    /// BINARY[part] (RFC 3516): the part's content with its transfer encoding undone (the
    /// whole message, header included, for an empty path); empty for a part that does not
    /// exist; `None` when an encoding is unknown (`[UNKNOWN-CTE]`).
    pub fn binary(&self, part: &[u32]) -> Option<Cow<'_, [u8]>> {
        let Some(tree) = self.tree() else {
            return Some(Cow::Borrowed(if part.is_empty() { self.raw } else { &[] }));
        };
        match tree.find(part) {
            Some(found) => binary::decoded(tree, found, part.is_empty()),
            None => Some(Cow::Borrowed(&[])),
        }
    }

    /// Sections of a message whose part tree could not be built: only the top level exists.
    fn unparsed_section(&self, section: &Section) -> Cow<'_, [u8]> {
        let (header, text) = self.raw.split_at(self.body_offset);
        Cow::Borrowed(match (&section.text, section.part.as_slice()) {
            (SectionText::Full, []) => self.raw,
            (SectionText::Full, [1]) | (SectionText::Text, []) => text,
            (SectionText::Header, []) => header,
            (SectionText::Fields(names), []) => {
                return Cow::Owned(filter_fields(header, names, true));
            }
            (SectionText::FieldsNot(names), []) => {
                return Cow::Owned(filter_fields(header, names, false));
            }
            _ => &[],
        })
    }
}

/// HEADER, TEXT, HEADER.FIELDS[.NOT] or (the whole message) `whole` of `message`.
fn message_section<'t>(
    tree: &'t Tree<'_>,
    message: &Part,
    text: &SectionText,
    whole: &'t [u8],
) -> Cow<'t, [u8]> {
    let header = tree.header(message);
    match text {
        SectionText::Full => Cow::Borrowed(whole),
        SectionText::Header => Cow::Borrowed(header),
        SectionText::Text => Cow::Borrowed(tree.body(message)),
        SectionText::Fields(names) => Cow::Owned(filter_fields(header, names, true)),
        SectionText::FieldsNot(names) => Cow::Owned(filter_fields(header, names, false)),
        SectionText::Mime => Cow::Borrowed(&[]),
    }
}

/// Raw header fields: (name, full field text including continuation lines and CRLF).
fn fields(header: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let line_end = header[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(header.len());
        let line = &header[i..line_end];
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation && i > start {
            push_field(&mut out, &header[start..i]);
            start = i;
        }
        i = line_end;
    }
    if start < header.len() {
        push_field(&mut out, &header[start..]);
    }
    out
}

fn push_field<'h>(out: &mut Vec<(String, &'h [u8])>, field: &'h [u8]) {
    if let Some(colon) = field.iter().position(|&b| b == b':') {
        let name = String::from_utf8_lossy(&field[..colon]).trim().to_string();
        if !name.is_empty() {
            out.push((name, field));
        }
    }
}

/// Unfolded values of every `name` field in a header block.
pub(crate) fn header_values(header: &[u8], name: &str) -> Vec<String> {
    fields(header)
        .into_iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, f)| {
            // The value starts after the field's colon. Not at the name's length: the name
            // was trimmed and made UTF-8, so `Subject :` or an invalid byte moves it, and a
            // name longer than its bytes sliced past the end (found by fuzzing).
            let colon = f.iter().position(|&b| b == b':').unwrap_or(f.len());
            let value = String::from_utf8_lossy(&f[(colon + 1).min(f.len())..]).into_owned();
            value
                .replace("\r\n", "")
                .replace('\n', "")
                .trim()
                .to_string()
        })
        .collect()
}

/// HEADER.FIELDS / HEADER.FIELDS.NOT, ending with the blank line.
fn filter_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, field) in fields(header) {
        if field == b"\r\n" || field == b"\n" {
            continue;
        }
        if names.iter().any(|n| n.eq_ignore_ascii_case(&name)) == keep {
            out.extend_from_slice(field);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The ENVELOPE address structures of an address field (RFC 9051 §7.5.2): groups between a
/// start `(NIL NIL "name" NIL)` and an end `(NIL NIL NIL NIL)`; entries without an address (a
/// lone comment, as in `group: (comment) ;`) are not addresses and are left out.
fn address_items(addr: Option<&Address<'_>>) -> Vec<Vec<u8>> {
    let mut items: Vec<Vec<u8>> = Vec::new();
    let Some(addr) = addr else {
        return items;
    };
    let one = |a: &mail_parser::Addr<'_>| {
        let email = a.address().map(str::trim).filter(|e| !e.is_empty())?;
        // An obsolete source route, `<@route:user@host>`, is the address's adl.
        let (route, email) = match email.split_once(':') {
            Some((route, rest)) if route.starts_with('@') => (Some(route), rest),
            _ => (None, email),
        };
        let (local, host) = match email.rsplit_once('@') {
            Some((l, h)) => (l, Some(h)),
            None => (email, None),
        };
        let mut item = vec![b'('];
        nstring(&mut item, a.name().map(str::as_bytes));
        item.push(b' ');
        nstring(&mut item, route.map(str::as_bytes));
        item.push(b' ');
        string(&mut item, local.as_bytes());
        item.push(b' ');
        nstring(&mut item, host.map(str::as_bytes));
        item.push(b')');
        Some(item)
    };
    match addr {
        Address::List(list) => items.extend(list.iter().filter_map(one)),
        Address::Group(groups) => {
            for g in groups {
                let Some(name) = g.name.as_deref() else {
                    // Addresses outside any group, in a field that also has groups.
                    items.extend(g.addresses.iter().filter_map(one));
                    continue;
                };
                let mut start = b"(NIL NIL ".to_vec();
                string(&mut start, name.as_bytes());
                start.extend_from_slice(b" NIL)");
                items.push(start);
                items.extend(g.addresses.iter().filter_map(one));
                items.push(b"(NIL NIL NIL NIL)".to_vec());
            }
        }
    }
    items
}

/// An address list, `NIL` when empty.
fn addresses(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in items {
        out.extend_from_slice(item);
    }
    out.push(b')');
}

/// The part an empty multipart shows in BODYSTRUCTURE.
const EMPTY_PART: &[u8] = b"(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0)";

/// ENVELOPE of a message whose header block is `header`, with its addresses from `m`.
fn envelope(out: &mut Vec<u8>, header: &[u8], m: Option<&Message<'_>>) {
    let h = |name: &str| header_values(header, name).into_iter().next();
    out.push(b'(');
    nstring(out, h("Date").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, h("Subject").as_deref().map(str::as_bytes));
    let from = address_items(m.and_then(|m| m.from()));
    // Sender and Reply-To default to From (RFC 9051 §7.5.2).
    let or_from = |items: Vec<Vec<u8>>| {
        if items.is_empty() {
            from.clone()
        } else {
            items
        }
    };
    for items in [
        from.clone(),
        or_from(address_items(m.and_then(|m| m.sender()))),
        or_from(address_items(m.and_then(|m| m.reply_to()))),
        address_items(m.and_then(|m| m.to())),
        address_items(m.and_then(|m| m.cc())),
        address_items(m.and_then(|m| m.bcc())),
    ] {
        out.push(b' ');
        addresses(out, &items);
    }
    out.push(b' ');
    nstring(out, h("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, h("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

/// Parts one BODYSTRUCTURE shows at most, and bytes it may take beyond four times the
/// message's size; past either, parts show as one empty text part. (The part tree is bounded
/// too, by [`parts::MAX_NESTING`] and [`parts::MAX_PARTS`].)
const MAX_PARTS_SHOWN: usize = 2_000;
const STRUCTURE_SLACK: usize = 256 * 1024;

/// What is left to a BODYSTRUCTURE walk.
struct Budget {
    parts: usize,
    /// The output length not to pass.
    out_limit: usize,
}

/// A string shown uppercase, as the examples of RFC 9051 show types and encodings.
fn upper(out: &mut Vec<u8>, text: &str) {
    string(out, text.to_ascii_uppercase().as_bytes());
}

/// BODYSTRUCTURE of `part`, `depth` levels down, showing at most `budget` more parts.
fn structure(
    out: &mut Vec<u8>,
    tree: &Tree<'_>,
    part: &Part,
    extended: bool,
    depth: usize,
    budget: &mut Budget,
) {
    if depth > parts::MAX_NESTING + 1 || budget.parts == 0 || out.len() > budget.out_limit {
        out.extend_from_slice(EMPTY_PART);
        return;
    }
    budget.parts -= 1;
    let c = &part.content;
    if let Kind::Multipart(children) = &part.kind {
        out.push(b'(');
        if children.is_empty() {
            // RFC 9051's body-type-mpart needs one part at least; a multipart without any
            // (no boundary, or no boundary line) shows one empty text part, as Dovecot does.
            out.extend_from_slice(EMPTY_PART);
        }
        for (i, child) in children.iter().enumerate() {
            // Out of budget, one child (the empty part) still makes a valid multipart.
            if i > 0 && (budget.parts == 0 || out.len() > budget.out_limit) {
                break;
            }
            structure(out, tree, child, extended, depth + 1, budget);
        }
        out.push(b' ');
        upper(out, &part.media.1);
        if extended {
            out.push(b' ');
            params(out, &c.params);
            extension(out, c);
        }
        out.push(b')');
        return;
    }
    // A multipart or message the limits kept from being parsed is shown as opaque data
    // (a MESSAGE/RFC822 needs an envelope and a structure), as Dovecot does.
    let (ctype, subtype) = match &part.kind {
        Kind::Message(_) => ("message", "rfc822"),
        _ if part.truncated() => ("application", "octet-stream"),
        _ => (part.media.0.as_str(), part.media.1.as_str()),
    };
    let body = tree.body(part);
    out.push(b'(');
    upper(out, ctype);
    out.push(b' ');
    upper(out, subtype);
    out.push(b' ');
    if ctype == "text"
        && !c
            .params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("charset"))
    {
        // RFC 2045 §5.2: text is US-ASCII unless it says otherwise.
        let mut with_charset = c.params.clone();
        with_charset.push(("charset".into(), "US-ASCII".into()));
        params(out, &with_charset);
    } else {
        params(out, &c.params);
    }
    out.push(b' ');
    nstring(out, c.id.as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, c.description.as_deref().map(str::as_bytes));
    out.push(b' ');
    upper(out, c.encoding.as_deref().unwrap_or("7bit"));
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let Kind::Message(inner) = &part.kind {
        let header = tree.header(inner);
        out.push(b' ');
        envelope(
            out,
            header,
            guarded(|| MessageParser::default().parse_headers(header)).as_ref(),
        );
        out.push(b' ');
        structure(out, tree, inner, extended, depth + 1, budget);
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    } else if ctype == "text" {
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    }
    if extended {
        out.push(b' ');
        nstring(out, c.md5.as_deref().map(str::as_bytes));
        extension(out, c);
    }
    out.push(b')');
}

/// A parameter list, `("NAME" "value" ...)` or `NIL`.
fn params(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        upper(out, name);
        out.push(b' ');
        string(out, value.as_bytes());
    }
    out.push(b')');
}

/// The extension data every part ends with: disposition, language and location.
fn extension(out: &mut Vec<u8>, c: &parts::Content) {
    out.push(b' ');
    match &c.disposition {
        Some((kind, attrs)) => {
            out.push(b'(');
            upper(out, kind);
            out.push(b' ');
            params(out, attrs);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match c.language.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => string(out, one.as_bytes()),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, l.as_bytes());
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    nstring(out, c.location.as_deref().map(str::as_bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Hi\r\n there\r\nMessage-ID: <1@x>\r\n\r\nHello\r\nworld\r\n";

    fn text(section: Section) -> String {
        String::from_utf8(Parsed::new(SIMPLE).section(&section).into_owned()).unwrap()
    }

    #[test]
    fn sections() {
        let s = |part: Vec<u32>, text| Section { part, text };
        assert_eq!(text(s(vec![], SectionText::Text)), "Hello\r\nworld\r\n");
        assert!(text(s(vec![], SectionText::Header)).ends_with("<1@x>\r\n\r\n"));
        assert_eq!(
            text(s(vec![], SectionText::Fields(vec!["subject".into()]))),
            "Subject: Hi\r\n there\r\n\r\n"
        );
        assert_eq!(text(s(vec![1], SectionText::Full)), "Hello\r\nworld\r\n");
    }

    #[test]
    fn envelope_and_structure() {
        let p = Parsed::new(SIMPLE);
        let mut env = Vec::new();
        p.envelope(&mut env);
        let env = String::from_utf8(env).unwrap();
        assert!(env.contains("\"Hi there\""), "{env}");
        assert!(
            env.contains("((\"Alice\" NIL \"alice\" \"example.org\"))"),
            "{env}"
        );
        assert!(env.ends_with("NIL \"<1@x>\")"), "{env}");
        let mut bs = Vec::new();
        p.body_structure(&mut bs, true);
        let bs = String::from_utf8(bs).unwrap();
        assert!(bs.starts_with("(\"TEXT\" \"PLAIN\""), "{bs}");
    }

    #[test]
    fn parts_of_an_attached_message() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--c--\r\n\r\n--b--\r\n";
        let p = Parsed::new(raw);
        let text = |part: Vec<u32>, text| {
            String::from_utf8(p.section(&Section { part, text }).into_owned()).unwrap()
        };
        assert!(text(vec![2], SectionText::Header).starts_with("Subject: inner\r\n"));
        assert_eq!(
            text(vec![2], SectionText::Fields(vec!["subject".into()])),
            "Subject: inner\r\n\r\n"
        );
        assert!(text(vec![2], SectionText::Mime).starts_with("Content-Type: message/rfc822"));
        assert_eq!(text(vec![2, 1], SectionText::Full), "inner text");
        assert_eq!(text(vec![3], SectionText::Full), "");
        let mut bs = Vec::new();
        p.body_structure(&mut bs, false);
        let bs = String::from_utf8(bs).unwrap();
        assert!(bs.contains("\"MESSAGE\" \"RFC822\""), "{bs}");
        assert!(
            bs.contains("\"inner\""),
            "the attached message's envelope: {bs}"
        );
        assert!(
            bs.contains("\"ALTERNATIVE\")"),
            "the attached message's structure: {bs}"
        );
    }

    /// Found by fuzzing (fuzz/regressions/mime/empty-multipart): `( "MIXED")` is not a body.
    #[test]
    fn an_empty_multipart_shows_one_empty_part() {
        let raw = b"Content-Type: multipart/mixed; boundary=Z\r\n\r\nno part here\r\n--Z--\r\n";
        for extended in [false, true] {
            let mut bs = Vec::new();
            Parsed::new(raw).body_structure(&mut bs, extended);
            let bs = String::from_utf8(bs).unwrap();
            assert!(
                bs.starts_with("((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0) \"MIXED\""),
                "{bs}"
            );
        }
    }

    /// fuzz/regressions/mime/invalid-field-name: a field name that is not UTF-8 (SEARCH HEADER
    /// can name it) and one with a space before its colon.
    #[test]
    fn field_values_start_after_the_colon() {
        let p = Parsed::new(b"Subject : hello\r\n\xff:");
        assert_eq!(p.header("Subject").as_deref(), Some("hello"));
        assert_eq!(p.header("\u{fffd}").as_deref(), Some(""));
        assert!(!p.header_contains("\u{fffd}", "x"));
    }

    /// fuzz/regressions/mime/mail-parser-invalid-part-id: mail-parser panics on the message
    /// attached to it, which is then shown as unparsed text.
    #[test]
    fn a_message_mail_parser_panics_on_is_shown_unparsed() {
        let raw = include_bytes!("../../../fuzz/regressions/mime/mail-parser-invalid-part-id");
        let mut bs = Vec::new();
        Parsed::new(raw).body_structure(&mut bs, true);
        let bs = String::from_utf8_lossy(&bs);
        assert!(bs.starts_with("((\"MESSAGE\" \"RFC822\""), "{bs}");
    }

    /// Found by fuzzing: every attached message was parsed again at each level (time and
    /// memory quadratic in depth, over 2 GB for 478 bytes), BODYSTRUCTURE recursed once per
    /// level, and a part tree with shared children was walked exponentially often. Now nothing
    /// is parsed twice and the walk is bounded in depth, parts and output.
    #[test]
    fn deeply_nested_messages_cost_little_and_show_a_bounded_structure() {
        for raw in [
            &include_bytes!("../../../fuzz/regressions/mime/nested-rfc822-478-bytes")[..],
            &include_bytes!("../../../fuzz/regressions/mime/nested-rfc822-2000-levels")[..],
        ] {
            let p = Parsed::new(raw);
            for extended in [false, true] {
                let mut bs = Vec::new();
                p.body_structure(&mut bs, extended);
                let text = String::from_utf8_lossy(&bs);
                assert!(text.starts_with('(') && text.ends_with(')'), "{text}");
                assert!(bs.len() < 400_000, "{} bytes", bs.len());
                // Parenthesis depth outside quoted strings: a few per nesting level.
                let (mut depth, mut deepest, mut quoted, mut escaped) = (0i32, 0, false, false);
                for &b in &bs {
                    match (quoted, escaped, b) {
                        (true, false, b'\\') => escaped = true,
                        (true, _, _) if escaped => escaped = false,
                        (_, _, b'"') => quoted = !quoted,
                        (false, _, b'(') => depth += 1,
                        (false, _, b')') => depth -= 1,
                        _ => {}
                    }
                    deepest = deepest.max(depth);
                }
                assert!(
                    deepest <= 4 * (parts::MAX_NESTING as i32 + 2),
                    "nested {deepest} deep"
                );
            }
        }
    }

    #[test]
    fn multipart_structure_and_parts() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n";
        let p = Parsed::new(raw);
        let mut bs = Vec::new();
        p.body_structure(&mut bs, false);
        let bs = String::from_utf8(bs).unwrap();
        assert!(
            bs.contains("\"HTML\"") && bs.ends_with(" \"MIXED\")"),
            "{bs}"
        );
        let two = p.section(&Section {
            part: vec![2],
            text: SectionText::Full,
        });
        assert!(String::from_utf8_lossy(&two).starts_with("<p>two</p>"));
    }

    /// The section `spec` (`1.2.HEADER`, `TEXT`, `2`, ...) of `raw`, as text.
    fn section_of(raw: &[u8], spec: &str) -> String {
        let mut part = Vec::new();
        let mut text = SectionText::Full;
        for word in spec.split('.').filter(|w| !w.is_empty()) {
            match word.parse() {
                Ok(n) => part.push(n),
                Err(_) => {
                    text = match word {
                        "HEADER" => SectionText::Header,
                        "TEXT" => SectionText::Text,
                        "MIME" => SectionText::Mime,
                        fields => {
                            SectionText::Fields(fields.split(' ').map(str::to_string).collect())
                        }
                    }
                }
            }
        }
        let bytes = Parsed::new(raw)
            .section(&Section { part, text })
            .into_owned();
        String::from_utf8(bytes).unwrap()
    }

    fn structure_of(raw: &[u8], extended: bool) -> String {
        let mut out = Vec::new();
        Parsed::new(raw).body_structure(&mut out, extended);
        String::from_utf8(out).unwrap()
    }

    fn envelope_of(raw: &[u8]) -> String {
        let mut out = Vec::new();
        Parsed::new(raw).envelope(&mut out);
        String::from_utf8(out).unwrap()
    }

    const NESTED: &[u8] = b"From: outer@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Description: attached\r\n\r\nFrom: Inner <inner@example.org>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--c\r\nContent-Type: message/rfc822\r\n\r\nSubject: deepest\r\n\r\ndeep body\r\n--c--\r\n\r\n--b--\r\n";

    /// Each attached message has its own HEADER, TEXT, MIME and parts, at any depth.
    #[test]
    fn sections_of_nested_messages() {
        assert_eq!(
            section_of(NESTED, "2.MIME"),
            "Content-Type: message/rfc822\r\nContent-Description: attached\r\n\r\n"
        );
        assert_eq!(
            section_of(NESTED, "2.HEADER"),
            "From: Inner <inner@example.org>\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
        );
        assert_eq!(section_of(NESTED, "2.Subject"), "Subject: inner\r\n\r\n");
        assert!(section_of(NESTED, "2.TEXT").starts_with("--c\r\n"));
        assert!(section_of(NESTED, "2.TEXT").ends_with("--c--\r\n"));
        assert!(section_of(NESTED, "2").starts_with("From: Inner"));
        assert_eq!(section_of(NESTED, "2.1"), "inner text");
        assert_eq!(
            section_of(NESTED, "2.1.MIME"),
            "Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(section_of(NESTED, "2.2.HEADER"), "Subject: deepest\r\n\r\n");
        assert_eq!(section_of(NESTED, "2.2.TEXT"), "deep body");
        assert_eq!(section_of(NESTED, "2.2.1"), "deep body");
        // HEADER and TEXT only exist for messages; missing parts are empty.
        assert_eq!(section_of(NESTED, "1.HEADER"), "");
        assert_eq!(section_of(NESTED, "1.TEXT"), "");
        assert_eq!(section_of(NESTED, "3"), "");
        assert_eq!(section_of(NESTED, "2.3"), "");
        assert_eq!(section_of(NESTED, "1.1"), "");
        let bs = structure_of(NESTED, true);
        assert!(
            bs.contains("\"MESSAGE\" \"RFC822\" NIL NIL \"attached\" \"7BIT\""),
            "{bs}"
        );
        assert!(
            bs.contains("((\"Inner\" NIL \"inner\" \"example.org\"))"),
            "{bs}"
        );
        assert!(bs.contains("(NIL \"deepest\" NIL"), "{bs}");
    }

    /// A message/rfc822 part sent base64 or quoted-printable encoded (RFC 2046 forbids it, some
    /// mailers do it): its sections are those of the decoded message, with CRLF line endings.
    #[test]
    fn sections_of_encoded_attached_messages() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaW5uZXIKQ29udGVudC1UeXBlOiB0ZXh0L3BsYWluCgpib2R5Cg==\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSubject: caf=C3=A9\r\n\r\nlong=\r\n line\r\n--b--\r\n";
        assert_eq!(
            section_of(raw, "1"),
            "U3ViamVjdDogaW5uZXIKQ29udGVudC1UeXBlOiB0ZXh0L3BsYWluCgpib2R5Cg=="
        );
        assert_eq!(
            section_of(raw, "1.HEADER"),
            "Subject: inner\r\nContent-Type: text/plain\r\n\r\n"
        );
        assert_eq!(section_of(raw, "1.TEXT"), "body\r\n");
        assert_eq!(section_of(raw, "1.1"), "body\r\n");
        assert_eq!(section_of(raw, "1.Subject"), "Subject: inner\r\n\r\n");
        assert_eq!(section_of(raw, "2.HEADER"), "Subject: caf\u{e9}\r\n\r\n");
        assert_eq!(section_of(raw, "2.TEXT"), "long line");
        let bs = structure_of(raw, false);
        assert!(
            bs.contains("\"BASE64\" 64 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 6 1) 0)"),
            "{bs}"
        );
    }

    /// RFC 9051 §7.5.2: a group is `(NIL NIL "name" NIL)`, its members, `(NIL NIL NIL NIL)`.
    #[test]
    fn envelope_groups_and_routes() {
        let raw = b"From: user@domain (Real Name)\r\nTo: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nCc: group:;, group2: (foo) ;\r\nBcc: <@route:user@domain>\r\n\r\nbody\r\n";
        let env = envelope_of(raw);
        assert!(
            env.contains(" ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(NIL NIL \"g2\" \"d2.org\")(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) ((NIL \"@route\" \"user\" \"domain\")) NIL NIL)"),
            "{env}"
        );
        // Sender and Reply-To default to From.
        assert!(
            env.contains("((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\"))"),
            "{env}"
        );
        // Addresses outside any group, next to a group.
        let env = envelope_of(b"To: a@b.c, team: d@e.f;\r\n\r\n");
        assert!(
            env.contains("((NIL NIL \"a\" \"b.c\")(NIL NIL \"team\" NIL)(NIL NIL \"d\" \"e.f\")(NIL NIL NIL NIL))"),
            "{env}"
        );
    }

    /// Sizes and line counts are those of the bytes served; text without a charset is US-ASCII.
    #[test]
    fn structure_sizes_match_the_sections() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\nContent-ID: <x@y>\r\nContent-Language: en, fr\r\nContent-Disposition: inline; filename=a.html\r\n\r\n<p>\r\nhi</p>\r\n--b--\r\n";
        assert_eq!(section_of(raw, "1"), "<p>\r\nhi</p>");
        let bs = structure_of(raw, true);
        assert_eq!(
            bs,
            "((\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") \"<x@y>\" NIL \"7BIT\" 11 1 NIL (\"INLINE\" (\"FILENAME\" \"a.html\")) (\"en\" \"fr\") NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"
        );
    }
}
