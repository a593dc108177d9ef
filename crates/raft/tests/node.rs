//! The Raft layer end to end on a real RocksDB: proposals commit and apply, group commit
//! batches fsyncs, and everything survives a restart without a clean shutdown.

use tern_core::{AccountId, GroupId};
use tern_raft::testing::{add_account, run, start_node};
use tern_raft::{RaftConfig, RaftNode};
use tern_store::{Command, Response};

fn config(dir: &std::path::Path) -> RaftConfig {
    RaftConfig {
        node_id: 1,
        data_dir: dir.to_path_buf(),
        partitions: tern_raft::testing::TEST_PARTITIONS,
        link: None,
        storage: Default::default(),
    }
}

fn append(account: AccountId, n: usize) -> Command {
    Command::Append {
        account,
        mailbox: "INBOX".into(),
        body: format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes(),
        flags: vec![],
        internal_date: 1_700_000_000,
        quota: 0,
    }
}

/// Reopens the data dir once the previous node's last handle (and RocksDB's lock) is gone.
async fn reopen(dir: &std::path::Path) -> RaftNode {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match RaftNode::start(config(dir)).await {
            Ok(node) => return node,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("restart failed: {e}"),
        }
    }
}

#[test]
fn commits_survive_a_restart() {
    run(|dir| async move {
        let accounts;
        {
            let node = RaftNode::start(config(&dir)).await.unwrap();
            assert_eq!(node.partitions(), tern_raft::testing::TEST_PARTITIONS);
            let domain = Command::AddDomain {
                name: "example.org".into(),
                now: 1,
            };
            assert_eq!(
                node.propose(GroupId::META, domain).await.unwrap(),
                Response::Ok
            );
            let mut ids = Vec::new();
            for i in 0..6 {
                ids.push(add_account(&node, &format!("u{i}@example.org")).await);
            }
            // Concurrent appends to several partitions share fsyncs.
            let syncs_before = node.wal_syncs();
            let proposals = ids.iter().flat_map(|&id| {
                let node = node.clone();
                (0..10).map(move |n| {
                    let node = node.clone();
                    async move { node.propose(node.partition_of(id), append(id, n)).await }
                })
            });
            let results = futures::future::join_all(proposals).await;
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Ok(Response::Appended { .. })))
            );
            let syncs = node.wal_syncs() - syncs_before;
            assert!(syncs < 60, "60 concurrent commits took {syncs} fsyncs");
            accounts = ids;
            // RocksDB allows one opener per process, so the node must stop before it can reopen;
            // the end-to-end suite covers the real crash (kill -9 right after the last 250).
            node.shutdown().await;
            drop(node);
        }
        let node = reopen(&dir).await;
        let meta = node.read(GroupId::META).await.unwrap();
        assert_eq!(meta.accounts().unwrap().len(), 6);
        for id in accounts {
            let reader = node.read(node.partition_of(id)).await.unwrap();
            let inbox = reader.mailbox(id, "inbox").unwrap().unwrap();
            let messages = reader.messages(id, inbox.id).unwrap();
            let uids: Vec<u32> = messages.iter().map(|m| m.uid.0).collect();
            assert_eq!(uids, (1..=10).collect::<Vec<_>>());
            assert_eq!(inbox.messages, 10);
            assert!(reader.blob(&messages[0].blob).unwrap().is_some());
        }
        node.shutdown().await;
    });
}

#[test]
fn rejections_are_responses_not_errors() {
    run(|dir| async move {
        let node = start_node(dir).await;
        let account = Command::AddAccount {
            address: "a@nowhere.example".into(),
            password_hash: "x".into(),
            quota: 0,
            now: 1,
        };
        assert_eq!(
            node.propose(GroupId::META, account).await.unwrap(),
            Response::Rejected(tern_store::Rejection::NoSuchDomain)
        );
        node.shutdown().await;
    });
}
