//! Admin routes for a domain's mail DNS: generating its DKIM key and listing the records it
//! should publish.

use super::api::{AdminState, ApiError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tern_core::address::normalize_domain;
use tern_core::records::DkimAlgorithm;
use tern_filter::{dns_records, keys};

/// The routes, merged under `/v1` (behind the token).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/domains/{name}/dkim", post(generate))
        .route("/domains/{name}/dns", get(dns))
}

/// `POST /v1/domains/{domain}/dkim` body; both fields optional.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NewDkimKey {
    /// Selector, default `tern`.
    pub selector: Option<String>,
    /// `rsa` (2048 bits, the default) or `ed25519`.
    pub algorithm: Option<String>,
}

/// A generated key: what to publish.
#[derive(Debug, Serialize, Deserialize)]
pub struct DkimKeyView {
    /// The domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: String,
    /// The TXT record, in zone-file form.
    pub record: String,
}

/// `GET /v1/domains/{domain}/dns`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DnsRecordsView {
    /// One zone-file line per record; comments start with `;`.
    pub records: Vec<String>,
}

/// The default selector of generated keys.
pub const DEFAULT_SELECTOR: &str = "tern";

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, message)
}

/// The normalised domain, if it is one of ours (404 otherwise).
async fn local_domain(state: &AdminState, name: &str) -> Result<String, ApiError> {
    let domain = normalize_domain(name).map_err(|e| bad_request(e.to_string()))?;
    if !state.services.directory.is_local_domain(&domain).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{domain} is not a local domain"),
        ));
    }
    Ok(domain)
}

/// Parses `rsa` / `ed25519`.
pub fn parse_algorithm(text: &str) -> Option<DkimAlgorithm> {
    match text.to_ascii_lowercase().as_str() {
        "rsa" | "rsa-sha256" => Some(DkimAlgorithm::Rsa),
        "ed25519" | "ed25519-sha256" => Some(DkimAlgorithm::Ed25519),
        _ => None,
    }
}

async fn generate(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Json(request): Json<NewDkimKey>,
) -> Result<Json<DkimKeyView>, ApiError> {
    let domain = local_domain(&state, &name).await?;
    let selector = request
        .selector
        .unwrap_or_else(|| DEFAULT_SELECTOR.to_string());
    if !keys::valid_selector(&selector) {
        return Err(bad_request(format!("not a valid selector: {selector:?}")));
    }
    let algorithm = match request.algorithm.as_deref() {
        None => DkimAlgorithm::Rsa,
        Some(text) => parse_algorithm(text)
            .ok_or_else(|| bad_request(format!("unknown algorithm {text:?}: rsa or ed25519")))?,
    };
    // RSA key generation takes a noticeable fraction of a second of CPU.
    let for_domain = domain.clone();
    let generated = tokio::task::spawn_blocking(move || keys::generate(&for_domain, algorithm))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state
        .services
        .directory
        .set_dkim_key(&domain, &selector, algorithm, generated.private_pkcs8)
        .await?;
    tracing::info!(%domain, %selector, algorithm = algorithm.key_type(), "DKIM key generated");
    Ok(Json(DkimKeyView {
        record: keys::txt_record(&domain, &selector, algorithm, &generated.public_b64),
        domain,
        selector,
        algorithm: algorithm.key_type().to_string(),
    }))
}

async fn dns(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<DnsRecordsView>, ApiError> {
    let domain = local_domain(&state, &name).await?;
    let key = state.services.directory.dkim_key(&domain).await?;
    let public = match &key {
        Some(key) => Some(
            keys::public_b64(key)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        ),
        None => None,
    };
    let dkim = key
        .as_ref()
        .zip(public.as_deref())
        .map(|(key, public_b64)| dns_records::DkimPublic {
            selector: &key.selector,
            algorithm: key.algorithm,
            public_b64,
        });
    let hostname = state.services.filter.hostname();
    Ok(Json(DnsRecordsView {
        records: dns_records::zone_lines(&domain, hostname, dkim),
    }))
}
