//! String encoding for responses: quoted when safe, a literal otherwise, `NIL` for none.

/// `"text"` if it can be quoted, else `{n}\r\n` + bytes.
pub fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    let utf8 = std::str::from_utf8(bytes).is_ok();
    let quotable = bytes.len() < 1024
        && bytes
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || (b >= 0x80 && utf8));
    if quotable {
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, bytes);
    }
}

/// Always a literal.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

/// `NIL` or a string.
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => string(out, v),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name, in modified UTF-7, as a quoted string.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    string(out, super::mutf7::encode(name).as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        let mut out = Vec::new();
        super::string(&mut out, b"a \"b\"");
        assert_eq!(out, b"\"a \\\"b\\\"\"");
        let mut out = Vec::new();
        super::string(&mut out, b"line\r\nbreak");
        assert_eq!(out, b"{11}\r\nline\r\nbreak");
    }
}
