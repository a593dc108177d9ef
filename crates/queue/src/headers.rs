//! What the relay needs to know about a message's header: its Received count (loop
//! detection), its header section (for a DSN), and the body to send without our
//! Return-Path (RFC 5321 §4.4: only the final delivery adds one).

use std::borrow::Cow;

/// The header section, up to and including the empty line that ends it (the whole message
/// when it has no body).
pub(crate) fn header_section(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| start + i + 1);
        let line = &message[start..end];
        if line == b"\r\n" || line == b"\n" {
            return &message[..end];
        }
        start = end;
    }
    message
}

/// The header fields as (name, raw field bytes including continuation lines).
fn fields(header: &[u8]) -> Vec<(&[u8], std::ops::Range<usize>)> {
    let mut out: Vec<(&[u8], std::ops::Range<usize>)> = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let end = header[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header.len(), |i| start + i + 1);
        let line = &header[start..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        match (line.first(), out.last_mut()) {
            (Some(b' ' | b'\t'), Some((_, range))) => range.end = end,
            _ => {
                let name_end = line.iter().position(|&b| b == b':').unwrap_or(0);
                out.push((&line[..name_end], start..end));
            }
        }
        start = end;
    }
    out
}

/// How many Received fields the message carries: one per hop it has made.
pub(crate) fn received_count(message: &[u8]) -> usize {
    fields(header_section(message))
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"Received"))
        .count()
}

/// The message without Return-Path fields, as it must go to the next hop.
pub(crate) fn without_return_path(message: &[u8]) -> Cow<'_, [u8]> {
    let header = header_section(message);
    let fields = fields(header);
    if !fields
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(b"Return-Path"))
    {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut kept_until = 0;
    for (name, range) in fields {
        if name.eq_ignore_ascii_case(b"Return-Path") {
            out.extend_from_slice(&message[kept_until..range.start]);
            kept_until = range.end;
        }
    }
    out.extend_from_slice(&message[kept_until..]);
    Cow::Owned(out)
}

/// Whether an address needs SMTPUTF8 (RFC 6531): any non-ASCII character.
pub(crate) fn needs_smtputf8(address: &str) -> bool {
    !address.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Return-Path: <a@b.example>\r\n\
        Received: from x\r\n\tby y; date\r\n\
        received: from z\r\n\
        Subject: hi\r\n\
        \r\n\
        Received: in the body does not count\r\n";

    #[test]
    fn received_fields_are_counted_in_the_header_only() {
        assert_eq!(received_count(MSG), 2);
        assert_eq!(received_count(b"Subject: x\r\n\r\n"), 0);
        assert_eq!(received_count(b""), 0);
        let many: Vec<u8> = (0..60)
            .flat_map(|i| format!("Received: hop {i}\r\n").into_bytes())
            .chain(b"\r\nbody\r\n".iter().copied())
            .collect();
        assert_eq!(received_count(&many), 60);
    }

    #[test]
    fn return_path_is_removed_with_its_continuation() {
        let folded = b"Return-Path:\r\n <a@b.example>\r\nSubject: x\r\n\r\nReturn-Path: body\r\n";
        assert_eq!(
            without_return_path(folded).as_ref(),
            b"Subject: x\r\n\r\nReturn-Path: body\r\n"
        );
        let out = without_return_path(MSG);
        assert!(out.starts_with(b"Received: from x\r\n\tby y; date\r\n"));
        assert!(matches!(
            without_return_path(b"Subject: x\r\n\r\n"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn header_section_ends_at_the_empty_line() {
        assert_eq!(header_section(b"A: 1\r\n\r\nbody"), b"A: 1\r\n\r\n");
        assert_eq!(header_section(b"A: 1\r\n"), b"A: 1\r\n");
        assert!(needs_smtputf8("jöran@example.com") && !needs_smtputf8("a@b.example"));
    }
}
