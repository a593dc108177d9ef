//! A write transaction for applying one command: reads see the command's own writes, and the
//! writes become one RocksDB `WriteBatch` that the caller commits together with `last_applied`.

use crate::codec::{decode, encode};
use crate::schema::{CF_BLOBS, CF_STATE};
use crate::{Db, StoreError};
use rocksdb::WriteBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Pending writes of one command, over a read view of the database.
pub struct Tx<'a> {
    db: &'a Db,
    /// (column family, key) → new value, or `None` for a delete.
    writes: BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
    /// Blobs-CF keys whose whole prefix goes (a body and its parts), before the writes.
    blob_prefixes: Vec<Vec<u8>>,
}

impl<'a> Tx<'a> {
    /// An empty transaction over `db`.
    pub fn new(db: &'a Db) -> Tx<'a> {
        Tx {
            db,
            writes: BTreeMap::new(),
            blob_prefixes: Vec::new(),
        }
    }

    /// The database (for scans, which do not see pending writes: scan before writing).
    pub fn db(&self) -> &Db {
        self.db
    }

    fn raw(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(&(cf, key.to_vec())) {
            Some(pending) => Ok(pending.clone()),
            None => self.db.get(cf, key),
        }
    }

    /// Reads and decodes a state value.
    pub fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.raw(CF_STATE, key)?
            .map(|bytes| decode(key, &bytes))
            .transpose()
    }

    /// Whether a state key exists.
    pub fn exists(&self, key: &[u8]) -> Result<bool, StoreError> {
        Ok(self.raw(CF_STATE, key)?.is_some())
    }

    /// Writes a state value.
    pub fn put<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        self.writes.insert((CF_STATE, key), Some(encode(value)));
    }

    /// Deletes a state key.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert((CF_STATE, key), None);
    }

    /// Whether a body is stored under `key` (without copying it).
    pub fn blob_exists(&self, key: &[u8]) -> Result<bool, StoreError> {
        match self.writes.get(&(CF_BLOBS, key.to_vec())) {
            Some(pending) => Ok(pending.is_some()),
            None => self.db.exists(CF_BLOBS, key),
        }
    }

    /// Writes a body.
    pub fn put_blob(&mut self, key: Vec<u8>, body: &[u8]) {
        self.writes.insert((CF_BLOBS, key), Some(body.to_vec()));
    }

    /// Deletes a body, and its parts if it was stored in parts (every key starting with `key`).
    pub fn delete_blob(&mut self, key: Vec<u8>) {
        // Only ids of bodies in parts have their top bit set (see `crate::body`); a range
        // tombstone for every other body would only slow RocksDB's reads down.
        if key.get(4).is_some_and(|first| first & 0x80 != 0) {
            self.blob_prefixes.push(key.clone());
        }
        self.writes.insert((CF_BLOBS, key), None);
    }

    /// The writes as one batch.
    pub fn into_batch(self) -> Result<WriteBatch, StoreError> {
        let mut batch = WriteBatch::default();
        if !self.blob_prefixes.is_empty() {
            let blobs = self.db.cf(CF_BLOBS)?;
            for prefix in &self.blob_prefixes {
                batch.delete_range_cf(
                    &blobs,
                    prefix.as_slice(),
                    crate::schema::prefix_end(prefix).as_slice(),
                );
            }
        }
        for ((cf, key), value) in self.writes {
            let handle = self.db.cf(cf)?;
            match value {
                Some(v) => batch.put_cf(&handle, key, v),
                None => batch.delete_cf(&handle, key),
            }
        }
        Ok(batch)
    }
}
