//! One group's state machine: applies committed entries through tern-store, writing each
//! entry's state changes and the new `last_applied` in one atomic batch (no fsync: after a
//! crash the synced log replays whatever the state missed).
//!
//! A group's snapshot is its state in RocksDB, which applies keep current: asking for one writes
//! nothing. To name it, a build reads the applied state and syncs the WAL, so the log behind it
//! can be purged. To send it, [`StateMachine::get_current_snapshot`] pins the group in RocksDB
//! (the meta and the image come from that instant, whatever applies next) and a thread of its
//! own writes the image to an unlinked file when openraft starts reading. The last complete
//! export is kept for the next transfer until the group builds its next snapshot (after which
//! the log behind it may be purged) or for [`EXPORT_REUSE`], so a transfer that fails and is
//! retried, or a second follower, does not export the group again. A follower streams the
//! received file to disk, checks it whole and streams it into RocksDB. No step holds more than
//! one record in memory, and no copy of the mail stays on disk beside the state for long.
//!
//! Installing replaces the group's state in several batches, so it is guarded: the received
//! file is first checked whole and made `installing.snap`, then an "installing" marker is
//! synced, and the marker goes only with the final batch. A node that dies in between finds
//! the marker when it opens the group and installs that file again.

use crate::log_store::io_err;
use crate::observers::Observers;
use crate::snapshot_data::{ExportDone, SnapshotData};
use crate::snapshots::{self, Meta, SnapshotDir};
use crate::{TypeConfig, codec};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::GroupId;
use tern_core::sync::lock;
use tern_store::db::WriteBatch;
use tern_store::image;
use tern_store::schema::{self, CF_RAFT_META, CF_STATE};
use tern_store::{Db, Response};
use tokio::sync::oneshot;
use tokio::time::Instant;

type StoreResult<T> = Result<T, StorageError<u64>>;

/// Buffer of the snapshot file writers and readers.
const FILE_BUFFER: usize = 1024 * 1024;
/// How long a complete export is offered to later transfers (at most: the group's next
/// snapshot build withdraws it sooner).
pub const EXPORT_REUSE: Duration = Duration::from_secs(600);

/// The last complete export of one group, offered to the next transfer while the log behind it
/// is still kept. A snapshot build starts a new generation and withdraws it: the log up to
/// that build may then be purged, and an older image would leave a follower with a gap. An
/// export begun before the build is refused when it completes (its generation is old).
#[derive(Default)]
pub struct ExportCache {
    generation: u64,
    last: Option<CachedExport>,
}

struct CachedExport {
    at: Instant,
    meta: Meta,
    /// A read handle on the unlinked image; each reuse opens its own.
    file: File,
}

impl ExportCache {
    /// Withdraws the cached export: a snapshot is being built.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.last = None;
    }

    /// Keeps a complete export made in `generation`, unless a build has happened since.
    fn offer(&mut self, generation: u64, meta: Meta, file: File) {
        if generation == self.generation {
            self.last = Some(CachedExport {
                at: Instant::now(),
                meta,
                file,
            });
        }
    }

    /// The cached export with a read handle of its own, if it is still good.
    fn reuse(&mut self) -> Option<(Meta, File)> {
        let fresh = self
            .last
            .as_ref()
            .is_some_and(|c| c.at.elapsed() < EXPORT_REUSE);
        if !fresh {
            self.last = None;
            return None;
        }
        let cached = self.last.as_ref()?;
        match reopen(&cached.file) {
            Ok(file) => Some((cached.meta.clone(), file)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reopen a cached snapshot export");
                self.last = None;
                None
            }
        }
    }
}

/// A new handle, with its own offset, on the same (possibly unlinked) file.
fn reopen(file: &File) -> std::io::Result<File> {
    use std::os::fd::AsRawFd;
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

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
    observers: Observers,
    exports: Arc<Mutex<ExportCache>>,
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
            let path = snapshots.interrupted_install(group);
            let meta = check_file(group, &path, None)?;
            install_file(&db, group, &path, &meta)?;
        }
        snapshots
            .remove_stale(group)
            .map_err(|e| snapshot_err(e, ErrorVerb::Delete))?;
        let applied = read_applied(&db, group)?;
        Ok(StateMachine {
            group,
            db,
            applied,
            snapshots,
            observers,
            exports: Arc::default(),
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
        lock(&self.exports).new_generation();
        SnapshotBuilder {
            group: self.group,
            db: self.db.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<SnapshotData>> {
        let (file, part) = self
            .snapshots
            .new_part(self.group, "recv")
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
        Ok(Box::new(SnapshotData::receiving(file, part)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<SnapshotData>,
    ) -> StoreResult<()> {
        let part = snapshot
            .finish_receiving()
            .await
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
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

    /// The group as it is now: the meta at once, the image written when it is first read.
    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        if self.applied.last_applied.is_none() {
            return Ok(None);
        }
        if let Some((meta, file)) = lock(&self.exports).reuse() {
            tracing::info!(group = %self.group, snapshot = %meta.snapshot_id, "snapshot export reused");
            return Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(SnapshotData::exported(file)),
            }));
        }
        let (file, reader) = self
            .snapshots
            .new_export(self.group)
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
        let (meta_tx, meta_rx) = oneshot::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let (db, group) = (self.db.clone(), self.group);
        let cache = self.exports.clone();
        let generation = lock(&self.exports).generation;
        std::thread::Builder::new()
            .name(format!("snapshot-{}", group.0))
            .spawn(move || {
                let channels = ExportChannels {
                    meta: meta_tx,
                    go: go_rx,
                    done: done_tx,
                };
                export(&db, group, file, channels, (&cache, generation))
            })
            .map_err(|e| snapshot_err(e, ErrorVerb::Read))?;
        // Nothing applies while this waits: the pinned state is `self.applied`.
        let meta = meta_rx
            .await
            .map_err(|_| snapshot_err("the snapshot export thread ended", ErrorVerb::Read))??;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::exporting(reader, go_tx, done_rx)),
        }))
    }
}

/// The channels between an export thread and [`StateMachine::get_current_snapshot`].
struct ExportChannels {
    meta: oneshot::Sender<StoreResult<Meta>>,
    go: std::sync::mpsc::Receiver<()>,
    done: oneshot::Sender<ExportDone>,
}

/// The export thread of [`StateMachine::get_current_snapshot`]: pins the group, reports the
/// meta once the WAL holding it is synced, then waits — holding the pin — until the image is
/// wanted (`go`) or not (the sender dropped), writes it to `file` and, once complete, offers
/// it to `cache` for the next transfer.
fn export(
    db: &Db,
    group: GroupId,
    file: File,
    channels: ExportChannels,
    (cache, generation): (&Mutex<ExportCache>, u64),
) {
    let ExportChannels {
        meta: meta_tx,
        go,
        done,
    } = channels;
    let pinned = db.pin_group(group);
    let meta = pinned_meta(&pinned, group).and_then(|meta| {
        db.sync_wal()
            .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
        Ok(meta)
    });
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) => {
            let _ = meta_tx.send(Err(e));
            return;
        }
    };
    if meta_tx.send(Ok(meta.clone())).is_err() || go.recv().is_err() {
        return;
    }
    let started = Instant::now();
    // Opened before writing: the handle the cache keeps if the export completes.
    let kept = reopen(&file);
    let written = (|| -> std::io::Result<image::ImageStats> {
        let mut out = BufWriter::with_capacity(
            FILE_BUFFER,
            UntilAbandoned {
                out: file,
                done: &done,
            },
        );
        snapshots::write_header(&mut out, &meta)?;
        let stats = pinned.export(&mut out).map_err(std::io::Error::other)?;
        out.flush()?;
        Ok(stats)
    })();
    drop(pinned);
    let result = match written {
        Ok(stats) => {
            tracing::info!(
                %group,
                snapshot = %meta.snapshot_id,
                records = stats.records,
                bytes = stats.image_bytes,
                ms = started.elapsed().as_millis() as u64,
                "snapshot exported"
            );
            match kept {
                Ok(kept) => lock(cache).offer(generation, meta, kept),
                Err(e) => tracing::warn!(%group, error = %e, "a snapshot export cannot be kept"),
            }
            Ok(())
        }
        Err(e) => {
            if !done.is_closed() {
                tracing::warn!(%group, snapshot = %meta.snapshot_id, error = %e, "snapshot export failed");
            }
            Err(e)
        }
    };
    let _ = done.send(result);
}

/// A writer that fails once nobody waits for what it writes: an abandoned transfer stops its
/// export at the next buffer.
struct UntilAbandoned<'a> {
    out: File,
    done: &'a oneshot::Sender<ExportDone>,
}

impl Write for UntilAbandoned<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.done.is_closed() {
            return Err(std::io::Error::other("snapshot transfer abandoned"));
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Checks a received snapshot file whole, makes it `installing.snap` and installs it under the
/// "installing" marker.
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
    let installing = snapshots
        .commit(group, part)
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
    tracing::info!(%group, snapshot = %meta.snapshot_id, "installing snapshot");
    set_installing(db, group, true)?;
    install_file(db, group, &installing, meta)
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
/// applied state it stands for, clears the "installing" marker and removes the file.
fn install_file(
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
    std::fs::remove_file(path).map_err(|e| snapshot_err(e, ErrorVerb::Delete))?;
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

/// Names a snapshot of the group as it is: reads the applied state and makes it durable.
pub struct SnapshotBuilder {
    group: GroupId,
    db: Db,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let (db, group) = (self.db.clone(), self.group);
        let meta = tokio::task::spawn_blocking(move || {
            let meta = pinned_meta(&db.pin_group(group), group)?;
            // The state named is in the WAL before this sync: the log behind it can go.
            db.sync_wal()
                .map_err(|e| snapshot_err(e, ErrorVerb::Write))?;
            Ok::<_, StorageError<u64>>(meta)
        })
        .await
        .map_err(|e| snapshot_err(e, ErrorVerb::Write))??;
        tracing::debug!(%group, snapshot = %meta.snapshot_id, "snapshot taken");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::meta_only()),
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

/// The meta of a snapshot of `group` as `pinned` sees it, with an id of its own.
fn pinned_meta(pinned: &tern_store::image::PinnedGroup<'_>, group: GroupId) -> StoreResult<Meta> {
    let applied = pinned_applied(pinned, group)?;
    let index = applied.last_applied.map_or(0, |l| l.index);
    let term = applied.last_applied.map_or(0, |l| l.leader_id.term);
    Ok(Meta {
        last_log_id: applied.last_applied,
        last_membership: applied.membership,
        snapshot_id: format!("{}-{term}-{index}-{}", group.0, unique_suffix()),
    })
}

/// A suffix that keeps snapshot ids of one index apart.
fn unique_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
