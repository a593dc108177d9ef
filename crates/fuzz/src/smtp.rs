//! SMTP: the command line reader (`Connection::read_line`, shared with IMAP and POP3) with
//! `proto::parse` on every line, and the DATA reader (`data::read_body`). Both readers are
//! checked against a plain model of RFC 5321 line endings, whatever the read boundaries.

use crate::exec::{connection, pieces, run, unread};
use tern_core::net::ReadError;
use tern_smtp::data::{Body, read_body};
use tern_smtp::proto::{Request, parse};

/// What the line reader must return for one line, per the model.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Ok(Vec<u8>),
    TooLong,
    Bare,
}

/// The line limit from a fuzz byte: small ones reach the limit paths, 0 is the session default.
fn line_limit(b: u8) -> usize {
    match b {
        0 => 1000,
        n => n as usize,
    }
}

/// Fuzz target: input = piece size, line limit, then the client's bytes.
pub fn smtp_command(data: &[u8]) {
    let _ = parse(data);
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let max = line_limit(limit);
    let (pieces, stream) = pieces(rest);
    let expected = model_lines(stream, max);
    let mut conn = connection(pieces);
    let mut got = Vec::new();
    loop {
        match run(conn.read_line(max)) {
            Ok(Some(line)) => {
                assert!(line.len() <= max, "a line over the limit was returned");
                assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
                check_request(&line);
                got.push(Line::Ok(line));
            }
            Ok(None) => break,
            Err(ReadError::TooLong(_)) => got.push(Line::TooLong),
            Err(ReadError::BareLineEnding) => {
                got.push(Line::Bare);
                break;
            }
            Err(ReadError::Io(e)) => panic!("i/o error from an in-memory peer: {e}"),
        }
    }
    assert_eq!(got, expected, "the line reader disagrees with the model");
}

/// The lines a session sees: each LF ends a line; only CRLF is a valid ending, a line holding
/// a CR elsewhere is bare; the reading stops after a bare line; a last line without LF is
/// never returned (the peer closed mid-line).
fn model_lines(stream: &[u8], max: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..i];
        rest = &rest[i + 1..];
        if line.len() > max + 1 {
            out.push(Line::TooLong);
            continue;
        }
        match line.strip_suffix(b"\r") {
            Some(content) if !content.contains(&b'\r') => {
                if content.len() > max {
                    out.push(Line::TooLong);
                } else {
                    out.push(Line::Ok(content.to_vec()));
                }
            }
            _ => {
                out.push(Line::Bare);
                break;
            }
        }
    }
    out
}

/// What a parsed command may hold.
fn check_request(line: &[u8]) {
    match parse(line) {
        Ok(Request::Ehlo(domain) | Request::Helo(domain)) => {
            assert!(!domain.is_empty() && !domain.contains(char::is_whitespace));
        }
        Ok(Request::Rcpt { to }) => assert!(!to.is_empty()),
        Ok(Request::Auth { mechanism, .. }) => {
            assert_eq!(mechanism, mechanism.to_ascii_uppercase());
        }
        Ok(_) | Err(_) => {}
    }
}

/// What `read_body` must return, per the model, and the bytes after the part it reads.
fn model_body(stream: &[u8], limit: u64) -> (Option<Result<Vec<u8>, &'static str>>, &[u8]) {
    let mut body = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..=i];
        rest = &rest[i + 1..];
        if line == b".\r\n" {
            let result = if body.len() as u64 > limit {
                Err("too big")
            } else {
                Ok(body)
            };
            return (Some(result), rest);
        }
        let bare = match line.strip_suffix(b"\r\n") {
            Some(content) => content.contains(&b'\r'),
            None => true,
        };
        if bare {
            return (Some(Err("bare")), rest);
        }
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    (None, rest)
}

/// Fuzz target: input = piece size, size limit, then the message as the client sends it after
/// DATA. Inputs of 64 KiB and more are only checked for panics: the reader hands a line that
/// long over in segments, which the model does not copy.
pub fn smtp_data(data: &[u8]) {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    let limit = match limit {
        0 => u64::MAX,
        n => u64::from(n) * 8,
    };
    let (pieces, stream) = pieces(rest);
    let mut conn = connection(pieces);
    let got = match run(read_body(&mut conn, limit)) {
        Ok(Some(Body::Complete(body))) => Some(Ok(body)),
        Ok(Some(Body::TooBig)) => Some(Err("too big")),
        Ok(Some(Body::BareLineEnding)) => Some(Err("bare")),
        Ok(None) => None,
        Err(e) => panic!("i/o error from an in-memory peer: {e}"),
    };
    if stream.len() >= 64 * 1024 {
        return;
    }
    let (expected, after) = model_body(stream, limit);
    assert_eq!(got, expected, "the DATA reader disagrees with the model");
    if got.is_some() {
        // Nothing past the end of the message (or the bare line) may have been taken: the
        // session reads the next command, or closes, from exactly there.
        assert_eq!(
            unread(&mut conn),
            after,
            "the DATA reader consumed the wrong bytes"
        );
    }
}
