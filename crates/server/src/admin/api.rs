//! Admin routes. Health endpoints are open (the load balancer polls them); everything under
//! `/v1` needs `Authorization: Bearer <token>`. Errors are JSON `{"error": "..."}` with a
//! status that says whose fault it was: 400 bad input, 404 unknown, 409 duplicate or in use,
//! 503 temporarily unavailable.

use crate::services::Services;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tern_directory::DirectoryError;
use tern_store::Rejection;

/// Shared state of the admin routes.
#[derive(Clone)]
pub struct AdminState {
    /// The node's services.
    pub services: Arc<Services>,
    /// The bearer token.
    pub token: Arc<str>,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let v1 = Router::new()
        .route("/domains", get(list_domains).post(add_domain))
        .route("/domains/{name}", delete(delete_domain))
        .route("/accounts", get(list_accounts).post(add_account))
        .route("/accounts/{address}", delete(delete_account))
        .route("/accounts/{address}/password", put(set_password))
        .route("/aliases", get(list_aliases).post(add_alias))
        .route("/aliases/{address}", delete(delete_alias))
        .route("/queue", get(list_queue))
        .route("/queue/flush", post(flush_queue))
        .route("/queue/{id}", get(show_queued).delete(delete_queued))
        .route("/queue/{id}/retry", post(retry_queued))
        .nest("/cluster", super::cluster::routes())
        .nest("/backup", super::backup::routes())
        .merge(super::dkim::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .nest("/v1", v1)
        .with_state(state)
}

/// Rejects requests without the right bearer token.
async fn require_token(
    State(state): State<AdminState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if constant_time_eq(t.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        _ => ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong admin token".into(),
        )
        .into_response(),
    }
}

/// Compares without an early exit, so response time does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An error reply.
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: String) -> ApiError {
        ApiError(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (self.0, Json(Body { error: self.1 })).into_response()
    }
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> Self {
        let status = match &e {
            DirectoryError::InvalidAddress(_) => StatusCode::BAD_REQUEST,
            DirectoryError::Rejected(r) => match r {
                Rejection::NoSuchDomain | Rejection::NoSuchAccount | Rejection::NoSuchAlias => {
                    StatusCode::NOT_FOUND
                }
                Rejection::DomainExists | Rejection::AccountExists | Rejection::DomainNotEmpty => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::BAD_REQUEST,
            },
            DirectoryError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            DirectoryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            DirectoryError::AuthFailed | DirectoryError::Hash(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn ready(State(state): State<AdminState>) -> (StatusCode, String) {
    let raft = &state.services.raft;
    if !raft.has_groups() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not in a cluster yet\n".into(),
        );
    }
    let groups = raft.status().await;
    let leaderless = groups.iter().filter(|g| g.leader.is_none()).count();
    if leaderless > 0 || !raft.ready() {
        let msg = format!(
            "not ready: {leaderless} of {} groups without a leader, or no quorum reachable\n",
            groups.len()
        );
        (StatusCode::SERVICE_UNAVAILABLE, msg)
    } else {
        (
            StatusCode::OK,
            format!("ready: {} groups led\n", groups.len()),
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> String {
    let open = state.services.limiter.open();
    let groups = state.services.raft.status().await;
    let mut out = String::new();
    out.push_str("# HELP tern_connections_open Client connections open now.\n");
    out.push_str("# TYPE tern_connections_open gauge\n");
    out.push_str(&format!("tern_connections_open {open}\n"));
    out.push_str(
        "# HELP tern_wal_syncs_total WAL fsyncs; each acknowledges every Raft append waiting.\n",
    );
    out.push_str("# TYPE tern_wal_syncs_total counter\n");
    out.push_str(&format!(
        "tern_wal_syncs_total {}\n",
        state.services.raft.wal_syncs()
    ));
    out.push_str("# HELP tern_raft_applied_index Last applied log index per group.\n");
    out.push_str("# TYPE tern_raft_applied_index gauge\n");
    for g in groups {
        out.push_str(&format!(
            "tern_raft_applied_index{{group=\"{}\"}} {}\n",
            g.group.0, g.applied_index
        ));
    }
    out
}

/// `POST /v1/domains` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewDomain {
    /// The domain name.
    pub name: String,
}

/// A domain as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct DomainView {
    /// The domain name.
    pub name: String,
    /// Unix seconds.
    pub created: i64,
}

async fn list_domains(State(s): State<AdminState>) -> ApiResult<Vec<DomainView>> {
    let domains = s.services.directory.list_domains().await?;
    Ok(Json(
        domains
            .into_iter()
            .map(|d| DomainView {
                name: d.name,
                created: d.created,
            })
            .collect(),
    ))
}

async fn add_domain(
    State(s): State<AdminState>,
    Json(d): Json<NewDomain>,
) -> ApiResult<DomainView> {
    let directory = &s.services.directory;
    directory.add_domain(&d.name).await?;
    let name = tern_core::address::normalize_domain(&d.name)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    // Answer with the record as stored (normalised name, creation time).
    let stored = directory
        .list_domains()
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| {
            ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "domain not visible yet".into(),
            )
        })?;
    tracing::info!(domain = %stored.name, "domain added");
    Ok(Json(DomainView {
        name: stored.name,
        created: stored.created,
    }))
}

async fn delete_domain(State(s): State<AdminState>, Path(name): Path<String>) -> ApiResult<()> {
    s.services.directory.delete_domain(&name).await?;
    tracing::info!(domain = %name, "domain deleted");
    Ok(Json(()))
}

/// `POST /v1/accounts` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewAccount {
    /// `user@domain`.
    pub address: String,
    /// The password (hashed with argon2 before it is stored).
    pub password: String,
    /// Quota in bytes, 0 or absent = unlimited.
    #[serde(default)]
    pub quota: u64,
}

/// An account as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccountView {
    /// `user@domain`.
    pub address: String,
    /// Quota in bytes, 0 = unlimited.
    pub quota: u64,
}

async fn list_accounts(State(s): State<AdminState>) -> ApiResult<Vec<AccountView>> {
    let accounts = s.services.directory.list_accounts().await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| AccountView {
                address: a.address,
                quota: a.quota,
            })
            .collect(),
    ))
}

async fn add_account(
    State(s): State<AdminState>,
    Json(a): Json<NewAccount>,
) -> ApiResult<AccountView> {
    if a.password.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "password must not be empty".into(),
        ));
    }
    let info = s
        .services
        .directory
        .add_account(&a.address, &a.password, a.quota)
        .await?;
    tracing::info!(account = %info.address, "account added");
    Ok(Json(AccountView {
        address: info.address,
        quota: info.quota,
    }))
}

async fn delete_account(State(s): State<AdminState>, Path(address): Path<String>) -> ApiResult<()> {
    s.services.directory.delete_account(&address).await?;
    tracing::info!(account = %address, "account deleted");
    Ok(Json(()))
}

/// `PUT /v1/accounts/{address}/password` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewPassword {
    /// The new password.
    pub password: String,
}

async fn set_password(
    State(s): State<AdminState>,
    Path(address): Path<String>,
    Json(p): Json<NewPassword>,
) -> ApiResult<()> {
    if p.password.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "password must not be empty".into(),
        ));
    }
    s.services
        .directory
        .set_password(&address, &p.password)
        .await?;
    tracing::info!(account = %address, "password changed");
    Ok(Json(()))
}

/// `POST /v1/aliases` body, and an alias as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct AliasView {
    /// The alias address.
    pub address: String,
    /// Where its mail goes.
    pub targets: Vec<String>,
}

/// `POST /v1/aliases` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewAlias {
    /// The alias address.
    pub address: String,
    /// One target to add.
    pub target: String,
}

async fn list_aliases(State(s): State<AdminState>) -> ApiResult<Vec<AliasView>> {
    let aliases = s.services.directory.list_aliases().await?;
    Ok(Json(
        aliases
            .into_iter()
            .map(|a| AliasView {
                address: a.address,
                targets: a.targets,
            })
            .collect(),
    ))
}

async fn add_alias(State(s): State<AdminState>, Json(a): Json<NewAlias>) -> ApiResult<()> {
    s.services
        .directory
        .add_alias(&a.address, &a.target)
        .await?;
    tracing::info!(alias = %a.address, target = %a.target, "alias added");
    Ok(Json(()))
}

async fn delete_alias(State(s): State<AdminState>, Path(address): Path<String>) -> ApiResult<()> {
    s.services.directory.delete_alias(&address).await?;
    Ok(Json(()))
}

/// A queued message as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueueView {
    /// Transaction id.
    pub id: String,
    /// Envelope sender.
    pub sender: String,
    /// Recipients still to deliver, with their state.
    pub recipients: Vec<QueuedRecipientView>,
    /// Size in bytes.
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
}

/// One queued recipient as listed.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueuedRecipientView {
    /// The address.
    pub address: String,
    /// `local` (another partition) or `remote`.
    pub kind: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt.
    pub next_attempt: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
}

impl From<tern_queue::QueueError> for ApiError {
    fn from(e: tern_queue::QueueError) -> Self {
        use tern_queue::QueueError;
        let status = match &e {
            QueueError::NotQueued(_) => StatusCode::NOT_FOUND,
            QueueError::NoRecipients => StatusCode::BAD_REQUEST,
            QueueError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueueError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

/// A queue id from the URL; anything that is not one cannot be queued.
fn queue_id(id: &str) -> Result<tern_core::DeliveryId, ApiError> {
    id.parse()
        .map_err(|_| ApiError(StatusCode::NOT_FOUND, format!("no queued message {id}")))
}

fn queue_view(q: tern_core::records::QueueRecord) -> QueueView {
    use tern_core::records::QueuedRecipient;
    QueueView {
        id: q.id.to_string(),
        sender: q.sender,
        size: q.size,
        created: q.created,
        recipients: q
            .recipients
            .into_iter()
            .map(|r| match r {
                QueuedRecipient::Local { address, .. } => QueuedRecipientView {
                    address,
                    kind: "local".into(),
                    attempts: 0,
                    next_attempt: None,
                    last_error: None,
                },
                QueuedRecipient::Remote {
                    address,
                    attempts,
                    next_attempt,
                    last_error,
                } => QueuedRecipientView {
                    address,
                    kind: "remote".into(),
                    attempts,
                    next_attempt: Some(next_attempt),
                    last_error,
                },
            })
            .collect(),
    }
}

async fn list_queue(State(s): State<AdminState>) -> ApiResult<Vec<QueueView>> {
    let queued = s.services.queue.list().await?;
    Ok(Json(queued.into_iter().map(queue_view).collect()))
}

async fn show_queued(State(s): State<AdminState>, Path(id): Path<String>) -> ApiResult<QueueView> {
    let id = queue_id(&id)?;
    match s.services.queue.get(id).await? {
        Some(q) => Ok(Json(queue_view(q))),
        None => Err(tern_queue::QueueError::NotQueued(id).into()),
    }
}

async fn retry_queued(State(s): State<AdminState>, Path(id): Path<String>) -> ApiResult<()> {
    let id = queue_id(&id)?;
    s.services.queue.retry(id).await?;
    tracing::info!(%id, "queued message retried by the operator");
    Ok(Json(()))
}

async fn delete_queued(State(s): State<AdminState>, Path(id): Path<String>) -> ApiResult<()> {
    let id = queue_id(&id)?;
    s.services.queue.delete(id).await?;
    tracing::info!(%id, "queued message deleted by the operator");
    Ok(Json(()))
}

/// `POST /v1/queue/flush` reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct FlushView {
    /// Messages whose remote recipients are now due.
    pub messages: usize,
}

async fn flush_queue(State(s): State<AdminState>) -> ApiResult<FlushView> {
    let messages = s.services.queue.flush().await?;
    tracing::info!(messages, "queue flushed by the operator");
    Ok(Json(FlushView { messages }))
}
