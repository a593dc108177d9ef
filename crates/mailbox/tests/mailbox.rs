//! Mailbox actors over a real single-node Raft (RocksDB in a temporary directory).

use std::path::PathBuf;
use std::time::Duration;
use tern_core::records::SpecialUse;
use tern_core::{GroupId, MailboxId, ModSeq, Uid};
use tern_directory::{AccountInfo, Directory};
use tern_mailbox::{Account, MailboxError, MailboxEvent, Mailboxes};
use tern_raft::RaftNode;
use tern_raft::testing::{run, start_node};
use tern_store::{Command, FlagOp, Rejection, Response};
use tokio::sync::broadcast;

struct World {
    raft: RaftNode,
    directory: Directory,
    mailboxes: Mailboxes,
}

impl World {
    async fn start(dir: PathBuf) -> World {
        let raft = start_node(dir).await;
        let directory = Directory::new(raft.clone());
        directory.add_domain("example.com").await.unwrap();
        let mailboxes = Mailboxes::new(raft.clone());
        World {
            raft,
            directory,
            mailboxes,
        }
    }

    async fn account(&self, address: &str, quota: u64) -> Account {
        let info = self
            .directory
            .add_account(address, "pw", quota)
            .await
            .unwrap();
        self.mailboxes.open(&info).await.unwrap()
    }

    async fn stop(self) {
        self.mailboxes.shutdown().await;
        self.raft.shutdown().await;
    }
}

fn rejected<T: std::fmt::Debug>(result: Result<T, MailboxError>) -> Rejection {
    match result {
        Err(MailboxError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The next event, failing the test if none comes within a generous deadline.
async fn next_event(rx: &mut broadcast::Receiver<MailboxEvent>) -> MailboxEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no event before the deadline")
        .unwrap()
}

fn message(n: u32) -> Vec<u8> {
    format!("Subject: test {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

#[test]
fn append_then_snapshot_and_blob() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let alice = w.account("alice@example.com", 0).await;
        let a1 = alice
            .append(
                "INBOX",
                message(1),
                vec!["\\SEEN".into()],
                Some(1_700_000_000),
            )
            .await
            .unwrap();
        let a2 = alice
            .append("inbox", message(2), vec![], None)
            .await
            .unwrap();
        assert_eq!((a1.uid, a2.uid), (Uid(1), Uid(2)));
        assert_eq!(a1.mailbox, a2.mailbox);
        assert_eq!(a1.uidvalidity, a2.uidvalidity);

        let snap = alice.snapshot("INBOX").await.unwrap();
        assert_eq!(snap.mailbox.id, a1.mailbox);
        assert_eq!(snap.mailbox.uidvalidity, a1.uidvalidity);
        assert_eq!((snap.mailbox.messages, snap.mailbox.unseen), (2, 1));
        assert_eq!(snap.mailbox.uidnext, 3);
        let uids: Vec<Uid> = snap.messages.iter().map(|m| m.uid).collect();
        assert_eq!(uids, [Uid(1), Uid(2)]);
        assert_eq!(snap.messages[0].flags, ["\\Seen"]);
        assert_eq!(snap.messages[0].internal_date, 1_700_000_000);
        assert_eq!(snap.messages[1].size, message(2).len() as u64);
        assert_eq!(
            *alice.read_blob(snap.messages[1].blob).await.unwrap(),
            message(2)
        );
        assert!(matches!(
            alice
                .read_blob(tern_core::BlobId::of(b"never stored"))
                .await,
            Err(MailboxError::MissingBlob(_))
        ));
        let by_id = alice.snapshot_by_id(a1.mailbox).await.unwrap();
        assert_eq!(by_id.messages.len(), 2);

        let status = alice.status("INBOX").await.unwrap();
        assert_eq!(status.messages, 2);
        assert_eq!(
            rejected(alice.status("Nope").await),
            Rejection::NoSuchMailbox
        );
        assert_eq!(
            rejected(alice.snapshot("Nope").await),
            Rejection::NoSuchMailbox
        );
        assert_eq!(
            rejected(alice.append("Nope", message(3), vec![], None).await),
            Rejection::NoSuchMailbox
        );
        w.stop().await;
    });
}

#[test]
fn flags_expunge_and_events() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let alice = w.account("alice@example.com", 0).await;
        let mut events = alice.watch();
        let inbox = alice
            .append("INBOX", message(1), vec![], None)
            .await
            .unwrap()
            .mailbox;
        alice
            .append("INBOX", message(2), vec![], None)
            .await
            .unwrap();
        let MailboxEvent::Changed {
            mailbox,
            modseq: first,
        } = next_event(&mut events).await
        else {
            panic!("expected Changed");
        };
        assert_eq!(mailbox, inbox);
        let MailboxEvent::Changed { modseq: second, .. } = next_event(&mut events).await else {
            panic!("expected Changed");
        };
        assert!(second > first);

        let stored = alice
            .store(
                inbox,
                vec![Uid(1), Uid(9)],
                FlagOp::Add,
                vec!["\\seen".into(), "$Work".into()],
                None,
            )
            .await
            .unwrap();
        assert_eq!(stored.changed.len(), 1);
        let (uid, flags, modseq) = &stored.changed[0];
        assert_eq!(*uid, Uid(1));
        assert!(flags.contains(&"\\Seen".to_string()) && flags.contains(&"$Work".to_string()));
        assert_eq!(
            next_event(&mut events).await,
            MailboxEvent::Changed {
                mailbox: inbox,
                modseq: *modseq
            }
        );

        // CONDSTORE: a message changed since the given MODSEQ is left alone and reported.
        let stale = alice
            .store(
                inbox,
                vec![Uid(1)],
                FlagOp::Remove,
                vec!["$Work".into()],
                Some(first.0),
            )
            .await
            .unwrap();
        assert!(stale.changed.is_empty());
        assert_eq!(stale.modified, [Uid(1)]);

        alice
            .store(
                inbox,
                vec![Uid(2)],
                FlagOp::Replace,
                vec!["\\Deleted".into()],
                None,
            )
            .await
            .unwrap();
        // UID EXPUNGE of a message without \Deleted removes nothing.
        assert!(
            alice
                .expunge(inbox, Some(vec![Uid(1)]))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(alice.expunge(inbox, None).await.unwrap(), [Uid(2)]);
        let snap = alice.snapshot("INBOX").await.unwrap();
        assert_eq!(
            snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
            [Uid(1)]
        );
        assert_eq!(snap.mailbox.unseen, 0);

        // The remaining events: STORE of uid 2, then EXPUNGE, each with a rising MODSEQ.
        let mut last = *modseq;
        for _ in 0..2 {
            let MailboxEvent::Changed { mailbox, modseq } = next_event(&mut events).await else {
                panic!("expected Changed");
            };
            assert_eq!(mailbox, inbox);
            assert!(modseq > last);
            last = modseq;
        }
        assert_eq!(ModSeq(snap.mailbox.highest_modseq), last);
        w.stop().await;
    });
}

#[test]
fn copy_and_move_report_uidplus_data() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let alice = w.account("alice@example.com", 0).await;
        let inbox = alice
            .append("INBOX", message(1), vec![], None)
            .await
            .unwrap()
            .mailbox;
        alice
            .append("INBOX", message(2), vec![], None)
            .await
            .unwrap();
        alice
            .append("INBOX", message(3), vec![], None)
            .await
            .unwrap();
        let archive = alice.status("Archive").await.unwrap();

        let copied = alice
            .copy(inbox, vec![Uid(1), Uid(3), Uid(7)], "Archive", false)
            .await
            .unwrap();
        assert_eq!(copied.uidvalidity, archive.uidvalidity);
        assert_eq!(copied.uids, [(Uid(1), Uid(1)), (Uid(3), Uid(2))]);
        assert_eq!(alice.snapshot("INBOX").await.unwrap().messages.len(), 3);

        let mut events = alice.watch();
        let moved = alice
            .copy(inbox, vec![Uid(2)], "Archive", true)
            .await
            .unwrap();
        assert_eq!(moved.uids, [(Uid(2), Uid(3))]);
        let inbox_uids: Vec<Uid> = alice
            .snapshot("INBOX")
            .await
            .unwrap()
            .messages
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(inbox_uids, [Uid(1), Uid(3)]);
        let archived = alice.snapshot("Archive").await.unwrap();
        assert_eq!(archived.messages.len(), 3);
        assert_eq!(
            *alice.read_blob(archived.messages[2].blob).await.unwrap(),
            message(2)
        );
        // MOVE changes both mailboxes.
        let touched: Vec<MailboxId> =
            [next_event(&mut events).await, next_event(&mut events).await]
                .into_iter()
                .map(|e| match e {
                    MailboxEvent::Changed { mailbox, .. } => mailbox,
                    MailboxEvent::ListChanged => panic!("unexpected ListChanged"),
                })
                .collect();
        assert_eq!(touched, [archive.id, inbox]);

        assert_eq!(
            rejected(alice.copy(inbox, vec![Uid(1)], "Nowhere", false).await),
            Rejection::NoSuchMailbox
        );
        w.stop().await;
    });
}

#[test]
fn mailbox_list_operations() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let alice = w.account("alice@example.com", 0).await;
        let names = |list: Vec<tern_core::records::MailboxRecord>| {
            list.into_iter().map(|m| m.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(alice.list().await.unwrap()),
            ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
        );
        let mut events = alice.watch();
        alice
            .create("Work/Projects", Some(SpecialUse::Archive))
            .await
            .unwrap();
        assert_eq!(next_event(&mut events).await, MailboxEvent::ListChanged);
        assert_eq!(
            rejected(alice.create("Work/Projects", None).await),
            Rejection::MailboxExists
        );
        let projects = alice.status("Work/Projects").await.unwrap();

        alice.rename("Work", "Jobs").await.unwrap();
        assert_eq!(next_event(&mut events).await, MailboxEvent::ListChanged);
        let renamed = alice.status("Jobs/Projects").await.unwrap();
        assert_eq!(renamed.id, projects.id, "a rename keeps the mailbox id");
        assert_eq!(
            rejected(alice.status("Work/Projects").await),
            Rejection::NoSuchMailbox
        );

        alice.subscribe("Jobs", true).await.unwrap();
        assert!(alice.status("Jobs").await.unwrap().subscribed);
        alice.subscribe("Jobs", false).await.unwrap();
        assert!(!alice.status("Jobs").await.unwrap().subscribed);

        assert_eq!(
            rejected(alice.delete("INBOX").await),
            Rejection::CannotDeleteInbox
        );
        alice.delete("Jobs/Projects").await.unwrap();
        assert_eq!(
            rejected(alice.delete("Jobs/Projects").await),
            Rejection::NoSuchMailbox
        );
        assert!(!names(alice.list().await.unwrap()).contains(&"Jobs/Projects".to_string()));

        // Renaming INBOX moves its messages and wakes the sessions that have INBOX selected.
        let inbox = alice
            .append("INBOX", message(1), vec![], None)
            .await
            .unwrap()
            .mailbox;
        let mut events = alice.watch();
        alice.rename("INBOX", "Old").await.unwrap();
        assert_eq!(next_event(&mut events).await, MailboxEvent::ListChanged);
        assert!(matches!(
            next_event(&mut events).await,
            MailboxEvent::Changed { mailbox, .. } if mailbox == inbox
        ));
        assert_eq!(alice.snapshot("Old").await.unwrap().messages.len(), 1);
        assert!(alice.snapshot("INBOX").await.unwrap().messages.is_empty());
        w.stop().await;
    });
}

#[test]
fn quota_maildrop_lock_and_notify() {
    run(|dir| async move {
        let w = World::start(dir).await;
        let alice = w.account("alice@example.com", 60).await;
        alice
            .append("INBOX", message(1), vec![], None)
            .await
            .unwrap();
        assert_eq!(
            rejected(alice.append("INBOX", vec![b'x'; 100], vec![], None).await),
            Rejection::OverQuota
        );

        // One POP3 session per account: a second handle of the same account is refused.
        let again = w.mailboxes.open(alice.info()).await.unwrap();
        let lock = alice.lock_maildrop().await.unwrap();
        assert!(matches!(
            again.lock_maildrop().await,
            Err(MailboxError::InUse)
        ));
        lock.release().await;
        let _lock = again.lock_maildrop().await.unwrap();

        // Another account is not affected.
        let bob = w.account("bob@example.com", 0).await;
        let _bob_lock = bob.lock_maildrop().await.unwrap();

        // The queue's wake-up reaches every watcher of the account.
        let mut events = again.watch();
        let event = MailboxEvent::Changed {
            mailbox: MailboxId(1),
            modseq: ModSeq(42),
        };
        w.mailboxes.notify(alice.info().id, event.clone());
        assert_eq!(next_event(&mut events).await, event);
        w.stop().await;
    });
}

#[test]
fn open_creates_missing_defaults_and_shutdown_stops_writes() {
    run(|dir| async move {
        let w = World::start(dir).await;
        // An account whose partition never saw InitAccount.
        let added = w
            .raft
            .propose(
                GroupId::META,
                Command::AddAccount {
                    address: "carol@example.com".into(),
                    password_hash: "x".into(),
                    quota: 0,
                    now: 1_700_000_000,
                },
            )
            .await
            .unwrap();
        let Response::AccountAdded(id) = added else {
            panic!("{added:?}")
        };
        let info = AccountInfo {
            id,
            address: "carol@example.com".into(),
            quota: 0,
        };
        let carol = w.mailboxes.open(&info).await.unwrap();
        assert_eq!(carol.list().await.unwrap().len(), 6);
        assert_eq!(carol.info(), &info);

        w.mailboxes.shutdown().await;
        assert!(matches!(
            carol.append("INBOX", message(1), vec![], None).await,
            Err(MailboxError::ActorGone)
        ));
        assert!(matches!(
            w.mailboxes.open(&info).await,
            Err(MailboxError::ActorGone)
        ));
        w.raft.shutdown().await;
    });
}
