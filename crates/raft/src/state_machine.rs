//! One group's state machine: applies committed entries through tern-store, writing each
//! entry's state changes and the new `last_applied` in one atomic batch (no fsync: after a
//! crash the synced log replays whatever the state missed). Snapshots carry the group's whole
//! key range.

use crate::log_store::io_err;
use crate::observers::Observers;
use crate::{TypeConfig, codec};
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend,
    RaftSnapshotBuilder, StorageError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tern_core::GroupId;
use tern_store::db::WriteBatch;
use tern_store::schema::{self, CF_BLOBS, CF_STATE};
use tern_store::{Db, Response};

type StoreResult<T> = Result<T, StorageError<u64>>;

/// What `last_applied` records, stored in the state CF beside the state it describes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

/// The serialized content of a snapshot: every key of the group in state and blobs.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    state: Vec<(Vec<u8>, Vec<u8>)>,
    blobs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One group's state machine.
pub struct StateMachine {
    group: GroupId,
    db: Db,
    applied: AppliedState,
    /// The latest snapshot, built here or installed from a leader; shared with builders.
    current: CurrentSnapshot,
    snapshot_seq: Arc<AtomicU64>,
    observers: Observers,
}

type CurrentSnapshot = Arc<Mutex<Option<(SnapshotMeta<u64, BasicNode>, Arc<Vec<u8>>)>>>;

impl StateMachine {
    /// Opens the state machine of `group`, reading what was last applied; `observers` hear of
    /// every command it applies.
    pub fn open(group: GroupId, db: Db, observers: Observers) -> StoreResult<StateMachine> {
        let key = schema::applied(group);
        let applied = match db
            .get(CF_STATE, &key)
            .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?
        {
            Some(bytes) => codec::decode(&bytes)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))?,
            None => AppliedState::default(),
        };
        Ok(StateMachine {
            group,
            db,
            applied,
            current: CurrentSnapshot::default(),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
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

    fn snapshot_data(&self) -> StoreResult<Vec<u8>> {
        let prefix = schema::group_prefix(self.group);
        let read = |cf| {
            self.db
                .scan(cf, &prefix)
                .map_err(|e| io_err(ErrorSubject::StateMachine, ErrorVerb::Read, e))
        };
        let applied_key = schema::applied(self.group);
        let mut state = read(CF_STATE)?;
        state.retain(|(k, _)| *k != applied_key);
        Ok(codec::encode(&SnapshotData {
            state,
            blobs: read(CF_BLOBS)?,
        }))
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
                    tern_store::apply::apply(&self.db, self.group, command)
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
        let data = self.snapshot_data();
        SnapshotBuilder {
            group: self.group,
            meta_applied: self.applied.clone(),
            data,
            seq: self.snapshot_seq.clone(),
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let bytes = snapshot.into_inner();
        let data: SnapshotData = codec::decode(&bytes).map_err(|e| {
            io_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                e,
            )
        })?;
        let write_err = |e: tern_store::StoreError| {
            io_err(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Write,
                e,
            )
        };
        let prefix = schema::group_prefix(self.group);
        let mut batch = WriteBatch::default();
        self.db
            .delete_prefix(&mut batch, CF_STATE, &prefix)
            .map_err(write_err)?;
        self.db
            .delete_prefix(&mut batch, CF_BLOBS, &prefix)
            .map_err(write_err)?;
        {
            let state = self.db.cf(CF_STATE).map_err(write_err)?;
            for (k, v) in &data.state {
                batch.put_cf(&state, k, v);
            }
            let blobs = self.db.cf(CF_BLOBS).map_err(write_err)?;
            for (k, v) in &data.blobs {
                batch.put_cf(&blobs, k, v);
            }
        }
        self.applied = AppliedState {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        self.put_applied(&mut batch)?;
        self.db.write(batch, true).map_err(write_err)?;
        *tern_core::sync::lock(&self.current) = Some((meta.clone(), Arc::new(bytes)));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let current = tern_core::sync::lock(&self.current);
        Ok(current.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        }))
    }
}

/// Builds a snapshot from the state captured when it was requested.
pub struct SnapshotBuilder {
    group: GroupId,
    meta_applied: AppliedState,
    data: StoreResult<Vec<u8>>,
    seq: Arc<AtomicU64>,
    current: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let data = std::mem::replace(&mut self.data, Ok(Vec::new()))?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let index = self.meta_applied.last_applied.map(|l| l.index).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.meta_applied.last_applied,
            last_membership: self.meta_applied.membership.clone(),
            snapshot_id: format!("{}-{index}-{seq}", self.group),
        };
        let data = Arc::new(data);
        *tern_core::sync::lock(&self.current) = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data.as_ref().clone())),
        })
    }
}
