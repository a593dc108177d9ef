//! Snapshots on a real node: named without copying the mail, the log purged behind them, an
//! export that stands for the instant it was asked for, installed on another replica, and an
//! install that a crash interrupted finished when the node starts again.

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_core::config::StorageConfig;
use tern_core::{AccountId, GroupId};
use tern_raft::observers::Observers;
use tern_raft::snapshots::{self, SnapshotDir};
use tern_raft::state_machine::StateMachine;
use tern_raft::testing::run;
use tern_raft::{GroupStatus, RaftConfig, RaftNode};
use tern_store::schema::{self, CF_RAFT_META, CF_STATE};
use tern_store::{Command, Db, Reader, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Small, so a test writes several snapshots' worth quickly.
const SNAPSHOT_ENTRIES: u64 = 40;
const LOG_KEEP: u64 = 5;

fn by_count() -> StorageConfig {
    StorageConfig {
        snapshot_entries: SNAPSHOT_ENTRIES,
        log_keep_entries: LOG_KEEP,
        ..StorageConfig::default()
    }
}

/// Starts a node over `dir`, waiting for the previous one's RocksDB lock to be released.
async fn start(dir: &Path) -> RaftNode {
    start_with(dir, by_count()).await
}

async fn start_with(dir: &Path, storage: StorageConfig) -> RaftNode {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let config = RaftConfig {
            node_id: 1,
            data_dir: dir.to_path_buf(),
            partitions: tern_raft::testing::TEST_PARTITIONS,
            link: None,
            storage: storage.clone(),
        };
        match RaftNode::start(config).await {
            Ok(node) => return node,
            Err(e) if Instant::now() < deadline && e.to_string().contains("lock") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("start failed: {e}"),
        }
    }
}

async fn add_account(node: &RaftNode, address: &str) -> (AccountId, GroupId) {
    let id = tern_raft::testing::add_account(node, address).await;
    (id, node.partition_of(id))
}

/// The `n`th message appended to `account`'s INBOX.
fn append_command(account: AccountId, n: usize) -> Command {
    Command::Append {
        account,
        mailbox: "INBOX".into(),
        body: format!("Subject: {n}\r\n\r\n{}\r\n", "b".repeat(3_000 + n)).into_bytes(),
        flags: vec![],
        internal_date: 1_700_000_000,
        quota: 0,
    }
}

async fn append(node: &RaftNode, account: AccountId, range: std::ops::Range<usize>) {
    for n in range {
        let command = append_command(account, n);
        let response = node.propose(node.partition_of(account), command).await;
        assert!(
            matches!(response, Ok(Response::Appended { .. })),
            "{response:?}"
        );
    }
}

/// Waits (at most 30 s) until `group`'s status satisfies `ok`.
async fn wait_status(
    node: &RaftNode,
    group: GroupId,
    what: &str,
    ok: impl Fn(&GroupStatus) -> bool,
) -> GroupStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.status().await;
        let found = status.into_iter().find(|s| s.group == group);
        match found {
            Some(s) if ok(&s) => return s,
            other => assert!(Instant::now() < deadline, "{what}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every file under the node's snapshot directory.
fn snapshot_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.join("snapshots")];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The state machine of `group` over a stopped node's data dir.
async fn open_state_machine(dir: &Path, group: GroupId) -> (Db, StateMachine) {
    let db = open_db(dir).await;
    let snapshots = Arc::new(SnapshotDir::open(dir).unwrap());
    let sm = StateMachine::open(group, db.clone(), snapshots, Observers::default()).unwrap();
    (db, sm)
}

/// The entry that follows `last`, appending message `n`.
fn entry_after(
    last: Option<LogId<u64>>,
    account: AccountId,
    n: usize,
) -> Entry<tern_raft::TypeConfig> {
    let last = last.expect("something applied");
    Entry {
        log_id: LogId::new(
            CommittedLeaderId::new(last.leader_id.term, 1),
            last.index + 1,
        ),
        payload: EntryPayload::Normal(append_command(account, n)),
    }
}

/// Reads a snapshot openraft would send, whole.
async fn read_all(sm: &mut StateMachine) -> (snapshots::Meta, Vec<u8>) {
    let snapshot = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot");
    let mut data = snapshot.snapshot;
    let mut bytes = Vec::new();
    data.read_to_end(&mut bytes).await.unwrap();
    (snapshot.meta, bytes)
}

#[test]
fn a_snapshot_copies_no_mail_and_the_log_is_purged_behind_it() {
    run(|dir| async move {
        let node = start(&dir).await;
        let (account, group) = add_account(&node, "snap@example.test").await;
        append(&node, account, 0..130).await;
        let status = wait_status(&node, group, "snapshot and purge", |s| {
            s.snapshot_index.is_some_and(|i| i >= 2 * SNAPSHOT_ENTRIES) && s.purged_index.is_some()
        })
        .await;
        // The log starts after the purge point, which trails the snapshot by LOG_KEEP entries
        // at most (openraft purges in steps).
        let purged = status.purged_index.unwrap_or(0);
        assert!(purged > 0 && purged <= status.snapshot_index.unwrap_or(0));
        // The state is the snapshot: no copy of the mail beside it.
        assert_eq!(snapshot_files(&dir), Vec::<std::path::PathBuf>::new());
        let digest = node.local_reader(group).digest().unwrap();
        node.shutdown().await;
        drop(node);

        let node = start(&dir).await;
        let after = wait_status(&node, group, "restart", |s| {
            s.applied_index >= status.applied_index
        })
        .await;
        assert_eq!(node.local_reader(group).digest().unwrap(), digest);
        assert!(after.snapshot_index >= status.snapshot_index, "{after:?}");
        append(&node, account, 130..131).await;
        assert_eq!(snapshot_files(&dir), Vec::<std::path::PathBuf>::new());
        node.shutdown().await;
    });
}

#[test]
fn an_export_stands_for_the_moment_it_was_asked_for_and_installs_on_another_replica() {
    run(|dir| async move {
        let node = start(&dir).await;
        let (account, group) = add_account(&node, "export@example.test").await;
        append(&node, account, 0..50).await;
        node.shutdown().await;
        drop(node);

        let (db, mut sm) = open_state_machine(&dir, group).await;
        let (applied, _) = sm.applied_state().await.unwrap();
        let digest = Reader::new(db.clone(), group).digest().unwrap();
        let snapshot = sm
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("a snapshot");
        assert_eq!(snapshot.meta.last_log_id, applied);
        // An entry applied after the snapshot was asked for is not in it.
        sm.apply([entry_after(applied, account, 50)]).await.unwrap();
        assert_ne!(Reader::new(db.clone(), group).digest().unwrap(), digest);
        let mut data = snapshot.snapshot;
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes).await.unwrap();
        drop(data);
        let header = snapshots::read_header(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!(header.last_log_id, applied);
        // The export's file went with it.
        assert_eq!(snapshot_files(&dir), Vec::<std::path::PathBuf>::new());

        let other = tempfile::tempdir().unwrap();
        let (other_db, mut other_sm) = open_state_machine(other.path(), group).await;
        let mut received = other_sm.begin_receiving_snapshot().await.unwrap();
        for chunk in bytes.chunks(7_000) {
            received.write_all(chunk).await.unwrap();
        }
        other_sm
            .install_snapshot(&snapshot.meta, received)
            .await
            .unwrap();
        assert_eq!(Reader::new(other_db, group).digest().unwrap(), digest);
        assert_eq!(other_sm.applied_state().await.unwrap().0, applied);
        assert_eq!(
            snapshot_files(other.path()),
            Vec::<std::path::PathBuf>::new()
        );
    });
}

#[test]
fn a_complete_export_is_sent_again_until_the_next_snapshot_build() {
    run(|dir| async move {
        let node = start(&dir).await;
        let (account, group) = add_account(&node, "reuse@example.test").await;
        append(&node, account, 0..40).await;
        node.shutdown().await;
        drop(node);

        let (_db, mut sm) = open_state_machine(&dir, group).await;
        // Asked for and dropped unread (a transfer that never started): nothing is kept.
        drop(sm.get_current_snapshot().await.unwrap());
        let (first, bytes) = read_all(&mut sm).await;
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(first.last_log_id, applied);
        sm.apply([entry_after(applied, account, 40)]).await.unwrap();
        // A retried transfer gets the same image, not a new export of the newer state.
        let (again, same) = read_all(&mut sm).await;
        assert_eq!(again.last_log_id, first.last_log_id);
        assert_eq!(same, bytes);
        // A build may let the log behind the old image be purged: the next transfer exports.
        drop(sm.get_snapshot_builder().await);
        let (fresh, _) = read_all(&mut sm).await;
        let (now, _) = sm.applied_state().await.unwrap();
        assert_eq!(fresh.last_log_id, now);
        assert_ne!(fresh.last_log_id, first.last_log_id);
    });
}

#[test]
fn an_install_interrupted_by_a_crash_is_finished_at_the_next_start() {
    run(|dir| async move {
        let node = start(&dir).await;
        let (account, group) = add_account(&node, "crash@example.test").await;
        append(&node, account, 0..70).await;
        let status = node
            .status()
            .await
            .into_iter()
            .find(|s| s.group == group)
            .unwrap();
        node.shutdown().await;
        drop(node);

        // What a crash in the middle of installing a received snapshot leaves: the file, the
        // marker set, the group's old state (and its applied index) deleted, part of the new
        // state written.
        let (db, mut sm) = open_state_machine(&dir, group).await;
        let digest = Reader::new(db.clone(), group).digest().unwrap();
        let (_, bytes) = read_all(&mut sm).await;
        drop(sm);
        let snapshots = SnapshotDir::open(&dir).unwrap();
        std::fs::write(snapshots.installing_path(group), &bytes).unwrap();
        let prefix = schema::group_prefix(group);
        let mut batch = tern_store::db::WriteBatch::default();
        db.delete_prefix(&mut batch, CF_STATE, &prefix).unwrap();
        batch.put_cf(
            &db.cf(CF_RAFT_META).unwrap(),
            schema::raft_meta(group, snapshots::INSTALLING_MARKER),
            [1],
        );
        db.write(batch, true).unwrap();
        assert!(db.get(CF_STATE, &schema::applied(group)).unwrap().is_none());
        drop(db);

        let node = start(&dir).await;
        wait_status(&node, group, "reinstalled and replayed", |s| {
            s.applied_index >= status.applied_index
        })
        .await;
        assert_eq!(node.local_reader(group).digest().unwrap(), digest);
        node.shutdown().await;
        drop(node);
        assert_eq!(snapshot_files(&dir), Vec::<std::path::PathBuf>::new());
        let db = open_db(&dir).await;
        let marker = schema::raft_meta(group, snapshots::INSTALLING_MARKER);
        assert!(db.get(CF_RAFT_META, &marker).unwrap().is_none());
    });
}

#[test]
fn a_log_that_grows_by_bytes_or_waits_long_enough_is_snapshotted() {
    run(|dir| async move {
        // The entry count would never trigger; 2 KiB of log does (bodies are not in the log:
        // each entry keeps about a hundred bytes).
        let storage = StorageConfig {
            snapshot_entries: 1_000_000,
            snapshot_log_bytes: 2 * 1024,
            snapshot_max_age_secs: 0,
            ..StorageConfig::default()
        };
        let node = start_with(&dir, storage).await;
        let (account, group) = add_account(&node, "size@example.test").await;
        append(&node, account, 0..30).await;
        let status = wait_status(&node, group, "snapshot by size", |s| {
            s.snapshot_index.is_some()
        })
        .await;
        assert!(status.snapshot_index.unwrap_or(0) > 10, "{status:?}");
        node.shutdown().await;
        drop(node);

        // Neither count nor size would trigger; a second's wait does.
        let storage = StorageConfig {
            snapshot_entries: 1_000_000,
            snapshot_log_bytes: 0,
            snapshot_max_age_secs: 1,
            ..StorageConfig::default()
        };
        let node = start_with(&dir, storage).await;
        let before = status.snapshot_index.unwrap_or(0);
        append(&node, account, 30..33).await;
        let applied = wait_status(&node, group, "applied", |s| s.applied_index > before).await;
        wait_status(&node, group, "snapshot by age", |s| {
            s.snapshot_index.is_some_and(|i| i >= applied.applied_index)
        })
        .await;
        node.shutdown().await;
    });
}

#[test]
fn a_part_file_left_by_a_crash_is_removed_at_start() {
    run(|dir| async move {
        let leftover = dir.join("snapshots").join("g1").join("build-1-0.part");
        std::fs::create_dir_all(leftover.parent().unwrap()).unwrap();
        std::fs::write(&leftover, b"half a snapshot").unwrap();
        let node = start(&dir).await;
        assert!(!leftover.exists());
        node.shutdown().await;
    });
}

/// Opens the data dir's RocksDB once the node's lock is released.
async fn open_db(dir: &Path) -> Db {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Db::open(&dir.join("db")) {
            Ok(db) => return db,
            Err(e) => {
                assert!(Instant::now() < deadline, "RocksDB stayed locked: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
