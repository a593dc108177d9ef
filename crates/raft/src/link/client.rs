//! The calling side of node links: two mTLS connections per peer, each opened on first use and
//! again after it breaks, shared by every concurrent call to that peer.
//!
//! A frame goes on one of two lanes by its size: the control lane carries heartbeats, votes,
//! small appends and every other small call; the bulk lane carries snapshot chunks and large
//! appends or proposals (parts of big bodies). A frame is written whole before the next one on
//! its connection, so without lanes a 1 MiB part would hold every group's heartbeats to that
//! peer for as long as it takes to send — long enough, on a slow link, for followers to start
//! elections.
//!
//! Every connection starts with this node's [`Hello`] (id and data-dir incarnation) and the
//! peer's [`Welcome`]: the peer's certificate must name the node it says it is (the one dialled,
//! unless dialled by address only, as a joining node does its seed), and the [`Roster`] must not
//! refuse it (a removed node, or a member whose data dir was replaced), checked again at every
//! call.

use super::frame;
use super::identity::{Roster, Standing, check_claim};
use super::rpc::{Answer, Hello, Request, Tagged, Welcome};
use super::tls::LinkTls;
use rustls_pki_types::ServerName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::NodeId;
use tern_core::sync::lock;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long dialling a peer (TCP and TLS handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed dial, calls to that peer fail at once for this long instead of dialling
/// again (a dead or cut-off peer would otherwise be dialled by every heartbeat of every group).
const DIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Frames queued for one peer before the link is considered stuck and dropped.
const SEND_QUEUE: usize = 4096;
/// Frames larger than this (length prefix included) go on the bulk lane.
pub const BULK_FRAME: usize = 64 * 1024;
/// Node ids from here up stand for a peer known by its address only (a seed a joining node
/// dials): whichever node answers there is accepted, if its certificate names it.
pub const UNKNOWN_PEERS: NodeId = u64::MAX - 0xFFFF;

/// The id to key calls to the `i`th seed by, whose node id is not known yet.
pub fn seed_placeholder(i: usize) -> NodeId {
    u64::MAX - (i as u64 & 0xFFFF)
}

/// How errors name a peer: its id, or "the seed" for a placeholder (a seed's id is not known
/// before it answers).
fn peer_name(node: NodeId) -> String {
    if node >= UNKNOWN_PEERS {
        "the seed node".to_string()
    } else {
        format!("node {node}")
    }
}

/// Which of a peer's two connections a frame travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    /// Heartbeats, votes, small appends and every other small call.
    Control,
    /// Snapshot chunks and anything over [`BULK_FRAME`].
    Bulk,
}

impl Lane {
    fn of(request: &Request, frame_len: usize) -> Lane {
        if matches!(request, Request::Snapshot(..)) || frame_len > BULK_FRAME {
            Lane::Bulk
        } else {
            Lane::Control
        }
    }
}

/// One connection to one peer.
type Route = (NodeId, Lane);

/// The calling side of a connection that relays a client session.
pub type RelayStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Why a call failed. Only `Unreachable` guarantees the request was never delivered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// The peer could not be reached; the request was not sent.
    #[error("{} unreachable: {reason}", peer_name(*node))]
    Unreachable {
        /// The peer.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// The link broke after the request was sent: it may or may not have been handled.
    #[error("link to node {0} broke before the reply")]
    Lost(NodeId),
    /// No reply in time: the request may or may not have been handled.
    #[error("node {0} did not reply in time")]
    Timeout(NodeId),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// One live connection to a peer.
struct PeerConn {
    addr: String,
    /// Who answered, as its welcome and certificate say (node id, incarnation).
    peer: (NodeId, u64),
    frames: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    alive: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct Inner {
    me: NodeId,
    /// This node's data-dir incarnation, sent in every hello.
    incarnation: u64,
    /// Who may be talked to; `None`: anyone the cluster CA signed.
    roster: Option<Arc<dyn Roster>>,
    tls: LinkTls,
    /// Outbound links leave from this address (the node's own link IP), so that whoever sits
    /// in front of a peer can tell which node a connection comes from.
    source: Option<IpAddr>,
    conns: Mutex<HashMap<Route, Arc<PeerConn>>>,
    /// One dial at a time per connection.
    dialing: Mutex<HashMap<Route, Arc<tokio::sync::Mutex<()>>>>,
    /// When the last dial to a peer failed, and why (on either lane: the peer is down).
    failed: Mutex<HashMap<NodeId, (Instant, String)>>,
    next_id: AtomicU64,
}

/// Node links to every peer. Cheap to clone.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<Inner>,
}

impl Peers {
    /// Links for node `me`, dialling from `source` when given, talking to anyone the cluster
    /// CA signed (tests; a cluster member uses [`Peers::with_roster`]).
    pub fn new(me: NodeId, tls: LinkTls, source: Option<IpAddr>) -> Peers {
        Peers::build(me, 0, None, tls, source)
    }

    /// Links for node `me`, whose data dir is `incarnation`, talking only to peers `roster`
    /// does not refuse.
    pub fn with_roster(
        me: NodeId,
        incarnation: u64,
        roster: Arc<dyn Roster>,
        tls: LinkTls,
        source: Option<IpAddr>,
    ) -> Peers {
        Peers::build(me, incarnation, Some(roster), tls, source)
    }

    fn build(
        me: NodeId,
        incarnation: u64,
        roster: Option<Arc<dyn Roster>>,
        tls: LinkTls,
        source: Option<IpAddr>,
    ) -> Peers {
        Peers {
            inner: Arc::new(Inner {
                me,
                incarnation,
                roster,
                tls,
                source,
                conns: Mutex::new(HashMap::new()),
                dialing: Mutex::new(HashMap::new()),
                failed: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Sends `request` to `node` at `addr` and waits up to `timeout` for its reply.
    pub async fn call(
        &self,
        node: NodeId,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Answer, LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable { node, reason };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame =
            frame::encode(&Tagged { id, body: request }).map_err(|e| unreachable(e.to_string()))?;
        let route = (node, Lane::of(request, frame.len()));
        let conn = self.connection(route, addr).await?;
        if let Err(why) = self.vouch(conn.peer) {
            // Removed, or found to be another incarnation, since the link opened.
            self.forget(route, &conn);
            return Err(unreachable(why));
        }
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(id, tx);
        if let Err(e) = conn.frames.try_send(frame) {
            lock(&conn.pending).remove(&id);
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                // The peer stopped reading (paused, or far behind): start afresh next time.
                self.forget(route, &conn);
            }
            return Err(unreachable("link send queue unavailable".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(LinkError::Lost(node)),
            Err(_) => {
                lock(&conn.pending).remove(&id);
                Err(LinkError::Timeout(node))
            }
        }
    }

    /// Drops every connection (shutdown).
    pub fn close(&self) {
        lock(&self.inner.conns).clear();
    }

    fn forget(&self, route: Route, conn: &Arc<PeerConn>) {
        conn.alive.store(false, Ordering::Release);
        let mut conns = lock(&self.inner.conns);
        if conns.get(&route).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&route);
        }
    }

    fn live(&self, route: Route, addr: &str) -> Option<Arc<PeerConn>> {
        lock(&self.inner.conns)
            .get(&route)
            .filter(|c| c.alive.load(Ordering::Acquire) && c.addr == addr)
            .cloned()
    }

    async fn connection(&self, route: Route, addr: &str) -> Result<Arc<PeerConn>, LinkError> {
        if let Some(conn) = self.live(route, addr) {
            return Ok(conn);
        }
        let gate = lock(&self.inner.dialing).entry(route).or_default().clone();
        let _dialing = gate.lock().await;
        if let Some(conn) = self.live(route, addr) {
            return Ok(conn);
        }
        let (node, lane) = route;
        if let Some((at, why)) = lock(&self.inner.failed).get(&node)
            && at.elapsed() < DIAL_BACKOFF
        {
            return Err(LinkError::Unreachable {
                node,
                reason: format!("{why} (retrying shortly)"),
            });
        }
        let dialled = tokio::time::timeout(CONNECT_TIMEOUT, self.dial(node, lane, addr))
            .await
            .unwrap_or_else(|_| {
                Err(LinkError::Unreachable {
                    node,
                    reason: format!("connecting to {addr} timed out"),
                })
            });
        let conn = match dialled {
            Ok(conn) => {
                lock(&self.inner.failed).remove(&node);
                Arc::new(conn)
            }
            Err(e) => {
                let why = match &e {
                    LinkError::Unreachable { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                lock(&self.inner.failed).insert(node, (Instant::now(), why));
                return Err(e);
            }
        };
        lock(&self.inner.conns).insert(route, conn.clone());
        Ok(conn)
    }

    /// Opens a connection of its own to `node` at `addr` that relays one client session:
    /// `request` tells the peer what to serve on it. The stream carries the session's bytes
    /// from then on.
    pub async fn open_relay(
        &self,
        node: NodeId,
        addr: &str,
        request: Vec<u8>,
    ) -> Result<RelayStream, LinkError> {
        let opened = async {
            let mut tls = self.handshake(node, addr).await?;
            self.introduce(node, addr, &mut tls, Some(request)).await?;
            Ok(tls)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, opened)
            .await
            .unwrap_or_else(|_| {
                Err(LinkError::Unreachable {
                    node,
                    reason: format!("connecting to {addr} timed out"),
                })
            })
    }

    /// TCP connection and TLS handshake with `node` at `addr`.
    async fn handshake(&self, node: NodeId, addr: &str) -> Result<RelayStream, LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable { node, reason };
        let target: SocketAddr = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| unreachable(format!("resolving {addr}: {e}")))?
            .next()
            .ok_or_else(|| unreachable(format!("{addr} resolves to nothing")))?;
        let tcp = connect_from(self.inner.source, target)
            .await
            .map_err(|e| unreachable(format!("connecting to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| unreachable(format!("bad peer name {host}: {e}")))?;
        self.inner
            .tls
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| unreachable(format!("TLS with {addr}: {e}")))
    }

    /// Says hello on a new connection to `node` at `addr` and checks the peer's welcome: it
    /// must be `node` (unless `node` is a placeholder), its certificate must name it, and the
    /// roster must not refuse it. Returns who answered.
    async fn introduce(
        &self,
        node: NodeId,
        addr: &str,
        tls: &mut RelayStream,
        relay: Option<Vec<u8>>,
    ) -> Result<(NodeId, u64), LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable { node, reason };
        let hello = frame::encode(&Hello {
            node: self.inner.me,
            incarnation: self.inner.incarnation,
            relay,
        })
        .map_err(|e| unreachable(e.to_string()))?;
        frame::write(tls, &hello)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let welcome: Welcome = frame::read(tls)
            .await
            .map_err(|e| unreachable(format!("{addr}: {e}")))?
            .ok_or_else(|| unreachable(format!("{addr} closed the link before its welcome")))?;
        let (peer, incarnation) = match welcome {
            Welcome::Accepted { node, incarnation } => (node, incarnation),
            Welcome::Refused(why) => {
                return Err(unreachable(format!("{addr} refused this node: {why}")));
            }
        };
        if node < UNKNOWN_PEERS && peer != node {
            return Err(unreachable(format!(
                "{addr} answered as node {peer}, not node {node}"
            )));
        }
        check_claim(tls.get_ref().1.peer_certificates(), peer)
            .map_err(|e| unreachable(format!("{addr}: {e}")))?;
        self.vouch((peer, incarnation)).map_err(unreachable)?;
        Ok((peer, incarnation))
    }

    /// Whether the roster lets this node talk to `peer` (node id, incarnation).
    fn vouch(&self, (node, incarnation): (NodeId, u64)) -> Result<(), String> {
        match self
            .inner
            .roster
            .as_ref()
            .map(|r| r.standing(node, incarnation))
        {
            Some(Standing::Refused(why)) => Err(why),
            _ => Ok(()),
        }
    }

    async fn dial(&self, node: NodeId, lane: Lane, addr: &str) -> Result<PeerConn, LinkError> {
        let mut tls = self.handshake(node, addr).await?;
        let peer = self.introduce(node, addr, &mut tls, None).await?;
        let (mut reader, mut writer) = tokio::io::split(tls);

        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (frames, mut outbox) = mpsc::channel::<Vec<u8>>(SEND_QUEUE);
        let write_alive = alive.clone();
        let writer_task = tokio::spawn(async move {
            while let Some(f) = outbox.recv().await {
                if let Err(e) = frame::write(&mut writer, &f).await {
                    tracing::debug!(node, "node link write failed: {e}");
                    break;
                }
            }
            write_alive.store(false, Ordering::Release);
        });
        let (read_alive, read_pending) = (alive.clone(), pending.clone());
        let reader_task = tokio::spawn(async move {
            loop {
                match frame::read::<_, Tagged<Answer>>(&mut reader).await {
                    Ok(Some(reply)) => {
                        if let Some(tx) = lock(&read_pending).remove(&reply.id) {
                            let _ = tx.send(reply.body);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(node, "node link read failed: {e}");
                        break;
                    }
                }
            }
            read_alive.store(false, Ordering::Release);
            // Every call still waiting learns the link broke (its sender is dropped).
            lock(&read_pending).clear();
        });
        tracing::debug!(node, addr, ?lane, "node link up");
        Ok(PeerConn {
            addr: addr.to_string(),
            peer,
            frames,
            pending,
            alive,
            tasks: [writer_task, reader_task],
        })
    }
}

async fn connect_from(source: Option<IpAddr>, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source
        && ip.is_ipv4() == target.is_ipv4()
        && !ip.is_unspecified()
    {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(target).await
}
