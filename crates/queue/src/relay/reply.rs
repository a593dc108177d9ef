//! SMTP replies as the client reads them (RFC 5321 §4.2): a three-digit code on every line,
//! `-` after the code on all but the last line. Pure: no I/O, so the parser is tested alone.

use std::fmt;

/// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; servers are generous).
pub(crate) const MAX_LINE: usize = 4096;
/// Most lines in one reply (a long EHLO answer has a dozen).
pub(crate) const MAX_LINES: usize = 128;

/// One complete reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteReply {
    /// The basic code, 200..=599.
    pub code: u16,
    /// The text of each line, without code and separator.
    pub lines: Vec<String>,
}

/// Why a line is not part of a valid reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// Not `DDD`, `DDD text` or `DDD-text`.
    #[error("malformed reply line {0:?}")]
    Malformed(String),
    /// The lines of one reply carry different codes.
    #[error("reply code changed within a multi-line reply")]
    MixedCodes,
    /// Too many lines or too long a line.
    #[error("reply too long")]
    TooLong,
}

/// Collects lines until a reply is complete.
#[derive(Debug, Default)]
pub(crate) struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Feeds one line (CRLF or LF stripped or not); returns the reply once its last line came.
    pub(crate) fn line(&mut self, raw: &str) -> Result<Option<RemoteReply>, ReplyError> {
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.len() > MAX_LINE || self.lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        let malformed = || ReplyError::Malformed(line.chars().take(80).collect());
        let digits = line.get(..3).ok_or_else(malformed)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        let code: u16 = digits.parse().map_err(|_| malformed())?;
        if !(200..=599).contains(&code) {
            return Err(malformed());
        }
        if self.code.is_some_and(|c| c != code) {
            return Err(ReplyError::MixedCodes);
        }
        self.code = Some(code);
        let (last, text) = match line.as_bytes().get(3) {
            None => (true, ""),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(malformed()),
        };
        self.lines.push(text.to_string());
        if !last {
            return Ok(None);
        }
        let reply = RemoteReply {
            code,
            lines: std::mem::take(&mut self.lines),
        };
        self.code = None;
        Ok(Some(reply))
    }
}

impl RemoteReply {
    /// 2xx.
    pub(crate) fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 5xx: do not try again.
    pub(crate) fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code (RFC 3463) at the start of the text, if the server sent one
    /// whose class matches the basic code; otherwise one derived from the basic code.
    pub(crate) fn status(&self) -> String {
        let class = self.code / 100;
        let first = self.lines.first().map(String::as_str).unwrap_or("");
        let word = first.split(' ').next().unwrap_or("");
        let parts: Vec<&str> = word.split('.').collect();
        let numeric = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        if numeric && parts[0] == class.to_string() {
            word.to_string()
        } else {
            format!("{class}.0.0")
        }
    }

    /// The reply on one line, as logged and quoted in a DSN: `550 5.1.1 no such user`.
    pub(crate) fn one_line(&self) -> String {
        let text = self.lines.join(" ");
        let text: String = text.chars().filter(|c| !c.is_control()).take(400).collect();
        if text.is_empty() {
            self.code.to_string()
        } else {
            format!("{} {text}", self.code)
        }
    }

    /// The extension keywords of an EHLO reply (every line but the greeting), upper-cased
    /// keyword with its parameters.
    pub(crate) fn extensions(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .skip(1)
            .map(|l| {
                let mut parts = l.splitn(2, ' ');
                let keyword = parts.next().unwrap_or("").to_ascii_uppercase();
                (keyword, parts.next().unwrap_or("").trim().to_string())
            })
            .collect()
    }
}

impl fmt::Display for RemoteReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.one_line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Vec<RemoteReply>, ReplyError> {
        let mut p = ReplyParser::default();
        let mut out = Vec::new();
        for l in lines {
            if let Some(r) = p.line(l)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    #[test]
    fn single_and_multi_line_replies() {
        let r = parse(&["250 2.1.0 Ok\r\n"]).unwrap();
        assert_eq!(r[0].code, 250);
        assert_eq!(r[0].status(), "2.1.0");
        let ehlo = parse(&[
            "250-mx.example greets you",
            "250-PIPELINING",
            "250-SIZE 1000",
            "250-starttls",
            "250 8BITMIME",
        ])
        .unwrap();
        assert_eq!(ehlo.len(), 1);
        let ext = ehlo[0].extensions();
        assert_eq!(ext[1], ("SIZE".to_string(), "1000".to_string()));
        assert_eq!(ext[2].0, "STARTTLS");
        assert_eq!(parse(&["220"]).unwrap()[0].lines, vec![String::new()]);
    }

    #[test]
    fn partial_input_waits_for_the_last_line() {
        let mut p = ReplyParser::default();
        assert_eq!(p.line("250-first").unwrap(), None);
        assert!(p.line("250 last").unwrap().is_some());
    }

    #[test]
    fn status_codes_fall_back_to_the_class() {
        let reply = |code, text: &str| RemoteReply {
            code,
            lines: vec![text.to_string()],
        };
        assert_eq!(reply(550, "5.1.1 no such user").status(), "5.1.1");
        assert_eq!(reply(450, "try later").status(), "4.0.0");
        // An enhanced code of the wrong class is not believed.
        assert_eq!(reply(450, "5.1.1 confused").status(), "4.0.0");
        assert_eq!(reply(550, "5.1.1.1 odd").status(), "5.0.0");
        assert_eq!(reply(451, "").one_line(), "451");
        assert_eq!(reply(550, "a\tb").one_line(), "550 ab");
    }

    #[test]
    fn malformed_and_hostile_input() {
        assert!(matches!(parse(&["25"]), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(&["abc hi"]), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(&["250_x"]), Err(ReplyError::Malformed(_))));
        assert!(matches!(parse(&["999 x"]), Err(ReplyError::Malformed(_))));
        assert!(matches!(
            parse(&["250-a", "251 b"]),
            Err(ReplyError::MixedCodes)
        ));
        let long = format!("250 {}", "x".repeat(MAX_LINE));
        assert!(matches!(parse(&[&long]), Err(ReplyError::TooLong)));
        let many: Vec<&str> = std::iter::repeat_n("250-x", MAX_LINES + 1).collect();
        assert!(matches!(parse(&many), Err(ReplyError::TooLong)));
    }
}
