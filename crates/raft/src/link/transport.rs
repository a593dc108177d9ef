//! The seam between the Raft layer and the wire: [`Transport`] sends a request to a peer and
//! waits for its answer. [`Peers`] (mTLS over TCP) is the real one; the seeded network of the
//! simulator (`crate::sim`, feature `sim`) is the other, so the same node code runs on both.

use super::client::{LinkError, Peers, RelayStream};
use super::rpc::{Answer, Request};
use futures::future::BoxFuture;
use std::time::Duration;
use tern_core::NodeId;

/// How a node reaches its peers.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` to `node` at `addr` and waits up to `timeout` for its answer. Only
    /// [`LinkError::Unreachable`] means the request was surely not delivered.
    fn call<'a>(
        &'a self,
        node: NodeId,
        addr: &'a str,
        request: &'a Request,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Answer, LinkError>>;

    /// Opens a connection of its own to `node` that relays one client session.
    fn open_relay<'a>(
        &'a self,
        node: NodeId,
        addr: &'a str,
        request: Vec<u8>,
    ) -> BoxFuture<'a, Result<RelayStream, LinkError>>;

    /// Drops every connection (shutdown).
    fn close(&self);
}

impl Transport for Peers {
    fn call<'a>(
        &'a self,
        node: NodeId,
        addr: &'a str,
        request: &'a Request,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Answer, LinkError>> {
        Box::pin(Peers::call(self, node, addr, request, timeout))
    }

    fn open_relay<'a>(
        &'a self,
        node: NodeId,
        addr: &'a str,
        request: Vec<u8>,
    ) -> BoxFuture<'a, Result<RelayStream, LinkError>> {
        Box::pin(Peers::open_relay(self, node, addr, request))
    }

    fn close(&self) {
        Peers::close(self)
    }
}
