//! RFC 3516 BINARY: a part's content with its Content-Transfer-Encoding undone (in a
//! multipart or an attached message, every part undone and its header saying so), and the
//! reverse at APPEND: parts sent as `binary` are stored base64 encoded, so that every stored
//! message is lines ending in CRLF and BINARY gives back the exact bytes sent.

use crate::cte::{self, Encoding};
use crate::parts::{Kind, Part, Tree};
use base64::Engine;
use std::borrow::Cow;

/// The content of `part` with every transfer encoding in it undone, its own header first when
/// `with_header`; `None` when a part has an encoding the server does not know (RFC 3516
/// `[UNKNOWN-CTE]`). Borrowed when there is nothing to undo.
pub fn decoded<'t>(tree: &'t Tree<'_>, part: &Part, with_header: bool) -> Option<Cow<'t, [u8]>> {
    if !converts(part)? {
        let start = if with_header {
            part.header.start
        } else {
            part.body.start
        };
        let bytes = tree.bytes(part.buf).get(start..part.body.end);
        return Some(Cow::Borrowed(bytes.unwrap_or_default()));
    }
    let mut out = Vec::new();
    write(tree, part, with_header, &mut out)?;
    Some(Cow::Owned(out))
}

/// Whether anything in `part` has an encoding to undo; `None` if an encoding is unknown.
fn converts(part: &Part) -> Option<bool> {
    let own = match Encoding::of(part.content.encoding.as_deref()) {
        Encoding::Unknown => return None,
        Encoding::Identity => false,
        Encoding::Base64 | Encoding::QuotedPrintable => true,
    };
    let mut any = own;
    match &part.kind {
        Kind::Multipart(children) => {
            for child in children {
                any |= converts(child)?;
            }
        }
        Kind::Message(inner) => any |= converts(inner)?,
        Kind::Single => {}
    }
    Some(any)
}

fn write(tree: &Tree<'_>, part: &Part, with_header: bool, out: &mut Vec<u8>) -> Option<()> {
    let encoding = Encoding::of(part.content.encoding.as_deref());
    if encoding == Encoding::Unknown {
        return None;
    }
    if with_header {
        let header = tree.header(part);
        if encoding == Encoding::Identity {
            out.extend_from_slice(header);
        } else {
            out.extend_from_slice(&with_encoding(header, "binary"));
        }
    }
    let data = tree.bytes(part.buf);
    let gap = |from: usize, to: usize| data.get(from..to).unwrap_or_default();
    match &part.kind {
        Kind::Multipart(children) => {
            // Prologue, boundaries and epilogue as they are; each part undone.
            let mut at = part.body.start;
            for child in children {
                out.extend_from_slice(gap(at, child.header.start));
                write(tree, child, true, out)?;
                at = child.body.end;
            }
            out.extend_from_slice(gap(at, part.body.end));
        }
        // The attached message is the whole body (or, encoded, its decoded copy).
        Kind::Message(inner) => write(tree, inner, true, out)?,
        Kind::Single => out.extend_from_slice(&encoding.decode(tree.body(part))?),
    }
    Some(())
}

/// `header` with its Content-Transfer-Encoding fields replaced by one saying `encoding`, just
/// before the blank line that ends the header.
fn with_encoding(header: &[u8], encoding: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40);
    let field = format!("Content-Transfer-Encoding: {encoding}\r\n");
    let mut skipping = false;
    let mut added = false;
    let mut pos = 0;
    while pos < header.len() {
        let end = header[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| pos + i + 1);
        let line = &header[pos..end];
        pos = end;
        if matches!(line, b"\r\n" | b"\n") {
            out.extend_from_slice(field.as_bytes());
            added = true;
            out.extend_from_slice(line);
            continue;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            skipping = line.contains(&b':')
                && name
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"Content-Transfer-Encoding");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    if !added {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// A message as it is stored: lines ending in CRLF (RFC 9051 §2.3.1), and each part sent with
/// Content-Transfer-Encoding `binary` (RFC 3516 APPEND of a literal8) base64 encoded, its
/// bytes kept exactly (their line endings are data, not lines). What is stored is what FETCH
/// serves: RFC822.SIZE and every BODYSTRUCTURE size are those of these bytes.
pub fn storable(raw: Vec<u8>) -> Vec<u8> {
    let ranges = if raw.windows(6).any(|w| w.eq_ignore_ascii_case(b"binary")) {
        std::panic::catch_unwind(|| binary_parts(&Tree::new(&raw))).unwrap_or_default()
    } else {
        Vec::new()
    };
    if ranges.is_empty() {
        return match cte::crlf(&raw) {
            Cow::Owned(fixed) => fixed,
            Cow::Borrowed(_) => raw,
        };
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 2);
    let mut at = 0;
    for (header, body) in ranges {
        let (Some(before), Some(header_bytes), Some(body_bytes)) = (
            raw.get(at..header.start),
            raw.get(header),
            raw.get(body.clone()),
        ) else {
            continue;
        };
        out.extend_from_slice(&cte::crlf(before));
        out.extend_from_slice(&cte::crlf(&with_encoding(header_bytes, "base64")));
        base64_lines(body_bytes, &mut out);
        at = body.end;
    }
    out.extend_from_slice(&cte::crlf(raw.get(at..).unwrap_or_default()));
    out
}

/// The header and body ranges of the parts sent `binary`, in order, in the message's own bytes.
fn binary_parts(tree: &Tree<'_>) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    fn walk(part: &Part, out: &mut Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>) {
        if part.buf != 0 {
            return;
        }
        match &part.kind {
            Kind::Multipart(children) => children.iter().for_each(|c| walk(c, out)),
            Kind::Message(inner) => walk(inner, out),
            Kind::Single => {
                if part
                    .content
                    .encoding
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case("binary"))
                {
                    out.push((part.header.clone(), part.body.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&tree.root, &mut out);
    out
}

/// `bytes` base64 encoded in lines of 76 characters ending in CRLF (RFC 2045 §6.8); the line
/// break before the next boundary is the boundary's, so the last line has none.
fn base64_lines(bytes: &[u8], out: &mut Vec<u8>) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_of(raw: &[u8], path: &[u32]) -> Option<Vec<u8>> {
        let tree = Tree::new(raw);
        let part = tree.find(path)?;
        decoded(&tree, part, path.is_empty()).map(Cow::into_owned)
    }

    const MIXED: &[u8] = b"Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npro\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n--b\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain\r\n\r\ncaf=C3=A9 =\r\nau lait\r\n--b\r\n\r\nplain\r\n--b--\r\nepi\r\n";

    #[test]
    fn parts_are_decoded() {
        assert_eq!(binary_of(MIXED, &[1]).unwrap(), b"hello");
        assert_eq!(binary_of(MIXED, &[2]).unwrap(), "café au lait".as_bytes());
        assert_eq!(binary_of(MIXED, &[3]).unwrap(), b"plain");
        assert!(Tree::new(MIXED).find(&[4]).is_none());
    }

    /// The whole message: every part decoded, its header saying `binary` instead.
    #[test]
    fn a_whole_message_has_every_part_decoded() {
        let whole = binary_of(MIXED, &[]).unwrap();
        let expected = "Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npro\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\nhello\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\n\r\ncafé au lait\r\n--b\r\n\r\nplain\r\n--b--\r\nepi\r\n";
        assert_eq!(String::from_utf8(whole).unwrap(), expected);
        // Nothing to decode: the stored bytes themselves.
        let plain = b"Subject: x\r\n\r\nbody\r\n";
        let tree = Tree::new(plain);
        assert!(matches!(
            decoded(&tree, &tree.root, true),
            Some(Cow::Borrowed(b)) if b == plain
        ));
    }

    #[test]
    fn an_unknown_encoding_cannot_be_decoded() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n--b\r\n\r\nok\r\n--b--\r\n";
        assert!(binary_of(raw, &[1]).is_none());
        assert!(binary_of(raw, &[]).is_none());
        assert_eq!(binary_of(raw, &[2]).unwrap(), b"ok");
    }

    #[test]
    fn encoding_fields_are_replaced_before_the_blank_line() {
        assert_eq!(
            with_encoding(
                b"A: 1\r\nContent-Transfer-Encoding:\r\n base64\r\nB: 2\r\n\r\n",
                "binary"
            ),
            b"A: 1\r\nB: 2\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        );
        assert_eq!(
            with_encoding(b"A: 1", "base64"),
            b"A: 1\r\nContent-Transfer-Encoding: base64\r\n"
        );
    }

    /// RFC 3516 APPEND: a part sent `binary` is stored base64 encoded (lines of CRLF, so
    /// BODY[] is mail) and BINARY gives back its exact bytes, line endings and NULs included;
    /// the rest of the message gets CRLF line endings.
    #[test]
    fn binary_parts_are_stored_base64_encoded() {
        let content: &[u8] = b"\0-\xe4\n\r\n\n";
        let mut raw = b"Subject: bin\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n".to_vec();
        raw.extend_from_slice(content);
        raw.extend_from_slice(b"\n--b\n\ntext\n--b--\n");
        let stored = storable(raw);
        assert_eq!(
            String::from_utf8(stored.clone()).unwrap(),
            "Subject: bin\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==\r\n--b\r\n\r\ntext\r\n--b--\r\n"
        );
        assert_eq!(binary_of(&stored, &[1]).unwrap(), content);
        // A message without binary parts only gets its line endings fixed.
        assert_eq!(storable(b"A: b\n\nc\n".to_vec()), b"A: b\r\n\r\nc\r\n");
        // A whole message sent binary.
        let stored = storable(b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\n".to_vec());
        assert_eq!(stored, b"Content-Transfer-Encoding: base64\r\n\r\nAAEK");
        assert_eq!(binary_of(&stored, &[1]).unwrap(), b"\x00\x01\n");
    }

    /// An attached message sent base64 encoded: BINARY of the part is the decoded message.
    #[test]
    fn an_encoded_attached_message_is_decoded() {
        let raw = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogaQoKYgo=\r\n";
        assert_eq!(binary_of(raw, &[1]).unwrap(), b"Subject: i\r\n\r\nb\r\n");
    }
}
