//! The node link: mTLS connections between cluster members carrying length-prefixed bincode
//! frames — Raft RPCs of every group, forwarded proposals and reads, and cluster management.
//!
//! - [`tls`]: the cluster CA, node certificates and the mTLS configurations.
//! - [`frame`]: framing and its limits.
//! - [`message`]: requests and replies.
//! - [`client`]: [`Peers`], one multiplexed connection per peer.
//! - [`server`]: accepting peers and dispatching requests to a [`Handler`].

pub mod client;
pub mod frame;
pub mod message;
pub mod server;
pub mod tls;

pub use client::{LinkError, Peers};
pub use message::{ClusterInfo, GroupDigest, GroupView, Refusal, Reply, Request};
pub use server::{Handler, serve};
pub use tls::{ClusterCa, LinkTls};
