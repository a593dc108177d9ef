//! The `tern` binary's library: start a node with [`run`], and the CLI that administers one.
//!
//! - [`services`]: Raft, directory, mailboxes, queue and the protocol contexts.
//! - [`listeners`]: bind the client ports and spawn a connection actor per connection.
//! - [`connection`]: the connection actor.
//! - [`proxy`]: the PROXY protocol header a load balancer sends ahead of a client connection.
//! - [`limits`]: per-IP and total connection caps.
//! - [`tls`]: the server certificate (configured or self-signed).
//! - [`admin`]: the admin HTTP API and its client.
//! - [`cli`]: the command line; [`cluster_cli`]: `tern cluster ...`; [`backup_cli`]:
//!   `tern backup ...`, with [`progress`] for its display.
//!
//! A new admin operation is a route in [`admin`] (`api`, `cluster` or `dkim`), a call in the
//! CLI ([`cli`]) through [`admin::client`], and the service method it calls in its crate; a new
//! listener or protocol is wired in [`services`] and [`listeners`].

pub mod admin;
pub mod backup_cli;
pub mod cli;
pub mod cluster_cli;
pub mod cluster_status;
pub mod connection;
pub mod files;
pub mod limits;
pub mod listeners;
pub mod progress;
pub mod proxy;
pub mod relayed;
pub mod services;
pub mod tls;

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for sessions to say goodbye before closing storage anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a node until `shutdown` is cancelled, then stops it gracefully: listeners close,
/// sessions get their protocol's goodbye, actors stop, Raft stops, RocksDB closes.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let data_dir = config.server.data_dir.clone();
    files::private_dir(&data_dir)
        .with_context(|| format!("preparing the data dir {}", data_dir.display()))?;
    let tls = tls::acceptor(&config.tls, &data_dir, &config.server.hostname)?;
    let token = admin::token::load_or_create(&data_dir)?;
    files::tighten_secrets(&data_dir)?;

    // Bind before starting storage, so a port conflict fails fast and touches nothing.
    let bound = listeners::bind_all(&config.listeners).await?;
    let admin_listener = if config.listeners.admin.is_empty() {
        None
    } else {
        let l = tokio::net::TcpListener::bind(&config.listeners.admin)
            .await
            .with_context(|| format!("binding the admin API on {}", config.listeners.admin))?;
        Some(l)
    };

    let services = Arc::new(services::Services::start(&config, tls).await?);
    let tracker = TaskTracker::new();
    services
        .raft
        .set_relay_acceptor(Arc::new(relayed::RelayedSessions {
            imap: services.imap.clone(),
            pop3: services.pop3.clone(),
            directory: services.directory.clone(),
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        }));
    for b in bound {
        tracing::info!(listener = b.protocol.name(), addr = %b.addr, "listening");
        tracker.spawn(listeners::serve(
            b,
            services.clone(),
            services.limiter.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(listener) = admin_listener {
        tracing::info!(listener = "admin", addr = %listener.local_addr()?, "listening");
        let app = admin::api::router(admin::api::AdminState {
            services: services.clone(),
            token: token.into(),
        });
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "admin API failed");
            }
        });
    }
    tracing::info!(data = %data_dir.display(), "tern is ready");

    shutdown.cancelled().await;
    tracing::info!("shutting down");
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("sessions still open after the drain timeout; closing anyway");
    }
    services.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
