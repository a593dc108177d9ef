//! Raft RPCs between nodes, carried by the node link. On a single node there are no peers and
//! every RPC reports the peer unreachable.
//!
//! A snapshot is sent only to a follower that answers first: opening one starts an export of
//! the whole group, and openraft keeps trying to send snapshots to a follower that is down.

use crate::TypeConfig;
use crate::link::{Answer, LinkError, Request, Transport};
use crate::transfers::Transfers;
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::snapshot_transport::{Chunked, SnapshotTransport};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, Snapshot, Vote};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// How long a follower has to answer before a snapshot is sent to it.
const SNAPSHOT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Paces the snapshot chunks every group of a node sends (`[cluster] move_rate_limit`), so
/// that moving replicas leaves the disk and the network to the mail.
#[derive(Debug)]
pub struct SnapshotPace {
    bytes_per_sec: u64,
    /// When the next chunk may go.
    next: Mutex<Instant>,
}

impl SnapshotPace {
    /// At most `bytes_per_sec` on average (0: no limit).
    pub fn new(bytes_per_sec: u64) -> SnapshotPace {
        SnapshotPace {
            bytes_per_sec,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for `bytes`' turn.
    async fn wait(&self, bytes: usize) {
        if let Some(start) = self.reserve(bytes, Instant::now()) {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Books the next `bytes` at `now`; returns when they may go (`None`: no limit).
    fn reserve(&self, bytes: usize, now: Instant) -> Option<Instant> {
        if self.bytes_per_sec == 0 {
            return None;
        }
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        let mut next = lock(&self.next);
        let start = (*next).max(now);
        *next = start + cost;
        Some(start)
    }
}

/// Creates clients for the peers of one group.
#[derive(Clone)]
pub struct Network {
    group: GroupId,
    peers: Option<Arc<dyn Transport>>,
    pace: Arc<SnapshotPace>,
    transfers: Arc<Transfers>,
}

impl Network {
    /// The network of `group`, over `peers` (none on a single node), sending snapshots at
    /// `pace` and recording how far they got in `transfers`.
    pub fn new(
        group: GroupId,
        peers: Option<Arc<dyn Transport>>,
        pace: Arc<SnapshotPace>,
        transfers: Arc<Transfers>,
    ) -> Network {
        Network {
            group,
            peers,
            pace,
            transfers,
        }
    }
}

/// A client for one peer of one group.
pub struct PeerClient {
    group: GroupId,
    target: NodeId,
    addr: String,
    peers: Option<Arc<dyn Transport>>,
    pace: Arc<SnapshotPace>,
    transfers: Arc<Transfers>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            group: self.group,
            target,
            addr: node.addr.clone(),
            peers: self.peers.clone(),
            pace: self.pace.clone(),
            transfers: self.transfers.clone(),
        }
    }
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl PeerClient {
    async fn call<E: std::error::Error>(
        &self,
        request: Request,
        option: &RPCOption,
    ) -> RpcResult<Answer, E> {
        let Some(peers) = &self.peers else {
            let why = std::io::Error::other(format!("no node link to node {}", self.target));
            return Err(RPCError::Unreachable(Unreachable::new(&why)));
        };
        peers
            .call(self.target, &self.addr, &request, option.hard_ttl())
            .await
            .map_err(|e| match e {
                LinkError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                other => RPCError::Network(NetworkError::new(&other)),
            })
    }

    fn unexpected<E: std::error::Error>(&self, reply: Answer) -> RPCError<NodeId, BasicNode, E> {
        let why = std::io::Error::other(format!(
            "{}: unexpected reply from node {}: {reply:?}",
            self.group, self.target
        ));
        RPCError::Network(NetworkError::new(&why))
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, RaftError<NodeId>> {
        match self.call(Request::Append(self.group, rpc), &option).await? {
            Answer::Append(Ok(r)) => Ok(r),
            Answer::Append(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        self.pace.wait(rpc.data.len()).await;
        let (offset, len, done) = (rpc.offset, rpc.data.len(), rpc.done);
        let answer = self
            .call(Request::Snapshot(self.group, rpc), &option)
            .await?;
        self.transfers
            .sent(self.group, self.target, offset, len, done);
        match answer {
            Answer::Snapshot(Ok(r)) => Ok(r),
            Answer::Snapshot(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        // Before the first read of `snapshot`, which starts its export.
        let probe = RPCOption::new(SNAPSHOT_PROBE_TIMEOUT);
        match self.call::<Unreachable>(Request::Info, &probe).await {
            Ok(_) => Chunked::send_snapshot(self, vote, snapshot, cancel, option).await,
            Err(e) => Err(StreamingError::Unreachable(Unreachable::new(&e))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, RaftError<NodeId>> {
        match self.call(Request::Vote(self.group, rpc), &option).await? {
            Answer::Vote(Ok(r)) => Ok(r),
            Answer::Vote(Err(e)) => Err(self.remote(e)),
            other => Err(self.unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_chunks_are_booked_at_the_configured_rate_and_unlimited_means_no_wait() {
        let pace = SnapshotPace::new(1 << 20);
        let now = Instant::now();
        let starts: Vec<Duration> = (0..4)
            .map(|_| pace.reserve(512 << 10, now).unwrap() - now)
            .collect();
        // Four half-MiB chunks at 1 MiB/s: the first at once, each next half a second later.
        let half = Duration::from_millis(500);
        assert_eq!(starts, [Duration::ZERO, half, 2 * half, 3 * half]);
        // After a quiet spell the next chunk goes at once (no burst is saved up either).
        let later = now + Duration::from_secs(10);
        assert_eq!(pace.reserve(512 << 10, later), Some(later));

        assert_eq!(SnapshotPace::new(0).reserve(1 << 30, now), None);
    }
}
