//! A group image: one group's replicated state (its `state` keys and message bodies) as a byte
//! stream, read from a consistent RocksDB snapshot and written back by ingesting it. Raft
//! snapshots and backups are images; both stream them through files, so no step holds more
//! than one record (at most one message body) in memory, whatever the group's size.
//!
//! Format, all integers big-endian:
//!
//! ```text
//! magic    b"TERNIMG1"
//! record*  cf:u8 (1 state, 2 blobs) | key_len:u32 | value_len:u32 | key | value
//! trailer  0xFF | records:u64 | payload_bytes:u64 | blake3(everything before the trailer):32
//! ```
//!
//! Every key starts with the group's prefix. The state machine's own bookkeeping (its
//! `applied` key) is not part of an image: whoever installs one writes it (see [`import`]).

use crate::StoreError;
use crate::db::{Db, WriteBatch};
use crate::schema::{self, CF_BLOBS, CF_STATE};
use std::io::{self, Read, Write};
use tern_core::GroupId;

const MAGIC: &[u8; 8] = b"TERNIMG1";
const TAG_STATE: u8 = 1;
const TAG_BLOB: u8 = 2;
const TAG_END: u8 = 0xFF;
/// Largest key accepted when reading an image (keys are short; addresses at most).
const MAX_KEY: u32 = 64 * 1024;
/// Largest value accepted when reading an image: above any message size limit, so a corrupt
/// length is an error, not a giant allocation.
const MAX_VALUE: u32 = 1024 * 1024 * 1024;
/// Writes of an import go to RocksDB in batches of about this many bytes.
const IMPORT_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// What an image holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Key/value records.
    pub records: u64,
    /// Bytes of keys and values.
    pub payload_bytes: u64,
    /// Bytes of the whole image, trailer included.
    pub image_bytes: u64,
}

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading or writing the stream failed.
    #[error("image i/o: {0}")]
    Io(#[from] io::Error),
    /// The bytes are not a complete, intact image of this group.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// RocksDB failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn corrupt(why: impl Into<String>) -> ImageError {
    ImageError::Corrupt(why.into())
}

/// One group of the database frozen at a point in time (a RocksDB snapshot): every read sees
/// the state as it was when [`Db::pin_group`] was called, while writes go on.
pub struct PinnedGroup<'a> {
    db: &'a Db,
    group: GroupId,
    snapshot: crate::db::Snapshot<'a>,
}

impl Db {
    /// Freezes `group` for a consistent read (an image, or the applied state that goes with
    /// it). Cheap: RocksDB keeps the versions it needs until the returned value is dropped.
    pub fn pin_group(&self, group: GroupId) -> PinnedGroup<'_> {
        PinnedGroup {
            db: self,
            group,
            snapshot: self.snapshot(),
        }
    }
}

impl PinnedGroup<'_> {
    /// One value as of the pinned point.
    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.snapshot.get_cf(&self.db.cf(cf)?, key)?)
    }

    /// Whether the body stored under the blobs-CF `key` is referenced by the pinned state.
    fn referenced(&self, key: &[u8]) -> Result<bool, StoreError> {
        let Some(id) = schema::blob_id_of_key(self.group, key) else {
            return Ok(false);
        };
        let refs = schema::blob_refs(self.group, &id);
        Ok(self
            .snapshot
            .get_pinned_cf(&self.db.cf(CF_STATE)?, refs)?
            .is_some())
    }

    /// Writes the group's image to `out` and returns what it holds. Reads bypass the block
    /// cache, so exporting a large group does not evict the working set.
    pub fn export(&self, out: &mut impl Write) -> Result<ImageStats, ImageError> {
        let mut out = HashingWriter::new(out);
        out.write_all(MAGIC)?;
        let prefix = schema::group_prefix(self.group);
        let end = schema::prefix_end(&prefix);
        let applied = schema::applied(self.group);
        let mut stats = ImageStats::default();
        for (tag, cf) in [(TAG_STATE, CF_STATE), (TAG_BLOB, CF_BLOBS)] {
            let handle = self.db.cf(cf)?;
            let mut opts = rocksdb::ReadOptions::default();
            opts.fill_cache(false);
            opts.set_iterate_upper_bound(end.clone());
            let iter = self.snapshot.iterator_cf_opt(
                &handle,
                opts,
                rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward),
            );
            for item in iter {
                let (key, value) = item.map_err(StoreError::from)?;
                if tag == TAG_STATE && *key == *applied {
                    continue;
                }
                if tag == TAG_BLOB && !self.referenced(&key)? {
                    // A body staged for a log entry not yet applied: not state (yet).
                    continue;
                }
                write_record(&mut out, tag, &key, &value)?;
                stats.records += 1;
                stats.payload_bytes += (key.len() + value.len()) as u64;
            }
        }
        let hash = out.hasher.finalize();
        let inner = out.inner;
        inner.write_all(&[TAG_END])?;
        inner.write_all(&stats.records.to_be_bytes())?;
        inner.write_all(&stats.payload_bytes.to_be_bytes())?;
        inner.write_all(hash.as_bytes())?;
        stats.image_bytes = out.written + 1 + 8 + 8 + 32;
        Ok(stats)
    }
}

fn write_record(out: &mut impl Write, tag: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
    let too_long = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    let key_len = u32::try_from(key.len()).map_err(|_| too_long("key too long"))?;
    let value_len = u32::try_from(value.len()).map_err(|_| too_long("value too long"))?;
    out.write_all(&[tag])?;
    out.write_all(&key_len.to_be_bytes())?;
    out.write_all(&value_len.to_be_bytes())?;
    out.write_all(key)?;
    out.write_all(value)
}

/// Reads a whole image and checks it: magic, every record's framing, that every key belongs to
/// `group`, the counts and the checksum. Nothing is written anywhere.
pub fn verify(group: GroupId, input: &mut impl Read) -> Result<ImageStats, ImageError> {
    read_image(group, input, |_, _, _| Ok(()))
}

/// Replaces `group`'s state with the image in `input`, then writes `applied` (the state
/// machine's bookkeeping key and value that go with the image, if any) last, and syncs the
/// WAL. The bodies under `keep` (blobs-CF keys, those staged for log entries after the image)
/// stay where they are; every other body of the group goes.
///
/// The old state is deleted before the new one is written, in several batches: a crash in
/// between leaves the group without its `applied` key, half installed. The caller keeps the
/// image and a durable "installing" marker until this returns, and installs again after a
/// restart ([`verify`] first, so a corrupt image never deletes anything).
///
/// The records bypass the WAL (a body is written once, into its blob file, not twice) and
/// the state and blob column families are flushed before `applied` is written, so the image
/// is on disk before anything says it is there.
pub fn import(
    db: &Db,
    group: GroupId,
    input: &mut impl Read,
    applied: Option<(&[u8], &[u8])>,
    keep: &[Vec<u8>],
) -> Result<ImageStats, ImageError> {
    let prefix = schema::group_prefix(group);
    let mut batch = WriteBatch::default();
    db.delete_prefix(&mut batch, CF_STATE, &prefix)?;
    let blobs = db.cf(CF_BLOBS)?;
    let mut keep: Vec<&Vec<u8>> = keep.iter().filter(|k| k.starts_with(&prefix)).collect();
    keep.sort();
    let mut from = prefix.to_vec();
    for key in keep {
        batch.delete_range_cf(&blobs, from.as_slice(), key.as_slice());
        from = key.clone();
        from.push(0); // the first key after `key`
    }
    batch.delete_range_cf(
        &blobs,
        from.as_slice(),
        schema::prefix_end(&prefix).as_slice(),
    );
    db.write(batch, false)?;
    let state = db.cf(CF_STATE)?;
    let mut batch = WriteBatch::default();
    let stats = read_image(group, input, |tag, key, value| {
        let cf = if tag == TAG_STATE { &state } else { &blobs };
        batch.put_cf(cf, key, value);
        if batch.size_in_bytes() >= IMPORT_BATCH_BYTES {
            db.write_unlogged(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;
    db.write_unlogged(batch)?;
    db.flush(&[CF_STATE, CF_BLOBS])?;
    let mut batch = WriteBatch::default();
    if let Some((key, value)) = applied {
        batch.put_cf(&state, key, value);
    }
    db.write(batch, true)?;
    Ok(stats)
}

/// Streams the records of an image to `each`, checking everything [`verify`] checks. `each`
/// sees records before the checksum is known: [`import`] relies on a prior [`verify`].
fn read_image(
    group: GroupId,
    input: &mut impl Read,
    mut each: impl FnMut(u8, &[u8], &[u8]) -> Result<(), ImageError>,
) -> Result<ImageStats, ImageError> {
    let mut input = HashingReader::new(input);
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(truncated)?;
    if &magic != MAGIC {
        return Err(corrupt("not a Tern group image (bad magic)"));
    }
    let prefix = schema::group_prefix(group);
    let mut stats = ImageStats::default();
    let (mut key, mut value) = (Vec::new(), Vec::new());
    loop {
        // The tag is read past the hash: the checksum covers everything before the end tag.
        let mut tag = [0u8; 1];
        input.inner.read_exact(&mut tag).map_err(truncated)?;
        match tag[0] {
            TAG_STATE | TAG_BLOB => {
                input.hasher.update(&tag);
                input.read += 1;
            }
            TAG_END => break,
            other => return Err(corrupt(format!("unknown record tag {other:#x}"))),
        }
        let key_len = read_u32(&mut input)?;
        let value_len = read_u32(&mut input)?;
        if key_len > MAX_KEY || value_len > MAX_VALUE {
            return Err(corrupt(format!("record of {key_len}+{value_len} bytes")));
        }
        key.resize(key_len as usize, 0);
        value.resize(value_len as usize, 0);
        input.read_exact(&mut key).map_err(truncated)?;
        input.read_exact(&mut value).map_err(truncated)?;
        if !key.starts_with(&prefix) {
            return Err(corrupt(format!("a key outside group {}", group.0)));
        }
        each(tag[0], &key, &value)?;
        stats.records += 1;
        stats.payload_bytes += u64::from(key_len) + u64::from(value_len);
    }
    let expected = input.hasher.finalize();
    let inner = input.inner;
    let mut trailer = [0u8; 8 + 8 + 32];
    inner.read_exact(&mut trailer).map_err(truncated)?;
    let records = u64::from_be_bytes(trailer[..8].try_into().unwrap_or_default());
    let payload_bytes = u64::from_be_bytes(trailer[8..16].try_into().unwrap_or_default());
    if records != stats.records || payload_bytes != stats.payload_bytes {
        return Err(corrupt(format!(
            "trailer says {records} records of {payload_bytes} bytes, found {} of {}",
            stats.records, stats.payload_bytes
        )));
    }
    if trailer[16..] != *expected.as_bytes() {
        return Err(corrupt("checksum mismatch"));
    }
    if inner.read(&mut [0u8; 1])? != 0 {
        return Err(corrupt("bytes after the trailer"));
    }
    stats.image_bytes = input.read + 1 + trailer.len() as u64;
    Ok(stats)
}

fn read_u32(input: &mut impl Read) -> Result<u32, ImageError> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b).map_err(truncated)?;
    Ok(u32::from_be_bytes(b))
}

fn truncated(e: io::Error) -> ImageError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        corrupt("truncated")
    } else {
        ImageError::Io(e)
    }
}

/// Counts and hashes what passes through to `inner`.
struct HashingWriter<'w, W: Write> {
    inner: &'w mut W,
    hasher: blake3::Hasher,
    written: u64,
}

impl<'w, W: Write> HashingWriter<'w, W> {
    fn new(inner: &'w mut W) -> Self {
        HashingWriter {
            inner,
            hasher: blake3::Hasher::new(),
            written: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts and hashes what is read from `inner`.
struct HashingReader<'r, R: Read> {
    inner: &'r mut R,
    hasher: blake3::Hasher,
    read: u64,
}

impl<'r, R: Read> HashingReader<'r, R> {
    fn new(inner: &'r mut R) -> Self {
        HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            read: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
