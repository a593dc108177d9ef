//! Message bodies stored once per node: the Raft log keeps a small reference, the body goes
//! straight to the blobs column family under the id its apply will use.
//!
//! When a log entry that carries a body (`Accept`, `Deliver`, `Append`) is appended, the log
//! store [`split`]s it: the body is written to `blobs` at [`staged_id`]`(index, hash)` in the
//! same fsynced batch as the entry, and the entry keeps a [`BodyRef`] marker (length and hash)
//! in place of the body. Applying the entry only adds references to that row; nothing is copied.
//!
//! - The id starts with the entry's log index, so two entries never share a staged row while
//!   one of them is still pending (an expunge can never delete a body a later entry needs). The
//!   24 bytes of hash that follow keep ids apart when a restored data dir starts its log afresh.
//! - A row nobody references is not state: the apply that creates no message deletes it, log
//!   truncation deletes the rows of the entries it removes, and images leave such rows out.
//! - Reading an entry back [`inflate`]s it; if its body is gone (the message was applied and
//!   expunged before a lagging follower asked for the entry), the marker travels instead and
//!   the follower's apply records the same length and id without a body, as the leader did.

use crate::command::Command;
use tern_core::BlobId;

/// Starts a body that stands for a body stored elsewhere (NUL first: no RFC 5322 message does).
const MAGIC: &[u8; 16] = b"\0tern-body-ref\0\x01";
/// Marker length: magic, body length (u64), BLAKE3 of the body.
const MARKER_LEN: usize = 16 + 8 + 32;

/// What a marker says about the body it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRef {
    /// The body's length in bytes.
    pub len: u64,
    /// BLAKE3 of the body.
    pub hash: [u8; 32],
}

impl BodyRef {
    /// The facts of `body`: read from it if it is a marker, computed otherwise.
    pub fn of(body: &[u8]) -> BodyRef {
        BodyRef::parse(body).unwrap_or_else(|| BodyRef {
            len: body.len() as u64,
            hash: *blake3::hash(body).as_bytes(),
        })
    }

    /// The reference `body` holds, if it is a marker.
    pub fn parse(body: &[u8]) -> Option<BodyRef> {
        if body.len() != MARKER_LEN || !body.starts_with(MAGIC) {
            return None;
        }
        let len = u64::from_be_bytes(body[16..24].try_into().ok()?);
        let hash = body[24..].try_into().ok()?;
        Some(BodyRef { len, hash })
    }

    /// The marker bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MARKER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.hash);
        out
    }
}

/// The blob id of the body carried by the log entry at `index`.
pub fn staged_id(index: u64, hash: &[u8; 32]) -> BlobId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&index.to_be_bytes());
    id[8..].copy_from_slice(&hash[..24]);
    BlobId(id)
}

impl Command {
    /// The message body this command carries, if any.
    pub fn body(&self) -> Option<&Vec<u8>> {
        match self {
            Command::Accept { body, .. }
            | Command::Deliver { body, .. }
            | Command::Append { body, .. } => Some(body),
            _ => None,
        }
    }

    fn body_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Command::Accept { body, .. }
            | Command::Deliver { body, .. }
            | Command::Append { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// Takes the body out of the command of the entry at `index`, leaving a marker; returns the
/// id to store it under and the body. `None` for commands without a body, or already split.
pub fn split(index: u64, command: &mut Command) -> Option<(BlobId, Vec<u8>)> {
    let body = command.body_mut()?;
    if BodyRef::parse(body).is_some() {
        return None;
    }
    let facts = BodyRef::of(body);
    let taken = std::mem::replace(body, facts.encode());
    Some((staged_id(index, &facts.hash), taken))
}

/// Where the body of the entry at `index` is stored, if its command carries a marker.
pub fn staged_of(index: u64, command: &Command) -> Option<BlobId> {
    let facts = BodyRef::parse(command.body()?)?;
    Some(staged_id(index, &facts.hash))
}

/// Puts `body` back in place of the command's marker (the body read from the blob row).
pub fn inflate(command: &mut Command, body: Vec<u8>) {
    if let Some(slot) = command.body_mut() {
        *slot = body;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::AccountId;

    fn append(body: &[u8]) -> Command {
        Command::Append {
            account: AccountId(1),
            mailbox: "INBOX".into(),
            body: body.to_vec(),
            flags: vec![],
            internal_date: 0,
            quota: 0,
        }
    }

    #[test]
    fn split_leaves_a_marker_with_the_bodys_facts() {
        let mut cmd = append(b"Subject: hi\r\n\r\nbody\r\n");
        let (id, body) = split(7, &mut cmd).unwrap();
        assert_eq!(body, b"Subject: hi\r\n\r\nbody\r\n");
        let facts = BodyRef::parse(cmd.body().unwrap()).unwrap();
        assert_eq!(facts, BodyRef::of(&body));
        assert_eq!(facts.len, body.len() as u64);
        assert_eq!(staged_of(7, &cmd), Some(id));
        assert_eq!(&id.0[..8], &7u64.to_be_bytes());
        // A second split changes nothing; inflating restores the command.
        assert!(split(7, &mut cmd).is_none());
        inflate(&mut cmd, body);
        assert_eq!(cmd, append(b"Subject: hi\r\n\r\nbody\r\n"));
    }

    #[test]
    fn ids_differ_by_index_and_by_content() {
        let h1 = *blake3::hash(b"one").as_bytes();
        let h2 = *blake3::hash(b"two").as_bytes();
        assert_ne!(staged_id(1, &h1), staged_id(2, &h1));
        assert_ne!(staged_id(1, &h1), staged_id(1, &h2));
    }

    #[test]
    fn commands_without_a_body_are_left_alone() {
        let mut cmd = Command::ExpireDedup {
            before: 0,
            limit: 1,
        };
        assert!(split(1, &mut cmd).is_none());
    }

    #[test]
    fn a_body_that_only_resembles_a_marker_is_not_one() {
        let mut almost = BodyRef::of(b"x").encode();
        almost.push(b'!');
        assert!(BodyRef::parse(&almost).is_none());
        assert_eq!(BodyRef::of(&almost).len, almost.len() as u64);
    }
}
