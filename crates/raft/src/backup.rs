//! Backups: a group's image read from this node while it runs, and a new data dir built from
//! images. The image format is tern-store's (`tern_store::image`); the files, the manifest and
//! the progress display belong to the `tern backup` command.
//!
//! An export is consistent: the image and the applied index it reports come from one RocksDB
//! snapshot. Callers take a linearizable read of the group first ([`RaftNode::read`]), so every
//! write acknowledged before the backup of that group began is in it.

use crate::RaftError;
use crate::node::{RaftNode, store_partitions, unavailable};
use crate::state_machine::applied_index;
use std::io::{Read, Write};
use std::path::Path;
use tern_core::GroupId;
use tern_store::Db;
use tern_store::image::{self, ImageStats};

impl RaftNode {
    /// Writes `group`'s image, as of now on this node, to `out`; `on_pinned` hears the applied
    /// index the image stands for before the first byte is written. Blocking: run it off the
    /// async threads.
    pub fn export_group(
        &self,
        group: GroupId,
        on_pinned: impl FnOnce(u64),
        out: &mut impl Write,
    ) -> Result<ImageStats, RaftError> {
        let db = &self.inner.db;
        let pinned = db.pin_group(group);
        let index = applied_index(&pinned, group).map_err(|e| unavailable(group, e))?;
        on_pinned(index);
        pinned.export(out).map_err(|e| unavailable(group, e))
    }
}

/// A data dir being built from a backup, for a single node that starts with it (and can then
/// seed a cluster). The groups come back with their state and no log: the node initialises
/// them as a new single node would, on top of the restored state.
pub struct Restore {
    db: Db,
}

impl Restore {
    /// Creates the database of a new data dir at `data_dir` for `partitions` partitions;
    /// refuses a data dir that already has one.
    pub fn create(data_dir: &Path, partitions: u32) -> Result<Restore, RaftError> {
        let db_path = data_dir.join("db");
        if db_path.exists() {
            return Err(unavailable(
                GroupId::META,
                format!("{} already holds a database", data_dir.display()),
            ));
        }
        std::fs::create_dir_all(&db_path).map_err(|e| unavailable(GroupId::META, e))?;
        let db = Db::open(&db_path)?;
        store_partitions(&db, partitions)?;
        Ok(Restore { db })
    }

    /// Writes one group's image (checked whole by the caller beforehand).
    pub fn group(&self, group: GroupId, input: &mut impl Read) -> Result<ImageStats, RaftError> {
        image::import(&self.db, group, input, None, &[]).map_err(|e| unavailable(group, e))
    }
}
