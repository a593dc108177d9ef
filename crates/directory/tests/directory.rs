//! The directory over a real single-node Raft (RocksDB in a temporary directory).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use tern_core::GroupId;
use tern_directory::{Directory, DirectoryError, Recipient, Resolution};
use tern_raft::RaftNode;
use tern_raft::testing::{run, start_node};
use tern_store::Rejection;

/// Where every test login comes from.
const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn start(dir: PathBuf) -> (RaftNode, Directory) {
    let raft = start_node(dir).await;
    let directory = Directory::new(raft.clone());
    (raft, directory)
}

fn rejected(result: Result<impl std::fmt::Debug, DirectoryError>) -> Rejection {
    match result {
        Err(DirectoryError::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn local_ids(resolution: Resolution) -> Vec<String> {
    let Resolution::Deliver(list) = resolution else {
        panic!("expected recipients, got {resolution:?}");
    };
    list.into_iter()
        .map(|r| match r {
            Recipient::Local(a) => a.address,
            Recipient::Remote(s) => format!("remote:{s}"),
        })
        .collect()
}

#[test]
fn accounts_domains_and_login() {
    run(|dir| async move {
        let (raft, d) = start(dir).await;

        assert_eq!(
            rejected(d.add_account("alice@example.com", "pw", 0).await),
            Rejection::NoSuchDomain
        );
        d.add_domain("Example.COM").await.unwrap();
        assert_eq!(
            rejected(d.add_domain("example.com").await),
            Rejection::DomainExists
        );
        assert!(d.is_local_domain("EXAMPLE.com.").await.unwrap());
        assert!(!d.is_local_domain("example.org").await.unwrap());
        assert!(matches!(
            d.add_domain("bad domain").await,
            Err(DirectoryError::InvalidAddress(_))
        ));

        let alice = d
            .add_account("Alice@Example.com", "s3cret", 1000)
            .await
            .unwrap();
        assert_eq!(alice.address, "alice@example.com");
        assert_eq!(alice.quota, 1000);
        assert_eq!(
            rejected(d.add_account("alice@example.com", "x", 0).await),
            Rejection::AccountExists
        );
        // The account's partition got its default mailboxes.
        let boxes = raft
            .local_reader(raft.partition_of(alice.id))
            .mailboxes(alice.id)
            .unwrap();
        assert_eq!(boxes.len(), 6);
        assert_eq!(boxes[0].name, "INBOX");

        // Login: right password (any case of the address), then every kind of wrong.
        assert_eq!(
            d.authenticate(CLIENT, "ALICE@example.com", "s3cret")
                .await
                .unwrap(),
            alice
        );
        for (user, pw) in [
            ("alice@example.com", "S3cret"),
            ("alice@example.com", ""),
            ("bob@example.com", "s3cret"),
            ("not an address", "s3cret"),
        ] {
            assert!(
                matches!(
                    d.authenticate(CLIENT, user, pw).await,
                    Err(DirectoryError::AuthFailed)
                ),
                "{user} / {pw}"
            );
        }

        d.set_password("alice@example.com", "n3w").await.unwrap();
        assert!(
            d.authenticate(CLIENT, "alice@example.com", "s3cret")
                .await
                .is_err()
        );
        assert_eq!(
            d.authenticate(CLIENT, "alice@example.com", "n3w")
                .await
                .unwrap()
                .id,
            alice.id
        );
        assert_eq!(
            rejected(d.set_password("ghost@example.com", "x").await),
            Rejection::NoSuchAccount
        );

        assert_eq!(
            d.account("alice@EXAMPLE.com").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(d.account("ghost@example.com").await.unwrap(), None);
        assert_eq!(d.list_accounts().await.unwrap(), vec![alice.clone()]);
        let domains = d.list_domains().await.unwrap();
        assert_eq!(domains.len(), 1);
        assert_eq!(domains[0].name, "example.com");

        assert_eq!(
            rejected(d.delete_domain("example.com").await),
            Rejection::DomainNotEmpty
        );
        d.delete_account("alice@example.com").await.unwrap();
        assert!(
            d.authenticate(CLIENT, "alice@example.com", "n3w")
                .await
                .is_err()
        );
        let boxes = raft
            .local_reader(raft.partition_of(alice.id))
            .mailboxes(alice.id)
            .unwrap();
        assert!(boxes.is_empty(), "mailboxes purged: {boxes:?}");
        assert_eq!(
            rejected(d.delete_account("alice@example.com").await),
            Rejection::NoSuchAccount
        );
        d.delete_domain("example.com").await.unwrap();
        assert!(d.list_domains().await.unwrap().is_empty());

        raft.shutdown().await;
    });
}

#[test]
fn resolution_through_aliases() {
    run(|dir| async move {
        let (raft, d) = start(dir).await;
        d.add_domain("example.com").await.unwrap();
        d.add_domain("example.org").await.unwrap();
        d.add_account("alice@example.com", "pw", 0).await.unwrap();
        d.add_account("bob@example.org", "pw", 0).await.unwrap();
        d.add_alias("team@example.com", "alice@example.com")
            .await
            .unwrap();
        d.add_alias("team@example.com", "Bob@example.org")
            .await
            .unwrap();
        d.add_alias("all@example.com", "team@example.com")
            .await
            .unwrap();
        d.add_alias("all@example.com", "friend@remote.net")
            .await
            .unwrap();
        d.add_alias("all@example.com", "alice@example.com")
            .await
            .unwrap();
        d.add_alias("loop@example.com", "loop2@example.com")
            .await
            .unwrap();
        d.add_alias("loop2@example.com", "loop@example.com")
            .await
            .unwrap();
        assert_eq!(
            rejected(d.add_alias("alice@example.com", "bob@example.org").await),
            Rejection::AccountExists
        );

        let cases: &[(&str, &[&str])] = &[
            ("alice@example.com", &["alice@example.com"]),
            ("alice+lists@Example.com", &["alice@example.com"]),
            (
                "team@example.com",
                &["alice@example.com", "bob@example.org"],
            ),
            (
                "all@example.com",
                &[
                    "alice@example.com",
                    "bob@example.org",
                    "remote:friend@remote.net",
                ],
            ),
        ];
        for (address, want) in cases {
            assert_eq!(
                local_ids(d.resolve(address).await.unwrap()),
                *want,
                "{address}"
            );
        }
        assert_eq!(
            d.resolve("nobody@example.com").await.unwrap(),
            Resolution::UnknownUser
        );
        assert_eq!(
            d.resolve("loop@example.com").await.unwrap(),
            Resolution::UnknownUser
        );
        assert_eq!(
            d.resolve("someone@remote.net").await.unwrap(),
            Resolution::NotLocal
        );
        assert!(matches!(
            d.resolve("no-at-sign").await,
            Err(DirectoryError::InvalidAddress(_))
        ));

        assert_eq!(d.list_aliases().await.unwrap().len(), 4);
        d.delete_alias("team@example.com").await.unwrap();
        assert_eq!(
            rejected(d.delete_alias("team@example.com").await),
            Rejection::NoSuchAlias
        );
        assert_eq!(
            local_ids(d.resolve("all@example.com").await.unwrap()),
            // Target order: team (gone now), friend, alice.
            ["remote:friend@remote.net", "alice@example.com"]
        );
        // Lookups read the meta group's local replica.
        assert!(
            raft.local_reader(GroupId::META)
                .alias("all@example.com")
                .unwrap()
                .is_some()
        );
        raft.shutdown().await;
    });
}
