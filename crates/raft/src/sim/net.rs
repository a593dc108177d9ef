//! The simulated network: every node of a run is attached to one [`SimNet`] under its link
//! address; calls go through [`Endpoint`], the simulator's [`Transport`]. Each request and each
//! answer is encoded and decoded as on the real link, delayed by a seeded random time (so
//! messages overtake each other), lost with the current loss rate, and dropped while either
//! end is down or the two are cut off from each other. The checks of the real link are made
//! too: the caller's roster must accept the callee's incarnation, the callee's the caller's,
//! and a node that is not a member may only ask to join.

use super::rng::SimRng;
use crate::link::client::UNKNOWN_PEERS;
use crate::link::frame;
use crate::link::{Answer, Handler, LinkError, RelayStream, Request, Roster, Standing, Transport};
use crate::node::{Inner, RaftNode};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tern_core::NodeId;
use tern_core::sync::lock;
use tokio::time::Instant;

/// How the network misbehaves at the moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weather {
    /// Probability that a request or an answer is lost.
    pub loss: f64,
    /// Each message takes a random time below this.
    pub max_delay: Duration,
}

impl Weather {
    /// No loss, short delays: for setting up and converging.
    pub fn calm() -> Weather {
        Weather {
            loss: 0.0,
            max_delay: Duration::from_millis(5),
        }
    }
}

/// A node attached to the network.
struct Attached {
    node: NodeId,
    incarnation: u64,
    handle: Weak<Inner>,
}

struct State {
    rng: SimRng,
    weather: Weather,
    /// Link address to the node answering there (absent: nothing listens, the node is down).
    nodes: BTreeMap<String, Attached>,
    /// Pairs of nodes (lower id first) that cannot reach each other.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// A running digest of everything that happened (FNV-1a), and how many events.
    trace: u64,
    events: u64,
}

/// The network of one simulated run. Cheap to clone.
#[derive(Clone)]
pub struct SimNet {
    state: Arc<Mutex<State>>,
    start: Instant,
}

impl SimNet {
    /// A network whose faults follow `rng`.
    pub fn new(rng: SimRng) -> SimNet {
        SimNet {
            state: Arc::new(Mutex::new(State {
                rng,
                weather: Weather::calm(),
                nodes: BTreeMap::new(),
                cut: BTreeSet::new(),
                trace: 0xcbf2_9ce4_8422_2325,
                events: 0,
            })),
            start: Instant::now(),
        }
    }

    /// Simulated time since the network was made.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Adds an event (a few numbers) to the trace digest, with the simulated time.
    pub fn note(&self, what: &[u64]) {
        let now = self.elapsed().as_millis() as u64;
        let mut state = lock(&self.state);
        state.events += 1;
        for word in std::iter::once(now).chain(what.iter().copied()) {
            for byte in word.to_le_bytes() {
                state.trace ^= u64::from(byte);
                state.trace = state.trace.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    /// The trace digest and the number of events so far.
    pub fn trace(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.trace, state.events)
    }

    /// Sets how the network misbehaves from now on.
    pub fn set_weather(&self, weather: Weather) {
        lock(&self.state).weather = weather;
    }

    /// Cuts `a` and `b` off from each other (both directions).
    pub fn cut(&self, a: NodeId, b: NodeId) {
        lock(&self.state).cut.insert((a.min(b), a.max(b)));
    }

    /// Heals every cut.
    pub fn heal(&self) {
        lock(&self.state).cut.clear();
    }

    /// Takes the node at `addr` off the network (it crashed).
    pub fn detach(&self, addr: &str) {
        lock(&self.state).nodes.remove(addr);
    }

    /// Attaches `node` under its link address; it answers calls from then on.
    pub(crate) fn attach(&self, node: &RaftNode) {
        let Some(link) = &node.inner.link else {
            return;
        };
        lock(&self.state).nodes.insert(
            link.advertise.clone(),
            Attached {
                node: node.node_id(),
                incarnation: node.incarnation(),
                handle: Arc::downgrade(&node.inner),
            },
        );
    }

    /// The calling side of node `me`.
    pub(crate) fn endpoint(
        &self,
        me: NodeId,
        incarnation: u64,
        roster: Arc<dyn Roster>,
    ) -> Endpoint {
        Endpoint {
            net: self.clone(),
            me,
            incarnation,
            roster,
        }
    }

    /// Whether `node` is attached, with `incarnation`, at `addr`.
    fn is_up(state: &State, addr: &str, node: NodeId, incarnation: u64) -> bool {
        state
            .nodes
            .get(addr)
            .is_some_and(|a| a.node == node && a.incarnation == incarnation)
    }

    /// Whether a message from `from` (at `from_addr`, `from_inc`) to `to` at `addr` gets
    /// through now.
    fn passes(&self, route: &Route) -> bool {
        let state = lock(&self.state);
        let (a, b) = (route.from.min(route.to), route.from.max(route.to));
        Self::is_up(&state, &route.from_addr, route.from, route.from_inc)
            && Self::is_up(&state, &route.to_addr, route.to, route.to_inc)
            && !state.cut.contains(&(a, b))
    }
}

/// Both ends of a call.
struct Route {
    from: NodeId,
    from_addr: String,
    from_inc: u64,
    to: NodeId,
    to_addr: String,
    to_inc: u64,
}

/// The fate of one call, drawn when it is made.
struct Fate {
    request_delay: Duration,
    answer_delay: Duration,
    request_lost: bool,
    answer_lost: bool,
}

/// Encodes and decodes `value` as the real link would.
fn over_the_wire<T: Serialize + DeserializeOwned>(value: &T) -> Result<T, String> {
    let bytes = frame::encode(value).map_err(|e| e.to_string())?;
    futures::executor::block_on(frame::read::<_, T>(&mut &bytes[..]))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "empty frame".to_string())
}

/// The simulator's [`Transport`] for one node.
pub struct Endpoint {
    net: SimNet,
    me: NodeId,
    incarnation: u64,
    roster: Arc<dyn Roster>,
}

impl Endpoint {
    async fn deliver(
        &self,
        node: NodeId,
        addr: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Answer, LinkError> {
        let unreachable = |reason: String| LinkError::Unreachable { node, reason };
        let request = over_the_wire(request).map_err(unreachable)?;
        let kind = frame::encode(&request).map_or(0, |f| u64::from(f[4]));
        let (route, fate, callee) = {
            let mut state = lock(&self.net.state);
            let my_addr = state
                .nodes
                .iter()
                .find(|(_, a)| a.node == self.me && a.incarnation == self.incarnation)
                .map(|(addr, _)| addr.clone());
            let Some(from_addr) = my_addr else {
                return Err(unreachable("this node is down".into()));
            };
            let Some(target) = state.nodes.get(addr) else {
                return Err(unreachable(format!("nothing listens at {addr}")));
            };
            if node < UNKNOWN_PEERS && target.node != node {
                return Err(unreachable(format!(
                    "{addr} answered as node {}",
                    target.node
                )));
            }
            let route = Route {
                from: self.me,
                from_addr,
                from_inc: self.incarnation,
                to: target.node,
                to_addr: addr.to_string(),
                to_inc: target.incarnation,
            };
            let callee = target.handle.clone();
            let weather = state.weather;
            let rng = &mut state.rng;
            let max = weather.max_delay.as_micros() as u64;
            let fate = Fate {
                request_delay: Duration::from_micros(rng.range(0, max + 1)),
                answer_delay: Duration::from_micros(rng.range(0, max + 1)),
                request_lost: rng.chance(weather.loss),
                answer_lost: rng.chance(weather.loss),
            };
            (route, fate, callee)
        };
        self.net.note(&[1, route.from, route.to, kind]);
        if let Standing::Refused(why) = self.roster.standing(route.to, route.to_inc) {
            return Err(unreachable(why));
        }
        let Some(inner) = callee.upgrade() else {
            return Err(unreachable("the node is shutting down".into()));
        };
        // The callee's welcome: its roster must not refuse this node either.
        let standing = RaftNode { inner }.standing(self.me, self.incarnation);
        if let Standing::Refused(why) = &standing {
            return Err(unreachable(format!("{addr} refused this node: {why}")));
        }
        if !self.net.passes(&route) {
            // A dial into a cut: the connect times out.
            tokio::time::sleep(timeout.min(Duration::from_secs(1))).await;
            return Err(unreachable(format!("connecting to {addr} timed out")));
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<Answer>();
        let net = self.net.clone();
        let (from, from_inc) = (self.me, self.incarnation);
        tokio::spawn(async move {
            tokio::time::sleep(fate.request_delay).await;
            if fate.request_lost || !net.passes(&route) {
                net.note(&[2, route.from, route.to, kind]);
                // The connection hangs: the caller times out.
                tokio::time::sleep(timeout).await;
                drop(tx);
                return;
            }
            let answer = match crate::link::server::allowed(&standing, from, from_inc, &request) {
                Err(why) => Answer::Error(why),
                Ok(()) => {
                    // Not held while a message is on its way: a crashed node must go away.
                    let Some(inner) = callee.upgrade() else {
                        return;
                    };
                    let callee = RaftNode { inner };
                    let stop = callee.inner.stop.clone();
                    tokio::select! {
                        answer = Handler::handle(&callee, from, request) => answer,
                        // The callee crashed while handling it: no answer ever comes.
                        _ = stop.cancelled() => return,
                    }
                }
            };
            let answer = over_the_wire(&answer).unwrap_or_else(Answer::Error);
            tokio::time::sleep(fate.answer_delay).await;
            if fate.answer_lost || !net.passes(&route) {
                net.note(&[3, route.from, route.to, kind]);
                tokio::time::sleep(timeout).await;
                drop(tx);
                return;
            }
            let _ = tx.send(answer);
        });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(LinkError::Lost(node)),
            Err(_) => Err(LinkError::Timeout(node)),
        }
    }
}

impl Transport for Endpoint {
    fn call<'a>(
        &'a self,
        node: NodeId,
        addr: &'a str,
        request: &'a Request,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Answer, LinkError>> {
        Box::pin(self.deliver(node, addr, request, timeout))
    }

    fn open_relay<'a>(
        &'a self,
        node: NodeId,
        _addr: &'a str,
        _request: Vec<u8>,
    ) -> BoxFuture<'a, Result<RelayStream, LinkError>> {
        Box::pin(async move {
            Err(LinkError::Unreachable {
                node,
                reason: "the simulator relays no client sessions".into(),
            })
        })
    }

    fn close(&self) {}
}
