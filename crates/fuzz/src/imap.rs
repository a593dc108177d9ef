//! IMAP: commands assembled from lines and literals as the session does it
//! (`trailing_literal`, then exactly the announced bytes), each given to `proto::parse`; and
//! the inverses the responses rely on: a string written by `encode::string` reads back as the
//! same bytes, and modified UTF-7 decodes back to what it encoded.

use crate::exec::{connection, pieces, run};
use tern_core::net::ReadError;
use tern_imap::proto::encode;
use tern_imap::proto::lexer::Lexer;
use tern_imap::proto::{SeqSet, mutf7, parse, trailing_literal};

/// The session's line limit.
const MAX_LINE: usize = 8192;
/// Larger literals are refused by the session before any byte is read; smaller here keeps
/// the harness fast.
const MAX_LITERAL: u64 = 64 * 1024;

/// Fuzz target: input = piece size, then the client's bytes (commands with literals).
pub fn imap_command(data: &[u8]) {
    check_parse(data);
    let (pieces, _) = pieces(data);
    let mut conn = connection(pieces);
    'commands: loop {
        let mut buf = Vec::new();
        loop {
            let line = match run(conn.read_line(MAX_LINE)) {
                Ok(Some(line)) => line,
                Ok(None) | Err(ReadError::BareLineEnding) => break 'commands,
                Err(ReadError::TooLong(_)) => continue 'commands,
                Err(ReadError::Io(e)) => panic!("i/o error from an in-memory peer: {e}"),
            };
            buf.extend_from_slice(&line);
            let Some((size, _)) = trailing_literal(&line) else {
                break;
            };
            if size > MAX_LITERAL {
                continue 'commands;
            }
            buf.extend_from_slice(b"\r\n");
            match run(conn.read_exact(size as usize)) {
                Ok(bytes) => buf.extend_from_slice(&bytes),
                Err(_) => break 'commands,
            }
        }
        check_parse(&buf);
    }
    round_trips(data);
}

/// `parse` never panics; a tag it reports is a plain atom.
fn check_parse(command: &[u8]) {
    let tag = match parse(command) {
        Ok(tagged) => Some(tagged.tag),
        Err((tag, _)) => tag,
    };
    if let Some(tag) = tag {
        assert!(!tag.contains([' ', '\r', '\n']), "tag {tag:?}");
    }
}

/// The encoders and their readers agree.
fn round_trips(data: &[u8]) {
    let mut out = Vec::new();
    encode::string(&mut out, data);
    let mut lexer = Lexer::new(&out);
    assert_eq!(
        lexer.astring().ok().as_deref(),
        Some(data),
        "encode::string"
    );
    assert!(lexer.at_end(), "encode::string left bytes behind");

    let text = String::from_utf8_lossy(data);
    let wire = mutf7::encode(&text);
    assert!(wire.is_ascii(), "modified UTF-7 is ASCII");
    assert_eq!(mutf7::decode(&wire).as_deref(), Some(&*text), "mutf7");
    if let Some(name) = mutf7::decode(&text) {
        assert_eq!(mutf7::decode(&mutf7::encode(&name)), Some(name));
    }

    if let Ok(set) = SeqSet::from_text(&text) {
        for n in [1, 2, 7, u32::MAX] {
            let _ = set.contains(n, 10);
        }
    }
}
