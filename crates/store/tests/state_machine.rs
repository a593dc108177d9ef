//! Property tests of the replicated state machine on a real RocksDB: whatever sequence of
//! mailbox operations is applied, UIDs only grow and are never reused, MODSEQs only grow,
//! the counters match a recount, and two replicas applying the same log agree byte for byte.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tern_core::{AccountId, DeliveryId, GroupId, MailboxId, Uid};
use tern_store::command::LocalRecipient;
use tern_store::schema;
use tern_store::{Command, Db, FlagOp, Reader, Response};

const G: GroupId = GroupId(1);
const ACCOUNT: AccountId = AccountId(7);
const MAILBOXES: [&str; 3] = ["INBOX", "Archive", "Trash"];

#[derive(Debug, Clone)]
enum Op {
    Append {
        mailbox: usize,
        seen: bool,
    },
    Deliver,
    Flag {
        mailbox: usize,
        pick: usize,
        add: bool,
        flag: usize,
    },
    Copy {
        from: usize,
        to: usize,
        pick: usize,
        moving: bool,
    },
    Expunge {
        mailbox: usize,
    },
    RenameAndBack {
        mailbox: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, any::<bool>()).prop_map(|(mailbox, seen)| Op::Append { mailbox, seen }),
        Just(Op::Deliver),
        (0..3usize, any::<usize>(), any::<bool>(), 0..3usize).prop_map(
            |(mailbox, pick, add, flag)| Op::Flag {
                mailbox,
                pick,
                add,
                flag
            }
        ),
        (0..3usize, 0..3usize, any::<usize>(), any::<bool>()).prop_map(
            |(from, to, pick, moving)| Op::Copy {
                from,
                to,
                pick,
                moving
            }
        ),
        (0..3usize).prop_map(|mailbox| Op::Expunge { mailbox }),
        (1..3usize).prop_map(|mailbox| Op::RenameAndBack { mailbox }),
    ]
}

/// One replica: a database and the log applied to it.
struct Replica {
    _dir: tempfile::TempDir,
    db: Db,
    n: u64,
}

impl Replica {
    fn new() -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let mut r = Replica {
            _dir: dir,
            db,
            n: 0,
        };
        r.apply(Command::InitAccount {
            account: ACCOUNT,
            now: 1_700_000_000,
        });
        r
    }

    fn apply(&mut self, command: Command) -> Response {
        self.n += 1;
        let (response, batch) = tern_store::apply::apply(&self.db, G, self.n, &command).unwrap();
        self.db.write(batch, false).unwrap();
        response
    }

    fn reader(&self) -> Reader {
        Reader::new(self.db.clone(), G)
    }

    fn mailbox_id(&self, name: &str) -> MailboxId {
        self.reader().mailbox(ACCOUNT, name).unwrap().unwrap().id
    }

    fn uids(&self, name: &str) -> Vec<Uid> {
        let id = self.mailbox_id(name);
        self.reader()
            .messages(ACCOUNT, id)
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect()
    }

    /// Turns a generated operation into the command a session would propose.
    fn command(&self, op: &Op) -> Command {
        let pick = |name: &str, pick: usize| -> Vec<Uid> {
            let uids = self.uids(name);
            if uids.is_empty() {
                vec![Uid(1)]
            } else {
                vec![uids[pick % uids.len()]]
            }
        };
        match op {
            Op::Append { mailbox, seen } => Command::Append {
                account: ACCOUNT,
                mailbox: MAILBOXES[*mailbox].into(),
                body: format!("Subject: {}\r\n\r\nbody\r\n", self.n).into_bytes(),
                flags: if *seen { vec!["\\seen".into()] } else { vec![] },
                internal_date: 1_700_000_000,
                quota: 0,
            },
            Op::Deliver => Command::Accept {
                id: DeliveryId(u128::from(self.n)),
                sender: "a@b.example".into(),
                body: b"Subject: delivered\r\n\r\nx\r\n".to_vec(),
                received_at: 1_700_000_000,
                local: vec![LocalRecipient {
                    account: ACCOUNT,
                    address: "u@example.org".into(),
                    mailbox: "INBOX".into(),
                    quota: 0,
                }],
                other_partitions: vec![],
                remote: vec![],
            },
            Op::Flag {
                mailbox,
                pick: p,
                add,
                flag,
            } => Command::StoreFlags {
                account: ACCOUNT,
                mailbox: self.mailbox_id(MAILBOXES[*mailbox]),
                uids: pick(MAILBOXES[*mailbox], *p),
                op: if *add { FlagOp::Add } else { FlagOp::Remove },
                flags: vec![["\\Seen", "\\Deleted", "$Label"][*flag].into()],
                unchanged_since: None,
            },
            Op::Copy {
                from,
                to,
                pick: p,
                moving,
            } => Command::CopyMessages {
                account: ACCOUNT,
                from: self.mailbox_id(MAILBOXES[*from]),
                uids: pick(MAILBOXES[*from], *p),
                to: MAILBOXES[*to].into(),
                remove_source: *moving,
                quota: 0,
            },
            Op::Expunge { mailbox } => Command::Expunge {
                account: ACCOUNT,
                mailbox: self.mailbox_id(MAILBOXES[*mailbox]),
                uids: None,
            },
            Op::RenameAndBack { mailbox } => Command::RenameMailbox {
                account: ACCOUNT,
                from: MAILBOXES[*mailbox].into(),
                to: format!("{}-renamed", MAILBOXES[*mailbox]),
                now: 1_700_000_000,
            },
        }
    }

    /// Undoes the rename part of `RenameAndBack`, so later operations find the names again.
    fn after(&mut self, op: &Op) {
        if let Op::RenameAndBack { mailbox } = op {
            let back = Command::RenameMailbox {
                account: ACCOUNT,
                from: format!("{}-renamed", MAILBOXES[*mailbox]),
                to: MAILBOXES[*mailbox].into(),
                now: 1_700_000_000,
            };
            assert_eq!(self.apply(back), Response::Ok);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn uids_and_modseqs_only_grow_and_replicas_agree(ops in proptest::collection::vec(op(), 1..40)) {
        let mut a = Replica::new();
        let mut b = Replica::new();
        // Per mailbox id: the UIDs present after the previous step, and the last
        // (uidnext, highest_modseq).
        let mut present: BTreeMap<MailboxId, BTreeSet<Uid>> = BTreeMap::new();
        let mut last: BTreeMap<MailboxId, (u32, u64)> = BTreeMap::new();
        for op in &ops {
            let command = a.command(op);
            let ra = a.apply(command.clone());
            let rb = b.apply(command);
            prop_assert_eq!(&ra, &rb);
            a.after(op);
            b.after(op);
            let reader = a.reader();
            for m in reader.mailboxes(ACCOUNT).unwrap() {
                let messages = reader.messages(ACCOUNT, m.id).unwrap();
                let uids: Vec<Uid> = messages.iter().map(|x| x.uid).collect();
                prop_assert!(uids.windows(2).all(|w| w[0] < w[1]), "UIDs not ascending: {:?}", uids);
                prop_assert!(uids.iter().all(|u| u.0 < m.uidnext), "UID at or past UIDNEXT");
                let (prev_next, prev_modseq) = last.get(&m.id).copied().unwrap_or((0, 0));
                prop_assert!(m.uidnext >= prev_next, "UIDNEXT went back");
                prop_assert!(m.highest_modseq >= prev_modseq, "HIGHESTMODSEQ went back");
                last.insert(m.id, (m.uidnext, m.highest_modseq));
                let before = present.entry(m.id).or_default();
                for u in &uids {
                    // A UID either survived from the previous step or is newly assigned; one
                    // that vanished can never come back.
                    prop_assert!(u.0 >= prev_next || before.contains(u), "UID {:?} reused", u);
                }
                *before = uids.iter().copied().collect();
                prop_assert!(messages.iter().all(|x| x.modseq.0 <= m.highest_modseq));
                prop_assert_eq!(m.messages as usize, messages.len());
                let unseen = messages.iter().filter(|x| !x.flags.iter().any(|f| f == "\\Seen")).count();
                prop_assert_eq!(m.unseen as usize, unseen);
                prop_assert_eq!(m.size, messages.iter().map(|x| x.size).sum::<u64>());
            }
            let usage: u64 = reader
                .mailboxes(ACCOUNT)
                .unwrap()
                .iter()
                .map(|m| m.size)
                .sum();
            prop_assert_eq!(reader.usage(ACCOUNT).unwrap(), usage);
        }
        prop_assert_eq!(a.reader().digest().unwrap(), b.reader().digest().unwrap());
    }
}

#[test]
fn accept_is_idempotent_by_delivery_id() {
    let mut r = Replica::new();
    let accept = r.command(&Op::Deliver);
    let first = r.apply(accept.clone());
    let digest = r.reader().digest().unwrap();
    assert_eq!(r.apply(accept), first);
    assert_eq!(
        r.reader().digest().unwrap(),
        digest,
        "a replayed Accept changed state"
    );
    assert_eq!(r.uids("INBOX").len(), 1);
}

#[test]
fn quota_is_enforced_in_apply() {
    let mut r = Replica::new();
    let append = |quota| Command::Append {
        account: ACCOUNT,
        mailbox: "INBOX".into(),
        body: vec![b'x'; 600],
        flags: vec![],
        internal_date: 1,
        quota,
    };
    assert!(matches!(r.apply(append(1000)), Response::Appended { .. }));
    assert_eq!(
        r.apply(append(1000)),
        Response::Rejected(tern_store::Rejection::OverQuota)
    );
    assert!(matches!(r.apply(append(0)), Response::Appended { .. }));
}

#[test]
fn each_body_is_stored_once_under_its_entry_and_freed_with_its_last_reference() {
    let mut r = Replica::new();
    let body = b"Subject: same\r\n\r\nsame body\r\n".to_vec();
    let mut blobs = Vec::new();
    for _ in 0..3 {
        r.apply(Command::Append {
            account: ACCOUNT,
            mailbox: "INBOX".into(),
            body: body.clone(),
            flags: vec!["\\Deleted".into()],
            internal_date: 1,
            quota: 0,
        });
        let hash = *blake3::hash(&body).as_bytes();
        blobs.push(tern_store::body::staged_id(r.n, &hash));
    }
    let inbox = r.mailbox_id("INBOX");
    let listed: Vec<_> = r
        .reader()
        .messages(ACCOUNT, inbox)
        .unwrap()
        .iter()
        .map(|m| m.blob)
        .collect();
    assert_eq!(listed, blobs);
    for blob in &blobs {
        assert_eq!(r.reader().blob(blob).unwrap(), Some(body.clone()));
    }
    let expunged = r.apply(Command::Expunge {
        account: ACCOUNT,
        mailbox: inbox,
        uids: None,
    });
    assert_eq!(expunged, Response::Expunged(vec![Uid(1), Uid(2), Uid(3)]));
    for blob in &blobs {
        assert_eq!(r.reader().blob(blob).unwrap(), None);
    }
}

/// What the log store does on append: the body (or part) to its row, a marker in the entry.
fn stage_split(r: &Replica, index: u64, cmd: &mut Command) -> tern_core::BlobId {
    let (key, bytes) = tern_store::body::split(G, index, cmd).unwrap();
    let mut batch = tern_store::db::WriteBatch::default();
    let cf = r.db.cf(tern_store::schema::CF_BLOBS).unwrap();
    batch.put_cf(&cf, &key, &bytes);
    drop(cf);
    r.db.write(batch, false).unwrap();
    tern_store::schema::blob_id_of_key(G, &key).unwrap()
}

/// Cuts an INBOX append of `body` into parts, stages and applies each as the log store and
/// state machine would; returns the body's id and the final command (not applied).
fn apply_parts(r: &mut Replica, body: Vec<u8>, flags: Vec<String>) -> (tern_core::BlobId, Command) {
    let append = Command::Append {
        account: ACCOUNT,
        mailbox: "INBOX".into(),
        body,
        flags,
        internal_date: 1,
        quota: 0,
    };
    let cut = tern_store::body::parts(append, 7, 1_700_000_000).unwrap();
    let mut blob = None;
    for mut part in cut.parts {
        blob = Some(stage_split(r, r.n + 1, &mut part));
        assert_eq!(r.apply(part), Response::Ok);
    }
    (blob.unwrap(), cut.command)
}

#[test]
fn a_body_proposed_in_parts_is_read_whole_and_freed_whole() {
    let mut r = Replica::new();
    let body: Vec<u8> = (0..tern_store::body::PART_BYTES * 2 + 99)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let (blob, command) = apply_parts(&mut r, body.clone(), vec!["\\Deleted".into()]);
    assert!(matches!(r.apply(command), Response::Appended { .. }));
    let inbox = r.mailbox_id("INBOX");
    let m = r.reader().messages(ACCOUNT, inbox).unwrap()[0].clone();
    assert_eq!((m.blob, m.size), (blob, body.len() as u64));
    assert_eq!(r.reader().blob(&m.blob).unwrap(), Some(body));
    // Nothing is pending: an expiry finds no upload to remove.
    let sweep = Command::ExpireDedup {
        before: 1_800_000_000,
        limit: 100,
    };
    r.apply(Command::Expunge {
        account: ACCOUNT,
        mailbox: inbox,
        uids: None,
    });
    assert_eq!(r.reader().blob(&m.blob).unwrap(), None);
    assert_eq!(r.apply(sweep), Response::Expired(0));
}

#[test]
fn parts_whose_message_never_came_expire() {
    let mut r = Replica::new();
    let (blob, _never_proposed) =
        apply_parts(&mut r, vec![b'z'; tern_store::body::PART_BYTES + 1], vec![]);
    assert!(r.reader().blob(&blob).unwrap().is_some());
    let sweep = |before| Command::ExpireDedup { before, limit: 100 };
    assert_eq!(r.apply(sweep(1_700_000_000)), Response::Expired(0));
    assert!(r.reader().blob(&blob).unwrap().is_some());
    assert_eq!(r.apply(sweep(1_700_000_001)), Response::Expired(1));
    assert_eq!(r.reader().blob(&blob).unwrap(), None);
}

#[test]
fn a_staged_body_is_used_in_place_and_dropped_when_no_message_takes_it() {
    let mut r = Replica::new();
    let body = b"Subject: staged\r\n\r\nalready on disk\r\n".to_vec();
    // What the log store does on append: the body to its row, a marker in the entry.
    let append = |body: Vec<u8>, mailbox: &str| Command::Append {
        account: ACCOUNT,
        mailbox: mailbox.into(),
        body,
        flags: vec![],
        internal_date: 1,
        quota: 0,
    };
    let stage = |r: &Replica, index: u64, mut cmd: Command| {
        let id = stage_split(r, index, &mut cmd);
        (id, cmd)
    };
    let (kept, marker_cmd) = stage(&r, r.n + 1, append(body.clone(), "INBOX"));
    assert!(matches!(r.apply(marker_cmd), Response::Appended { .. }));
    assert_eq!(r.reader().blob(&kept).unwrap(), Some(body.clone()));
    let inbox = r.mailbox_id("INBOX");
    let m = &r.reader().messages(ACCOUNT, inbox).unwrap()[0];
    assert_eq!((m.blob, m.size), (kept, body.len() as u64));

    let (dropped, refused) = stage(&r, r.n + 1, append(body.clone(), "Nowhere"));
    assert_eq!(
        r.apply(refused),
        Response::Rejected(tern_store::Rejection::NoSuchMailbox)
    );
    assert_eq!(r.reader().blob(&dropped).unwrap(), None);
    assert_eq!(r.reader().blob(&kept).unwrap(), Some(body));
}

#[test]
fn dedup_records_expire_oldest_first_and_only_before_the_cutoff() {
    let mut r = Replica::new();
    let accept = |id: u128, at: i64| Command::Accept {
        id: DeliveryId(id),
        sender: "a@remote.test".into(),
        body: format!("Subject: {id}\r\n\r\nx\r\n").into_bytes(),
        received_at: at,
        local: vec![LocalRecipient {
            account: ACCOUNT,
            address: "u@example.test".into(),
            mailbox: "INBOX".into(),
            quota: 0,
        }],
        other_partitions: vec![],
        remote: vec![],
    };
    for (id, at) in [(1, 1_000), (2, 2_000), (3, 3_000), (4, 4_000)] {
        assert!(matches!(r.apply(accept(id, at)), Response::Accepted(_)));
    }
    let accepted = |id: u128| schema::accepted(G, DeliveryId(id));
    let present =
        |r: &Replica, id: u128| r.db.get(schema::CF_STATE, &accepted(id)).unwrap().is_some();

    // Only what was received before the cutoff goes, oldest first, `limit` at a time.
    let expire = |before, limit| Command::ExpireDedup { before, limit };
    assert_eq!(r.apply(expire(3_500, 1)), Response::Expired(1));
    assert!(!present(&r, 1) && present(&r, 2) && present(&r, 3) && present(&r, 4));
    assert_eq!(r.apply(expire(3_500, 100)), Response::Expired(2));
    assert!(!present(&r, 2) && !present(&r, 3) && present(&r, 4));
    assert_eq!(r.apply(expire(3_500, 100)), Response::Expired(0));
    // The index went with the records: nothing left below the cutoff, one entry above.
    let index = schema::dedup_expiry_all(G);
    assert_eq!(r.db.scan(schema::CF_STATE, &index).unwrap().len(), 1);
    // The messages themselves stay.
    assert_eq!(r.uids("INBOX").len(), 4);
    // A record still inside the window still de-duplicates.
    assert!(matches!(r.apply(accept(4, 4_000)), Response::Accepted(_)));
    assert_eq!(r.uids("INBOX").len(), 4);
}

#[test]
fn subscriptions_outlive_mailboxes_and_new_mailboxes_are_not_subscribed() {
    let mut r = Replica::new();
    let subscribe = |name: &str, subscribed| Command::SetSubscribed {
        account: ACCOUNT,
        name: name.into(),
        subscribed,
    };
    let create = |name: &str| Command::CreateMailbox {
        account: ACCOUNT,
        name: name.into(),
        special_use: None,
        now: 1_700_000_000,
    };
    let subscribed = |r: &Replica, name: &str| {
        r.reader()
            .mailbox(ACCOUNT, name)
            .unwrap()
            .unwrap()
            .subscribed
    };
    let dangling = |r: &Replica| r.reader().dangling_subscriptions(ACCOUNT).unwrap();
    // The default mailboxes are subscribed; a created one (and its parents) is not.
    assert!(subscribed(&r, "INBOX"));
    assert_eq!(r.apply(create("a/b")), Response::Ok);
    assert!(!subscribed(&r, "a") && !subscribed(&r, "a/b"));
    // A name that is not a mailbox can be subscribed; creating it takes the subscription.
    assert_eq!(r.apply(subscribe("later", true)), Response::Ok);
    assert_eq!(dangling(&r), vec!["later".to_string()]);
    assert_eq!(r.apply(create("later")), Response::Ok);
    assert!(subscribed(&r, "later"));
    assert!(dangling(&r).is_empty());
    // Deleting a subscribed mailbox keeps the subscription; unsubscribing drops it.
    assert_eq!(r.apply(subscribe("a/b", true)), Response::Ok);
    let delete = Command::DeleteMailbox {
        account: ACCOUNT,
        name: "a/b".into(),
    };
    assert_eq!(r.apply(delete), Response::Ok);
    assert_eq!(dangling(&r), vec!["a/b".to_string()]);
    assert_eq!(r.apply(subscribe("a/b", false)), Response::Ok);
    assert!(dangling(&r).is_empty());
}

#[test]
fn each_message_is_recent_for_one_claim_only() {
    let mut r = Replica::new();
    for _ in 0..3 {
        let op = r.command(&Op::Append {
            mailbox: 0,
            seen: false,
        });
        r.apply(op);
    }
    let inbox = r.mailbox_id("INBOX");
    let claim = |up_to| Command::ClaimRecent {
        account: ACCOUNT,
        mailbox: inbox,
        up_to: Uid(up_to),
    };
    assert_eq!(r.reader().first_recent(ACCOUNT, inbox).unwrap(), Uid(1));
    // The first session gets 1..=2, the next one only 3, a late one nothing.
    assert_eq!(r.apply(claim(2)), Response::RecentClaimed(Uid(1)));
    assert_eq!(r.apply(claim(3)), Response::RecentClaimed(Uid(3)));
    assert_eq!(r.apply(claim(3)), Response::RecentClaimed(Uid(4)));
    assert_eq!(r.apply(claim(1)), Response::RecentClaimed(Uid(4)));
    assert_eq!(r.reader().first_recent(ACCOUNT, inbox).unwrap(), Uid(4));
    let gone = Command::ClaimRecent {
        account: ACCOUNT,
        mailbox: MailboxId(999),
        up_to: Uid(1),
    };
    assert_eq!(
        r.apply(gone),
        Response::Rejected(tern_store::Rejection::NoSuchMailbox)
    );
}
