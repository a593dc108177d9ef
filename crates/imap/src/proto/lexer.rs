//! Tokens of an assembled IMAP command (RFC 9051 §4): atoms, quoted strings, literals (whose
//! bytes the session has already placed after their `{n}` marker and CRLF), and lists.

/// A parse failure with a short reason for the `BAD` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

/// Result type of the parsers.
pub type Parsed<T> = Result<T, ParseError>;

/// A cursor over one assembled command.
pub struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
}

fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !b"(){%*\"\\]".contains(&b)
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `input`.
    pub fn new(input: &'a [u8]) -> Lexer<'a> {
        Lexer { input, pos: 0 }
    }

    /// The next byte, if any.
    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Whether everything was consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    /// Consumes `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Requires `b` next.
    pub fn expect(&mut self, b: u8, why: &'static str) -> Parsed<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(ParseError(why))
        }
    }

    /// Requires one space.
    pub fn space(&mut self) -> Parsed<()> {
        self.expect(b' ', "expected a space")
    }

    /// Requires the end of input.
    pub fn end(&self) -> Parsed<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(ParseError("unexpected characters at the end"))
        }
    }

    /// Consumes everything left.
    pub fn skip_rest(&mut self) {
        self.pos = self.input.len();
    }

    /// Bytes matching `pred`, at least one.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool, why: &'static str) -> Parsed<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(ParseError(why));
        }
        Ok(&self.input[start..self.pos])
    }

    /// An atom (command names, flags without backslash, keywords).
    pub fn atom(&mut self) -> Parsed<String> {
        let raw = self.take_while(is_atom_char, "expected an atom")?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    /// Characters allowed in a sequence set or other atom-like token, including `*`, `]`.
    pub fn atom_with(&mut self, extra: &[u8]) -> Parsed<String> {
        let raw = self.take_while(
            |b| is_atom_char(b) || extra.contains(&b),
            "expected an atom",
        )?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    /// A FETCH attribute name: an atom that stops before `[` (as in `BODY.PEEK[`).
    pub fn fetch_name(&mut self) -> Parsed<String> {
        let raw = self.take_while(
            |b| is_atom_char(b) && b != b'[' && b != b'<',
            "expected a FETCH item",
        )?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    /// A flag: atom or `\atom` (or `\*`).
    pub fn flag(&mut self) -> Parsed<String> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok("\\*".into());
            }
            return Ok(format!("\\{}", self.atom()?));
        }
        self.atom()
    }

    /// A number.
    pub fn number(&mut self) -> Parsed<u64> {
        let raw = self.take_while(|b| b.is_ascii_digit(), "expected a number")?;
        std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(ParseError("number out of range"))
    }

    /// A quoted string, a literal, or (as `astring`) an atom.
    pub fn astring(&mut self) -> Parsed<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            // `~{n}` is a literal8 (RFC 3516); a bare `~` starts an atom.
            Some(b'~') if self.input.get(self.pos + 1) == Some(&b'{') => self.literal(),
            _ => Ok(self
                .take_while(|b| is_atom_char(b) || b == b']', "expected a string")?
                .to_vec()),
        }
    }

    /// An astring as UTF-8 text.
    pub fn astring_text(&mut self) -> Parsed<String> {
        String::from_utf8(self.astring()?).map_err(|_| ParseError("string is not UTF-8"))
    }

    /// A list-mailbox pattern: astring or atom with `%` and `*`.
    pub fn list_pattern(&mut self) -> Parsed<String> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.astring_text(),
            _ => self.atom_with(b"%*]"),
        }
    }

    /// `"..."` with `\"` and `\\` escapes.
    pub fn quoted(&mut self) -> Parsed<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => {
                    return Err(ParseError("unterminated quoted string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => {
                            out.push(c);
                            self.pos += 1;
                        }
                        _ => return Err(ParseError("bad escape in quoted string")),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` / `{n+}` / `~{n}` CRLF and n bytes (placed there by the session).
    pub fn literal(&mut self) -> Parsed<Vec<u8>> {
        self.eat(b'~');
        self.expect(b'{', "expected a literal")?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}', "bad literal")?;
        self.expect(b'\r', "literal must end its line")?;
        self.expect(b'\n', "literal must end its line")?;
        let end = self.pos.checked_add(n).filter(|e| *e <= self.input.len());
        let end = end.ok_or(ParseError("literal shorter than announced"))?;
        let bytes = self.input[self.pos..end].to_vec();
        self.pos = end;
        Ok(bytes)
    }

    /// `NIL` or an nstring.
    pub fn is_nil(&mut self) -> bool {
        let rest = &self.input[self.pos..];
        if rest.len() >= 3
            && rest[..3].eq_ignore_ascii_case(b"NIL")
            && !rest.get(3).is_some_and(|b| is_atom_char(*b))
        {
            self.pos += 3;
            return true;
        }
        false
    }

    /// Case-insensitive keyword match (not consumed on mismatch).
    pub fn keyword(&mut self, kw: &str) -> bool {
        let rest = &self.input[self.pos..];
        let k = kw.as_bytes();
        if rest.len() >= k.len()
            && rest[..k.len()].eq_ignore_ascii_case(k)
            && !rest.get(k.len()).is_some_and(|b| is_atom_char(*b))
        {
            self.pos += k.len();
            return true;
        }
        false
    }

    /// A parenthesised list of items parsed by `item`, separated by spaces.
    pub fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Parsed<T>) -> Parsed<Vec<T>> {
        self.expect(b'(', "expected (")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.space()?;
        }
    }
}

/// Whether a line ends with a literal marker; returns (size, non-synchronising).
pub fn trailing_literal(line: &[u8]) -> Option<(u64, bool)> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let mut digits = &inner[open + 1..];
    let plus = digits.last() == Some(&b'+');
    if plus {
        digits = &digits[..digits.len() - 1];
    }
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, plus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut l = Lexer::new(b"\"a \\\"b\\\"\" {3}\r\nxyz atom NIL");
        assert_eq!(l.astring().unwrap(), b"a \"b\"");
        l.space().unwrap();
        assert_eq!(l.astring().unwrap(), b"xyz");
        l.space().unwrap();
        assert_eq!(l.astring().unwrap(), b"atom");
        l.space().unwrap();
        assert!(l.is_nil());
        assert!(l.at_end());
    }

    #[test]
    fn literal_markers() {
        assert_eq!(trailing_literal(b"A APPEND x {12}"), Some((12, false)));
        assert_eq!(trailing_literal(b"A APPEND x {12+}"), Some((12, true)));
        assert_eq!(trailing_literal(b"A CREATE {abc}"), None);
        assert_eq!(trailing_literal(b"A NOOP"), None);
        assert_eq!(trailing_literal(b"{99999999999999999999}"), None);
    }

    #[test]
    fn hostile() {
        assert!(Lexer::new(b"{5}\r\nab").literal().is_err());
        assert!(Lexer::new(b"\"unterminated").quoted().is_err());
        assert!(Lexer::new(b"(a b").list(|l| l.atom()).is_err());
    }
}
