//! The state-machine side of the inbound filter and DKIM signing: DKIM keys in the meta group,
//! and a chosen mailbox (Junk) travelling with recipients queued for other partitions.

use tern_core::records::{DkimAlgorithm, QueuedRecipient, SecretBytes};
use tern_core::{AccountId, DeliveryId, GroupId};
use tern_store::{Command, Rejection, Response};

mod common;
use common::Replica;

fn set_key(selector: &str, key: &[u8]) -> Command {
    Command::SetDkimKey {
        domain: "example.com".into(),
        selector: selector.into(),
        algorithm: DkimAlgorithm::Ed25519,
        private_key_pkcs8_der: SecretBytes(key.to_vec()),
        now: 1_700_000_000,
    }
}

#[test]
fn dkim_keys_belong_to_local_domains_and_go_with_them() {
    let r = Replica::new();
    let meta = GroupId::META;
    assert_eq!(
        r.apply(meta, &set_key("tern", b"k1")),
        Response::Rejected(Rejection::NoSuchDomain)
    );
    let add = Command::AddDomain {
        name: "example.com".into(),
        now: 1,
    };
    assert_eq!(r.apply(meta, &add), Response::Ok);
    assert_eq!(r.apply(meta, &set_key("tern", b"k1")), Response::Ok);
    assert_eq!(r.apply(meta, &set_key("2026", b"k2")), Response::Ok);
    let key = r.reader(meta).dkim_key("example.com").unwrap().unwrap();
    assert_eq!(
        (key.selector.as_str(), key.private_key.0.as_slice()),
        ("2026", &b"k2"[..])
    );
    assert!(
        !format!("{key:?}").contains("107, 50"),
        "the key leaked into Debug output"
    );

    let delete = Command::DeleteDomain {
        name: "example.com".into(),
    };
    assert_eq!(r.apply(meta, &delete), Response::Ok);
    assert_eq!(r.reader(meta).dkim_key("example.com").unwrap(), None);
    assert_eq!(r.apply(meta, &add), Response::Ok);
    assert_eq!(r.reader(meta).dkim_key("example.com").unwrap(), None);
}

#[test]
fn queued_local_recipients_keep_their_mailbox() {
    let r = Replica::new();
    let g = GroupId(1);
    let accept = Command::Accept {
        id: DeliveryId(42),
        sender: "a@remote.example".into(),
        body: b"Subject: x\r\n\r\ny\r\n".to_vec(),
        received_at: 1_700_000_000,
        local: vec![],
        other_partitions: vec![(AccountId(9), "bob@example.com".into(), "Junk".into())],
        remote: vec![],
    };
    assert_eq!(r.apply(g, &accept), Response::Accepted(vec![]));
    let queue = r.reader(g).queue().unwrap();
    assert_eq!(
        queue[0].recipients,
        vec![QueuedRecipient::Local {
            account: AccountId(9),
            address: "bob@example.com".into(),
            mailbox: "Junk".into(),
        }]
    );
}
