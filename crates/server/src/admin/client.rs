//! A minimal HTTP/1.1 client for the admin API: one request per connection, JSON in and out,
//! or a body streamed to the caller ([`AdminClient::download`]).

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// Talks to one node's admin API.
pub struct AdminClient {
    authority: String,
    token: String,
}

impl AdminClient {
    /// A client for `url` (`http://host:port`), authenticating with `token`.
    pub fn new(url: &str, token: String) -> Result<AdminClient> {
        let authority = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("admin URL must start with http:// (got {url})"))?
            .trim_end_matches('/')
            .to_string();
        if authority.is_empty() || authority.contains('/') {
            bail!("admin URL must be http://host:port (got {url})");
        }
        Ok(AdminClient { authority, token })
    }

    /// Sends `method path` with an optional JSON body and decodes the JSON reply.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{}", error_text(status, &bytes));
        }
        serde_json::from_slice(&bytes).with_context(|| format!("unexpected reply from {path}"))
    }

    /// `GET path`, handing the body to `sink` piece by piece as it arrives; returns the
    /// response headers. A body cut short is an error.
    pub async fn download(
        &self,
        path: &str,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<hyper::HeaderMap> {
        let response = self.send(Method::GET, path, None).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body.collect().await?.to_bytes();
            bail!("{}", error_text(status, &bytes));
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.with_context(|| format!("{path}: the transfer broke off"))?;
            if let Some(data) = frame.data_ref() {
                sink(data)?;
            }
        }
        Ok(headers)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let tcp = TcpStream::connect(&self.authority).await.with_context(|| {
            format!(
                "cannot reach the admin API at {} (is `tern serve` running?)",
                self.authority
            )
        })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let payload = match &body {
            Some(v) => serde_json::to_vec(v)?,
            None => Vec::new(),
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))?;
        Ok(sender.send_request(request).await?)
    }
}

/// The server's error message, or the status if it sent none.
fn error_text(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => format!("admin API answered {status}"),
    }
}
