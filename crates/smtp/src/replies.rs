//! Typed SMTP replies (RFC 5321 §4.2, enhanced codes RFC 3463). Every reply text the server
//! sends is built here.

use std::borrow::Cow;

/// One reply: basic code, enhanced status code, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Basic code, e.g. 250.
    pub code: u16,
    /// Enhanced status code, e.g. "2.1.0".
    pub enhanced: &'static str,
    /// Human-readable text.
    pub text: Cow<'static, str>,
}

const fn r(code: u16, enhanced: &'static str, text: &'static str) -> Reply {
    Reply {
        code,
        enhanced,
        text: Cow::Borrowed(text),
    }
}

impl Reply {
    /// A reply with computed text.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// Wire form, one line with CRLF.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.enhanced.is_empty() {
            format!("{} {}\r\n", self.code, self.text).into_bytes()
        } else {
            format!("{} {} {}\r\n", self.code, self.enhanced, self.text).into_bytes()
        }
    }

    /// Whether the reply closes the session (421).
    pub fn closes(&self) -> bool {
        self.code == 421
    }
}

/// RFC 5321 §3.1 / RFC 5782: the client is on a block list; sent instead of the greeting.
pub fn blocked(text: String) -> Reply {
    Reply::new(554, "5.7.1", text)
}

/// RFC 7489 §7.3 / RFC 9989: the message fails the sender domain's DMARC `p=reject`.
pub fn dmarc_rejected(text: String) -> Reply {
    Reply::new(550, "5.7.1", text)
}

/// RFC 5321 §4.1.1: generic success.
pub const OK: Reply = r(250, "2.0.0", "Ok");
/// RFC 5321 §4.1.1.2: sender accepted.
pub const SENDER_OK: Reply = r(250, "2.1.0", "Sender ok");
/// RFC 5321 §4.1.1.3: recipient accepted.
pub const RECIPIENT_OK: Reply = r(250, "2.1.5", "Recipient ok");
/// RFC 5321 §4.1.1.4: go ahead with the message.
pub const START_DATA: Reply = r(354, "", "End data with <CR><LF>.<CR><LF>");
/// RFC 5321 §4.1.1.10: goodbye.
pub const BYE: Reply = r(221, "2.0.0", "Bye");
/// RFC 5321 §3.5.3: cannot verify.
pub const VRFY: Reply = r(252, "2.5.0", "Cannot VRFY user, but will accept message");
/// RFC 5321 §4.1.1.8.
pub const HELP: Reply = r(214, "2.0.0", "See RFC 5321");
/// RFC 3207 §4.
pub const READY_FOR_TLS: Reply = r(220, "2.0.0", "Ready to start TLS");
/// RFC 4954 §6.
pub const AUTH_OK: Reply = r(235, "2.7.0", "Authentication successful");
/// RFC 5321 §4.2.4: unknown command.
pub const UNKNOWN_COMMAND: Reply = r(500, "5.5.2", "Command not recognized");
/// RFC 5321 §4.5.3.1.4: line too long.
pub const LINE_TOO_LONG: Reply = r(500, "5.5.6", "Line too long");
/// RFC 5321 §4.2.2: bad sequence.
pub const BAD_SEQUENCE: Reply = r(503, "5.5.1", "Bad sequence of commands");
/// RFC 5321 §4.1.4: HELO/EHLO first.
pub const HELO_FIRST: Reply = r(503, "5.5.1", "Send EHLO/HELO first");
/// RFC 5321 §4.1.4: MAIL first.
pub const MAIL_FIRST: Reply = r(503, "5.5.1", "Need MAIL before RCPT");
/// RFC 5321 §4.1.4: RCPT first.
pub const RCPT_FIRST: Reply = r(503, "5.5.1", "Need RCPT before DATA");
/// RFC 5321 §4.1.4: nested MAIL.
pub const NESTED_MAIL: Reply = r(503, "5.5.1", "Sender already specified");
/// RFC 4954 §4: AUTH twice.
pub const ALREADY_AUTHENTICATED: Reply = r(503, "5.5.1", "Already authenticated");
/// RFC 3207: STARTTLS twice or unavailable.
pub const TLS_UNAVAILABLE: Reply = r(454, "4.7.0", "TLS not available");
/// RFC 5321 §4.5.3.1.10: too many recipients.
pub const TOO_MANY_RECIPIENTS: Reply = r(452, "4.5.3", "Too many recipients");
/// RFC 1870 §6: message too big.
pub const TOO_BIG: Reply = r(552, "5.3.4", "Message size exceeds the limit");
/// RFC 3463 §3.3: mailbox full, try later (at RCPT).
pub const MAILBOX_FULL: Reply = r(452, "4.2.2", "Mailbox full, try again later");
/// RFC 3463 §3.3: mailbox full.
pub const OVER_QUOTA: Reply = r(552, "5.2.2", "Mailbox full");
/// RFC 6409 §6.1 / RFC 3463: MAIL FROM not owned by the authenticated user.
pub const SENDER_NOT_OWNED: Reply = r(
    553,
    "5.7.1",
    "Sender address not owned by the authenticated user",
);
/// RFC 3463: relaying denied (no open relay).
pub const RELAY_DENIED: Reply = r(550, "5.7.1", "Relaying denied");
/// RFC 3463: no such user.
pub const UNKNOWN_USER: Reply = r(550, "5.1.1", "No such user here");
/// RFC 6409 §4.3 / RFC 4954 §6: authentication required.
pub const AUTH_REQUIRED: Reply = r(530, "5.7.0", "Authentication required");
/// RFC 4954 §6: AUTH over plaintext refused.
pub const ENCRYPTION_REQUIRED: Reply = r(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
);
/// RFC 4954 §6: wrong credentials.
pub const AUTH_FAILED: Reply = r(535, "5.7.8", "Authentication credentials invalid");
/// RFC 4954 §6: a temporary failure; here, too many failed logins from this client or for
/// this account lately.
pub const AUTH_THROTTLED: Reply = r(
    454,
    "4.7.0",
    "Too many failed authentications; try again later",
);
/// RFC 4954 §4: unsupported mechanism.
pub const UNSUPPORTED_MECHANISM: Reply = r(504, "5.5.4", "Unrecognized authentication type");
/// RFC 4954 §4: client cancelled.
pub const AUTH_CANCELLED: Reply = r(501, "5.0.0", "Authentication cancelled");
/// AUTH not offered on this port.
pub const AUTH_NOT_AVAILABLE: Reply = r(503, "5.5.1", "AUTH not available on this port");
/// RFC 5321 §4.1.1.4: no valid recipients at DATA.
pub const NO_VALID_RECIPIENTS: Reply = r(554, "5.5.1", "No valid recipients");
/// A bare LF or CR in a command or in DATA (RFC 5321 §2.3.8; the SMTP smuggling defence, as
/// Postfix's `smtpd_forbid_bare_newline`): answered, then the connection is closed.
pub const BARE_LINE_ENDING: Reply = r(521, "5.5.2", "Bare LF or CR received; lines end with CRLF");
/// RFC 3463 §3.8: the account sent its allowance for this hour or day (`[limits]`).
pub const SEND_LIMIT: Reply = r(
    450,
    "4.7.1",
    "Sending limit exceeded, please try again later",
);
/// RFC 5321 §4.2.3: temporary failure; the commit did not (certainly) happen.
pub const TRY_AGAIN: Reply = r(451, "4.3.0", "Temporary failure, please try again later");
/// Shutdown.
pub const SHUTTING_DOWN: Reply = r(421, "4.3.2", "Service shutting down");
/// Idle timeout.
pub const TIMEOUT: Reply = r(421, "4.4.2", "Idle timeout, closing connection");
/// Too many failed AUTH attempts.
pub const TOO_MANY_FAILURES: Reply = r(421, "4.7.0", "Too many failed authentications");
