//! One group's state machine: applies committed entries through tern-store, writing each
//! entry's state changes and the new `last_applied` in one atomic batch (no fsync: after a
//! crash the synced log replays whatever the state missed).
//!
//! Snapshots are files (see [`crate::snapshots`]): built on a blocking thread from a RocksDB
//! snapshot of the group's key range while entries keep applying, kept on disk so a restart
//! finds them, streamed to followers in chunks read from the file, and installed by streaming
//! the received file into RocksDB. No step holds more than one record in memory.
//!
//! Installing replaces the group's state in several batches, so it is guarded: the received
//! file is first checked whole and made the current snapshot, then an "installing" marker is
//! synced, and the marker goes only with the final batch. A node that dies in between finds
//! the marker when it opens the group and installs the current snapshot again.

use crate::log_store::io_err;
use crate::observers::Observers;
use crate::snapshots::{self, Meta, SnapshotDir};
use crate::{TypeConfig, codec};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tern_core::GroupId;
use tern_store::db::WriteBatch;
use tern_store::image;
use tern_store::schema::{self, CF_RAFT_META, CF_STATE};
use tern_store::{Db, Response};

type StoreResult<T> = Result<T, StorageError<u64>>;

/// Buffer of the snapshot file writers and readers.
const FILE_BUFFER: usize = 1024 * 1024;

/// What `last_applied` records, stored in the state CF beside the state it describes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

/// One group's state machine.
pub struct StateMachine {
    group: GroupId,
    db: Db,
    applied: AppliedState,
    snapshots: Arc<SnapshotDir>,
    /// Part files being received, by inode: openraft hands the file back to
    /// [`RaftStateMachine::install_snapshot`] without its name.
    receiving: HashMap<u64, PathBuf>,
    observers: Observers,
}

fn snapshot_err(e: impl std::fmt::Display, verb: ErrorVerb) -> StorageError<u64> {
    io_err(ErrorSubject::Snapshot(None), verb, e.to_string())
}

fn read_applied(db: &Db, group: GroupId) -> StoreResult<AppliedState> {
    match db
        .get(CF_STATE, &schema::applied(group))
        .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
    {
        Some(bytes) => codec::decode(&bytes)
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e)),
        None => Ok(AppliedState::default()),
    }
}

impl StateMachine {
    /// Opens the state machine of `group`, reading what was last applied (and finishing a
    /// snapshot install a crash interrupted); `observers` hear of every command it applies.
    pub fn open(
        group: GroupId,
        db: Db,
        snapshots: Arc<SnapshotDir>,
        observers: Observers,
    ) -> StoreResult<StateMachine> {
        let marker = schema::raft_meta(group, snapshots::INSTALLING_MARKER);
        let interrupted = db
            .get(CF_RAFT_META, &marker)
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
            .is_some();
        if interrupted {
            tracing::warn!(%group, "a snapshot install was interrupted; installing it again");
            let path = snapshots.current_path(group);
            let meta = check_file(group, &path, None)?;
            install_current(&db, group, &path, &meta)?;
        }
        let applied = read_applied(&db, group)?;
        Ok(StateMachine {
            group,
            db,
            applied,
            snapshots,
            receiving: HashMap::new(),
            observers,
        })
    }

    fn put_applied(&self, batch: &mut WriteBatch) -> StoreResult<()> {
        let cf = self
            .db
            .cf(CF_STATE)
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
        batch.put_cf(
            &cf,
            schema::applied(self.group),
            codec::encode(&self.applied),
        );
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        Ok((self.applied.last_applied, self.applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<Response>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            let (response, mut batch) = match &entry.payload {
                EntryPayload::Blank => (Response::Ok, WriteBatch::default()),
                EntryPayload::Normal(command) => {
                    tern_store::apply::apply(&self.db, self.group, entry.log_id.index, command)
                        .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?
                }
                EntryPayload::Membership(m) => {
                    self.applied.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    (Response::Ok, WriteBatch::default())
                }
            };
            self.applied.last_applied = Some(entry.log_id);
            self.put_applied(&mut batch)?;
            self.db
                .write(batch, false)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Write, e))?;
            if let EntryPayload::Normal(command) = &entry.payload {
                self.observers.applied(self.group, command, &response);
            }
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            group: self.group,
            db: self.db.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<tokio::fs::File>> {
        let (file, part) = self
            .snapshots
            .new_part(self.group, "recv")
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
        let inode = file
            .metadata()
            .map_err(|e| snapshot_err(e, ErrorVerb::Read))?
            .ino();
        self.receiving.insert(inode, part);
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> StoreResult<()> {
        let mut file = *snapshot;
        // tokio's File may still hold the last chunk's write.
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
        let inode = file
            .metadata()
            .await
            .map_err(|e| snapshot_err(e, ErrorVerb::Read))?
            .ino();
        drop(file);
        let part = self.receiving.remove(&inode).ok_or_else(|| {
            snapshot_err("the received snapshot file is unknown", ErrorVerb::Read)
        })?;
        let (db, snapshots, group, meta_owned) = (
            self.db.clone(),
            self.snapshots.clone(),
            self.group,
            meta.clone(),
        );
        let started = Instant::now();
        let stats = tokio::task::spawn_blocking(move || {
            install_received(&db, &snapshots, group, &part, &meta_owned)
        })
        .await
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))??;
        self.applied = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        tracing::info!(
            group = %self.group,
            snapshot = %meta.snapshot_id,
            records = stats.records,
            bytes = stats.image_bytes,
            ms = started.elapsed().as_millis() as u64,
            "snapshot installed"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        // Header and data from one handle: a build may rename a newer file into place.
        let mut file = match File::open(self.snapshots.current_path(self.group)) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(snapshot_err(e, ErrorVerb::Read)),
        };
        let meta = snapshots::read_header(&mut BufReader::new(&mut file))
            .map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| snapshot_err(e, ErrorVerb::Seek))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(tokio::fs::File::from_std(file)),
        }))
    }
}

/// Checks a received snapshot file whole, makes it the group's current snapshot and installs
/// it under the "installing" marker.
fn install_received(
    db: &Db,
    snapshots: &SnapshotDir,
    group: GroupId,
    part: &Path,
    meta: &Meta,
) -> StoreResult<image::ImageStats> {
    let checked = check_file(group, part, Some(meta));
    if let Err(e) = checked {
        let _ = std::fs::remove_file(part);
        return Err(e);
    }
    let current = snapshots
        .commit(group, part)
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
    tracing::info!(%group, snapshot = %meta.snapshot_id, "installing snapshot");
    set_installing(db, group, true)?;
    install_current(db, group, &current, meta)
}

/// Reads a snapshot file whole: its header (which must describe `expected`, when given) and
/// its image (framing, keys of this group, counts, checksum). Returns the header's meta.
fn check_file(group: GroupId, path: &Path, expected: Option<&Meta>) -> StoreResult<Meta> {
    let file = File::open(path).map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
    let mut input = BufReader::with_capacity(FILE_BUFFER, file);
    let meta = snapshots::read_header(&mut input).map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
    if let Some(expected) = expected
        && (meta.snapshot_id != expected.snapshot_id || meta.last_log_id != expected.last_log_id)
    {
        return Err(snapshot_err(
            format!(
                "snapshot file holds {} at {:?}, expected {} at {:?}",
                meta.snapshot_id, meta.last_log_id, expected.snapshot_id, expected.last_log_id
            ),
            ErrorVerb::Read,
        ));
    }
    image::verify(group, &mut input).map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
    Ok(meta)
}

/// Replaces the group's state with the snapshot file at `path` (already checked), writes the
/// applied state it stands for, and clears the "installing" marker.
fn install_current(
    db: &Db,
    group: GroupId,
    path: &Path,
    meta: &Meta,
) -> StoreResult<image::ImageStats> {
    let file = File::open(path).map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
    let mut input = BufReader::with_capacity(FILE_BUFFER, file);
    snapshots::read_header(&mut input).map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
    let applied = codec::encode(&AppliedState {
        last_applied: meta.last_log_id,
        membership: meta.last_membership.clone(),
    });
    // Bodies staged for the log entries this node keeps after the snapshot stay.
    let after = meta.last_log_id.map_or(0, |id| id.index + 1);
    let keep = crate::log_store::staged_bodies(db, group, after)?;
    let stats = image::import(
        db,
        group,
        &mut input,
        Some((&schema::applied(group), &applied)),
        &keep,
    )
    .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
    set_installing(db, group, false)?;
    Ok(stats)
}

/// Sets or clears `group`'s "installing" marker, synced.
fn set_installing(db: &Db, group: GroupId, on: bool) -> StoreResult<()> {
    let write_err = |e| snapshot_err(e, ErrorVerb::Write);
    let key = schema::raft_meta(group, snapshots::INSTALLING_MARKER);
    let mut batch = WriteBatch::default();
    let raft_meta = db.cf(CF_RAFT_META).map_err(write_err)?;
    if on {
        batch.put_cf(&raft_meta, key, [1]);
    } else {
        batch.delete_cf(&raft_meta, key);
    }
    drop(raft_meta);
    db.write(batch, true).map_err(write_err)
}

/// Builds a snapshot file of the group as of the moment it starts, off the apply task.
pub struct SnapshotBuilder {
    group: GroupId,
    db: Db,
    snapshots: Arc<SnapshotDir>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let (db, snapshots, group) = (self.db.clone(), self.snapshots.clone(), self.group);
        let started = Instant::now();
        let (meta, path, stats) =
            tokio::task::spawn_blocking(move || build_file(&db, &snapshots, group))
                .await
                .map_err(|e| snapshot_err(e, ErrorVerb::Write))??;
        tracing::info!(
            %group,
            snapshot = %meta.snapshot_id,
            records = stats.records,
            bytes = stats.image_bytes,
            ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

/// The applied index of `group` as `pinned` sees it (0 before anything applied).
pub(crate) fn applied_index(
    pinned: &tern_store::image::PinnedGroup<'_>,
    group: GroupId,
) -> StoreResult<u64> {
    Ok(pinned_applied(pinned, group)?
        .last_applied
        .map_or(0, |l| l.index))
}

/// The applied state of `group` as `pinned` sees it.
fn pinned_applied(
    pinned: &tern_store::image::PinnedGroup<'_>,
    group: GroupId,
) -> StoreResult<AppliedState> {
    match pinned
        .get(CF_STATE, &schema::applied(group))
        .map_err(|e| snapshot_err(e, ErrorVerb::Read))?
    {
        Some(bytes) => codec::decode(&bytes).map_err(|e| snapshot_err(e, ErrorVerb::Read)),
        None => Ok(AppliedState::default()),
    }
}

/// Writes a snapshot file of `group` from a consistent RocksDB snapshot: the applied state and
/// the image come from the same instant, whatever is applied meanwhile.
pub(crate) fn build_file(
    db: &Db,
    snapshots: &SnapshotDir,
    group: GroupId,
) -> StoreResult<(Meta, PathBuf, image::ImageStats)> {
    let pinned = db.pin_group(group);
    let applied = pinned_applied(&pinned, group)?;
    let index = applied.last_applied.map_or(0, |l| l.index);
    let term = applied.last_applied.map_or(0, |l| l.leader_id.term);
    let meta = Meta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership,
        snapshot_id: format!("{}-{term}-{index}-{}", group.0, unique_suffix()),
    };
    let (file, part) = snapshots
        .new_part(group, "build")
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
    let written = (|| -> Result<image::ImageStats, String> {
        let mut out = BufWriter::with_capacity(FILE_BUFFER, file);
        snapshots::write_header(&mut out, &meta).map_err(|e| e.to_string())?;
        let stats = pinned.export(&mut out).map_err(|e| e.to_string())?;
        let mut file = out.into_inner().map_err(|e| e.to_string())?;
        file.flush().map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok(stats)
    })();
    drop(pinned);
    let stats = match written {
        Ok(stats) => stats,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(snapshot_err(e, ErrorVerb::Write));
        }
    };
    let path = snapshots
        .commit(group, &part)
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
    Ok((meta, path, stats))
}

/// A suffix that keeps snapshot ids of one index apart across restarts.
fn unique_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
