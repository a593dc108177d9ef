//! Every reply the server sends, in one place, each with the RFC section that defines it.
//! Handlers pick a constant or call a builder here instead of writing reply text inline.

use crate::proto::{Reply, RespCode};

/// RFC 1939 §4: the greeting that opens the AUTHORIZATION state.
pub fn greeting(hostname: &str) -> Reply {
    Reply::ok_with(format!("{hostname} Tern POP3 server ready"))
}

/// RFC 2449 §5: CAPA's status line; the capability lines follow.
pub const CAPA: Reply = Reply::ok("Capability list follows");

/// RFC 2595 §4: STLS accepted; the TLS handshake starts right after this line.
pub const STLS_BEGIN: Reply = Reply::ok("Begin TLS negotiation");
/// RFC 2595 §4: STLS on a connection that already uses TLS.
pub const STLS_ALREADY_TLS: Reply = Reply::err(None, "already using TLS");
/// STLS when the server has no certificate configured.
pub const STLS_UNAVAILABLE: Reply = Reply::err(None, "TLS not available");

/// RFC 1939 §7: USER accepted; PASS comes next.
pub const USER_OK: Reply = Reply::ok("send PASS");
/// A bare LF or CR in a command line: answered, then the connection closes.
pub const BARE_LINE_ENDING: Reply = Reply::err(None, "bare LF or CR received; lines end with CRLF");
/// RFC 1939 §7: PASS without a preceding successful USER.
pub const PASS_WITHOUT_USER: Reply = Reply::err(None, "send USER first");
/// RFC 3206 §5: credentials sent in clear text where that is not allowed.
pub const AUTH_NEEDS_TLS: Reply = Reply::err(
    Some(RespCode::Auth),
    "plaintext authentication requires TLS, use STLS first",
);
/// RFC 3206 §5: wrong user name or password (deliberately not saying which).
pub const INVALID_CREDENTIALS: Reply = Reply::err(Some(RespCode::Auth), "invalid credentials");
/// RFC 3206 §5: too many failed logins from this client or for this account lately; refused
/// without checking the password, try again later.
pub const THROTTLED: Reply = Reply::err(
    Some(RespCode::Auth),
    "too many failed logins, try again later",
);
/// RFC 3206 §5: the last allowed failure; the connection closes after this line.
pub const TOO_MANY_FAILURES: Reply = Reply::err(
    Some(RespCode::Auth),
    "invalid credentials, too many failures, closing",
);
/// RFC 5034 §4: a mechanism we do not offer.
pub const UNSUPPORTED_MECHANISM: Reply = Reply::err(None, "unsupported SASL mechanism");
/// RFC 5034 §4: the client answered the challenge with `*`.
pub const AUTH_CANCELLED: Reply = Reply::err(None, "authentication cancelled");
/// RFC 5034 §4: a response that is not base64 or not a PLAIN message.
pub const SASL_MALFORMED: Reply = Reply::err(None, "malformed SASL response");
/// `AUTH` without arguments: the mechanisms list follows, one per line.
pub const AUTH_MECHANISMS: Reply = Reply::ok("SASL mechanisms follow");
/// RFC 2449 §8.1.1: another session holds the maildrop lock.
pub const IN_USE: Reply = Reply::err(Some(RespCode::InUse), "maildrop already locked");

/// RFC 1939 §5, §7: the maildrop's size, after a successful PASS/AUTH and after RSET.
pub fn maildrop(count: usize, octets: u64) -> Reply {
    Reply::ok_with(format!("maildrop has {count} messages ({octets} octets)"))
}

/// RFC 1939 §5: STAT's drop listing.
pub fn stat(count: usize, octets: u64) -> Reply {
    Reply::ok_with(format!("{count} {octets}"))
}

/// RFC 1939 §5: LIST without argument; the scan listings follow.
pub fn list_all(count: usize, octets: u64) -> Reply {
    Reply::ok_with(format!("{count} messages ({octets} octets)"))
}

/// RFC 1939 §5: LIST or UIDL for one message: `msg value`.
pub fn one_listing(msg: u32, value: &str) -> Reply {
    Reply::ok_with(format!("{msg} {value}"))
}

/// RFC 1939 §7: UIDL without argument; the unique-id listings follow.
pub const UIDL_ALL: Reply = Reply::ok("unique-id listing follows");

/// RFC 1939 §5: RETR; the byte-stuffed message follows.
pub fn retr(octets: u64) -> Reply {
    Reply::ok_with(format!("{octets} octets"))
}

/// RFC 1939 §7: TOP; the headers and the requested body lines follow.
pub const TOP: Reply = Reply::ok("top of message follows");

/// RFC 1939 §5: a message number that does not exist or is marked deleted.
pub const NO_SUCH_MESSAGE: Reply = Reply::err(None, "no such message");
/// RFC 1939 §5: DELE of a message already marked deleted.
pub const ALREADY_DELETED: Reply = Reply::err(None, "message already deleted");
/// RFC 1939 §5: DELE accepted; the message goes at QUIT.
pub const DELETED: Reply = Reply::ok("message deleted");

/// RFC 1939 §5: NOOP.
pub const NOOP: Reply = Reply::ok("");

/// RFC 1939 §6: QUIT from the AUTHORIZATION state.
pub fn goodbye(hostname: &str) -> Reply {
    Reply::ok_with(format!("{hostname} POP3 server signing off"))
}

/// RFC 1939 §6: QUIT after the UPDATE state removed the deleted messages.
pub fn goodbye_updated(hostname: &str, left: usize) -> Reply {
    Reply::ok_with(format!(
        "{hostname} POP3 server signing off ({left} messages left)"
    ))
}

/// RFC 1939 §6 and RFC 3206 §4: the UPDATE state could not remove the deleted messages.
pub const UPDATE_FAILED: Reply =
    Reply::err(Some(RespCode::SysTemp), "some deleted messages not removed");

/// A keyword we do not implement.
pub const UNKNOWN_COMMAND: Reply = Reply::err(None, "unknown command");
/// RFC 1939 §3: a command outside the state that allows it.
pub const WRONG_STATE: Reply = Reply::err(None, "command not valid in this state");
/// RFC 2449 §4: a command line over the limit.
pub const LINE_TOO_LONG: Reply = Reply::err(None, "line too long");
/// RFC 3206 §4: the server is stopping; the connection closes after this line.
pub const SHUTTING_DOWN: Reply = Reply::err(Some(RespCode::SysTemp), "server shutting down");
/// RFC 3206 §4: storage is temporarily unavailable (no Raft leader, a timeout).
pub const TEMPORARY_FAILURE: Reply = Reply::err(
    Some(RespCode::SysTemp),
    "temporarily unavailable, try again later",
);
/// RFC 3206 §4: storage refused the operation for a reason that will not go away by retrying.
pub const PERMANENT_FAILURE: Reply = Reply::err(Some(RespCode::SysPerm), "maildrop unavailable");

/// A syntax error in a known command; `detail` comes from the parser, never from the client.
pub fn syntax_error(detail: &str) -> Reply {
    Reply::err_with(None, detail.to_string())
}
