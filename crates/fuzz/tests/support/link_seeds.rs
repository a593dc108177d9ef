//! Writes the seed frames of `fuzz/corpus/link_frame/` (`seed-*`): one frame of each kind of
//! message. The bincode layout follows the Rust types, so after changing `rpc.rs` run
//! `cargo test --release -p tern-fuzz -- --ignored` to write them again.

use openraft::Vote;
use openraft::raft::VoteRequest;
use std::collections::BTreeMap;
use tern_core::GroupId;
use tern_raft::link::frame::encode;
use tern_raft::link::rpc::{
    Answer, ClusterInfo, GroupDigest, GroupView, Hello, Refusal, Request, Tagged, Welcome,
};
use tern_store::Command;

#[test]
#[ignore = "writes fuzz/corpus/link_frame; run by hand after changing the link's types"]
fn write_link_frame_seeds() {
    let g = GroupId(3);
    let requests = vec![
        Request::Vote(g, VoteRequest::new(Vote::new(4, 2), None)),
        Request::Propose(
            g,
            Command::AddDomain {
                name: "example.com".into(),
                now: 1_700_000_000,
            },
        ),
        Request::ReadIndex(g),
        Request::Info,
        Request::Join(4, "10.0.0.4:7400".into(), 99),
        Request::Expel(4),
        Request::Status,
        Request::Digests,
        Request::Campaign(g),
        Request::Release(g),
    ];
    let answers = vec![
        Answer::ReadIndex(Ok(17)),
        Answer::ReadIndex(Err(Refusal::NotLeader(Some(2)))),
        Answer::Info(Ok(ClusterInfo {
            partitions: 4,
            members: BTreeMap::from([(1, "10.0.0.1:7400".into())]),
            replication_factor: 3,
        })),
        Answer::Done(Err(Refusal::Unavailable("no quorum".into()))),
        Answer::Status(vec![GroupView {
            group: g,
            term: 5,
            leader: Some(1),
            voters: vec![1, 2, 3],
            learners: vec![4],
            last_log_index: 10,
            applied: 9,
            membership_index: 2,
            matched: BTreeMap::from([(2, 9)]),
            bytes: 1000,
            sending: BTreeMap::new(),
        }]),
        Answer::Digests(Ok(vec![GroupDigest {
            group: g,
            applied: 9,
            digest: "ab".into(),
        }])),
        Answer::Error("undecodable".into()),
    ];
    let mut frames: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, body) in requests.into_iter().enumerate() {
        let tagged = Tagged { id: i as u64, body };
        frames.push((
            format!("seed-request-{i}"),
            encode(&tagged).expect("encode"),
        ));
    }
    for (i, body) in answers.into_iter().enumerate() {
        let tagged = Tagged { id: i as u64, body };
        frames.push((format!("seed-answer-{i}"), encode(&tagged).expect("encode")));
    }
    let hello = Hello {
        node: 2,
        incarnation: 77,
        relay: Some(b"imap".to_vec()),
    };
    frames.push(("seed-hello".into(), encode(&hello).expect("encode")));
    let welcome = Welcome::Accepted {
        node: 1,
        incarnation: 5,
    };
    frames.push(("seed-welcome".into(), encode(&welcome).expect("encode")));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/link_frame");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    for (name, bytes) in frames {
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
}
