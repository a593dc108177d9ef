//! The POP3 wire format, kept pure: commands parsed from one line, typed replies and their
//! encoding, and the byte-stuffing of message bodies (RFC 1939 §3). No I/O, no tokio, no
//! storage here, so every rule can be tested with a table.
//!
//! Framing (finding the line end, enforcing the line length) is done by
//! [`tern_core::net::Connection::read_line`], shared by all protocols; this module starts from
//! one complete line without its CRLF.

use std::borrow::Cow;
use thiserror::Error;

/// The longest command line we accept. RFC 2449 §4 allows 255 octets; a little slack covers
/// long SASL initial responses without letting a client make us buffer much.
pub const MAX_COMMAND_LINE: usize = 512;

/// The POP3 states in which commands are valid (RFC 1939 §3). UPDATE has no commands: the
/// server enters it on QUIT and leaves by closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before a successful USER/PASS or AUTH.
    Authorization,
    /// With the maildrop locked and its snapshot taken.
    Transaction,
}

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `USER name` (RFC 1939 §7).
    User(String),
    /// `PASS secret`; the secret is the rest of the line and may contain spaces (RFC 1939 §7).
    Pass(String),
    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4). Without a mechanism it lists the
    /// supported ones, as many clients expect.
    Auth {
        /// The SASL mechanism, upper-cased.
        mechanism: Option<String>,
        /// The base64 initial response; `=` (an empty response) is returned as `""`.
        initial: Option<String>,
    },
    /// `STAT` (RFC 1939 §5).
    Stat,
    /// `LIST [msg]`.
    List(Option<u32>),
    /// `UIDL [msg]` (RFC 1939 §7).
    Uidl(Option<u32>),
    /// `RETR msg`.
    Retr(u32),
    /// `TOP msg n` (RFC 1939 §7): the headers and the first `lines` lines of the body.
    Top {
        /// The message number.
        msg: u32,
        /// How many body lines to send.
        lines: u32,
    },
    /// `DELE msg`.
    Dele(u32),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
}

impl Command {
    /// The keyword, for logs: never the arguments, since PASS and AUTH carry secrets.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top { .. } => "TOP",
            Command::Dele(_) => "DELE",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
        }
    }

    /// Whether RFC 1939/2449/2595/5034 allow the command in `phase`.
    pub fn allowed_in(&self, phase: Phase) -> bool {
        match self {
            Command::Capa | Command::Quit => true,
            Command::Stls | Command::User(_) | Command::Pass(_) | Command::Auth { .. } => {
                phase == Phase::Authorization
            }
            Command::Stat
            | Command::List(_)
            | Command::Uidl(_)
            | Command::Retr(_)
            | Command::Top { .. }
            | Command::Dele(_)
            | Command::Rset
            | Command::Noop => phase == Phase::Transaction,
        }
    }
}

/// Why a line is not a valid command. The text is what the client sees after `-ERR`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The keyword is not one we implement.
    #[error("unknown command")]
    Unknown,
    /// NUL or other control characters, or bytes that are not UTF-8.
    #[error("invalid characters in command")]
    InvalidCharacters,
    /// The keyword is known but its arguments are wrong.
    #[error("syntax error: {0}")]
    Syntax(&'static str),
}

/// Parses one command line (without its line ending).
pub fn parse_command(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::InvalidCharacters)?;
    // Control characters have no place in POP3 arguments; refusing them here keeps NUL and
    // stray CRs out of user names, passwords and logs.
    if line.chars().any(char::is_control) {
        return Err(ParseError::InvalidCharacters);
    }
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    // Keywords are three or four letters (RFC 1939 §3); longer ones are unknown by definition.
    if keyword.len() > 4 {
        return Err(ParseError::Unknown);
    }
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    match keyword.as_str() {
        "CAPA" => no_args(&args).map(|()| Command::Capa),
        "STLS" => no_args(&args).map(|()| Command::Stls),
        "STAT" => no_args(&args).map(|()| Command::Stat),
        "RSET" => no_args(&args).map(|()| Command::Rset),
        "NOOP" => no_args(&args).map(|()| Command::Noop),
        "QUIT" => no_args(&args).map(|()| Command::Quit),
        "USER" => match args.as_slice() {
            [name] if !name.is_empty() => Ok(Command::User((*name).to_string())),
            _ => Err(ParseError::Syntax("USER takes one name")),
        },
        "PASS" => match rest {
            Some(secret) if !secret.is_empty() => Ok(Command::Pass(secret.to_string())),
            _ => Err(ParseError::Syntax("PASS takes a password")),
        },
        "AUTH" => parse_auth(&args),
        "LIST" => optional_number(&args).map(Command::List),
        "UIDL" => optional_number(&args).map(Command::Uidl),
        "RETR" => one_number(&args).map(Command::Retr),
        "DELE" => one_number(&args).map(Command::Dele),
        "TOP" => match args.as_slice() {
            [msg, lines] => Ok(Command::Top {
                msg: number(msg)?,
                lines: number(lines)?,
            }),
            _ => Err(ParseError::Syntax(
                "TOP takes a message number and a line count",
            )),
        },
        _ => Err(ParseError::Unknown),
    }
}

fn no_args(args: &[&str]) -> Result<(), ParseError> {
    // Some clients send a trailing space; an empty argument list after it is still "none".
    if args.iter().all(|a| a.is_empty()) {
        Ok(())
    } else {
        Err(ParseError::Syntax("no arguments expected"))
    }
}

fn optional_number(args: &[&str]) -> Result<Option<u32>, ParseError> {
    match args {
        [] | [""] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(ParseError::Syntax("too many arguments")),
    }
}

fn one_number(args: &[&str]) -> Result<u32, ParseError> {
    match args {
        [n] => number(n),
        _ => Err(ParseError::Syntax("a message number is required")),
    }
}

fn number(s: &str) -> Result<u32, ParseError> {
    // `u32::from_str` accepts a leading `+`; POP3 numbers are plain digits only.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax("invalid number"));
    }
    s.parse()
        .map_err(|_| ParseError::Syntax("number too large"))
}

fn parse_auth(args: &[&str]) -> Result<Command, ParseError> {
    match args {
        [] | [""] => Ok(Command::Auth {
            mechanism: None,
            initial: None,
        }),
        [mechanism] => Ok(Command::Auth {
            mechanism: Some(mechanism.to_ascii_uppercase()),
            initial: None,
        }),
        [mechanism, initial] if !initial.is_empty() => Ok(Command::Auth {
            mechanism: Some(mechanism.to_ascii_uppercase()),
            // RFC 5034 §4: a lone "=" stands for an empty initial response.
            initial: Some(if *initial == "=" {
                String::new()
            } else {
                (*initial).to_string()
            }),
        }),
        _ => Err(ParseError::Syntax(
            "AUTH takes a mechanism and an initial response",
        )),
    }
}

/// RFC 2449 §8 / RFC 3206 extended response codes, shown in brackets after `-ERR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespCode {
    /// `[IN-USE]`: the maildrop is locked by another session (RFC 2449 §8.1.1).
    InUse,
    /// `[SYS/TEMP]`: a temporary server problem (RFC 3206 §4).
    SysTemp,
    /// `[SYS/PERM]`: a permanent server problem (RFC 3206 §4).
    SysPerm,
    /// `[AUTH]`: a problem with the credentials or the way they were sent (RFC 3206 §5).
    Auth,
}

impl RespCode {
    /// The code as written on the wire, without brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            RespCode::InUse => "IN-USE",
            RespCode::SysTemp => "SYS/TEMP",
            RespCode::SysPerm => "SYS/PERM",
            RespCode::Auth => "AUTH",
        }
    }
}

/// A status line: `+OK text` or `-ERR [CODE] text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `+OK` or `-ERR`.
    pub ok: bool,
    /// The extended response code of an `-ERR`, if any.
    pub code: Option<RespCode>,
    /// Human-readable text.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// A `+OK` reply with fixed text.
    pub const fn ok(text: &'static str) -> Reply {
        Reply {
            ok: true,
            code: None,
            text: Cow::Borrowed(text),
        }
    }

    /// A `-ERR` reply with fixed text.
    pub const fn err(code: Option<RespCode>, text: &'static str) -> Reply {
        Reply {
            ok: false,
            code,
            text: Cow::Borrowed(text),
        }
    }

    /// A `+OK` reply with computed text.
    pub fn ok_with(text: String) -> Reply {
        Reply {
            ok: true,
            code: None,
            text: Cow::Owned(text),
        }
    }

    /// A `-ERR` reply with computed text.
    pub fn err_with(code: Option<RespCode>, text: String) -> Reply {
        Reply {
            ok: false,
            code,
            text: Cow::Owned(text),
        }
    }

    /// Appends the status line, with CRLF, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.ok { b"+OK" } else { b"-ERR" });
        if let Some(code) = self.code {
            out.extend_from_slice(b" [");
            out.extend_from_slice(code.as_str().as_bytes());
            out.push(b']');
        }
        if !self.text.is_empty() {
            out.push(b' ');
            // A line break inside the text would end the reply early and let the rest be read
            // as another reply; computed texts never hold one, but make it impossible.
            out.extend(
                self.text
                    .bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends a multi-line reply (RFC 1939 §3): the status line, each line byte-stuffed, and the
/// terminating `.` line.
pub fn encode_multiline<I, S>(reply: &Reply, lines: I, out: &mut Vec<u8>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    reply.encode(out);
    let mut stuffer = DotStuffer::new();
    for line in lines {
        stuffer.push(line.as_ref().as_bytes(), out);
        stuffer.push(b"\r\n", out);
    }
    stuffer.finish(out);
}

/// The empty SASL challenge of PLAIN (RFC 5034 §4: `+` and a space).
pub const SASL_CONTINUE: &[u8] = b"+ \r\n";

/// Encodes a message body as the payload of a multi-line reply: every line ends in CRLF (a bare
/// LF becomes CRLF), a line starting with `.` gets a second one, and [`finish`](Self::finish)
/// adds the final CRLF if missing and the terminating `.` line. It keeps state between calls,
/// so a large body can be sent in chunks of any size.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The previous chunk ended in CR; whether it ends a line depends on the next byte.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer::new()
    }
}

impl DotStuffer {
    /// A stuffer at the start of a body.
    pub fn new() -> DotStuffer {
        DotStuffer {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Appends the stuffed form of `input` to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 32 + 2);
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                    continue;
                }
                // A bare CR inside a line is passed through: it does not end the line.
                out.push(b'\r');
                self.at_line_start = false;
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
                _ => {
                    if self.at_line_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Ends the body: a final CRLF if the last line lacked one, then `.` CRLF.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// The part of `message` that `TOP msg lines` sends: the header section, the blank line that
/// ends it, and at most `lines` lines of the body (RFC 1939 §7). A message without a blank
/// line is all header.
pub fn top(message: &[u8], lines: u32) -> &[u8] {
    let Some(body_start) = body_offset(message) else {
        return message;
    };
    let mut end = body_start;
    for _ in 0..lines {
        match message[end..].iter().position(|&b| b == b'\n') {
            Some(i) => end += i + 1,
            None => return message,
        }
    }
    &message[..end]
}

/// Where the body starts: just after the first empty line (CRLF or bare LF).
fn body_offset(message: &[u8]) -> Option<usize> {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| start + i + 1)?;
        let line = &message[start..end];
        if line == b"\n" || line == b"\r\n" {
            return Some(end);
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mechanism: Option<&str>, initial: Option<&str>) -> Command {
        Command::Auth {
            mechanism: mechanism.map(str::to_string),
            initial: initial.map(str::to_string),
        }
    }

    #[test]
    fn parses_good_commands() {
        let table: Vec<(&[u8], Command)> = vec![
            (b"CAPA", Command::Capa),
            (b"capa", Command::Capa),
            (b"STLS", Command::Stls),
            (
                b"USER alice@example.com",
                Command::User("alice@example.com".into()),
            ),
            (b"PASS secret", Command::Pass("secret".into())),
            (
                b"PASS with spaces in it",
                Command::Pass("with spaces in it".into()),
            ),
            (b"AUTH", auth(None, None)),
            (b"AUTH plain", auth(Some("PLAIN"), None)),
            (
                b"AUTH PLAIN AGFsaWNlAHB3",
                auth(Some("PLAIN"), Some("AGFsaWNlAHB3")),
            ),
            (b"AUTH PLAIN =", auth(Some("PLAIN"), Some(""))),
            (b"STAT", Command::Stat),
            (b"LIST", Command::List(None)),
            (b"LIST ", Command::List(None)),
            (b"LIST 3", Command::List(Some(3))),
            (b"UIDL", Command::Uidl(None)),
            (b"uidl 12", Command::Uidl(Some(12))),
            (b"RETR 1", Command::Retr(1)),
            (b"TOP 2 0", Command::Top { msg: 2, lines: 0 }),
            (b"Top 2 10", Command::Top { msg: 2, lines: 10 }),
            (b"DELE 4294967295", Command::Dele(u32::MAX)),
            (b"RSET", Command::Rset),
            (b"NOOP", Command::Noop),
            (b"QUIT", Command::Quit),
            (b"QUIT ", Command::Quit),
        ];
        for (line, want) in table {
            let got = parse_command(line);
            assert_eq!(got, Ok(want), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn rejects_malformed_commands() {
        let table: Vec<(&[u8], ParseError)> = vec![
            (b"", ParseError::Unknown),
            (b"HELO", ParseError::Unknown),
            (b"APOP user digest", ParseError::Unknown),
            (b"RETRIEVE 1", ParseError::Unknown),
            (b"RETR", ParseError::Syntax("a message number is required")),
            (b"RETR one", ParseError::Syntax("invalid number")),
            (b"RETR +1", ParseError::Syntax("invalid number")),
            (b"RETR -1", ParseError::Syntax("invalid number")),
            (
                b"RETR 1 2",
                ParseError::Syntax("a message number is required"),
            ),
            (
                b"RETR  1",
                ParseError::Syntax("a message number is required"),
            ),
            (b"DELE 4294967296", ParseError::Syntax("number too large")),
            (b"LIST 1 2", ParseError::Syntax("too many arguments")),
            (
                b"TOP 1",
                ParseError::Syntax("TOP takes a message number and a line count"),
            ),
            (b"TOP 1 x", ParseError::Syntax("invalid number")),
            (b"STAT now", ParseError::Syntax("no arguments expected")),
            (b"USER", ParseError::Syntax("USER takes one name")),
            (b"USER a b", ParseError::Syntax("USER takes one name")),
            (b"PASS", ParseError::Syntax("PASS takes a password")),
            (b"PASS ", ParseError::Syntax("PASS takes a password")),
            (
                b"AUTH PLAIN a b",
                ParseError::Syntax("AUTH takes a mechanism and an initial response"),
            ),
        ];
        for (line, want) in table {
            let got = parse_command(line);
            assert_eq!(got, Err(want), "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn rejects_hostile_commands() {
        let long_keyword = vec![b'A'; 10_000];
        let mut huge_number = b"RETR ".to_vec();
        huge_number.extend(std::iter::repeat_n(b'9', 5_000));
        let table: Vec<(&[u8], ParseError)> = vec![
            (b"USER a\0b", ParseError::InvalidCharacters),
            (b"PASS x\ry", ParseError::InvalidCharacters),
            (b"USER a\tb", ParseError::InvalidCharacters),
            (b"STAT\x1b[2J", ParseError::InvalidCharacters),
            (b"USER \xff\xfe", ParseError::InvalidCharacters),
            (b"\x80\x80", ParseError::InvalidCharacters),
            (&long_keyword, ParseError::Unknown),
            (&huge_number, ParseError::Syntax("number too large")),
        ];
        for (line, want) in table {
            assert_eq!(parse_command(line), Err(want));
        }
    }

    #[test]
    fn commands_are_gated_by_phase() {
        use Phase::{Authorization as A, Transaction as T};
        let table = [
            (Command::Capa, true, true),
            (Command::Quit, true, true),
            (Command::Stls, true, false),
            (Command::User("u".into()), true, false),
            (Command::Pass("p".into()), true, false),
            (auth(None, None), true, false),
            (Command::Stat, false, true),
            (Command::Retr(1), false, true),
            (Command::Top { msg: 1, lines: 1 }, false, true),
            (Command::Dele(1), false, true),
            (Command::Rset, false, true),
            (Command::Noop, false, true),
            (Command::List(None), false, true),
            (Command::Uidl(None), false, true),
        ];
        for (cmd, in_auth, in_trans) in table {
            assert_eq!(cmd.allowed_in(A), in_auth, "{cmd:?} in AUTHORIZATION");
            assert_eq!(cmd.allowed_in(T), in_trans, "{cmd:?} in TRANSACTION");
        }
    }

    fn encoded(reply: &Reply) -> String {
        let mut out = Vec::new();
        reply.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn encodes_replies() {
        assert_eq!(encoded(&Reply::ok("ready")), "+OK ready\r\n");
        assert_eq!(encoded(&Reply::ok("")), "+OK\r\n");
        assert_eq!(
            encoded(&Reply::err(Some(RespCode::InUse), "locked")),
            "-ERR [IN-USE] locked\r\n"
        );
        assert_eq!(
            encoded(&Reply::err_with(
                Some(RespCode::SysTemp),
                "a\r\n+OK b".into()
            )),
            "-ERR [SYS/TEMP] a  +OK b\r\n"
        );
        let mut out = Vec::new();
        encode_multiline(&Reply::ok("list"), ["1 10", ".hidden"], &mut out);
        assert_eq!(out, b"+OK list\r\n1 10\r\n..hidden\r\n.\r\n");
    }

    fn stuffed(chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = DotStuffer::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn stuffs_bodies() {
        let table: Vec<(&[u8], &[u8])> = vec![
            (b"", b".\r\n"),
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b"no final newline", b"no final newline\r\n.\r\n"),
            (b"bare\nlf\n", b"bare\r\nlf\r\n.\r\n"),
            (
                b".starts\r\n..two\r\nmid.dle\r\n",
                b"..starts\r\n...two\r\nmid.dle\r\n.\r\n",
            ),
            (b"a\r\n.\r\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"bare\rcr\r\n", b"bare\rcr\r\n.\r\n"),
            (b"ends in cr\r", b"ends in cr\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
        ];
        for (body, want) in table {
            assert_eq!(stuffed(&[body]), want, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn stuffing_is_independent_of_chunk_boundaries() {
        let body = b"Subject: x\r\n\r\n.line\r\n\r\n.\r\nbare\nend\r".as_slice();
        let whole = stuffed(&[body]);
        for split in 0..=body.len() {
            let (a, b) = body.split_at(split);
            assert_eq!(stuffed(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(stuffed(&bytes), whole);
    }

    #[test]
    fn top_cuts_after_headers_and_n_lines() {
        let msg = b"From: a\r\nSubject: b\r\n\r\none\r\ntwo\r\nthree\r\n".as_slice();
        assert_eq!(top(msg, 0), b"From: a\r\nSubject: b\r\n\r\n");
        assert_eq!(top(msg, 2), b"From: a\r\nSubject: b\r\n\r\none\r\ntwo\r\n");
        assert_eq!(top(msg, 3), msg);
        assert_eq!(top(msg, u32::MAX), msg);
        assert_eq!(
            top(b"From: a\nb: c\n\nbody\nmore\n", 1),
            b"From: a\nb: c\n\nbody\n"
        );
        assert_eq!(top(b"only: headers\r\n", 5), b"only: headers\r\n");
        assert_eq!(top(b"h: v\r\n\r\nno newline", 5), b"h: v\r\n\r\nno newline");
        assert_eq!(top(b"", 1), b"");
    }

    /// Bare LFs become CRLF and a final line ending is added, as RETR promises.
    fn crlf_normalised(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
                out.push(b'\r');
            }
            out.push(b);
        }
        if out.last() == Some(&b'\r') {
            out.push(b'\n');
        } else if !out.is_empty() && !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(line in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_command(&line);
        }

        #[test]
        fn stuffed_output_round_trips(body in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b'.', b'\r', b'\n', b' ']), 0..200)) {
            let out = stuffed(&[&body]);
            // Undo the stuffing as a client would; the result must be the body with CRLF line
            // endings, computed independently below.
            let text = out.strip_suffix(b".\r\n").unwrap();
            let mut unstuffed = Vec::new();
            for line in text.split_inclusive(|&b| b == b'\n') {
                proptest::prop_assert!(line.ends_with(b"\r\n"));
                proptest::prop_assert!(line != b".\r\n");
                unstuffed.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            }
            proptest::prop_assert_eq!(unstuffed, crlf_normalised(&body));
        }
    }
}
