//! The node link: mTLS connections between cluster members carrying length-prefixed bincode
//! frames — Raft RPCs of every group, forwarded proposals and reads, and cluster management.
//!
//! - [`tls`]: the cluster CA, node certificates and the mTLS configurations.
//! - [`identity`]: the node a certificate names, and whether a node may use the link.
//! - [`frame`]: framing and its limits.
//! - [`rpc`]: requests, answers and the call id that pairs them ([`rpc::Tagged`]).
//! - [`client`]: [`Peers`], two multiplexed connections per peer: a control lane and a bulk
//!   lane, so heartbeats never wait behind a snapshot chunk or a large body.
//! - [`server`]: accepting peers and dispatching requests to a [`Handler`].
//! - [`transport`]: the [`Transport`] seam: the real link or the simulator's network.

pub mod client;
pub mod frame;
pub mod identity;
pub mod rpc;
pub mod server;
pub mod tls;
pub mod transport;

pub use client::{LinkError, Peers, RelayStream};
pub use identity::{Roster, Standing};
pub use rpc::{Answer, ClusterInfo, GroupDigest, GroupView, Refusal, Request, Welcome};
pub use server::{Handler, RelayedStream, serve};
pub use tls::{ClusterCa, LinkTls};
pub use transport::Transport;
