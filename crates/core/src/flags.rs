//! IMAP flags. System flags are stored in their canonical RFC 9051 spelling so that `\seen`
//! and `\Seen` are one flag; keywords are stored as given.

/// `\Seen`
pub const SEEN: &str = "\\Seen";
/// `\Answered`
pub const ANSWERED: &str = "\\Answered";
/// `\Flagged`
pub const FLAGGED: &str = "\\Flagged";
/// `\Deleted`
pub const DELETED: &str = "\\Deleted";
/// `\Draft`
pub const DRAFT: &str = "\\Draft";

/// The system flags a client may set (`\Recent` is not stored: RFC 9051 removed it).
pub const SYSTEM: [&str; 5] = [SEEN, ANSWERED, FLAGGED, DELETED, DRAFT];

/// The canonical spelling of `flag`: system flags case-folded to their RFC form.
pub fn canonical(flag: &str) -> String {
    SYSTEM
        .iter()
        .find(|s| s.eq_ignore_ascii_case(flag))
        .map(|s| (*s).to_string())
        .unwrap_or_else(|| flag.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn system_flags_are_case_folded() {
        assert_eq!(super::canonical("\\SEEN"), "\\Seen");
        assert_eq!(super::canonical("$Junk"), "$Junk");
    }
}
