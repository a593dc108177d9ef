//! Content-Transfer-Encoding decoding (base64, quoted-printable) and CRLF line endings.
//!
//! Decoding is lenient, as mail readers are: what cannot be decoded is skipped (base64) or
//! kept as it is (quoted-printable) rather than failing the whole part.

use std::borrow::Cow;

/// A Content-Transfer-Encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit, binary or none: the body is its own content.
    Identity,
    /// base64 (RFC 2045 §6.8).
    Base64,
    /// quoted-printable (RFC 2045 §6.7).
    QuotedPrintable,
    /// Anything else (RFC 3516 `[UNKNOWN-CTE]`).
    Unknown,
}

impl Encoding {
    /// The encoding a Content-Transfer-Encoding value names (`None`: no such field).
    pub fn of(value: Option<&str>) -> Encoding {
        let Some(value) = value else {
            return Encoding::Identity;
        };
        let value = value.trim();
        if ["7bit", "8bit", "binary", ""]
            .iter()
            .any(|e| value.eq_ignore_ascii_case(e))
        {
            Encoding::Identity
        } else if value.eq_ignore_ascii_case("base64") {
            Encoding::Base64
        } else if value.eq_ignore_ascii_case("quoted-printable") {
            Encoding::QuotedPrintable
        } else {
            Encoding::Unknown
        }
    }

    /// The decoded content of `body`; `None` for an unknown encoding.
    pub fn decode<'b>(self, body: &'b [u8]) -> Option<Cow<'b, [u8]>> {
        match self {
            Encoding::Identity => Some(Cow::Borrowed(body)),
            Encoding::Base64 => Some(Cow::Owned(base64(body))),
            Encoding::QuotedPrintable => Some(Cow::Owned(quoted_printable(body))),
            Encoding::Unknown => None,
        }
    }
}

/// `bytes` with every bare LF made CRLF (RFC 9051 §2.3.1: lines of a message end with CRLF);
/// borrowed when there is none.
pub fn crlf(bytes: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize| bytes[i] == b'\n' && (i == 0 || bytes[i - 1] != b'\r');
    let count = (0..bytes.len()).filter(|&i| bare(i)).count();
    if count == 0 {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + count);
    for (i, &b) in bytes.iter().enumerate() {
        if bare(i) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// The value of a base64 character; `None` for padding and anything else.
fn base64_value(b: u8) -> Option<u32> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes base64, skipping line breaks, white space and any other character outside the
/// alphabet; `=` ends a group, so concatenated encodings decode too.
pub fn base64(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in text {
        if let Some(v) = base64_value(b) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        } else if b == b'=' {
            (acc, bits) = (0, 0);
        }
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes quoted-printable: `=XX` escapes, soft line breaks (`=` ending a line, white space
/// after it allowed), and trailing white space removed from each line (RFC 2045 §6.7 rule
/// 3). Lines end with CRLF; a `=` not starting an escape is kept.
pub fn quoted_printable(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let (line, ended, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = next;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed_len = line
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |i| i + 1);
        let mut line = &line[..trimmed_len];
        let soft = line.last() == Some(&b'=');
        if soft {
            line = &line[..line.len() - 1];
        }
        let mut i = 0;
        while i < line.len() {
            let escaped = match line[i..] {
                [b'=', h, l, ..] => hex_value(h).zip(hex_value(l)).map(|(h, l)| (h << 4) | l),
                _ => None,
            };
            match escaped {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(line[i]);
                    i += 1;
                }
            }
        }
        if ended && !soft {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_feeds_become_crlf() {
        assert_eq!(&*crlf(b"a\nb\r\nc\n\n"), b"a\r\nb\r\nc\r\n\r\n");
        assert_eq!(&*crlf(b"\nx"), b"\r\nx");
        assert!(matches!(crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert!(matches!(crlf(b"no line end"), Cow::Borrowed(_)));
        // A bare CR stays: only LF is completed.
        assert_eq!(&*crlf(b"a\rb\n"), b"a\rb\r\n");
    }

    #[test]
    fn base64_skips_what_is_not_in_the_alphabet() {
        assert_eq!(base64(b"aGVs\r\nbG8gd29y\r\nbGQ="), b"hello world");
        assert_eq!(
            base64(b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n"),
            b"hello world"
        );
        assert_eq!(base64(b"aGk=aGk="), b"hihi");
        assert_eq!(base64(b"!!"), b"");
    }

    #[test]
    fn quoted_printable_rules() {
        let text = b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\nfoo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        assert_eq!(
            quoted_printable(text),
            b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n"
        );
        assert_eq!(quoted_printable(b"a=3d=3Db=\nc\n"), b"a==bc\r\n");
        assert_eq!(quoted_printable(b"50% =zz ="), b"50% =zz ");
    }

    #[test]
    fn encodings_by_name() {
        assert_eq!(Encoding::of(None), Encoding::Identity);
        assert_eq!(Encoding::of(Some(" Base64 ")), Encoding::Base64);
        assert_eq!(Encoding::of(Some("8BIT")), Encoding::Identity);
        assert_eq!(
            Encoding::of(Some("quoted-printable")),
            Encoding::QuotedPrintable
        );
        assert_eq!(Encoding::of(Some("x-uuencode")), Encoding::Unknown);
        assert!(Encoding::Unknown.decode(b"x").is_none());
    }
}
