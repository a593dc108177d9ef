//! SMTP command parsing (RFC 5321 §4.1), pure: no I/O, no storage. One line in, one typed
//! `Request` or a `ParseError` that names the reply to send.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `EHLO domain`
    Ehlo(String),
    /// `HELO domain`
    Helo(String),
    /// `MAIL FROM:<path> [params]`; an empty path is the null sender.
    Mail {
        /// Reverse path without brackets.
        from: String,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path>`
    Rcpt {
        /// Forward path without brackets.
        to: String,
    },
    /// `DATA`
    Data,
    /// `RSET`
    Rset,
    /// `NOOP`
    Noop,
    /// `QUIT`
    Quit,
    /// `VRFY ...`
    Vrfy,
    /// `HELP ...`
    Help,
    /// `STARTTLS`
    StartTls,
    /// `AUTH mechanism [initial-response]`
    Auth {
        /// Upper-cased mechanism name.
        mechanism: String,
        /// Base64 initial response (RFC 4954), `=` for empty.
        initial: Option<String>,
    },
}

/// MAIL FROM parameters Tern understands (RFC 1870, 6152, 6531).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (or 7BIT).
    pub eight_bit: bool,
    /// `SMTPUTF8`
    pub smtputf8: bool,
}

/// Why a line is not a valid command; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Unknown verb (500 5.5.2).
    UnknownCommand,
    /// Known verb, bad arguments (501 5.5.4).
    Syntax(&'static str),
    /// An ESMTP parameter we do not support (555 5.5.4).
    UnknownParameter(String),
}

/// Parses one command line (without CRLF).
pub fn parse(line: &[u8]) -> Result<Request, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::UnknownCommand)?;
    if line.contains('\0') {
        return Err(ParseError::Syntax("NUL in command"));
    }
    let (verb, rest) = match line.split_once(' ') {
        Some((v, r)) => (v, r.trim()),
        None => (line.trim(), ""),
    };
    let no_args = |req: Request| {
        if rest.is_empty() {
            Ok(req)
        } else {
            Err(ParseError::Syntax("no arguments expected"))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" => {
            let domain = rest.split_whitespace().next().unwrap_or("");
            if domain.is_empty() {
                return Err(ParseError::Syntax("domain or address literal required"));
            }
            if verb.eq_ignore_ascii_case("EHLO") {
                Ok(Request::Ehlo(domain.to_string()))
            } else {
                Ok(Request::Helo(domain.to_string()))
            }
        }
        "MAIL" => {
            let args =
                strip_keyword(rest, "FROM:").ok_or(ParseError::Syntax("MAIL FROM:<address>"))?;
            let (path, params) = split_path(args)?;
            Ok(Request::Mail {
                from: path,
                params: parse_mail_params(params)?,
            })
        }
        "RCPT" => {
            let args = strip_keyword(rest, "TO:").ok_or(ParseError::Syntax("RCPT TO:<address>"))?;
            let (path, params) = split_path(args)?;
            if path.is_empty() {
                return Err(ParseError::Syntax("empty recipient"));
            }
            if let Some(p) = params.split_whitespace().next() {
                return Err(ParseError::UnknownParameter(p.to_string()));
            }
            Ok(Request::Rcpt { to: path })
        }
        "DATA" => no_args(Request::Data),
        "RSET" => no_args(Request::Rset),
        "QUIT" => no_args(Request::Quit),
        "STARTTLS" => no_args(Request::StartTls),
        "NOOP" => Ok(Request::Noop),
        "VRFY" => Ok(Request::Vrfy),
        "HELP" => Ok(Request::Help),
        "AUTH" => {
            let mut parts = rest.split_whitespace();
            let mechanism = parts
                .next()
                .ok_or(ParseError::Syntax("AUTH mechanism [initial-response]"))?
                .to_ascii_uppercase();
            let initial = parts.next().map(str::to_string);
            if parts.next().is_some() {
                return Err(ParseError::Syntax("AUTH mechanism [initial-response]"));
            }
            Ok(Request::Auth { mechanism, initial })
        }
        _ => Err(ParseError::UnknownCommand),
    }
}

/// `FROM:` / `TO:` case-insensitively, with optional space after the colon.
fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| rest[keyword.len()..].trim_start())
}

/// Splits `<path> params`; drops an RFC 5321 source route (`@a,@b:user@d`).
fn split_path(args: &str) -> Result<(String, &str), ParseError> {
    let inner = args
        .strip_prefix('<')
        .ok_or(ParseError::Syntax("address must be in angle brackets"))?;
    let end = inner
        .find('>')
        .ok_or(ParseError::Syntax("missing closing angle bracket"))?;
    let mut path = &inner[..end];
    if path.starts_with('@') {
        path = path.split_once(':').map(|(_, p)| p).unwrap_or("");
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<')
    {
        return Err(ParseError::Syntax("invalid characters in address"));
    }
    if !path.is_empty() {
        let (local, domain) = path
            .rsplit_once('@')
            .ok_or(ParseError::Syntax("address must be user@domain"))?;
        if local.is_empty() || domain.is_empty() {
            return Err(ParseError::Syntax("address must be user@domain"));
        }
    }
    Ok((path.to_string(), inner[end + 1..].trim()))
}

fn parse_mail_params(params: &str) -> Result<MailParams, ParseError> {
    let mut out = MailParams::default();
    for p in params.split_whitespace() {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                out.size = Some(
                    value
                        .parse()
                        .map_err(|_| ParseError::Syntax("SIZE=<number>"))?,
                )
            }
            "BODY" => match value.to_ascii_uppercase().as_str() {
                "8BITMIME" => out.eight_bit = true,
                "7BIT" => out.eight_bit = false,
                _ => return Err(ParseError::Syntax("BODY=7BIT or BODY=8BITMIME")),
            },
            "SMTPUTF8" if value.is_empty() => out.smtputf8 = true,
            _ => return Err(ParseError::UnknownParameter(p.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str) -> Request {
        Request::Mail {
            from: from.into(),
            params: MailParams::default(),
        }
    }

    #[test]
    fn table() {
        use ParseError::*;
        let cases: &[(&[u8], Result<Request, ParseError>)] = &[
            (
                b"EHLO client.example",
                Ok(Request::Ehlo("client.example".into())),
            ),
            (b"helo [127.0.0.1]", Ok(Request::Helo("[127.0.0.1]".into()))),
            (b"EHLO", Err(Syntax("domain or address literal required"))),
            (b"MAIL FROM:<a@b.example>", Ok(mail("a@b.example"))),
            (b"mail from: <a@b.example>", Ok(mail("a@b.example"))),
            (b"MAIL FROM:<>", Ok(mail(""))),
            (
                b"MAIL FROM:<@relay.example:a@b.example>",
                Ok(mail("a@b.example")),
            ),
            (
                b"MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME SMTPUTF8",
                Ok(Request::Mail {
                    from: "a@b.example".into(),
                    params: MailParams {
                        size: Some(1000),
                        eight_bit: true,
                        smtputf8: true,
                    },
                }),
            ),
            (
                b"MAIL FROM:a@b.example",
                Err(Syntax("address must be in angle brackets")),
            ),
            (
                b"MAIL FROM:<a@b.example",
                Err(Syntax("missing closing angle bracket")),
            ),
            (
                b"MAIL FROM:<nodomain>",
                Err(Syntax("address must be user@domain")),
            ),
            (
                b"MAIL FROM:<a@b.example> SIZE=big",
                Err(Syntax("SIZE=<number>")),
            ),
            (
                b"MAIL FROM:<a@b.example> FROB=1",
                Err(UnknownParameter("FROB=1".into())),
            ),
            (b"MAIL TO:<a@b.example>", Err(Syntax("MAIL FROM:<address>"))),
            (
                b"RCPT TO:<bob@example.org>",
                Ok(Request::Rcpt {
                    to: "bob@example.org".into(),
                }),
            ),
            (b"RCPT TO:<>", Err(Syntax("empty recipient"))),
            (b"DATA", Ok(Request::Data)),
            (b"DATA now", Err(Syntax("no arguments expected"))),
            (
                b"AUTH plain dGVzdA==",
                Ok(Request::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("dGVzdA==".into()),
                }),
            ),
            (b"AUTH", Err(Syntax("AUTH mechanism [initial-response]"))),
            (b"FROBNICATE", Err(UnknownCommand)),
            (b"\xff\xfe", Err(UnknownCommand)),
            (b"MAIL FROM:<a\0@b.example>", Err(Syntax("NUL in command"))),
            (b"", Err(UnknownCommand)),
        ];
        for (line, want) in cases {
            assert_eq!(&parse(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = parse(&line);
        }
    }
}
