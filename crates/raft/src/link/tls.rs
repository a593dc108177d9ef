//! The cluster's certificates: a CA made once per cluster (`tern cluster ca`), a certificate per
//! node signed by it (`tern cluster cert`), and the mTLS configurations built from them. Both
//! ends of a node link present a certificate and accept only peers the cluster CA signed; a
//! node certificate names its node once (`node-<id>.tern-cluster`, see [`super::identity`]) and
//! expires after `valid_days` (rotating one is issuing a new one and restarting the node).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tern_core::NodeId;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// File names inside a CA directory.
const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
/// The CA's common name (unique per cluster), kept so node certificates name their issuer.
const CA_NAME: &str = "ca.name";
/// How long a node certificate is valid by default (`tern cluster cert --valid-days`): the
/// longest lifetime public CAs were allowed for years, short enough that a stolen key expires.
pub const DEFAULT_VALID_DAYS: u32 = 825;
/// A certificate is valid from this long before it was made (clocks of nodes differ a little).
const CLOCK_SKEW: Duration = Duration::from_secs(3600);

/// Why certificates could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating or signing failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The CA directory already holds a CA.
    #[error("{0} already holds a cluster CA; refusing to overwrite it")]
    CaExists(PathBuf),
    /// The requested certificate would be unsafe or useless.
    #[error("{0}")]
    Refused(String),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A PEM certificate and its private key.
#[derive(Debug, Clone)]
pub struct PemPair {
    /// The certificate.
    pub cert: String,
    /// The private key (keep it secret).
    pub key: String,
}

/// A cluster CA.
pub struct ClusterCa {
    name: String,
    key: KeyPair,
    cert_pem: String,
}

impl ClusterCa {
    /// A new CA whose name carries a random suffix, so two clusters never share an issuer.
    pub fn generate() -> Result<ClusterCa, CertError> {
        let name = format!("Tern cluster CA {:016x}", rand::random::<u64>());
        let key = KeyPair::generate()?;
        let cert_pem = ca_params(&name).self_signed(&key)?.pem();
        Ok(ClusterCa {
            name,
            key,
            cert_pem,
        })
    }

    /// Writes `ca.pem`, `ca.key` (mode 0600) and `ca.name` into `dir`, refusing to replace a
    /// CA that is already there.
    pub fn save(&self, dir: &Path) -> Result<(), CertError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        if dir.join(CA_KEY).exists() {
            return Err(CertError::CaExists(dir.to_path_buf()));
        }
        write_file(&dir.join(CA_CERT), self.cert_pem.as_bytes(), false)?;
        write_file(&dir.join(CA_NAME), self.name.as_bytes(), false)?;
        write_file(&dir.join(CA_KEY), self.key.serialize_pem().as_bytes(), true)
    }

    /// Loads the CA saved in `dir`.
    pub fn load(dir: &Path) -> Result<ClusterCa, CertError> {
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(io_error(&path))
        };
        let key_pem = read(CA_KEY)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Pem {
            path: dir.join(CA_KEY),
            reason: e.to_string(),
        })?;
        Ok(ClusterCa {
            name: read(CA_NAME)?.trim().to_string(),
            key,
            cert_pem: read(CA_CERT)?,
        })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for node `node` reachable at `host` (an IP address or DNS name), valid for
    /// both ends of a node link for [`DEFAULT_VALID_DAYS`].
    pub fn issue(&self, node: u64, host: &str) -> Result<PemPair, CertError> {
        self.issue_valid_for(node, host, DEFAULT_VALID_DAYS)
    }

    /// A certificate for node `node` reachable at `host`, valid for `valid_days` from now.
    /// Refuses node 0 and a host in the node-name domain (a certificate must name one node).
    pub fn issue_valid_for(
        &self,
        node: u64,
        host: &str,
        valid_days: u32,
    ) -> Result<PemPair, CertError> {
        if node == 0 {
            return Err(CertError::Refused("node ids start at 1".into()));
        }
        let lower = host.to_ascii_lowercase();
        if lower == NODE_DOMAIN || lower.ends_with(&format!(".{NODE_DOMAIN}")) {
            return Err(CertError::Refused(format!(
                "the host {host:?} is in the {NODE_DOMAIN} domain, which names nodes: \
                 give the node's IP address or DNS name"
            )));
        }
        self.issue_names(&[host.to_string(), node_name(node)], valid_days)
    }

    /// A node-link certificate for exactly `names` (no checks: tests build bad ones with it).
    pub(crate) fn issue_names(
        &self,
        names: &[String],
        valid_days: u32,
    ) -> Result<PemPair, CertError> {
        if valid_days == 0 {
            return Err(CertError::Refused("--valid-days must be 1 or more".into()));
        }
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.last().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let now = rcgen::date_time_ymd(1970, 1, 1)
            + SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + Duration::from_secs(u64::from(valid_days) * 86_400);
        let key = KeyPair::generate()?;
        let issuer_params = ca_params(&self.name);
        let issuer = Issuer::from_params(&issuer_params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

use super::identity::NODE_DOMAIN;
pub use super::identity::node_name;

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
    params
}

/// Writes `data` to `path`; `secret` files are readable by the owner only.
pub fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), CertError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    if secret {
        // `mode` only applies to a new file; an old one may have been looser.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(path))?;
    }
    file.write_all(data).map_err(io_error(path))
}

/// Both halves of a node's mTLS: the acceptor for inbound links and the connector for outbound.
#[derive(Clone)]
pub struct LinkTls {
    /// Accepts peers presenting a certificate signed by the cluster CA.
    pub acceptor: TlsAcceptor,
    /// Dials peers, presenting this node's certificate and checking theirs.
    pub connector: TlsConnector,
    /// The node this node's own certificate names (`None`: it names none, or not one).
    pub node: Option<NodeId>,
}

impl LinkTls {
    /// Loads the CA certificate and this node's certificate and key from PEM files.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<LinkTls, CertError> {
        let read = |path: &Path| std::fs::read_to_string(path).map_err(io_error(path));
        let (ca_pem, cert_pem, key_pem) = (read(ca)?, read(cert)?, read(key)?);
        LinkTls::from_pem(&ca_pem, &cert_pem, &key_pem).map_err(|e| match e {
            CertError::Pem { reason, .. } => CertError::Pem {
                path: cert.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    /// Builds the configurations from PEM text.
    pub fn from_pem(ca: &str, cert: &str, key: &str) -> Result<LinkTls, CertError> {
        let pem_error = |what: &str, e: rustls_pki_types::pem::Error| CertError::Pem {
            path: PathBuf::from(what),
            reason: e.to_string(),
        };
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(ca.as_bytes()) {
            let der = der.map_err(|e| pem_error("CA certificate", e))?;
            roots
                .add(der)
                .map_err(|e| CertError::Tls(format!("CA certificate: {e}")))?;
        }
        let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error("node certificate", e))?;
        if chain.is_empty() {
            return Err(CertError::Tls("no node certificate in the PEM".into()));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| pem_error("node key", e))?;
        let node = chain
            .first()
            .and_then(|c| super::identity::cert_node(c).ok());
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = |e: rustls::Error| CertError::Tls(e.to_string());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| CertError::Tls(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls)?;
        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| CertError::Tls(e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls)?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(chain, key)
            .map_err(tls)?;
        Ok(LinkTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            node,
        })
    }
}
