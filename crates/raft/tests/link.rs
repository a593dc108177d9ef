//! The node link over real loopback TCP and TLS: peers of the cluster CA talk, a certificate
//! from another CA is refused, a certificate of one node claiming to be another is refused, a
//! removed node is refused, a node that is not a member may only ask to join, and a caller
//! reconnects after its peer comes back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tern_core::NodeId;
use tern_raft::link::{
    Answer, ClusterCa, Handler, LinkError, LinkTls, Peers, RelayedStream, Request, Roster,
    Standing, serve,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Answers every request with who asked.
struct WhoAsked;

impl Handler for WhoAsked {
    async fn handle(&self, from: NodeId, _request: Request) -> Answer {
        Answer::Error(format!("asked by {from}"))
    }

    /// Says who relayed what, then echoes the session's bytes.
    async fn relay(&self, from: NodeId, request: Vec<u8>, stream: RelayedStream) {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let line = format!("{from} {}\n", String::from_utf8_lossy(&request));
        if writer.write_all(line.as_bytes()).await.is_ok() {
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
        }
    }
}

fn tls(ca: &ClusterCa, node: u64) -> LinkTls {
    let pair = ca.issue(node, "127.0.0.1").unwrap();
    LinkTls::from_pem(ca.cert_pem(), &pair.cert, &pair.key).unwrap()
}

async fn start_server(addr: &str, tls: LinkTls) -> (String, CancellationToken) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, tls, Arc::new(WhoAsked), stop.clone()));
    (addr, stop)
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_and_a_foreign_certificate_is_refused() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, stop) = start_server("127.0.0.1:0", tls(&ca, 1)).await;

    let member = Peers::new(2, tls(&ca, 2), None);
    match member.call(1, &addr, &Request::Status, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 2"),
        other => panic!("a member was not answered: {other:?}"),
    }

    // Same node id, same address in the certificate, but another CA signed it.
    let foreign = ClusterCa::generate().unwrap();
    let intruder = Peers::new(3, tls(&foreign, 3), None);
    let refused = intruder.call(1, &addr, &Request::Status, TIMEOUT).await;
    assert!(
        matches!(refused, Err(LinkError::Unreachable { .. })),
        "a foreign certificate got through: {refused:?}"
    );

    // A caller that trusts the cluster CA but presents a foreign certificate is refused by
    // the server, even though it accepts the server's certificate.
    let pair = foreign.issue(4, "127.0.0.1").unwrap();
    let half = LinkTls::from_pem(ca.cert_pem(), &pair.cert, &pair.key).unwrap();
    let impostor = Peers::new(4, half, None);
    let refused = impostor.call(1, &addr, &Request::Status, TIMEOUT).await;
    assert!(
        refused.is_err(),
        "a client certificate from another CA got an answer"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_connection_carries_its_request_then_raw_bytes_both_ways() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, stop) = start_server("127.0.0.1:0", tls(&ca, 1)).await;
    let member = Peers::new(2, tls(&ca, 2), None);
    let mut relay = member
        .open_relay(1, &addr, b"imap alice".to_vec())
        .await
        .unwrap();
    let mut first = vec![0u8; 13];
    relay.read_exact(&mut first).await.unwrap();
    assert_eq!(first, b"2 imap alice\n");
    relay.write_all(b"a1 NOOP\r\n").await.unwrap();
    let mut echoed = vec![0u8; 9];
    relay.read_exact(&mut echoed).await.unwrap();
    assert_eq!(echoed, b"a1 NOOP\r\n");
    // Calls on the same peer still work beside a relay.
    assert!(
        member
            .call(1, &addr, &Request::Status, TIMEOUT)
            .await
            .is_ok()
    );

    let foreign = ClusterCa::generate().unwrap();
    let intruder = Peers::new(3, tls(&foreign, 3), None);
    assert!(intruder.open_relay(1, &addr, b"x".to_vec()).await.is_err());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reconnects_after_the_peer_restarts() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, stop) = start_server("127.0.0.1:0", tls(&ca, 1)).await;
    let peers = Peers::new(2, tls(&ca, 2), None);
    assert!(
        peers
            .call(1, &addr, &Request::Status, TIMEOUT)
            .await
            .is_ok()
    );

    // The peer goes away: calls fail, quickly, with an error.
    stop.cancel();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match peers
            .call(1, &addr, &Request::Status, Duration::from_millis(500))
            .await
        {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "calls still answered after the stop"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // It comes back on the same address: the next calls dial again and succeed.
    let (_, stop) = start_server(&addr, tls(&ca, 1)).await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match peers.call(1, &addr, &Request::Status, TIMEOUT).await {
            Ok(Answer::Error(text)) => {
                assert_eq!(text, "asked by 2");
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "never reconnected: {other:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    stop.cancel();
}

/// Relays TCP connections to `target`; a connection stops being relayed towards the target
/// once it has carried `stall_after` bytes (a peer that stops reading a big transfer), and
/// `stalled` is notified.
async fn stalling_relay(target: String, stall_after: usize) -> (String, Arc<tokio::sync::Notify>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stalled = Arc::new(tokio::sync::Notify::new());
    let notify = stalled.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let (target, notify) = (target.clone(), notify.clone());
            tokio::spawn(async move {
                let outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
                });
                let mut relayed = 0;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match in_read.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if out_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    relayed += n;
                    if relayed > stall_after {
                        notify.notify_one();
                        // Hold both sockets open and relay nothing more.
                        std::future::pending::<()>().await;
                    }
                }
            });
        }
    });
    (addr, stalled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_calls_do_not_wait_behind_a_stalled_bulk_transfer() {
    let ca = ClusterCa::generate().unwrap();
    let (server, stop) = start_server("127.0.0.1:0", tls(&ca, 1)).await;
    let (relay, stalled) = stalling_relay(server, 1024 * 1024).await;
    let peers = Peers::new(2, tls(&ca, 2), None);
    match peers.call(1, &relay, &Request::Status, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 2"),
        other => panic!("the relay does not relay: {other:?}"),
    }

    // A call over the bulk threshold that never arrives whole: its connection stalls at 1 MiB.
    let big = Request::Join(9, "x".repeat(8 * 1024 * 1024), 0);
    let bulk = {
        let (peers, relay) = (peers.clone(), relay.clone());
        tokio::spawn(async move { peers.call(1, &relay, &big, Duration::from_secs(60)).await })
    };
    tokio::time::timeout(TIMEOUT, stalled.notified())
        .await
        .expect("the big call never reached the relay");

    // Small calls go on another connection and are answered while the transfer is stuck.
    for _ in 0..3 {
        match peers.call(1, &relay, &Request::Status, TIMEOUT).await {
            Ok(Answer::Error(text)) => assert_eq!(text, "asked by 2"),
            other => panic!("a small call waited behind the bulk transfer: {other:?}"),
        }
    }
    assert!(
        !bulk.is_finished(),
        "the stalled bulk call finished: {:?}",
        bulk.await
    );
    bulk.abort();
    stop.cancel();
}

/// A cluster's record as a roster: members with their incarnations, and removed ids.
struct Record {
    members: Vec<(NodeId, u64)>,
    removed: BTreeSet<NodeId>,
}

impl Roster for Record {
    fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        if self.removed.contains(&node) {
            return Standing::Refused(format!("node {node} was removed"));
        }
        match self.members.iter().find(|(n, _)| *n == node) {
            Some((_, i)) if *i == incarnation => Standing::Member,
            Some(_) => Standing::Refused(format!("node {node} lost its data")),
            None => Standing::Joining,
        }
    }
}

/// [`WhoAsked`] behind a roster: node 1 (incarnation 11) and node 2 (incarnation 22) are
/// members, node 3 was removed.
struct Guarded(Record);

impl Guarded {
    fn new() -> Guarded {
        Guarded(Record {
            members: vec![(1, 11), (2, 22)],
            removed: BTreeSet::from([3]),
        })
    }
}

impl Handler for Guarded {
    async fn handle(&self, from: NodeId, request: Request) -> Answer {
        WhoAsked.handle(from, request).await
    }

    async fn relay(&self, from: NodeId, request: Vec<u8>, stream: RelayedStream) {
        WhoAsked.relay(from, request, stream).await
    }

    fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        self.0.standing(node, incarnation)
    }

    fn incarnation(&self) -> u64 {
        11
    }
}

async fn start_guarded(tls: LinkTls) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, tls, Arc::new(Guarded::new()), stop.clone()));
    (addr, stop)
}

fn refused_because(result: Result<Answer, LinkError>, why: &str) {
    match result {
        Err(LinkError::Unreachable { reason, .. }) => {
            assert!(
                reason.contains(why),
                "refused, but for {reason:?}, not {why:?}"
            )
        }
        other => panic!("not refused ({why}): {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_node_5_claiming_to_be_node_1_is_refused() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, stop) = start_server("127.0.0.1:0", tls(&ca, 2)).await;

    // The cluster CA signed node 5's certificate; its hello says node 1.
    let impostor = Peers::new(1, tls(&ca, 5), None);
    let refused = impostor.call(2, &addr, &Request::Status, TIMEOUT).await;
    refused_because(
        refused,
        "the certificate is node 5's, but the peer says it is node 1",
    );
    let relay = impostor.open_relay(2, &addr, b"imap alice".to_vec()).await;
    assert!(
        relay.is_err(),
        "a relay with another node's certificate got through"
    );

    // The caller checks the server too: node 2's certificate answering where node 1 is dialled.
    let member = Peers::new(3, tls(&ca, 3), None);
    refused_because(
        member.call(1, &addr, &Request::Status, TIMEOUT).await,
        "answered as node 2, not node 1",
    );
    // Dialled as node 2, it is node 2.
    match member.call(2, &addr, &Request::Status, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 3"),
        other => panic!("node 3 as itself was not answered: {other:?}"),
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_node_and_a_wiped_one_are_refused_and_a_newcomer_may_only_join() {
    let ca = ClusterCa::generate().unwrap();
    let (addr, stop) = start_guarded(tls(&ca, 1)).await;
    let roster = || {
        Arc::new(Record {
            members: vec![(1, 11), (2, 22)],
            removed: BTreeSet::from([3]),
        }) as Arc<dyn Roster>
    };

    // A member with its recorded incarnation: every request.
    let member = Peers::with_roster(2, 22, roster(), tls(&ca, 2), None);
    match member.call(1, &addr, &Request::Status, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 2"),
        other => panic!("a member was not answered: {other:?}"),
    }
    // The same node with another data dir (it lost its data): refused.
    let wiped = Peers::new(2, tls(&ca, 2), None);
    refused_because(
        wiped.call(1, &addr, &Request::Status, TIMEOUT).await,
        "node 2 lost its data",
    );
    // A removed node's own, CA-signed certificate: refused, for calls and relays.
    let removed = Peers::new(3, tls(&ca, 3), None);
    refused_because(
        removed.call(1, &addr, &Request::Info, TIMEOUT).await,
        "node 3 was removed",
    );
    assert!(removed.open_relay(1, &addr, b"x".to_vec()).await.is_err());

    // A node that is not a member: `Info`, and `Join` for itself, nothing else.
    let newcomer = Peers::new(4, tls(&ca, 4), None);
    match newcomer.call(1, &addr, &Request::Info, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 4"),
        other => panic!("Info from a newcomer was not handled: {other:?}"),
    }
    let join = Request::Join(4, "127.0.0.1:1".into(), 0);
    match newcomer.call(1, &addr, &join, TIMEOUT).await {
        Ok(Answer::Error(text)) => assert_eq!(text, "asked by 4"),
        other => panic!("Join from a newcomer was not handled: {other:?}"),
    }
    for request in [
        Request::Status,
        Request::Join(5, "127.0.0.1:1".into(), 0),
        Request::Expel(2),
    ] {
        match newcomer.call(1, &addr, &request, TIMEOUT).await {
            Ok(Answer::Error(text)) => assert!(text.contains("not a member"), "{text}"),
            other => panic!("{request:?} from a newcomer: {other:?}"),
        }
    }
    assert!(newcomer.open_relay(1, &addr, b"x".to_vec()).await.is_err());

    // The calling side asks its roster too: a node that refuses node 1 does not talk to it.
    let wary = Peers::with_roster(
        2,
        22,
        Arc::new(Record {
            members: vec![(1, 99), (2, 22)],
            removed: BTreeSet::new(),
        }),
        tls(&ca, 2),
        None,
    );
    refused_because(
        wary.call(1, &addr, &Request::Status, TIMEOUT).await,
        "node 1 lost its data",
    );
    stop.cancel();
}
