//! Admin routes for `tern backup create`: what groups a backup has, and each group's image,
//! streamed from a consistent point after a linearizable read (so everything acknowledged
//! before the request is in it). The node never buffers a whole image.

use super::api::{AdminState, ApiError};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::io;
use tern_core::GroupId;
use tokio::sync::{mpsc, oneshot};

/// The header carrying the applied log index an image stands for.
pub const APPLIED_HEADER: &str = "x-tern-applied-index";
/// Bytes per chunk of a streamed image; a few chunks are in flight at most.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// The routes under `/v1/backup`.
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/", get(info))
        .route("/groups/{group}", get(group_image))
}

/// `GET /v1/backup`: what a backup of this node holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The answering node.
    pub node: u64,
    /// Data partitions; the groups are 0 (meta) to `partitions`.
    pub partitions: u32,
}

async fn info(State(s): State<AdminState>) -> Result<axum::Json<BackupInfo>, ApiError> {
    let raft = &s.services.raft;
    if !raft.has_groups() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node runs no groups yet".into(),
        ));
    }
    Ok(axum::Json(BackupInfo {
        node: raft.node_id(),
        partitions: raft.partitions(),
    }))
}

async fn group_image(
    State(s): State<AdminState>,
    Path(group): Path<u32>,
) -> Result<Response, ApiError> {
    let raft = s.services.raft.clone();
    if group > raft.partitions() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no group {group}"),
        ));
    }
    let group = GroupId(group);
    // Everything committed before now is applied here before the image is pinned.
    raft.read(group).await?;
    let (chunks, body) = mpsc::channel::<io::Result<Vec<u8>>>(CHUNKS_IN_FLIGHT);
    let (pinned_tx, pinned_rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut out = io::BufWriter::with_capacity(
            CHUNK,
            ChannelWriter {
                chunks: chunks.clone(),
            },
        );
        let result = raft
            .export_group(
                group,
                |index| {
                    let _ = pinned_tx.send(index);
                },
                &mut out,
            )
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|_| io::Write::flush(&mut out));
        if let Err(e) = result {
            tracing::warn!(%group, error = %e, "backup export failed");
            // The client sees a broken body, never a short image that looks complete: the
            // image's trailer (counts and checksum) would be missing.
            let _ = chunks.blocking_send(Err(e));
        }
    });
    let index = pinned_rx.await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{group}: the export did not start"),
        )
    })?;
    let stream = futures::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    let mut response = Body::from_stream(stream).into_response();
    response
        .headers_mut()
        .insert(APPLIED_HEADER, HeaderValue::from(index));
    Ok(response)
}

/// Hands what it is written to the response body, waiting while the client is slow.
struct ChannelWriter {
    chunks: mpsc::Sender<io::Result<Vec<u8>>>,
}

impl io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A large message body passes the BufWriter unbuffered: send it in chunks too.
        let n = buf.len().min(CHUNK);
        self.chunks
            .blocking_send(Ok(buf[..n].to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
