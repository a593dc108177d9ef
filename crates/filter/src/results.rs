//! The Authentication-Results header (RFC 8601): one `method=result (comment) property=value`
//! entry per check, under our host name as authserv-id. Also obscures headers that claim our
//! authserv-id but arrived with the message (RFC 8601 §5), so nobody can forge our verdict.

use std::fmt::Write;

/// Longest property value or comment kept; attacker-supplied text stays short.
const MAX_VALUE: usize = 255;

/// What an incoming forged header is renamed to.
const FORGED_NAME: &str = "X-Forged-Authentication-Results";

/// One check's outcome, as RFC 8601 spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    /// `pass`
    Pass,
    /// `fail`
    Fail,
    /// `softfail` (SPF only)
    SoftFail,
    /// `neutral`
    Neutral,
    /// `none`: nothing to check (no record, no signature).
    None,
    /// `temperror`: a DNS failure; the check may pass later.
    TempError,
    /// `permerror`: a broken record or signature.
    PermError,
}

impl AuthResult {
    /// The RFC 8601 result keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

/// One `method=result` entry of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// `spf`, `dkim`, `dmarc` or `auth`.
    pub method: &'static str,
    /// The outcome.
    pub result: AuthResult,
    /// A human-readable comment, shown in parentheses.
    pub comment: Option<String>,
    /// `ptype.property=value` pairs, e.g. (`smtp.mailfrom`, `a@example.org`).
    pub properties: Vec<(&'static str, String)>,
}

impl MethodResult {
    /// An entry without comment or properties.
    pub fn new(method: &'static str, result: AuthResult) -> MethodResult {
        MethodResult {
            method,
            result,
            comment: None,
            properties: Vec::new(),
        }
    }

    /// Adds a comment.
    pub fn comment(mut self, comment: impl Into<String>) -> MethodResult {
        self.comment = Some(comment.into());
        self
    }

    /// Adds a property.
    pub fn property(mut self, name: &'static str, value: impl Into<String>) -> MethodResult {
        self.properties.push((name, value.into()));
        self
    }
}

/// The whole header line, CRLF-terminated: `Authentication-Results: ID; entry; entry` with one
/// entry per folded line, or `ID; none` when nothing was checked.
pub fn header(authserv_id: &str, results: &[MethodResult]) -> String {
    let mut out = format!("Authentication-Results: {}", clean(authserv_id, false));
    if results.is_empty() {
        out.push_str("; none");
    }
    for r in results {
        let _ = write!(out, ";\r\n\t{}={}", r.method, r.result.as_str());
        if let Some(comment) = &r.comment {
            let _ = write!(out, " ({})", clean(comment, true));
        }
        for (name, value) in &r.properties {
            let _ = write!(out, " {name}={}", pvalue(value));
        }
    }
    out.push_str("\r\n");
    out
}

/// The submission header: the user authenticated with SMTP AUTH.
pub fn submission_header(authserv_id: &str, user: &str) -> String {
    let auth = MethodResult::new("auth", AuthResult::Pass).property("smtp.auth", user);
    header(authserv_id, &[auth])
}

/// Removes control characters (header injection) and, in comments, parentheses and
/// backslashes; cuts the text to a sane length.
fn clean(text: &str, comment: bool) -> String {
    text.chars()
        .filter(|c| !(c.is_control() || (comment && matches!(c, '(' | ')' | '\\'))))
        .take(MAX_VALUE)
        .collect()
}

/// A property value: bare when it is a token or an address, else a quoted string.
fn pvalue(value: &str) -> String {
    let value = clean(value, false);
    let bare = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.@".contains(c) || !c.is_ascii()
        });
    if bare {
        return value;
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// The message with every Authentication-Results header that claims `authserv_id` renamed, so
/// that no reader mistakes a forged one for ours. Other headers and the body are untouched.
pub fn obscure_forged(message: &[u8], authserv_id: &str) -> Vec<u8> {
    const NAME: &[u8] = b"authentication-results";
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut rest = message;
    while !rest.is_empty() && !rest.starts_with(b"\r\n") && !rest.starts_with(b"\n") {
        let field = &rest[..field_len(rest)];
        match header_value(field, NAME) {
            Some(value) if claims(value, authserv_id) => {
                out.extend_from_slice(FORGED_NAME.as_bytes());
                out.extend_from_slice(&field[NAME.len()..]);
            }
            _ => out.extend_from_slice(field),
        }
        rest = &rest[field.len()..];
    }
    // The blank line and the body follow unchanged.
    out.extend_from_slice(rest);
    out
}

/// The names of the message's header fields, in order.
pub(crate) fn header_names(message: &[u8]) -> Vec<&[u8]> {
    let mut names = Vec::new();
    let mut rest = message;
    while !rest.is_empty() && !rest.starts_with(b"\r\n") && !rest.starts_with(b"\n") {
        let field = &rest[..field_len(rest)];
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            names.push(field[..colon].trim_ascii_end());
        }
        rest = &rest[field.len()..];
    }
    names
}

/// The length of the header field at the start of `text`: its first line and every
/// continuation line (one starting with a space or tab).
fn field_len(text: &[u8]) -> usize {
    let mut end = 0;
    loop {
        end += text[end..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len() - end, |i| i + 1);
        if !matches!(text.get(end), Some(b' ' | b'\t')) {
            return end;
        }
    }
}

/// The value of `field` if it is a header field called `name` (ASCII case-insensitive).
fn header_value<'a>(field: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let head = field.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    let after = &field[name.len()..];
    let colon = after.iter().position(|&b| b == b':')?;
    after[..colon]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t')
        .then(|| &after[colon + 1..])
}

/// Whether a header value starts with `authserv_id` (after any folding whitespace).
fn claims(value: &[u8], authserv_id: &str) -> bool {
    let value = String::from_utf8_lossy(value);
    let id = value
        .split(|c: char| c == ';' || c.is_whitespace())
        .find(|word| !word.is_empty())
        .unwrap_or("");
    id.eq_ignore_ascii_case(authserv_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_each_method_on_its_own_line() {
        let results = [
            MethodResult::new("spf", AuthResult::Pass)
                .comment("domain of a@example.org designates 192.0.2.1 as permitted sender")
                .property("smtp.mailfrom", "a@example.org"),
            MethodResult::new("dkim", AuthResult::Fail)
                .comment("bad (signature)\r\nX-Evil: 1")
                .property("header.d", "example.org")
                .property("header.s", "sel"),
            MethodResult::new("dmarc", AuthResult::Fail)
                .comment("p=reject dis=reject")
                .property("header.from", "example.org"),
        ];
        let h = header("mx.example.com", &results);
        assert_eq!(
            h,
            "Authentication-Results: mx.example.com;\r\n\
             \tspf=pass (domain of a@example.org designates 192.0.2.1 as permitted sender) \
             smtp.mailfrom=a@example.org;\r\n\
             \tdkim=fail (bad signatureX-Evil: 1) header.d=example.org header.s=sel;\r\n\
             \tdmarc=fail (p=reject dis=reject) header.from=example.org\r\n"
        );
    }

    #[test]
    fn nothing_checked_is_none_and_odd_values_are_quoted() {
        assert_eq!(header("mx", &[]), "Authentication-Results: mx; none\r\n");
        let r = MethodResult::new("spf", AuthResult::None).property("smtp.helo", "a b\"c\r\n");
        assert_eq!(
            header("mx", &[r]),
            "Authentication-Results: mx;\r\n\tspf=none smtp.helo=\"a b\\\"c\"\r\n"
        );
        assert_eq!(
            submission_header("mx.example.com", "bob@example.com"),
            "Authentication-Results: mx.example.com;\r\n\tauth=pass smtp.auth=bob@example.com\r\n"
        );
    }

    #[test]
    fn forged_results_with_our_id_are_renamed() {
        let message = b"Received: x\r\n\
            Authentication-Results: MX.example.com; dkim=pass\r\n\
            authentication-results : other.example; spf=pass\r\n\
            Authentication-Results:\r\n mx.example.com;\r\n spf=pass\r\n\
            Subject: hi\r\n\r\n\
            Authentication-Results: mx.example.com; in the body\r\n";
        let out = String::from_utf8(obscure_forged(message, "mx.example.com")).unwrap();
        assert_eq!(
            out,
            "Received: x\r\n\
             X-Forged-Authentication-Results: MX.example.com; dkim=pass\r\n\
             authentication-results : other.example; spf=pass\r\n\
             X-Forged-Authentication-Results:\r\n mx.example.com;\r\n spf=pass\r\n\
             Subject: hi\r\n\r\n\
             Authentication-Results: mx.example.com; in the body\r\n"
        );
    }
}
