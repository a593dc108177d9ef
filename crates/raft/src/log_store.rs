//! One group's Raft log and vote in the shared RocksDB (`raft_log` and `raft_meta` column
//! families, keys prefixed by the group). Appends are acknowledged only after the node's WAL
//! syncer has fsynced them (see `log_writer`).
//!
//! An entry's message body is not kept in the log: append writes it to the blobs column family
//! where its apply will use it, in the same batch, and reads put it back (`tern_store::body`).
//! So a body is written once per node, and the log stays small whatever the message sizes.

use crate::log_writer::{LogWriter, Waiter};
use crate::{TypeConfig, codec};
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, StorageError,
    StorageIOError, Vote,
};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use tern_core::GroupId;
use tern_store::Db;
use tern_store::body;
use tern_store::db::{Direction, WriteBatch};
use tern_store::schema::{self, CF_BLOBS, CF_RAFT_LOG, CF_RAFT_META, CF_STATE};

/// Items in `raft_meta`.
pub(crate) const META_VOTE: u8 = 1;
const META_COMMITTED: u8 = 2;
const META_PURGED: u8 = 3;
// Item 4 is the state machine's snapshot-install marker (`snapshots::INSTALLING_MARKER`).

type StoreResult<T> = Result<T, StorageError<u64>>;

/// The encoded size of log entries one AppendEntries carries (one entry at least, however large).
pub const MAX_APPEND_BYTES: usize = 1024 * 1024;

/// Turns a RocksDB or decode failure into openraft's storage error.
pub(crate) fn io_err(
    subject: ErrorSubject<u64>,
    verb: ErrorVerb,
    e: impl ToString,
) -> StorageError<u64> {
    StorageIOError::new(subject, verb, openraft::AnyError::error(e.to_string())).into()
}

/// The log of one group. Clones share the database (one is the log reader).
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    db: Db,
    writer: LogWriter,
    /// Bytes appended by this process (for snapshots by log size, see `compaction`).
    growth: crate::compaction::LogGrowth,
}

impl LogStore {
    /// The log store of `group`.
    pub fn new(group: GroupId, db: Db, writer: LogWriter) -> LogStore {
        LogStore {
            group,
            db,
            writer,
            growth: Default::default(),
        }
    }

    /// The counter of bytes appended to this log.
    pub(crate) fn growth(&self) -> crate::compaction::LogGrowth {
        self.growth.clone()
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, item: u8) -> StoreResult<Option<T>> {
        let key = schema::raft_meta(self.group, item);
        let bytes = self
            .db
            .get(CF_RAFT_META, &key)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))?;
        bytes
            .map(|b| codec::decode(&b))
            .transpose()
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    fn write(&self, batch: WriteBatch) -> StoreResult<()> {
        self.db
            .write(batch, false)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Write, e))
    }

    fn cf(
        &self,
        name: &'static str,
    ) -> StoreResult<std::sync::Arc<tern_store::db::ColumnFamily<'_>>> {
        self.db
            .cf(name)
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Read, e))
    }

    fn put_meta<T: serde::Serialize>(&self, item: u8, value: &T) -> StoreResult<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            &self.cf(CF_RAFT_META)?,
            schema::raft_meta(self.group, item),
            codec::encode(value),
        );
        self.write(batch)
    }

    async fn synced(&self) -> StoreResult<()> {
        self.writer
            .sync()
            .await
            .map_err(|e| io_err(ErrorSubject::Store, ErrorVerb::Write, e))
    }

    fn last_entry_id(&self) -> StoreResult<Option<LogId<u64>>> {
        let end = schema::log_entry(self.group, u64::MAX);
        let mut iter = self
            .db
            .iter_from(CF_RAFT_LOG, &end, Direction::Reverse)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        match iter.next() {
            Some(Ok((k, v))) if k.starts_with(&schema::group_prefix(self.group)) => {
                let entry: Entry<TypeConfig> = codec::decode(&v)
                    .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
                Ok(Some(entry.log_id))
            }
            Some(Err(e)) => Err(io_err(ErrorSubject::Logs, ErrorVerb::Read, e)),
            _ => Ok(None),
        }
    }
}

fn range_start(range: &impl RangeBounds<u64>) -> u64 {
    match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn range_contains_end(range: &impl RangeBounds<u64>, index: u64) -> bool {
    match range.end_bound() {
        Bound::Included(i) => index <= *i,
        Bound::Excluded(i) => index < *i,
        Bound::Unbounded => true,
    }
}

impl LogStore {
    /// Entries of `range` in index order; with a `budget`, stops before the entry that would take
    /// the encoded total over it (but always returns the first entry, however large).
    fn read_entries(
        &self,
        range: &impl RangeBounds<u64>,
        budget: Option<usize>,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let start = schema::log_entry(self.group, range_start(range));
        let prefix = schema::group_prefix(self.group);
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let iter = self
            .db
            .iter_from(CF_RAFT_LOG, &start, Direction::Forward)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        for item in iter {
            let (k, v) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            if !k.starts_with(&prefix) {
                break;
            }
            let mut entry: Entry<TypeConfig> =
                codec::decode(&v).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
            if !range_contains_end(range, entry.log_id.index) {
                break;
            }
            let body_len = self.inflate(&mut entry)?;
            bytes = bytes.saturating_add(v.len()).saturating_add(body_len);
            if budget.is_some_and(|limit| bytes > limit) && !out.is_empty() {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Puts the body back into an entry read from the log; returns its length. A body that is
    /// gone (applied, then expunged) stays a marker: see [`tern_store::body`].
    fn inflate(&self, entry: &mut Entry<TypeConfig>) -> StoreResult<usize> {
        let index = entry.log_id.index;
        let EntryPayload::Normal(command) = &mut entry.payload else {
            return Ok(0);
        };
        let Some(key) = body::staged_key(self.group, index, command) else {
            return Ok(0);
        };
        let stored = self
            .db
            .get(CF_BLOBS, &key)
            .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        Ok(match stored {
            Some(bytes) => {
                let len = bytes.len();
                body::inflate(command, bytes);
                len
            }
            None => 0,
        })
    }
}

impl LogStore {
    /// Writes entries (bodies split off to their blob rows) without waiting for the fsync.
    fn write_entries(
        &self,
        entries: impl IntoIterator<Item = Entry<TypeConfig>>,
    ) -> StoreResult<()> {
        let mut batch = WriteBatch::default();
        {
            let log = self.cf(CF_RAFT_LOG)?;
            let blobs = self.cf(CF_BLOBS)?;
            for mut entry in entries {
                let index = entry.log_id.index;
                // The body goes once to where its apply will find it; the log keeps a marker.
                if let EntryPayload::Normal(command) = &mut entry.payload
                    && let Some((key, body)) = body::split(self.group, index, command)
                {
                    batch.put_cf(&blobs, key, body);
                }
                let key = schema::log_entry(self.group, index);
                let value = codec::encode(&entry);
                self.growth
                    .fetch_add(value.len() as u64, std::sync::atomic::Ordering::Relaxed);
                batch.put_cf(&log, key, value);
            }
        }
        self.write(batch)
    }
}

/// The blobs-CF keys of the bodies (and parts) staged for `group`'s log entries from `from` on.
pub(crate) fn staged_bodies(db: &Db, group: GroupId, from: u64) -> StoreResult<Vec<Vec<u8>>> {
    let prefix = schema::group_prefix(group);
    let mut keys = Vec::new();
    for item in db
        .iter_from(
            CF_RAFT_LOG,
            &schema::log_entry(group, from),
            Direction::Forward,
        )
        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?
    {
        let (k, v) = item.map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        if !k.starts_with(&prefix) {
            break;
        }
        let entry: Entry<TypeConfig> =
            codec::decode(&v).map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?;
        if let EntryPayload::Normal(command) = &entry.payload
            && let Some(key) = body::staged_key(group, entry.log_id.index, command)
        {
            keys.push(key);
        }
    }
    Ok(keys)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        self.read_entries(&range, None)
    }

    /// What replication sends in one AppendEntries: at most [`MAX_APPEND_BYTES`] of entries.
    /// openraft allows one heartbeat interval for the whole RPC (the follower's fsync included),
    /// and a lagging follower would otherwise get up to 300 entries at once, which with 1 MiB
    /// messages never arrives in time (and can pass the link's frame limit).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        self.read_entries(&(start..end), Some(MAX_APPEND_BYTES))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let last_purged: Option<LogId<u64>> = self.get_meta(META_PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> StoreResult<()> {
        self.put_meta(META_VOTE, vote)?;
        // A vote must be on disk before it is acted upon (Raft safety).
        self.synced().await
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<u64>>> {
        self.get_meta(META_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> StoreResult<()> {
        self.put_meta(META_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<u64>>> {
        Ok(self
            .get_meta::<Option<LogId<u64>>>(META_COMMITTED)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.write_entries(entries)?;
        // Acknowledged to openraft only after the shared fsync.
        self.writer.after_sync(Waiter::Flushed(callback));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> StoreResult<()> {
        let mut batch = WriteBatch::default();
        // Bodies staged for the removed entries go with them (they were never applied; a row
        // some message refers to is another entry's, left by an older log of a restored node).
        {
            let blobs = self.cf(CF_BLOBS)?;
            for key in staged_bodies(&self.db, self.group, log_id.index)? {
                let referenced = match schema::blob_id_of_key(self.group, &key) {
                    Some(id) => self
                        .db
                        .exists(CF_STATE, &schema::blob_refs(self.group, &id))
                        .map_err(|e| io_err(ErrorSubject::Logs, ErrorVerb::Read, e))?,
                    None => false,
                };
                if !referenced {
                    batch.delete_cf(&blobs, key);
                }
            }
        }
        batch.delete_range_cf(
            &self.cf(CF_RAFT_LOG)?,
            schema::log_entry(self.group, log_id.index),
            schema::prefix_end(&schema::group_prefix(self.group)).to_vec(),
        );
        self.write(batch)?;
        self.synced().await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> StoreResult<()> {
        self.put_meta(META_PURGED, &log_id)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            &self.cf(CF_RAFT_LOG)?,
            schema::log_entry(self.group, 0),
            schema::log_entry(self.group, log_id.index.saturating_add(1)),
        );
        self.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};
    use tern_store::Command;

    /// A store holding entries 1..=sizes.len() whose commands encode to about `sizes[i]` bytes.
    fn store_with(dir: &std::path::Path, sizes: &[usize]) -> LogStore {
        let db = Db::open(dir).unwrap();
        let group = GroupId::META;
        let handle = db.cf(CF_RAFT_LOG).unwrap();
        for (i, size) in sizes.iter().enumerate() {
            let index = i as u64 + 1;
            let entry = Entry::<TypeConfig> {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(Command::AddDomain {
                    name: "x".repeat(*size),
                    now: 0,
                }),
            };
            let key = schema::log_entry(group, index);
            let mut batch = WriteBatch::default();
            batch.put_cf(&handle, key, codec::encode(&entry));
            db.write(batch, false).unwrap();
        }
        drop(handle);
        let writer = LogWriter::start(db.clone()).unwrap();
        LogStore::new(group, db, writer)
    }

    fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    /// Stops the store's syncer thread, so no thread still holds RocksDB when the test
    /// process exits (RocksDB aborts if it is torn down by exit handlers while in use).
    async fn close(store: LogStore) {
        store.writer.stop().await;
    }

    #[tokio::test]
    async fn one_append_carries_at_most_the_byte_budget() {
        let dir = tempfile::tempdir().unwrap();
        let third = MAX_APPEND_BYTES / 3;
        let mut store = store_with(dir.path(), &[third, third, third, third, 10]);
        let limited = store.limited_get_log_entries(1, 6).await.unwrap();
        assert_eq!(indexes(&limited), vec![1, 2]);
        // The unlimited read (used for everything but replication) is not cut short.
        let all = store.try_get_log_entries(1..6).await.unwrap();
        assert_eq!(indexes(&all), vec![1, 2, 3, 4, 5]);
        // The end of the range still bounds a limited read.
        let short = store.limited_get_log_entries(4, 5).await.unwrap();
        assert_eq!(indexes(&short), vec![4]);
        close(store).await;
    }

    #[tokio::test]
    async fn an_entry_larger_than_the_budget_still_goes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(dir.path(), &[2 * MAX_APPEND_BYTES, 10, 10]);
        let first = store.limited_get_log_entries(1, 4).await.unwrap();
        assert_eq!(indexes(&first), vec![1]);
        let rest = store.limited_get_log_entries(2, 4).await.unwrap();
        assert_eq!(indexes(&rest), vec![2, 3]);
        close(store).await;
    }

    fn append_cmd(body: Vec<u8>) -> Command {
        Command::Append {
            account: tern_core::AccountId(1),
            mailbox: "INBOX".into(),
            body,
            flags: vec![],
            internal_date: 0,
            quota: 0,
        }
    }

    fn entry(index: u64, command: Command) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(command),
        }
    }

    #[tokio::test]
    async fn a_body_is_stored_beside_the_log_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(dir.path(), &[10]);
        let big = vec![b'b'; 3 * MAX_APPEND_BYTES / 4];
        let other = vec![b'o'; 3 * MAX_APPEND_BYTES / 4];
        store
            .write_entries([
                entry(2, append_cmd(big.clone())),
                entry(3, append_cmd(other.clone())),
            ])
            .unwrap();
        // The log row holds a marker, not the body.
        let row = store
            .db
            .get(CF_RAFT_LOG, &schema::log_entry(store.group, 2))
            .unwrap()
            .unwrap();
        assert!(row.len() < 200, "the log keeps {} bytes", row.len());
        let id = body::staged_id(2, &body::BodyRef::of(&big).hash);
        assert_eq!(
            store
                .db
                .get(CF_BLOBS, &schema::blob(store.group, &id))
                .unwrap(),
            Some(big.clone())
        );
        // Reads (apply and replication) see the entries as they were proposed.
        let read = store.try_get_log_entries(2..4).await.unwrap();
        assert_eq!(
            read,
            vec![
                entry(2, append_cmd(big.clone())),
                entry(3, append_cmd(other))
            ]
        );
        // The replication budget counts the bodies (two of them are over it).
        assert_eq!(
            indexes(&store.limited_get_log_entries(1, 4).await.unwrap()),
            vec![1, 2]
        );
        // Truncation removes the bodies of the removed entries.
        store
            .truncate(LogId::new(CommittedLeaderId::new(1, 1), 2))
            .await
            .unwrap();
        assert_eq!(
            store
                .db
                .get(CF_BLOBS, &schema::blob(store.group, &id))
                .unwrap(),
            None
        );
        assert!(staged_bodies(&store.db, store.group, 0).unwrap().is_empty());
        close(store).await;
    }

    #[tokio::test]
    async fn an_entry_whose_body_is_gone_is_read_with_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_with(dir.path(), &[10]);
        let body = b"Subject: gone\r\n\r\nexpunged\r\n".to_vec();
        store
            .write_entries([entry(2, append_cmd(body.clone()))])
            .unwrap();
        let id = body::staged_id(2, &body::BodyRef::of(&body).hash);
        let mut batch = WriteBatch::default();
        batch.delete_cf(
            &store.db.cf(CF_BLOBS).unwrap(),
            schema::blob(store.group, &id),
        );
        store.db.write(batch, false).unwrap();
        let read = store.try_get_log_entries(2..3).await.unwrap();
        let EntryPayload::Normal(command) = &read[0].payload else {
            panic!("not a normal entry");
        };
        let facts = body::BodyRef::parse(command.body().unwrap()).unwrap();
        assert_eq!(facts, body::BodyRef::of(&body));
        close(store).await;
    }
}
