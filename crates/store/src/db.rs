//! The node's one RocksDB, with Tern's column families. Message bodies go to a column family
//! with BlobDB enabled, so large values live in blob files and compaction does not rewrite them.

use crate::StoreError;
use crate::schema::{ALL_CFS, CF_BLOBS, CF_STATE, prefix_end};
/// The types callers need to build writes and iterate; no RocksDB handle leaves this crate.
pub use rocksdb::{BoundColumnFamily as ColumnFamily, Direction, WriteBatch};
use rocksdb::{
    ColumnFamilyDescriptor, DBWithThreadMode, IteratorMode, MultiThreaded, Options,
    WriteBufferManager, WriteOptions,
};
use std::path::Path;
use std::sync::Arc;

/// The WAL's total size above which RocksDB flushes the column families holding its oldest
/// file, so it can be deleted.
const MAX_TOTAL_WAL_BYTES: u64 = 256 * 1024 * 1024;
/// The memtables of every column family together, bodies included until their flush moves them
/// into blob files. Past it RocksDB flushes the largest, and stalls writes until it can: without
/// a shared budget four column families of two 64 MiB memtables each could hold 512 MiB, which
/// a snapshot install (written around the WAL, so nothing forces a flush) nearly reached.
const MEMTABLE_BUDGET_BYTES: usize = 128 * 1024 * 1024;

/// The RocksDB type Tern uses.
pub(crate) type Rocks = DBWithThreadMode<MultiThreaded>;

/// Key/value pairs read by a prefix scan, in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// A consistent point-in-time view of the database (see [`crate::image::PinnedGroup`]).
pub(crate) type Snapshot<'a> = rocksdb::SnapshotWithThreadMode<'a, Rocks>;

/// One key and its value, as an iterator yields them.
pub type KeyValue = (Box<[u8]>, Box<[u8]>);

/// A handle on the node's database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Rocks>,
}

/// Whether files in `dir` (created if missing) can be opened with `O_DIRECT`.
fn supports_direct_io(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(".direct-io-probe");
    let opened = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    opened
}

impl Db {
    /// Opens (creating if needed) the database at `path` with every Tern column family.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        // A WAL file is kept until every column family with writes in it has flushed; the
        // small, busy ones (the Raft log and meta) would otherwise pin gigabytes of old WAL
        // holding bodies that already live in blob files.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Flushes and compactions write bodies into blob files once per node: through the page
        // cache, that copy cost more CPU than anything else on 1 MiB mail (a quarter of three
        // nodes' time). tmpfs and some other file systems refuse O_DIRECT.
        opts.set_use_direct_io_for_flush_and_compaction(supports_direct_io(path));
        opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(
            MEMTABLE_BUDGET_BYTES,
            true,
        ));
        let cfs = ALL_CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if *name == CF_BLOBS {
                cf_opts.set_enable_blob_files(true);
                cf_opts.set_min_blob_size(1024);
                cf_opts.set_enable_blob_gc(true);
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = Rocks::open_cf_descriptors(&opts, path, cfs)?;
        let db = Db {
            inner: Arc::new(db),
        };
        for name in ALL_CFS {
            db.cf(name)?;
        }
        Ok(db)
    }

    /// A column family handle.
    pub fn cf(&self, name: &'static str) -> Result<Arc<ColumnFamily<'_>>, StoreError> {
        self.inner
            .cf_handle(name)
            .ok_or(StoreError::MissingColumnFamily(name))
    }

    /// Reads one value.
    pub fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.get_cf(&self.cf(cf)?, key)?)
    }

    /// Whether `key` has a value (read without copying it out).
    pub fn exists(&self, cf: &'static str, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.inner.get_pinned_cf(&self.cf(cf)?, key)?.is_some())
    }

    /// Every (key, value) whose key starts with `prefix`, in key order.
    pub fn scan(&self, cf: &'static str, prefix: &[u8]) -> Result<Rows, StoreError> {
        let handle = self.cf(cf)?;
        let mut out = Vec::new();
        let iter = self
            .inner
            .iterator_cf(&handle, IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// The (key, value) pairs of `cf` from `start` on, in key order (`Forward`) or in reverse
    /// from the last key at or before `start` (`Reverse`); read lazily, so the caller stops
    /// when it has what it needs.
    pub fn iter_from<'a>(
        &'a self,
        cf: &'static str,
        start: &[u8],
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<KeyValue, StoreError>> + 'a, StoreError> {
        let handle = self.cf(cf)?;
        let iter = self
            .inner
            .iterator_cf(&handle, IteratorMode::From(start, direction));
        Ok(iter.map(|item| item.map_err(StoreError::from)))
    }

    /// The (key, value) pairs of `cf` whose key starts with `prefix`, in key order, read
    /// lazily; the scan stops at the prefix's end without reading past it.
    pub fn iter_prefix<'a>(
        &'a self,
        cf: &'static str,
        prefix: &[u8],
    ) -> Result<impl Iterator<Item = Result<KeyValue, StoreError>> + 'a, StoreError> {
        let handle = self.cf(cf)?;
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_upper_bound(prefix_end(prefix));
        let iter = self.inner.iterator_cf_opt(
            &handle,
            opts,
            IteratorMode::From(prefix, Direction::Forward),
        );
        Ok(iter.map(|item| item.map_err(StoreError::from)))
    }

    /// A consistent point-in-time view; RocksDB keeps what it needs until it is dropped.
    pub(crate) fn snapshot(&self) -> Snapshot<'_> {
        self.inner.snapshot()
    }

    /// Writes a batch; `sync` waits for the WAL fsync.
    pub fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        Ok(self.inner.write_opt(batch, &opts)?)
    }

    /// Writes `batch` without the WAL: for bulk loads only. Nothing of it survives a crash
    /// until [`Db::flush`] has returned, so the caller must keep its own durable record of
    /// the load being incomplete until then.
    pub fn write_unlogged(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut opts = WriteOptions::default();
        opts.disable_wal(true);
        Ok(self.inner.write_opt(batch, &opts)?)
    }

    /// Flushes the memtables of `cfs` to files on disk and waits for it.
    pub fn flush(&self, cfs: &[&'static str]) -> Result<(), StoreError> {
        let mut opts = rocksdb::FlushOptions::default();
        opts.set_wait(true);
        for name in cfs {
            self.inner.flush_cf_opt(&self.cf(name)?, &opts)?;
        }
        Ok(())
    }

    /// Adds to `batch` the deletion of every key starting with `prefix` in `cf`.
    pub fn delete_prefix(
        &self,
        batch: &mut WriteBatch,
        cf: &'static str,
        prefix: &[u8],
    ) -> Result<(), StoreError> {
        batch.delete_range_cf(&self.cf(cf)?, prefix, prefix_end(prefix).as_slice());
        Ok(())
    }

    /// Compacts every key starting with `prefix` in `cf`, so that the files holding what
    /// [`Db::delete_prefix`] deleted are rewritten and their space given back (slow: run it off
    /// the request path).
    pub fn compact_prefix(&self, cf: &'static str, prefix: &[u8]) -> Result<(), StoreError> {
        let end = prefix_end(prefix);
        self.inner
            .compact_range_cf(&self.cf(cf)?, Some(prefix), Some(end.as_slice()));
        Ok(())
    }

    /// Flushes the WAL to disk.
    pub fn sync_wal(&self) -> Result<(), StoreError> {
        Ok(self.inner.flush_wal(true)?)
    }

    /// The state CF name (re-exported for callers that build batches).
    pub const STATE: &'static str = CF_STATE;
}
