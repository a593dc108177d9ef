//! Test support for crates built on the Raft layer (feature `testing`): run a test body on its
//! own runtime over a fresh data directory, and return only once RocksDB has closed.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{RaftConfig, RaftNode};
use tern_core::{AccountId, GroupId};
use tern_store::{Command, Rejection, Response};

/// Partitions of a test node: several, so cross-partition paths are exercised, yet quick.
pub const TEST_PARTITIONS: u32 = 4;

/// Starts node 1 with [`TEST_PARTITIONS`] partitions over `dir`.
pub async fn start_node(dir: PathBuf) -> RaftNode {
    let config = RaftConfig {
        node_id: 1,
        data_dir: dir,
        partitions: TEST_PARTITIONS,
        link: None,
        storage: Default::default(),
    };
    match RaftNode::start(config).await {
        Ok(node) => node,
        Err(e) => panic!("test node did not start: {e}"),
    }
}

/// Runs `body` on its own runtime over a fresh data directory, then waits until RocksDB has
/// really closed.
///
/// A test process that exits while RocksDB is still open on another thread aborts ("pthread
/// lock: Invalid argument"). Waiting until the database can be opened again (its lock is free)
/// makes the close happen here, before the test returns, whether or not the body shut its node
/// down.
pub fn run<F, Fut>(body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(body(dir.path().to_path_buf()));
    drop(runtime);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tern_store::Db::open(&dir.path().join("db")) {
            Ok(_closed_again_here) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "RocksDB never closed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Adds the account `address` (and its domain, unless it exists) through the meta group and
/// initialises it on its partition, as the directory would; panics on any failure.
pub async fn add_account(node: &RaftNode, address: &str) -> AccountId {
    let domain = Command::AddDomain {
        name: address.rsplit('@').next().unwrap_or_default().into(),
        now: 1,
    };
    match node.propose(GroupId::META, domain).await {
        Ok(Response::Ok | Response::Rejected(Rejection::DomainExists)) => {}
        other => panic!("adding the domain of {address}: {other:?}"),
    }
    let added = node
        .propose(
            GroupId::META,
            Command::AddAccount {
                address: address.into(),
                password_hash: "x".into(),
                quota: 0,
                now: 1_700_000_000,
            },
        )
        .await;
    let Ok(Response::AccountAdded(id)) = added else {
        panic!("adding {address}: {added:?}")
    };
    let init = Command::InitAccount {
        account: id,
        now: 1_700_000_000,
    };
    match node.propose(node.partition_of(id), init).await {
        Ok(Response::Ok) => id,
        other => panic!("initialising {address}: {other:?}"),
    }
}
