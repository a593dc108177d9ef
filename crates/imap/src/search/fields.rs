//! The top-level header of a raw message, split into fields for SEARCH.

/// One header field as written.
pub struct Field<'a> {
    /// The name before the colon, trimmed (invalid UTF-8 replaced).
    pub name: String,
    /// The value: every byte after the colon through the end of the field's last line,
    /// still folded and still encoded.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// The value unfolded (line breaks removed, RFC 5322 §2.2.3) and trimmed.
    pub fn unfolded(&self) -> String {
        String::from_utf8_lossy(self.raw)
            .replace(['\r', '\n'], "")
            .trim()
            .to_string()
    }
}

/// The header block: everything before the first empty line (all of it when there is none).
pub fn header_block(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = line_end(message, start);
        let line = &message[start..end];
        if line == b"\n" || line == b"\r\n" {
            return &message[..start];
        }
        start = end;
    }
    message
}

/// The fields of a header block, in order. Lines that are neither a field nor the
/// continuation of one (no colon, or an empty name) are skipped.
pub fn fields(header: &[u8]) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let mut end = line_end(header, start);
        while end < header.len() && matches!(header[end], b' ' | b'\t') {
            end = line_end(header, end);
        }
        let text = &header[start..end];
        if let Some(colon) = text.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&text[..colon]).trim().to_string();
            if !name.is_empty() {
                out.push(Field {
                    name,
                    raw: &text[colon + 1..],
                });
            }
        }
        start = end;
    }
    out
}

/// The offset just past the line that starts at `start` (its LF included).
fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| start + p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_unfold_and_the_header_ends_at_the_empty_line() {
        let raw = b"Subject: one\r\n two\r\nX-Empty:\r\nnot a field\r\n: no name\r\nTo : a@b\r\n\r\nBody: no\r\n";
        let header = header_block(raw);
        assert!(header.ends_with(b"To : a@b\r\n"));
        let f = fields(header);
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Subject", "X-Empty", "To"]);
        assert_eq!(f[0].unfolded(), "one two");
        assert_eq!(f[0].raw, b" one\r\n two\r\n");
        assert_eq!(f[1].unfolded(), "");
        assert_eq!(f[2].unfolded(), "a@b");
    }

    #[test]
    fn bare_newlines_no_body_and_invalid_utf8() {
        assert_eq!(header_block(b"A: 1\nB: 2\n\nbody"), b"A: 1\nB: 2\n");
        assert_eq!(header_block(b"A: 1\r\nB: 2"), b"A: 1\r\nB: 2");
        assert_eq!(header_block(b"\r\nbody"), b"");
        let f = fields(b"\xff: x\r\nB: \xe9t\xe9");
        assert_eq!(f[0].name, "\u{fffd}");
        assert_eq!(f[1].unfolded(), "\u{fffd}t\u{fffd}");
    }
}
