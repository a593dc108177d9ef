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
//!
//! A body over [`PART_BYTES`] is proposed in parts ([`parts`]): `BodyPart` entries of at most
//! that size, stored by the log store under `blob | seq` of an id the proposer chose (a random
//! number with its top bit set, then 24 bytes of hash: never a log index), and then the
//! message's command with a [`PartsRef`] marker in place of the body. No log entry, and so no
//! AppendEntries, is ever much larger than a part; the final entry is small and is never
//! inflated. Readers put the parts back together ([`crate::Reader::blob`]).

use crate::command::Command;
use crate::schema;
use tern_core::{BlobId, GroupId};

/// Bodies longer than this are proposed in parts of this size.
pub const PART_BYTES: usize = 512 * 1024;
/// Starts a marker that stands for a body proposed in parts.
const PARTS_MAGIC: &[u8; 16] = b"\0tern-body-parts";
/// Parts marker length: magic, body length, hash, blob id, started, part count.
const PARTS_MARKER_LEN: usize = 16 + 8 + 32 + 32 + 8 + 4;

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
    /// The facts of `body`: read from it if it is a marker (of either kind), computed
    /// otherwise.
    pub fn of(body: &[u8]) -> BodyRef {
        if let Some(parts) = PartsRef::parse(body) {
            return BodyRef {
                len: parts.len,
                hash: parts.hash,
            };
        }
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

/// What a parts marker says: the whole body's facts and where its parts are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartsRef {
    /// The whole body's length.
    pub len: u64,
    /// BLAKE3 of the whole body.
    pub hash: [u8; 32],
    /// The id the parts are stored under.
    pub blob: BlobId,
    /// Unix seconds when the first part was proposed (names the upload's row).
    pub started: i64,
    /// How many parts.
    pub parts: u32,
}

impl PartsRef {
    /// The reference `body` holds, if it is a parts marker.
    pub fn parse(body: &[u8]) -> Option<PartsRef> {
        if body.len() != PARTS_MARKER_LEN || !body.starts_with(PARTS_MAGIC) {
            return None;
        }
        Some(PartsRef {
            len: u64::from_be_bytes(body[16..24].try_into().ok()?),
            hash: body[24..56].try_into().ok()?,
            blob: BlobId(body[56..88].try_into().ok()?),
            started: i64::from_be_bytes(body[88..96].try_into().ok()?),
            parts: u32::from_be_bytes(body[96..100].try_into().ok()?),
        })
    }

    /// The marker bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PARTS_MARKER_LEN);
        out.extend_from_slice(PARTS_MAGIC);
        out.extend_from_slice(&self.len.to_be_bytes());
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.blob.0);
        out.extend_from_slice(&self.started.to_be_bytes());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out
    }
}

/// A large command cut for proposing: its parts, then the command itself with a parts marker.
pub struct Parts {
    /// `BodyPart` commands, in order.
    pub parts: Vec<Command>,
    /// The original command, its body replaced by the marker.
    pub command: Command,
}

/// Cuts `command` into parts when its body is over [`PART_BYTES`]; `upload` is a random number
/// (it names the body) and `now` the proposer's clock. `Err` gives the command back unchanged.
pub fn parts(mut command: Command, upload: u64, now: i64) -> Result<Parts, Box<Command>> {
    let Some(body) = command.body_mut() else {
        return Err(Box::new(command));
    };
    if body.len() <= PART_BYTES || is_marker(body) {
        return Err(Box::new(command));
    }
    let hash = *blake3::hash(body).as_bytes();
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(upload | 1 << 63).to_be_bytes());
    id[8..].copy_from_slice(&hash[..24]);
    let blob = BlobId(id);
    let mut parts = Vec::new();
    for (seq, chunk) in body.chunks(PART_BYTES).enumerate() {
        parts.push(Command::BodyPart {
            blob,
            seq: seq as u32,
            started: now,
            body: chunk.to_vec(),
        });
    }
    *body = PartsRef {
        len: body.len() as u64,
        hash,
        blob,
        started: now,
        parts: parts.len() as u32,
    }
    .encode();
    Ok(Parts { parts, command })
}

fn is_marker(body: &[u8]) -> bool {
    BodyRef::parse(body).is_some() || PartsRef::parse(body).is_some()
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

    /// The bytes the log store keeps beside the log: a message body or a part of one.
    fn stored_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Command::BodyPart { body, .. } => Some(body),
            other => other.body_mut(),
        }
    }

    fn stored(&self) -> Option<&Vec<u8>> {
        match self {
            Command::BodyPart { body, .. } => Some(body),
            other => other.body(),
        }
    }
}

/// Where the log store keeps the bytes of `command`, the entry at `index` whose stored bytes
/// are `facts`: a part under its body's id, a body under [`staged_id`].
fn stored_key(group: GroupId, index: u64, command: &Command, facts: &BodyRef) -> Vec<u8> {
    match command {
        Command::BodyPart { blob, seq, .. } => schema::blob_part(group, blob, *seq),
        _ => schema::blob(group, &staged_id(index, &facts.hash)),
    }
}

/// Takes the body (or part) out of the command of `group`'s entry at `index`, leaving a
/// marker; returns the blobs-CF key to store it under and the bytes. `None` for commands
/// without one, or whose body is already a marker (a parts marker is never split).
pub fn split(group: GroupId, index: u64, command: &mut Command) -> Option<(Vec<u8>, Vec<u8>)> {
    let body = command.stored_mut()?;
    if is_marker(body) {
        return None;
    }
    let facts = BodyRef::of(body);
    let taken = std::mem::replace(body, facts.encode());
    Some((stored_key(group, index, command, &facts), taken))
}

/// The blobs-CF key of what the log store split off `group`'s entry at `index`, if anything.
pub fn staged_key(group: GroupId, index: u64, command: &Command) -> Option<Vec<u8>> {
    let facts = BodyRef::parse(command.stored()?)?;
    Some(stored_key(group, index, command, &facts))
}

/// Puts the bytes read from the blob row back in place of the command's marker.
pub fn inflate(command: &mut Command, body: Vec<u8>) {
    if let Some(slot) = command.stored_mut() {
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
        let g = GroupId(2);
        let mut cmd = append(b"Subject: hi\r\n\r\nbody\r\n");
        let (key, body) = split(g, 7, &mut cmd).unwrap();
        assert_eq!(body, b"Subject: hi\r\n\r\nbody\r\n");
        let facts = BodyRef::parse(cmd.body().unwrap()).unwrap();
        assert_eq!(facts, BodyRef::of(&body));
        assert_eq!(facts.len, body.len() as u64);
        assert_eq!(staged_key(g, 7, &cmd), Some(key.clone()));
        assert_eq!(key, schema::blob(g, &staged_id(7, &facts.hash)));
        // A second split changes nothing; inflating restores the command.
        assert!(split(g, 7, &mut cmd).is_none());
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
        assert!(split(GroupId(1), 1, &mut cmd).is_none());
    }

    #[test]
    fn a_large_body_is_cut_into_parts_and_a_small_final_command() {
        let g = GroupId(2);
        let body: Vec<u8> = (0..PART_BYTES * 2 + 10).map(|i| (i % 251) as u8).collect();
        let cut = parts(append(&body), 42, 1_700_000_000).unwrap();
        assert_eq!(cut.parts.len(), 3);
        let marker = PartsRef::parse(cut.command.body().unwrap()).unwrap();
        assert_eq!(marker.len, body.len() as u64);
        assert_eq!(marker.parts, 3);
        assert_eq!(
            BodyRef::of(cut.command.body().unwrap()).len,
            body.len() as u64
        );
        // The final command is never split or inflated; each part is split under its seq.
        let mut last = cut.command.clone();
        assert!(split(g, 9, &mut last).is_none());
        assert!(staged_key(g, 9, &last).is_none());
        let mut joined = Vec::new();
        for (seq, mut part) in cut.parts.into_iter().enumerate() {
            let (key, bytes) = split(g, 5 + seq as u64, &mut part).unwrap();
            assert_eq!(key, schema::blob_part(g, &marker.blob, seq as u32));
            joined.extend_from_slice(&bytes);
        }
        assert_eq!(joined, body);
        // Small bodies are proposed whole.
        assert!(parts(append(b"small"), 42, 0).is_err());
    }

    #[test]
    fn a_body_that_only_resembles_a_marker_is_not_one() {
        let mut almost = BodyRef::of(b"x").encode();
        almost.push(b'!');
        assert!(BodyRef::parse(&almost).is_none());
        assert_eq!(BodyRef::of(&almost).len, almost.len() as u64);
        assert!(PartsRef::parse(&almost).is_none());
    }
}
