//! What IMAP shows of a message body: ENVELOPE, BODYSTRUCTURE and BODY[section], built from
//! mail-parser's part tree and the raw bytes (sections are byte ranges of the stored message).

use crate::proto::command::{Section, SectionText};
use crate::proto::encode::{nstring, string};
use mail_parser::{Address, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// A parsed message.
pub struct Parsed<'a> {
    raw: &'a [u8],
    message: Option<Message<'a>>,
}

impl<'a> Parsed<'a> {
    /// Parses `raw` (never fails: unparseable mail is shown as a single text part).
    pub fn new(raw: &'a [u8]) -> Parsed<'a> {
        // mail-parser 0.11 panics on some nested multiparts ("Invalid part ID, could not find
        // multipart", found by fuzzing) and 1.x needs a newer rustc: such a message is shown as
        // unparseable rather than failing every FETCH and SEARCH that touches it.
        let message = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
            .ok()
            .flatten();
        Parsed { raw, message }
    }

    /// Byte offset where the top-level header ends (after the blank line).
    fn body_offset(&self) -> usize {
        match &self.message {
            Some(m) => (m.root_part().offset_body as usize).min(self.raw.len()),
            None => header_end(self.raw),
        }
    }

    /// The raw value of a top-level header field, unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_values(&self.raw[..self.body_offset()], name)
            .into_iter()
            .next()
    }

    /// The Date header as a unix timestamp.
    pub fn sent_date(&self) -> Option<i64> {
        self.message.as_ref()?.date().map(|d| d.to_timestamp())
    }

    /// Case-insensitive substring search in a header field (FROM/TO/.. use the raw value).
    pub fn header_contains(&self, field: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        header_values(&self.raw[..self.body_offset()], field)
            .iter()
            .any(|v| v.to_lowercase().contains(&needle))
    }

    /// Case-insensitive substring search in the body (decoded text parts and the raw text).
    pub fn body_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        if let Some(m) = &self.message
            && m.text_bodies().any(|p| {
                p.text_contents()
                    .is_some_and(|t| t.to_lowercase().contains(&needle))
            })
        {
            return true;
        }
        String::from_utf8_lossy(&self.raw[self.body_offset()..])
            .to_lowercase()
            .contains(&needle)
    }

    /// ENVELOPE (RFC 9051 §7.5.2).
    pub fn envelope(&self, out: &mut Vec<u8>) {
        envelope(out, &self.raw[..self.body_offset()], self.message.as_ref());
    }

    /// BODYSTRUCTURE (with extension data) or BODY (without).
    pub fn body_structure(&self, out: &mut Vec<u8>, extended: bool) {
        match &self.message {
            Some(m) => {
                let mut budget = Budget {
                    parts: MAX_PARTS_SHOWN,
                    out_limit: out.len() + 4 * self.raw.len() + STRUCTURE_SLACK,
                };
                structure(out, self.raw, m, 0, extended, 0, &mut budget)
            }
            None => {
                let size = self.raw.len() - self.body_offset();
                out.extend_from_slice(
                    format!("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" {size} {})", lines(&self.raw[self.body_offset()..])).as_bytes(),
                );
            }
        }
    }

    /// The bytes of a section (before any partial range).
    pub fn section(&self, section: &Section) -> Vec<u8> {
        let Some(m) = &self.message else {
            return self.unparsed_section(section);
        };
        let len = self.raw.len();
        let range = |a: u32, b: u32| {
            let (a, b) = ((a as usize).min(len), (b as usize).min(len));
            self.raw[a..b.max(a)].to_vec()
        };
        let Some(part) = part_at(m, &section.part) else {
            return Vec::new();
        };
        // HEADER, TEXT and HEADER.FIELDS address a message: the top level, or the message
        // attached as a message/rfc822 part (RFC 9051 §6.4.5).
        let message_root = if section.part.is_empty() {
            Some(m.root_part())
        } else if let PartType::Message(inner) = &part.body {
            Some(inner.root_part())
        } else {
            None
        };
        let header_of = |p: &MessagePart<'_>| range(p.offset_header, p.offset_body);
        match (&section.text, message_root) {
            (SectionText::Full, _) if section.part.is_empty() => self.raw.to_vec(),
            (SectionText::Full, _) => range(part.offset_body, part.offset_end),
            (SectionText::Mime, _) => header_of(part),
            (SectionText::Header, Some(root)) => header_of(root),
            (SectionText::Text, Some(root)) => range(root.offset_body, root.offset_end),
            (SectionText::Fields(names), Some(root)) => {
                filter_fields(&header_of(root), names, true)
            }
            (SectionText::FieldsNot(names), Some(root)) => {
                filter_fields(&header_of(root), names, false)
            }
            _ => Vec::new(),
        }
    }

    /// Sections of a message mail-parser could not parse: only the top level exists.
    fn unparsed_section(&self, section: &Section) -> Vec<u8> {
        let split = header_end(self.raw);
        let (header, text) = self.raw.split_at(split);
        match (&section.text, section.part.as_slice()) {
            (SectionText::Full, []) => self.raw.to_vec(),
            (SectionText::Full, [1]) | (SectionText::Text, []) => text.to_vec(),
            (SectionText::Header, []) => header.to_vec(),
            (SectionText::Fields(names), []) => filter_fields(header, names, true),
            (SectionText::FieldsNot(names), []) => filter_fields(header, names, false),
            _ => Vec::new(),
        }
    }
}

/// The part a section path names: numbers descend through multiparts, and through an attached
/// message/rfc822 into its parts; part 1 of a non-multipart body is that body itself. Offsets
/// of nested parts are absolute in the outer message, so ranges need no translation.
fn part_at<'m>(m: &'m Message<'_>, path: &[u32]) -> Option<&'m MessagePart<'m>> {
    let mut parts = &m.parts;
    let mut part = parts.first()?;
    for &n in path {
        if let PartType::Message(inner) = &part.body {
            parts = &inner.parts;
            part = parts.first()?;
        }
        part = match &part.body {
            PartType::Multipart(children) => {
                let id = *children.get((n as usize).checked_sub(1)?)?;
                parts.get(id as usize)?
            }
            _ if n == 1 => part,
            _ => return None,
        };
    }
    Some(part)
}

/// Offset just past the first blank line (end of a header block).
fn header_end(raw: &[u8]) -> usize {
    raw.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len())
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
fn header_values(header: &[u8], name: &str) -> Vec<String> {
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

fn addresses(out: &mut Vec<u8>, addr: Option<&Address<'_>>) {
    let Some(addr) = addr else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let mut items: Vec<Vec<u8>> = Vec::new();
    let one = |name: Option<&str>, email: Option<&str>| {
        let mut item = Vec::new();
        item.push(b'(');
        nstring(&mut item, name.map(str::as_bytes));
        item.extend_from_slice(b" NIL ");
        let (local, host) = match email.and_then(|e| e.rsplit_once('@')) {
            Some((l, h)) => (Some(l), Some(h)),
            None => (email, None),
        };
        nstring(&mut item, local.map(str::as_bytes));
        item.push(b' ');
        nstring(&mut item, host.map(str::as_bytes));
        item.push(b')');
        item
    };
    match addr {
        Address::List(list) => {
            for a in list {
                items.push(one(a.name(), a.address()));
            }
        }
        Address::Group(groups) => {
            for g in groups {
                // RFC 9051: a group is (NIL NIL "name" NIL) ... (NIL NIL NIL NIL).
                let mut start = b"(NIL NIL ".to_vec();
                nstring(&mut start, g.name.as_deref().map(str::as_bytes));
                start.extend_from_slice(b" NIL)");
                items.push(start);
                for a in &g.addresses {
                    items.push(one(a.name(), a.address()));
                }
                items.push(b"(NIL NIL NIL NIL)".to_vec());
            }
        }
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in items {
        out.extend_from_slice(&item);
    }
    out.push(b')');
}

/// A body parameter list, `("NAME" "value" ...)` or `NIL`.
fn attributes(out: &mut Vec<u8>, attrs: Option<&[mail_parser::Attribute<'_>]>) {
    match attrs {
        Some(attrs) if !attrs.is_empty() => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                string(out, a.name.to_uppercase().as_bytes());
                out.push(b' ');
                string(out, a.value.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

fn params(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    attributes(out, part.content_type().and_then(|ct| ct.attributes()));
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
    let from = m.and_then(|m| m.from());
    for addr in [
        from,
        m.and_then(|m| m.sender()).or(from),
        m.and_then(|m| m.reply_to()).or(from),
        m.and_then(|m| m.to()),
        m.and_then(|m| m.cc()),
        m.and_then(|m| m.bcc()),
    ] {
        out.push(b' ');
        addresses(out, addr);
    }
    out.push(b' ');
    nstring(out, h("In-Reply-To").as_deref().map(str::as_bytes));
    out.push(b' ');
    nstring(out, h("Message-ID").as_deref().map(str::as_bytes));
    out.push(b')');
}

/// Nesting (multiparts and attached messages) shown in BODYSTRUCTURE; deeper parts show as
/// one empty text part. Real mail nests a handful of levels; a crafted message thousands.
const MAX_NESTING: usize = 32;
/// Parts one BODYSTRUCTURE shows at most, and bytes it may take beyond four times the
/// message's size; past either, parts show as one empty text part. mail-parser can hand back a
/// part tree whose multiparts share children, which a walk would otherwise visit exponentially
/// often.
const MAX_PARTS_SHOWN: usize = 2_000;
const STRUCTURE_SLACK: usize = 256 * 1024;

/// What is left to a BODYSTRUCTURE walk.
struct Budget {
    parts: usize,
    /// The output length not to pass.
    out_limit: usize,
}

/// BODYSTRUCTURE of part `id` of `m`, `depth` levels down, showing at most `budget` more
/// parts; `raw` is the outermost message, which every part's offsets (nested ones included)
/// point into.
fn structure(
    out: &mut Vec<u8>,
    raw: &[u8],
    m: &Message<'_>,
    id: usize,
    extended: bool,
    depth: usize,
    budget: &mut Budget,
) {
    let Some(part) = m.parts.get(id) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    if depth > MAX_NESTING || budget.parts == 0 || out.len() > budget.out_limit {
        out.extend_from_slice(EMPTY_PART);
        return;
    }
    budget.parts -= 1;
    let ct = part.content_type();
    let subtype = ct
        .and_then(|c| c.subtype())
        .unwrap_or("plain")
        .to_uppercase();
    if let PartType::Multipart(children) = &part.body {
        out.push(b'(');
        if children.is_empty() {
            // RFC 9051's body-type-mpart needs one part at least; a multipart without any
            // (no opening boundary line) shows one empty text part, as Dovecot does.
            out.extend_from_slice(EMPTY_PART);
        }
        for (i, &child) in children.iter().enumerate() {
            // Out of budget, one child (the empty part) still makes a valid multipart.
            if i > 0 && (budget.parts == 0 || out.len() > budget.out_limit) {
                break;
            }
            structure(out, raw, m, child as usize, extended, depth + 1, budget);
        }
        out.push(b' ');
        string(out, subtype.as_bytes());
        if extended {
            out.push(b' ');
            params(out, part);
            out.extend_from_slice(b" NIL NIL NIL");
        }
        out.push(b')');
        return;
    }
    let ctype = ct.map(|c| c.ctype()).unwrap_or("text").to_uppercase();
    let (body_start, body_end) = (
        (part.offset_body as usize).min(raw.len()),
        (part.offset_end as usize).min(raw.len()),
    );
    let body = &raw[body_start.min(body_end)..body_end];
    out.push(b'(');
    string(out, ctype.as_bytes());
    out.push(b' ');
    string(out, subtype.as_bytes());
    out.push(b' ');
    if ct.is_none() {
        out.extend_from_slice(b"(\"CHARSET\" \"US-ASCII\")");
    } else {
        params(out, part);
    }
    out.push(b' ');
    nstring(out, part.content_id().map(str::as_bytes));
    out.push(b' ');
    nstring(out, part.content_description().map(str::as_bytes));
    out.push(b' ');
    let encoding = part
        .content_transfer_encoding()
        .unwrap_or("7bit")
        .to_uppercase();
    string(out, encoding.as_bytes());
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let PartType::Message(inner) = &part.body {
        // The attached message is already parsed (`inner`): its header block is the start of
        // the body. Parsing it again at every level cost time and memory quadratic in depth.
        out.push(b' ');
        envelope(out, &body[..header_end(body).min(body.len())], Some(inner));
        out.push(b' ');
        structure(out, raw, inner, 0, extended, depth + 1, budget);
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    } else if ctype == "TEXT" {
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL ");
        match part.content_disposition() {
            Some(d) => {
                out.push(b'(');
                string(out, d.ctype().to_uppercase().as_bytes());
                out.push(b' ');
                attributes(out, d.attributes());
                out.push(b')');
            }
            None => out.extend_from_slice(b"NIL"),
        }
        out.extend_from_slice(b" NIL NIL");
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIMPLE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: Hi\r\n there\r\nMessage-ID: <1@x>\r\n\r\nHello\r\nworld\r\n";

    fn text(section: Section) -> String {
        String::from_utf8(Parsed::new(SIMPLE).section(&section)).unwrap()
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
        let text =
            |part: Vec<u32>, text| String::from_utf8(p.section(&Section { part, text })).unwrap();
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
                    deepest <= 4 * (MAX_NESTING as i32 + 2),
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
}
