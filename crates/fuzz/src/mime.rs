//! MIME on the FETCH path: ENVELOPE, BODY, BODYSTRUCTURE and BODY[section] of arbitrary bytes.
//! The responses must be well-formed IMAP data (balanced lists of NIL, numbers, quoted
//! strings and literals, so a header cannot inject protocol text) and stay within a bound of the
//! input size; a section is never longer than the message.

use tern_imap::mime::Parsed;
use tern_imap::proto::Section;
use tern_imap::proto::command::SectionText;

/// Part paths tried on every message.
const PATHS: &[&[u32]] = &[&[], &[1], &[2], &[1, 1], &[1, 2], &[2, 1], &[1, 1, 1], &[3]];

/// Fuzz target: input = a stored message.
pub fn mime(data: &[u8]) {
    let parsed = Parsed::new(data);
    let mut out = Vec::new();
    parsed.envelope(&mut out);
    check_response(&out, data.len(), "ENVELOPE");
    for extended in [false, true] {
        out.clear();
        parsed.body_structure(&mut out, extended);
        check_response(&out, data.len(), "BODYSTRUCTURE");
    }
    let texts = [
        SectionText::Full,
        SectionText::Header,
        SectionText::Text,
        SectionText::Mime,
        SectionText::Fields(vec!["Subject".into(), "from".into()]),
        SectionText::FieldsNot(vec!["Subject".into()]),
    ];
    for path in PATHS {
        for text in &texts {
            let section = Section {
                part: path.to_vec(),
                text: text.clone(),
            };
            let bytes = parsed.section(&section);
            // HEADER.FIELDS adds the blank line that ends the header block.
            assert!(
                bytes.len() <= data.len() + 2,
                "{section:?}: {} bytes from a {}-byte message",
                bytes.len(),
                data.len()
            );
        }
    }
    // SEARCH HEADER takes any field name from the client: try the message's own names.
    for line in data.split(|&b| b == b'\n').take(64) {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            let name = String::from_utf8_lossy(&line[..colon]);
            let _ = parsed.header(name.trim());
            let _ = parsed.header_contains(name.trim(), "x");
        }
    }
    let _ = parsed.header("Subject");
    let _ = parsed.sent_date();
    let _ = parsed.header_contains("From", "a");
    let _ = parsed.body_contains("é");
}

/// The response is one parenthesised list of IMAP data, and not absurdly large: BODYSTRUCTURE
/// stops showing parts past four times the message's size plus 256 KiB (then at most one more
/// envelope and a closing empty part per level).
fn check_response(out: &[u8], input: usize, what: &str) {
    assert!(
        out.len() <= 8 * input + 512 * 1024,
        "{what}: {} bytes for a {input}-byte message",
        out.len()
    );
    let mut reader = Reader { input: out, pos: 0 };
    if let Err(e) = reader.value().and_then(|()| reader.end()) {
        panic!(
            "{what} is malformed at byte {}: {e}: {:?}",
            reader.pos,
            String::from_utf8_lossy(out)
        );
    }
}

/// A reader of IMAP response data (RFC 9051 §4), strict enough to catch broken quoting.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn end(&self) -> Result<(), &'static str> {
        match self.pos == self.input.len() {
            true => Ok(()),
            false => Err("bytes after the list"),
        }
    }

    fn value(&mut self) -> Result<(), &'static str> {
        match self.peek().ok_or("unexpected end")? {
            b'(' => {
                self.pos += 1;
                let mut first = true;
                loop {
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(b' ') if !first => self.pos += 1,
                        // Lists of lists may be written without spaces (body parts).
                        Some(b'(') if !first => {}
                        _ if first => {}
                        _ => return Err("expected a space or )"),
                    }
                    first = false;
                    self.value()?;
                }
            }
            b'"' => {
                self.pos += 1;
                loop {
                    match self.peek().ok_or("unterminated quoted string")? {
                        b'"' => {
                            self.pos += 1;
                            return Ok(());
                        }
                        b'\\' => match self.input.get(self.pos + 1) {
                            Some(b'"' | b'\\') => self.pos += 2,
                            _ => return Err("bad escape"),
                        },
                        b'\r' | b'\n' | 0 => return Err("control character in a quoted string"),
                        _ => self.pos += 1,
                    }
                }
            }
            b'{' => {
                let close = self.input[self.pos..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("unterminated literal size")?;
                let digits = &self.input[self.pos + 1..self.pos + close];
                let n: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or("bad literal size")?;
                self.pos += close + 1;
                if self.input.get(self.pos..self.pos + 2) != Some(b"\r\n") {
                    return Err("literal size not followed by CRLF");
                }
                self.pos += 2;
                if self.pos + n > self.input.len() {
                    return Err("literal past the end");
                }
                self.pos += n;
                Ok(())
            }
            b if b.is_ascii_digit() => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
                Ok(())
            }
            _ if self.input[self.pos..].starts_with(b"NIL") => {
                self.pos += 3;
                Ok(())
            }
            _ => Err("not NIL, a number, a string or a list"),
        }
    }
}
