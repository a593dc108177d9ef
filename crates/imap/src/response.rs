//! Pieces of responses shared by several commands.

use crate::proto::encode;
use tern_core::Uid;

/// `* seq FETCH (UID u FLAGS (...) [MODSEQ (m)])`.
pub fn flags_fetch(
    out: &mut Vec<u8>,
    seq: u32,
    uid: Option<Uid>,
    flags: &[String],
    recent: bool,
    modseq: Option<u64>,
) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    if let Some(uid) = uid {
        out.extend_from_slice(format!("UID {} ", uid.0).as_bytes());
    }
    out.extend_from_slice(b"FLAGS ");
    flag_list(out, flags, recent);
    if let Some(m) = modseq {
        out.extend_from_slice(format!(" MODSEQ ({m})").as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}

/// `(\Seen $Label)`, with the session flag `\Recent` when `recent`.
pub fn flag_list(out: &mut Vec<u8>, flags: &[String], recent: bool) {
    out.push(b'(');
    out.extend_from_slice(flags.join(" ").as_bytes());
    if recent {
        if !flags.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\\Recent");
    }
    out.push(b')');
}

/// INTERNALDATE text, e.g. `"25-Nov-2026 10:00:00 +0000"`.
pub fn internal_date(out: &mut Vec<u8>, unix: i64) {
    let date = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
    let text = date.format("%d-%b-%Y %H:%M:%S +0000").to_string();
    encode::string(out, text.as_bytes());
}
