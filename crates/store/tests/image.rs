//! Group images: export from a consistent snapshot, verify, import into another replica, and
//! refuse anything damaged.

use tern_core::{AccountId, GroupId};
use tern_store::image::{self, ImageError};
use tern_store::{Command, Response};

mod common;
use common::Replica;

const G: GroupId = GroupId(3);
const OTHER: GroupId = GroupId(4);
const ACCOUNT: AccountId = AccountId(7);

fn append(body: Vec<u8>) -> Command {
    Command::Append {
        account: ACCOUNT,
        mailbox: "INBOX".into(),
        body,
        flags: vec![],
        internal_date: 1_700_000_000,
        quota: 0,
    }
}

/// A replica whose group `G` holds an account with `messages` messages (bodies of 5 KiB and
/// more, so some go to RocksDB's blob files), and whose group `OTHER` holds one more.
fn filled(messages: usize) -> Replica {
    let r = Replica::new();
    for group in [G, OTHER] {
        r.apply(
            group,
            &Command::InitAccount {
                account: ACCOUNT,
                now: 1_700_000_000,
            },
        );
    }
    for i in 0..messages {
        let body = format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(5_000 + i)).into_bytes();
        assert!(matches!(
            r.apply(G, &append(body)),
            Response::Appended { .. }
        ));
    }
    r.apply(OTHER, &append(b"Subject: other\r\n\r\nother\r\n".to_vec()));
    r
}

fn export(r: &Replica, group: GroupId) -> (Vec<u8>, image::ImageStats) {
    let mut out = Vec::new();
    let stats = r.db().pin_group(group).export(&mut out).unwrap();
    (out, stats)
}

const APPLIED: &[u8] = b"applied state";

#[test]
fn an_image_carries_one_group_to_another_replica() {
    let source = filled(40);
    let (bytes, stats) = export(&source, G);
    assert_eq!(stats.image_bytes, bytes.len() as u64);
    assert!(stats.records > 40, "{stats:?}");
    assert_eq!(image::verify(G, &mut bytes.as_slice()).unwrap(), stats);

    // The target has older, different data in G (to be replaced) and its own OTHER (kept).
    let target = filled(3);
    let other_before = target.reader(OTHER).digest().unwrap();
    let applied_key = tern_store::schema::applied(G);
    let imported = image::import(
        target.db(),
        G,
        &mut bytes.as_slice(),
        Some((&applied_key, APPLIED)),
        &[],
    )
    .unwrap();
    assert_eq!(imported, stats);
    assert_eq!(
        target.reader(G).digest().unwrap(),
        source.reader(G).digest().unwrap()
    );
    assert_eq!(target.reader(OTHER).digest().unwrap(), other_before);
    assert_eq!(
        target
            .db()
            .get(tern_store::schema::CF_STATE, &applied_key)
            .unwrap()
            .as_deref(),
        Some(APPLIED)
    );
}

/// Writes a body the way the log store stages one for an entry not yet applied.
fn stage(r: &Replica, group: GroupId, index: u64, body: &[u8]) -> Vec<u8> {
    let id = tern_store::body::staged_id(index, blake3::hash(body).as_bytes());
    let key = tern_store::schema::blob(group, &id);
    let mut batch = tern_store::db::WriteBatch::default();
    let cf = r.db().cf(tern_store::schema::CF_BLOBS).unwrap();
    batch.put_cf(&cf, &key, body);
    drop(cf);
    r.db().write(batch, false).unwrap();
    key
}

#[test]
fn staged_bodies_are_not_state_and_an_import_keeps_the_ones_it_is_told_to() {
    let source = filled(5);
    let (clean, _) = export(&source, G);
    let digest = source.reader(G).digest().unwrap();
    stage(
        &source,
        G,
        1_000,
        b"Subject: pending\r\n\r\nnot applied yet\r\n",
    );
    assert_eq!(
        export(&source, G).0,
        clean,
        "a staged body leaked into the image"
    );
    assert_eq!(source.reader(G).digest().unwrap(), digest);

    let target = filled(2);
    let kept = stage(
        &target,
        G,
        2_000,
        b"Subject: kept\r\n\r\nentry after the image\r\n",
    );
    let gone = stage(
        &target,
        G,
        2_001,
        b"Subject: gone\r\n\r\nno entry keeps it\r\n",
    );
    image::import(
        target.db(),
        G,
        &mut clean.as_slice(),
        None,
        std::slice::from_ref(&kept),
    )
    .unwrap();
    let cf = tern_store::schema::CF_BLOBS;
    assert!(target.db().get(cf, &kept).unwrap().is_some());
    assert!(target.db().get(cf, &gone).unwrap().is_none());
    assert_eq!(target.reader(G).digest().unwrap(), digest);
}

#[test]
fn an_export_sees_the_moment_it_was_pinned() {
    let r = filled(5);
    let before = export(&r, G).0;
    let pinned = r.db().pin_group(G);
    r.apply(G, &append(b"Subject: later\r\n\r\nlater\r\n".to_vec()));
    let mut during = Vec::new();
    pinned.export(&mut during).unwrap();
    drop(pinned);
    assert_eq!(
        before, during,
        "a write after pinning leaked into the image"
    );
    assert_ne!(before, export(&r, G).0);
}

#[test]
fn a_damaged_image_is_refused_before_anything_is_written() {
    let source = filled(10);
    let (bytes, _) = export(&source, G);
    let corrupt = |e: ImageError| matches!(e, ImageError::Corrupt(_));

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    assert!(corrupt(
        image::verify(G, &mut flipped.as_slice()).unwrap_err()
    ));

    for cut in [0, 5, bytes.len() / 3, bytes.len() - 1] {
        let err = image::verify(G, &mut &bytes[..cut]).unwrap_err();
        assert!(corrupt(err), "cut at {cut}");
    }

    let mut longer = bytes.clone();
    longer.push(0);
    assert!(corrupt(
        image::verify(G, &mut longer.as_slice()).unwrap_err()
    ));

    // An image of another group is not this group's.
    let (other, _) = export(&source, OTHER);
    assert!(corrupt(
        image::verify(G, &mut other.as_slice()).unwrap_err()
    ));
}
