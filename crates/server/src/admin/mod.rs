//! The admin HTTP API (served by `tern serve`) and its client (used by the `tern` CLI).
//!
//! - [`api`]: axum routes for health, metrics, domains, accounts, aliases and the queue.
//! - [`backup`]: the group images `tern backup create` downloads.
//! - [`cluster`]: cluster init, join, remove, status and digests.
//! - [`dkim`]: a domain's DKIM key and the DNS records it publishes.
//! - [`client`]: a minimal HTTP/1.1 client for the CLI.
//! - [`token`]: the bearer token kept in the data dir.

pub mod api;
pub mod backup;
pub mod client;
pub mod cluster;
pub mod dkim;
pub mod token;
