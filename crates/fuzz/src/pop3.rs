//! POP3: `parse_command` on every line; `DotStuffer` gives the same bytes however the body is
//! cut into chunks, and its output un-stuffs back to the body; `top` returns a prefix that
//! grows with the line count.

use tern_pop3::proto::{Command, DotStuffer, parse_command, top};

/// Fuzz target: input = chunk size (and TOP's line count), then commands or a message body.
pub fn pop3(data: &[u8]) {
    let Some((&size, body)) = data.split_first() else {
        return;
    };
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Ok(Command::User(name)) = parse_command(line) {
            assert!(!name.is_empty() && !name.contains(' '));
        }
    }

    let mut whole = Vec::new();
    let mut stuffer = DotStuffer::new();
    stuffer.push(body, &mut whole);
    stuffer.finish(&mut whole);
    let mut chunked = Vec::new();
    let mut stuffer = DotStuffer::new();
    for chunk in body.chunks(usize::from(size.max(1))) {
        stuffer.push(chunk, &mut chunked);
    }
    stuffer.finish(&mut chunked);
    assert_eq!(whole, chunked, "DotStuffer depends on the chunking");
    assert_eq!(
        unstuff(&whole),
        normalized(body),
        "DotStuffer does not invert"
    );

    let lines = u32::from(size);
    let short = top(body, lines);
    let long = top(body, lines + 1);
    assert!(body.starts_with(short) && body.starts_with(long) && short.len() <= long.len());
}

/// Reads a multi-line reply payload back: lines end in CRLF, the last is `.`, a line that
/// starts with `.` carries a second one.
fn unstuff(stuffed: &[u8]) -> Vec<u8> {
    let payload = stuffed
        .strip_suffix(b".\r\n")
        .expect("the terminating line is missing");
    assert!(payload.is_empty() || payload.ends_with(b"\r\n"));
    let mut out = Vec::new();
    let mut start = 0;
    while start < payload.len() {
        let end = payload[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| start + i + 2)
            .expect("a line without CRLF");
        let line = &payload[start..end];
        assert!(
            !line[..line.len() - 2].contains(&b'\n'),
            "bare LF in the output"
        );
        match line.strip_prefix(b".") {
            Some(unstuffed) => {
                assert!(
                    unstuffed.starts_with(b"."),
                    "a line starting with . is not stuffed"
                );
                out.extend_from_slice(unstuffed);
            }
            None => out.extend_from_slice(line),
        }
        start = end;
    }
    out
}

/// The body as a reply sends it: every line ends in CRLF (a bare LF, or a CR at the very
/// end, becomes CRLF; a CR inside a line stays), the last one too.
fn normalized(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if out.last() == Some(&b'\r') {
        out.push(b'\n');
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
