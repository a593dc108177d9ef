//! The MIME part tree of a message as IMAP numbers its parts (RFC 9051 §6.4.5): where each
//! part's header and body are, found from the bytes themselves, so that every section is an
//! exact byte range of the message (or of the decoded copy of an encoded attached message).
//!
//! Boundaries are found as Dovecot finds them: a line starting with `--` and the boundary of
//! any enclosing multipart (the innermost, longest match wins), the line break before it
//! belonging to the boundary; a part's header ends at its blank line or at a boundary.

use crate::cte::{self, Encoding};
use crate::mime::header_values;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders};
use std::ops::Range;

/// Nesting (multiparts and attached messages) parsed; deeper ones are single parts. Real mail
/// nests a handful of levels; a crafted message thousands.
pub const MAX_NESTING: usize = 32;
/// Parts parsed in one message; past it, multiparts and messages are single parts and the
/// parts of a multipart not reached are skipped.
pub const MAX_PARTS: usize = 2_000;

/// A message's parts.
pub struct Tree<'a> {
    raw: &'a [u8],
    /// Decoded encoded attached messages: `Part::buf` n > 0 is `decoded[n - 1]`.
    decoded: Vec<Vec<u8>>,
    /// The message itself: its header, body and parts.
    pub root: Part,
}

/// One part: a message (the root, or an attached one) or a MIME part.
#[derive(Debug)]
pub struct Part {
    /// The buffer the ranges are in: 0 for the message, else a decoded attached message.
    pub buf: usize,
    /// The header block, with the blank line ending it (if any).
    pub header: Range<usize>,
    /// The body.
    pub body: Range<usize>,
    /// The Content-* fields.
    pub content: Content,
    /// Type and subtype, lowercase, defaults applied (text/plain, or message/rfc822 in a
    /// multipart/digest).
    pub media: (String, String),
    /// What the body holds.
    pub kind: Kind,
}

/// What a part's body holds.
#[derive(Debug)]
pub enum Kind {
    /// Content (also a multipart or message the limits kept from being parsed: see
    /// [`Part::truncated`]).
    Single,
    /// The parts of a multipart (none when it has no boundary parameter).
    Multipart(Vec<Part>),
    /// The message a message/rfc822 part holds.
    Message(Box<Part>),
}

/// The Content-* header fields of a part, as BODYSTRUCTURE shows them.
#[derive(Debug, Default)]
pub struct Content {
    /// Type and subtype (lowercase) of a usable Content-Type.
    pub media_type: Option<(String, String)>,
    /// Content-Type parameters.
    pub params: Vec<(String, String)>,
    /// Content-Transfer-Encoding.
    pub encoding: Option<String>,
    /// Content-ID.
    pub id: Option<String>,
    /// Content-Description.
    pub description: Option<String>,
    /// Content-MD5.
    pub md5: Option<String>,
    /// Content-Disposition and its parameters.
    pub disposition: Option<(String, Vec<(String, String)>)>,
    /// Content-Language tags.
    pub language: Vec<String>,
    /// Content-Location.
    pub location: Option<String>,
}

impl Part {
    /// A multipart or message shown as a single part because a limit was reached.
    pub fn truncated(&self) -> bool {
        matches!(self.kind, Kind::Single)
            && (self.media.0 == "multipart" || self.media == ("message".into(), "rfc822".into()))
    }
}

impl<'a> Tree<'a> {
    /// Parses `raw` (never fails: anything is a message, if only a header).
    pub fn new(raw: &'a [u8]) -> Tree<'a> {
        let mut b = Builder {
            decoded: Vec::new(),
            parts_left: MAX_PARTS,
            decode_left: raw.len().saturating_mul(2),
            decode_max: raw.len(),
        };
        let (root, _) = b.entity(raw, 0, 0, &mut Vec::new(), false, 0);
        Tree {
            raw,
            decoded: b.decoded,
            root,
        }
    }

    /// The bytes of buffer `buf` (see [`Part::buf`]).
    pub fn bytes(&self, buf: usize) -> &[u8] {
        match buf {
            0 => self.raw,
            n => self.decoded.get(n - 1).map_or(&[], |d| &d[..]),
        }
    }

    /// A part's header block.
    pub fn header(&self, part: &Part) -> &[u8] {
        self.bytes(part.buf).get(part.header.clone()).unwrap_or(&[])
    }

    /// A part's body.
    pub fn body(&self, part: &Part) -> &[u8] {
        self.bytes(part.buf).get(part.body.clone()).unwrap_or(&[])
    }

    /// The part a section path names, as Dovecot resolves it: numbers pick the parts of a
    /// multipart; 1 names the body of a single part (a message's body included); a number
    /// after a message/rfc822 part descends into the attached message.
    pub fn find(&self, path: &[u32]) -> Option<&Part> {
        let mut part = &self.root;
        for (i, &n) in path.iter().enumerate() {
            part = match &part.kind {
                Kind::Multipart(children) => children.get((n as usize).checked_sub(1)?)?,
                _ if n == 1 => part,
                _ => return None,
            };
            if i + 1 < path.len() {
                match &part.kind {
                    Kind::Message(inner) => part = inner,
                    Kind::Multipart(_) => {}
                    Kind::Single => return None,
                }
            }
        }
        Some(part)
    }
}

/// Where a boundary line was found.
#[derive(Debug, Clone, Copy)]
struct Hit {
    /// Its index in the boundary stack.
    index: usize,
    /// Where the content before it ends (the line break before the boundary is the
    /// boundary's).
    content_end: usize,
    /// Just past the boundary line.
    next: usize,
    /// A close delimiter (`--boundary--`).
    close: bool,
}

struct Builder {
    decoded: Vec<Vec<u8>>,
    parts_left: usize,
    /// Bytes all decoded attached messages may take (twice the message's size).
    decode_left: usize,
    /// Bytes one decoded attached message may take (the message's size): no section is
    /// longer than the message.
    decode_max: usize,
}

impl Builder {
    /// Parses the entity (header and body) starting at `start` of `data` (buffer `buf`),
    /// inside multiparts whose boundaries are `stack`; returns it and the boundary that ended
    /// it, if one did.
    fn entity(
        &mut self,
        data: &[u8],
        buf: usize,
        start: usize,
        stack: &mut Vec<Vec<u8>>,
        in_digest: bool,
        depth: usize,
    ) -> (Part, Option<Hit>) {
        self.parts_left = self.parts_left.saturating_sub(1);
        let (header_end, cut) = scan_header(data, start, stack);
        let (content, boundary) = content_of(&data[start..header_end]);
        let media = media(&content, in_digest);
        let mut part = Part {
            buf,
            header: start..header_end,
            body: header_end..header_end,
            content,
            media,
            kind: Kind::Single,
        };
        if cut.is_some() {
            return (part, cut);
        }
        let nest = depth < MAX_NESTING && self.parts_left > 0;
        let hit = match (part.media.0.as_str(), part.media.1.as_str()) {
            ("multipart", subtype) if nest => {
                let digest = subtype == "digest";
                let (children, hit) = match boundary.filter(|b| !b.is_empty()) {
                    Some(b) => self.multipart(data, buf, header_end, stack, b, digest, depth),
                    None => (Vec::new(), find_boundary(data, header_end, stack)),
                };
                part.kind = Kind::Multipart(children);
                hit
            }
            ("message", "rfc822") if nest => match Encoding::of(part.content.encoding.as_deref()) {
                Encoding::Identity => {
                    let (inner, hit) = self.entity(data, buf, header_end, stack, false, depth + 1);
                    part.kind = Kind::Message(Box::new(inner));
                    hit
                }
                encoding => {
                    let hit = find_boundary(data, header_end, stack);
                    let end = hit.map_or(data.len(), |h| h.content_end);
                    if let Some(inner) = self.encoded_message(
                        &data[header_end..end.max(header_end)],
                        encoding,
                        depth,
                    ) {
                        part.kind = Kind::Message(Box::new(inner));
                    }
                    hit
                }
            },
            _ => find_boundary(data, header_end, stack),
        };
        let end = hit.map_or(data.len(), |h| h.content_end);
        part.body = header_end..end.max(header_end);
        (part, hit)
    }

    /// The parts of a multipart whose body starts at `start`; returns them and the enclosing
    /// boundary that ended the multipart, if one did.
    #[allow(clippy::too_many_arguments)]
    fn multipart(
        &mut self,
        data: &[u8],
        buf: usize,
        start: usize,
        stack: &mut Vec<Vec<u8>>,
        boundary: Vec<u8>,
        digest: bool,
        depth: usize,
    ) -> (Vec<Part>, Option<Hit>) {
        let own = stack.len();
        stack.push(boundary);
        let mut children = Vec::new();
        let mut hit = find_boundary(data, start, stack);
        let ended = loop {
            match hit {
                Some(h) if h.index == own && h.close => {
                    // The epilogue runs to an enclosing boundary or the end.
                    stack.truncate(own);
                    break find_boundary(data, h.next, stack);
                }
                Some(h) if h.index == own => {
                    hit = if self.parts_left == 0 {
                        find_boundary(data, h.next, stack)
                    } else {
                        let (child, hit) = self.entity(data, buf, h.next, stack, digest, depth + 1);
                        children.push(child);
                        hit
                    };
                }
                other => break other,
            }
        };
        stack.truncate(own);
        (children, ended)
    }

    /// The message an encoded message/rfc822 body holds, decoded (lines ending in CRLF) into
    /// a buffer of its own; `None` past the decoding limits or for an unknown encoding.
    fn encoded_message(&mut self, body: &[u8], encoding: Encoding, depth: usize) -> Option<Part> {
        if body.len() > self.decode_left {
            return None;
        }
        let decoded = encoding.decode(body)?;
        let decoded = cte::crlf(&decoded).into_owned();
        if decoded.len() > self.decode_left.min(self.decode_max) {
            return None;
        }
        self.decode_left = self.decode_left.saturating_sub(decoded.len());
        self.decoded.push(Vec::new());
        let buf = self.decoded.len();
        let (inner, _) = self.entity(&decoded, buf, 0, &mut Vec::new(), false, depth + 1);
        self.decoded[buf - 1] = decoded;
        Some(inner)
    }
}

/// End of the line starting at `pos`: just past its LF, or the end of `data`.
fn line_end(data: &[u8], pos: usize) -> usize {
    data[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(data.len(), |i| pos + i + 1)
}

/// The end of the header block starting at `start` (past its blank line), and the boundary
/// line that cut it short, if one did.
fn scan_header(data: &[u8], start: usize, stack: &[Vec<u8>]) -> (usize, Option<Hit>) {
    let mut pos = start;
    while pos < data.len() {
        if let Some(hit) = boundary_at(data, pos, start, stack) {
            return (hit.content_end, Some(hit));
        }
        let end = line_end(data, pos);
        if matches!(&data[pos..end], b"\n" | b"\r\n") {
            return (end, None);
        }
        pos = end;
    }
    (data.len(), None)
}

/// Where the header block at the start of `data` ends (past its blank line).
pub fn header_end(data: &[u8]) -> usize {
    scan_header(data, 0, &[]).0
}

/// The first boundary line at or after `from` (a line start).
fn find_boundary(data: &[u8], from: usize, stack: &[Vec<u8>]) -> Option<Hit> {
    if stack.is_empty() {
        return None;
    }
    let mut pos = from;
    while pos < data.len() {
        if let Some(hit) = boundary_at(data, pos, from, stack) {
            return Some(hit);
        }
        pos = line_end(data, pos);
    }
    None
}

/// The boundary the line at `pos` is, if it is one; content started at `from`.
fn boundary_at(data: &[u8], pos: usize, from: usize, stack: &[Vec<u8>]) -> Option<Hit> {
    if !data[pos..].starts_with(b"--") || stack.is_empty() {
        return None;
    }
    let next = line_end(data, pos);
    let line = &data[pos + 2..next];
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let trailing_dashes = line.len() > 2 && line.ends_with(b"--");
    // The innermost boundary that starts the line, preferring a longer one: "--a--" may end
    // boundary "a" or start boundary "a--".
    let mut best: Option<usize> = None;
    for (i, b) in stack.iter().enumerate().rev() {
        if line.starts_with(b) && best.is_none_or(|j| stack[j].len() < b.len()) {
            best = Some(i);
            if b.len() == line.len() || (trailing_dashes && b.len() + 2 == line.len()) {
                break;
            }
        }
    }
    let index = best?;
    let content_end = if pos > from {
        let cr = pos >= from + 2 && data[pos - 2] == b'\r';
        pos - 1 - usize::from(cr)
    } else {
        from
    };
    Some(Hit {
        index,
        content_end,
        next,
        close: line[stack[index].len()..].starts_with(b"--"),
    })
}

/// The Content-* fields of a header block, and the multipart boundary parameter.
fn content_of(header: &[u8]) -> (Content, Option<Vec<u8>>) {
    let Some(m) = MessageParser::default().parse_headers(header) else {
        return (Content::default(), None);
    };
    let pairs = |attrs: Option<&[mail_parser::Attribute<'_>]>| {
        attrs
            .unwrap_or_default()
            .iter()
            .map(|a| (a.name.to_string(), a.value.to_string()))
            .collect::<Vec<_>>()
    };
    let ct = m.content_type();
    let boundary = ct
        .and_then(|c| c.attribute("boundary"))
        .map(|b| b.as_bytes().to_vec());
    let language = match m.content_language() {
        HeaderValue::Text(t) => t.split(',').map(|l| l.trim().to_string()).collect(),
        HeaderValue::TextList(list) => list.iter().map(|l| l.trim().to_string()).collect(),
        _ => Vec::<String>::new(),
    };
    // Strings BODYSTRUCTURE shows as they were written (encoded words included).
    let raw = |name: &str| header_values(header, name).into_iter().next();
    let content = Content {
        media_type: ct
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            // `type/subtype` or nothing: a type alone is no usable Content-Type.
            .filter(|(t, s)| !t.is_empty() && !s.is_empty()),
        params: pairs(ct.and_then(|c| c.attributes())),
        encoding: m.content_transfer_encoding().map(|e| e.trim().to_string()),
        id: raw("Content-ID"),
        description: raw("Content-Description"),
        md5: raw("Content-MD5"),
        disposition: m
            .content_disposition()
            .map(|d| (d.ctype().to_string(), pairs(d.attributes()))),
        language: language.into_iter().filter(|l| !l.is_empty()).collect(),
        location: raw("Content-Location"),
    };
    (content, boundary)
}

/// A part's type and subtype, lowercase, with the defaults of RFC 2046 applied.
fn media(content: &Content, in_digest: bool) -> (String, String) {
    match &content.media_type {
        Some(media) => media.clone(),
        None if in_digest => ("message".into(), "rfc822".into()),
        None => ("text".into(), "plain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of the part at `path`: its header and its body.
    fn at<'t>(tree: &'t Tree<'_>, path: &[u32]) -> (&'t str, &'t str) {
        let part = tree
            .find(path)
            .unwrap_or_else(|| panic!("no part {path:?}"));
        let text = |b: &'t [u8]| std::str::from_utf8(b).unwrap();
        (text(tree.header(part)), text(tree.body(part)))
    }

    #[test]
    fn a_message_in_a_message_in_a_message() {
        let raw = b"From: a\r\nContent-Type: message/rfc822\r\n\r\nFrom: b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c\r\n\r\nHello\r\n";
        let tree = Tree::new(raw);
        // 1 is the root's body: the attached message, whose own body is 1.1, and so on.
        assert_eq!(
            at(&tree, &[1]).1,
            "From: b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c\r\n\r\nHello\r\n"
        );
        assert_eq!(at(&tree, &[1, 1]).1, "From: c\r\n\r\nHello\r\n");
        assert_eq!(at(&tree, &[1, 1, 1]).1, "Hello\r\n");
        let Kind::Message(inner) = &tree.find(&[1, 1]).unwrap().kind else {
            panic!("1.1 is a message");
        };
        assert_eq!(tree.header(inner), b"From: c\r\n\r\n");
        assert!(tree.find(&[2]).is_none() && tree.find(&[1, 1, 1, 1]).is_none());
    }

    #[test]
    fn digest_parts_are_messages_and_boundaries_may_have_padding() {
        let raw = b"Content-Type: multipart/digest; boundary=\"foo\"\r\n\r\nprologue\r\n\r\n--foo \r\n\r\nFrom: m1\r\n\r\nm1 body\r\n\r\n--foo \r\nX-Mime: m2\r\n\r\nFrom: m2\r\n\r\nm2 body\r\n\r\n--foo--\r\n\r\nepilogue\r\n";
        let tree = Tree::new(raw);
        assert_eq!(at(&tree, &[1]), ("\r\n", "From: m1\r\n\r\nm1 body\r\n"));
        assert_eq!(
            at(&tree, &[2]),
            ("X-Mime: m2\r\n\r\n", "From: m2\r\n\r\nm2 body\r\n")
        );
        let Kind::Message(m2) = &tree.find(&[2]).unwrap().kind else {
            panic!("a digest part is a message");
        };
        assert_eq!(tree.body(m2), b"m2 body\r\n");
        // The multipart's body runs to the end, epilogue included.
        assert!(
            tree.body(&tree.root)
                .ends_with(b"--foo--\r\n\r\nepilogue\r\n")
        );
    }

    #[test]
    fn boundaries_of_enclosing_multiparts_end_inner_parts() {
        // The inner multipart never closes: the outer boundary ends it and its last part.
        // "--a" alone would be a prefix of "--ab", the longer boundary wins.
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\ninner\r\n--a\r\n\r\nsecond\r\n--a--\r\n";
        let tree = Tree::new(raw);
        assert_eq!(at(&tree, &[1, 1]).1, "inner");
        assert_eq!(at(&tree, &[1]).1, "--ab\r\n\r\ninner");
        assert_eq!(at(&tree, &[2]).1, "second");
    }

    #[test]
    fn a_boundary_inside_a_header_ends_the_part() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nSubject: no blank line\r\n--b\r\n\r\ntwo\r\n--b--";
        let tree = Tree::new(raw);
        assert_eq!(at(&tree, &[1]), ("Subject: no blank line", ""));
        assert_eq!(at(&tree, &[2]), ("\r\n", "two"));
    }

    #[test]
    fn line_feeds_alone_end_lines_too() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\none\n--b--\n";
        let tree = Tree::new(raw);
        assert_eq!(at(&tree, &[1]), ("Content-Type: text/plain\n\n", "one"));
    }

    #[test]
    fn encoded_attached_messages_are_decoded_into_their_own_buffer() {
        // "Subject: inner\n\nbody\n", base64: bare line feeds come out as CRLF.
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaW5uZXIKCmJvZHkK\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nSubject: =3Dqp\r\n\r\nsoft=\r\nbreak\r\n--b--\r\n";
        let tree = Tree::new(raw);
        assert_eq!(at(&tree, &[1]).1, "U3ViamVjdDogaW5uZXIKCmJvZHkK");
        let inner = |path: &[u32]| match &tree.find(path).unwrap().kind {
            Kind::Message(inner) => (
                String::from_utf8_lossy(tree.header(inner)).into_owned(),
                String::from_utf8_lossy(tree.body(inner)).into_owned(),
            ),
            other => panic!("{path:?} is {other:?}"),
        };
        assert_eq!(
            inner(&[1]),
            ("Subject: inner\r\n\r\n".into(), "body\r\n".into())
        );
        assert_eq!(
            inner(&[2]),
            ("Subject: =qp\r\n\r\n".into(), "softbreak".into())
        );
        assert_eq!(at(&tree, &[1, 1]).1, "body\r\n");
        // An unknown encoding is not looked into.
        let raw = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
        let tree = Tree::new(raw);
        assert!(tree.root.truncated() && tree.find(&[1, 1]).is_none());
        // Nor one that would decode to more than the whole message (line feeds made CRLF):
        // no section is longer than the message.
        let mut raw =
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                .to_vec();
        raw.extend_from_slice(&[b'\n'; 200]);
        assert!(Tree::new(&raw).root.truncated());
        raw.truncate(raw.len() - 150);
        assert!(!Tree::new(&raw).root.truncated());
    }

    #[test]
    fn default_types() {
        let raw = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: text\r\n\r\nx\r\n--d\r\nContent-Type: Text/HTML\r\n\r\ny\r\n--d--\r\n";
        let tree = Tree::new(raw);
        let media = |path: &[u32]| tree.find(path).map(|p| p.media.clone());
        assert_eq!(media(&[]), Some(("multipart".into(), "digest".into())));
        // In a digest a part without a (usable) type is a message.
        assert_eq!(media(&[1]), Some(("message".into(), "rfc822".into())));
        assert_eq!(media(&[2]), Some(("text".into(), "html".into())));
        assert_eq!(
            Tree::new(b"Content-Type: text\r\n\r\nx").root.media,
            ("text".into(), "plain".into())
        );
    }

    #[test]
    fn the_tree_is_bounded_in_depth_and_parts() {
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        deep.extend_from_slice(b"end\r\n");
        let tree = Tree::new(&deep);
        let mut depth = 0;
        let mut part = &tree.root;
        while let Kind::Message(inner) = &part.kind {
            part = inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_NESTING);
        assert!(part.truncated());

        let mut wide = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n".to_vec();
        for _ in 0..3 * MAX_PARTS {
            wide.extend_from_slice(b"--b\r\n\r\nx\r\n");
        }
        wide.extend_from_slice(b"--b--\r\nepilogue\r\n");
        let tree = Tree::new(&wide);
        let Kind::Multipart(children) = &tree.root.kind else {
            panic!("a multipart");
        };
        assert_eq!(children.len(), MAX_PARTS - 1);
        assert_eq!(
            tree.body(&tree.root).len(),
            wide.len() - tree.root.body.start
        );
    }
}
