//! The server certificate: loaded from the configured PEM files, or a self-signed one generated
//! in the data dir on first start (so `tern serve --dev` works with no setup).

use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tern_core::config::TlsConfig;
use tokio_rustls::TlsAcceptor;

/// File names of the generated certificate inside the data dir.
const GENERATED_CERT: &str = "tls-cert.pem";
const GENERATED_KEY: &str = "tls-key.pem";

/// Builds the TLS acceptor shared by every listener.
pub fn acceptor(config: &TlsConfig, data_dir: &Path, hostname: &str) -> Result<TlsAcceptor> {
    let (cert_path, key_path) = match (&config.cert, &config.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => generated_pair(data_dir, hostname)?,
        _ => anyhow::bail!("[tls] needs both cert and key, or neither"),
    };
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// Returns the generated pair, creating it on first use.
fn generated_pair(data_dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf)> {
    let cert = data_dir.join(GENERATED_CERT);
    let key = data_dir.join(GENERATED_KEY);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let mut names = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    names.dedup();
    let generated = rcgen::generate_simple_self_signed(names)?;
    std::fs::write(&cert, generated.cert.pem())?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// Writes a secret readable only by the owner.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    tern_raft::link::tls::write_file(path, data, true)?;
    Ok(())
}
