//! The queue over a real single-node Raft (RocksDB in a temporary directory, 4 partitions).

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tern_core::config::{DnsConfig, RelayConfig};
use tern_core::records::QueuedRecipient;
use tern_core::{DeliveryId, GroupId};
use tern_directory::{AccountInfo, Directory, Recipient};
use tern_mailbox::{MailboxEvent, Mailboxes};
use tern_queue::{Envelope, Queue, QueueError, Relay};
use tern_raft::RaftNode;
use tern_raft::testing::{run, start_node};
use tern_store::{Command, LocalRecipient, Response};

const DEADLINE: Duration = Duration::from_secs(20);

struct World {
    raft: RaftNode,
    directory: Directory,
    mailboxes: Mailboxes,
    queue: Queue,
}

impl World {
    async fn start(dir: PathBuf) -> World {
        let raft = start_node(dir).await;
        let directory = Directory::new(raft.clone());
        directory.add_domain("example.com").await.unwrap();
        let mailboxes = Mailboxes::new(raft.clone());
        // Remote recipients meet a DNS server that never answers: they stay deferred.
        let dns = DnsConfig {
            servers: vec!["127.0.0.1:9".into()],
            timeout_secs: 1,
        };
        let relay = Relay::new("mx.test", &RelayConfig::default(), &dns).unwrap();
        let queue = Queue::start(
            raft.clone(),
            relay,
            std::time::Duration::from_secs(7 * 86400),
        )
        .await
        .unwrap();
        World {
            raft,
            directory,
            mailboxes,
            queue,
        }
    }

    /// Two accounts whose mail lives in different partitions.
    async fn two_partitions(&self) -> (AccountInfo, AccountInfo) {
        let alice = self
            .directory
            .add_account("alice@example.com", "pw", 0)
            .await
            .unwrap();
        for n in 0.. {
            let other = format!("user{n}@example.com");
            let info = self.directory.add_account(&other, "pw", 0).await.unwrap();
            if self.raft.partition_of(info.id) != self.raft.partition_of(alice.id) {
                return (alice, info);
            }
        }
        unreachable!()
    }

    async fn inbox_len(&self, info: &AccountInfo) -> usize {
        let account = self.mailboxes.open(info).await.unwrap();
        account.snapshot("INBOX").await.unwrap().messages.len()
    }

    /// Polls `list()` until `done` holds for it, failing the test at the deadline.
    async fn wait_for_queue(&self, done: impl Fn(&[tern_core::records::QueueRecord]) -> bool) {
        let start = Instant::now();
        loop {
            let list = self.queue.list().await.unwrap();
            if done(&list) {
                return;
            }
            assert!(start.elapsed() < DEADLINE, "queue never settled: {list:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.queue.shutdown().await;
        self.mailboxes.shutdown().await;
        self.raft.shutdown().await;
    }
}

fn envelope(recipients: Vec<Recipient>) -> Envelope {
    Envelope {
        sender: "sender@remote.net".into(),
        recipients,
        body: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
        sender_account: None,
        mailbox: None,
    }
}

#[test]
fn two_partitions_each_get_the_message_once() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let (alice, bob) = w.two_partitions().await;
        // Bob lives in the other partition: his copy arrives through the queue actor, and his
        // IDLE session must hear about it.
        let bob_account = w.mailboxes.open(&bob).await.unwrap();
        let mut bob_events = bob_account.watch();

        let rcpts = vec![
            Recipient::Local(alice.clone()),
            Recipient::Local(bob.clone()),
        ];
        let accepted = w.queue.accept(envelope(rcpts)).await.unwrap();
        assert_eq!(accepted.accepted, 2);
        assert!(accepted.over_quota.is_empty());
        // Alice's partition committed the transaction: her copy is there on return.
        assert_eq!(w.inbox_len(&alice).await, 1);

        let event = tokio::time::timeout(DEADLINE, bob_events.recv())
            .await
            .expect("bob was never notified")
            .unwrap();
        let MailboxEvent::Changed { mailbox, .. } = event else {
            panic!("unexpected {event:?}")
        };
        let snap = bob_account.snapshot("INBOX").await.unwrap();
        assert_eq!(snap.mailbox.id, mailbox);
        assert_eq!(snap.messages.len(), 1);
        let body = bob_account.read_blob(snap.messages[0].blob).await.unwrap();
        assert_eq!(body.as_slice(), b"Subject: hi\r\n\r\nhello\r\n");

        // Once delivered the entry leaves the queue, and later passes deliver nothing more.
        w.wait_for_queue(|q| q.is_empty()).await;
        assert_eq!(w.inbox_len(&alice).await, 1);
        assert_eq!(w.inbox_len(&bob).await, 1);
        w.stop().await;
    });
}

#[test]
fn remote_recipients_stay_queued() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let (alice, bob) = w.two_partitions().await;
        let rcpts = vec![
            Recipient::Local(alice.clone()),
            Recipient::Remote("friend@remote.net".into()),
            Recipient::Local(bob.clone()),
        ];
        let accepted = w.queue.accept(envelope(rcpts)).await.unwrap();
        assert_eq!(accepted.accepted, 3);

        // Bob's recipient is delivered and dequeued; the remote one is deferred (no DNS
        // answers here) with the reason recorded.
        w.wait_for_queue(|q| {
            q.len() == 1
                && q[0].id == accepted.id
                && matches!(
                    q[0].recipients.as_slice(),
                    [QueuedRecipient::Remote { address, attempts, last_error: Some(e), .. }]
                        if address == "friend@remote.net" && *attempts >= 1 && e.contains("4.4.3")
                )
        })
        .await;
        assert_eq!(w.inbox_len(&bob).await, 1);

        // Outbound-only mail from an authenticated sender is queued in the sender's partition.
        let outbound = Envelope {
            sender_account: Some(bob.id),
            ..envelope(vec![Recipient::Remote("other@remote.net".into())])
        };
        let queued = w.queue.accept(outbound).await.unwrap();
        let partition = w.raft.partition_of(bob.id);
        let there = w.raft.local_reader(partition).queue().unwrap();
        assert!(there.iter().any(|r| r.id == queued.id));
        assert_eq!(w.queue.list().await.unwrap().len(), 2);
        w.stop().await;
    });
}

#[test]
fn replayed_accept_and_deliver_do_not_duplicate() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let (alice, bob) = w.two_partitions().await;
        let id = DeliveryId::random();
        let accept = Command::Accept {
            id,
            sender: String::new(),
            body: b"Subject: once\r\n\r\n".to_vec(),
            received_at: 1_700_000_000,
            local: vec![LocalRecipient {
                account: alice.id,
                address: alice.address.clone(),
                mailbox: "INBOX".into(),
                quota: 0,
            }],
            other_partitions: vec![],
            remote: vec![],
        };
        let group = w.raft.partition_of(alice.id);
        let first = w.raft.propose(group, accept.clone()).await.unwrap();
        let second = w.raft.propose(group, accept).await.unwrap();
        assert!(matches!(first, Response::Accepted(_)));
        assert_eq!(first, second, "a replay returns the first outcome");
        assert_eq!(w.inbox_len(&alice).await, 1);

        let deliver = Command::Deliver {
            id,
            sender: String::new(),
            body: b"Subject: once\r\n\r\n".to_vec(),
            received_at: 1_700_000_000,
            recipient: LocalRecipient {
                account: bob.id,
                address: bob.address.clone(),
                mailbox: "INBOX".into(),
                quota: 0,
            },
        };
        let target = w.raft.partition_of(bob.id);
        w.raft.propose(target, deliver.clone()).await.unwrap();
        w.raft.propose(target, deliver).await.unwrap();
        assert_eq!(w.inbox_len(&bob).await, 1);
        w.stop().await;
    });
}

#[test]
fn over_quota_and_empty_envelopes() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let tiny = w
            .directory
            .add_account("tiny@example.com", "pw", 10)
            .await
            .unwrap();
        let roomy = w
            .directory
            .add_account("roomy@example.com", "pw", 0)
            .await
            .unwrap();
        let accepted = w
            .queue
            .accept(envelope(vec![
                Recipient::Local(tiny.clone()),
                Recipient::Local(roomy.clone()),
            ]))
            .await
            .unwrap();
        assert_eq!(accepted.over_quota, vec![tiny.address.clone()]);
        assert_eq!(w.inbox_len(&tiny).await, 0);
        assert!(matches!(
            w.queue.accept(envelope(vec![])).await,
            Err(QueueError::NoRecipients)
        ));
        // Every partition's queue is listed, and nothing is left behind here.
        w.wait_for_queue(|q| q.is_empty()).await;
        assert_eq!(w.inbox_len(&roomy).await, 1);
        assert!(
            w.raft
                .local_reader(GroupId::META)
                .account("tiny@example.com")
                .unwrap()
                .is_some()
        );
        w.stop().await;
    });
}
