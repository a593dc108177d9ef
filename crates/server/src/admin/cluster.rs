//! Admin routes for the cluster: `init`, `join`, `drain`, `remove`, `status`, and per-group
//! state digests for convergence checks.

use super::api::{AdminState, ApiError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tern_raft::link::{ClusterInfo, GroupDigest};
use tern_raft::progress::{NodeShare, Rebalance};
use tern_raft::{MemberReport, RaftError};

/// The cluster routes, nested under `/v1/cluster` (behind the token).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/init", post(init))
        .route("/join", post(join))
        .route("/drain", post(drain))
        .route("/remove", post(remove))
        .route("/status", get(status))
        .route("/digests", get(digests))
}

impl From<RaftError> for ApiError {
    fn from(e: RaftError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// `POST /v1/cluster/init`.
#[derive(Debug, Deserialize)]
pub struct InitRequest {
    /// Data partitions (default 256).
    pub partitions: Option<u32>,
}

/// `POST /v1/cluster/join`.
#[derive(Debug, Deserialize)]
pub struct JoinRequest {
    /// A member's link address; default: the configured seeds.
    pub seed: Option<String>,
}

/// `POST /v1/cluster/remove`.
#[derive(Debug, Deserialize)]
pub struct RemoveRequest {
    /// The node to take out.
    pub node: u64,
    /// The node is gone for good: remove it even though it holds replicas (they are made
    /// again on the other nodes).
    #[serde(default)]
    pub dead: bool,
}

/// `POST /v1/cluster/drain`.
#[derive(Debug, Deserialize)]
pub struct DrainRequest {
    /// The node to move every replica off.
    pub node: u64,
    /// Stop draining it instead (it may hold replicas again).
    #[serde(default)]
    pub cancel: bool,
}

/// The cluster as one node sees it, with every reachable member's view of every group.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// The answering node.
    pub node: u64,
    /// Partition count.
    pub partitions: u32,
    /// Whether the answering node is ready to serve.
    pub ready: bool,
    /// Each member's share: partitions held and led, bytes, moves in flight.
    pub nodes: Vec<NodeShare>,
    /// The replica moves under way: moved of total, bytes, rate, ETA.
    pub rebalance: Rebalance,
    /// Every member, with its view of every group.
    pub members: Vec<MemberReport>,
}

/// This node's digests.
#[derive(Debug, Serialize)]
pub struct DigestsView {
    /// The answering node.
    pub node: u64,
    /// Per group.
    pub groups: Vec<GroupDigest>,
}

async fn init(
    State(s): State<AdminState>,
    Json(r): Json<InitRequest>,
) -> Result<Json<ClusterInfo>, ApiError> {
    let partitions = r.partitions.unwrap_or(256);
    if !(1..=4096).contains(&partitions) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "partitions must be between 1 and 4096".into(),
        ));
    }
    Ok(Json(s.services.raft.init_cluster(partitions).await?))
}

async fn join(
    State(s): State<AdminState>,
    Json(r): Json<JoinRequest>,
) -> Result<Json<ClusterInfo>, ApiError> {
    Ok(Json(s.services.raft.join_cluster(r.seed).await?))
}

async fn drain(
    State(s): State<AdminState>,
    Json(r): Json<DrainRequest>,
) -> Result<Json<()>, ApiError> {
    s.services.raft.drain_node(r.node, !r.cancel).await?;
    Ok(Json(()))
}

async fn remove(
    State(s): State<AdminState>,
    Json(r): Json<RemoveRequest>,
) -> Result<Json<()>, ApiError> {
    s.services.raft.remove_node(r.node, r.dead).await?;
    Ok(Json(()))
}

async fn status(State(s): State<AdminState>) -> Json<StatusView> {
    let raft = &s.services.raft;
    let members = raft.cluster_status().await;
    let (nodes, rebalance) = raft.progress(&members);
    Json(StatusView {
        node: raft.node_id(),
        partitions: raft.partitions(),
        ready: raft.ready(),
        nodes,
        rebalance,
        members,
    })
}

async fn digests(State(s): State<AdminState>) -> Result<Json<DigestsView>, ApiError> {
    let raft = &s.services.raft;
    Ok(Json(DigestsView {
        node: raft.node_id(),
        groups: raft.digests().await?,
    }))
}
