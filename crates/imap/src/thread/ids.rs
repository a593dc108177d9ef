//! Message IDs in Message-ID, References and In-Reply-To: each `<...>`, spaces removed.

/// The `<...>` IDs in a field value, in order (the text between the brackets).
fn ids(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            break;
        };
        let id: String = after[..close]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !id.is_empty() && !id.contains('<') {
            out.push(id);
        }
        rest = &after[close + 1..];
    }
    out
}

/// The Message-ID: the first `<...>` of the field.
pub fn message_id(raw: Option<&[u8]>) -> Option<String> {
    raw.map(ids).and_then(|v| v.into_iter().next())
}

/// The parent IDs, oldest first: those of References, or else the first of In-Reply-To.
pub fn references(references: Option<&[u8]>, in_reply_to: Option<&[u8]>) -> Vec<String> {
    let refs = references.map(ids).unwrap_or_default();
    if !refs.is_empty() {
        return refs;
    }
    in_reply_to
        .map(ids)
        .and_then(|v| v.into_iter().next())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_fields() {
        assert_eq!(message_id(Some(b" <a@b>\r\n")), Some("a@b".into()));
        assert_eq!(message_id(Some(b" a@b\r\n")), None);
        assert_eq!(message_id(None), None);
        assert_eq!(
            references(Some(b" <1@x> (c)\r\n <2 @x>"), Some(b"<9@x>")),
            ["1@x", "2@x"]
        );
        assert_eq!(references(Some(b" junk"), Some(b"<9@x> <8@x>")), ["9@x"]);
        assert!(references(None, Some(b"<>")).is_empty());
    }
}
