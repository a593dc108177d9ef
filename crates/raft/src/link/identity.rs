//! Who is on the other end of a node link: the node id a certificate names, and whether the
//! cluster lets that node (with its data dir's incarnation) use the link.
//!
//! A node certificate names its node once, as the DNS name `node-<id>.tern-cluster` (made by
//! `tern cluster cert`). Both ends of a link check that the id the peer claims (its `Hello`, or
//! the server's `Welcome`) is the one its certificate names, then ask a [`Roster`] — the
//! node's replica of the meta group — whether that node may take part.

use rustls_pki_types::CertificateDer;
use tern_core::NodeId;
use x509_parser::extensions::GeneralName;

/// The DNS domain of the names node certificates carry.
pub const NODE_DOMAIN: &str = "tern-cluster";

/// The name a certificate of `node` carries besides its address.
pub fn node_name(node: NodeId) -> String {
    format!("node-{node}.{NODE_DOMAIN}")
}

/// Why a peer's certificate does not identify a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The peer presented no certificate (cannot happen once mTLS verified it).
    #[error("the peer presented no certificate")]
    NoCertificate,
    /// The certificate could not be parsed.
    #[error("unreadable certificate: {0}")]
    Unreadable(String),
    /// The certificate names no node, or more than one, or a wildcard in the node domain.
    #[error("the certificate does not name exactly one node ({0})")]
    NotOneNode(String),
    /// The certificate names another node than the one the peer claims to be.
    #[error("the certificate is node {certificate}'s, but the peer says it is node {claimed}")]
    Mismatch {
        /// The node the certificate names.
        certificate: NodeId,
        /// The node the peer claims to be.
        claimed: NodeId,
    },
}

/// The one node id `cert` names (`node-<id>.tern-cluster` among its DNS names). A certificate
/// naming two nodes, or any wildcard under the node domain, names none.
pub fn cert_node(cert: &CertificateDer<'_>) -> Result<NodeId, IdentityError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
    let mut nodes = Vec::new();
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        let GeneralName::DNSName(dns) = name else {
            continue;
        };
        let dns = dns.to_ascii_lowercase();
        let Some(label) = dns.strip_suffix(&format!(".{NODE_DOMAIN}")) else {
            continue;
        };
        match label
            .strip_prefix("node-")
            .and_then(|id| id.parse::<NodeId>().ok())
        {
            Some(id) if id > 0 && node_name(id) == dns => nodes.push(id),
            _ => return Err(IdentityError::NotOneNode(format!("it names {dns}"))),
        }
    }
    match nodes.as_slice() {
        [one] => Ok(*one),
        [] => Err(IdentityError::NotOneNode("it names none".into())),
        many => Err(IdentityError::NotOneNode(format!("it names {many:?}"))),
    }
}

/// Checks that the end-entity certificate in `chain` names `claimed`.
pub fn check_claim(
    chain: Option<&[CertificateDer<'_>]>,
    claimed: NodeId,
) -> Result<(), IdentityError> {
    let cert = chain
        .and_then(|c| c.first())
        .ok_or(IdentityError::NoCertificate)?;
    match cert_node(cert)? {
        id if id == claimed => Ok(()),
        certificate => Err(IdentityError::Mismatch {
            certificate,
            claimed,
        }),
    }
}

/// What a node may do on the link, by the cluster's record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A member with the recorded incarnation (or none recorded yet): every request.
    Member,
    /// Not a member (yet): only `Info` and `Join` for itself.
    Joining,
    /// Refused: a removed id, another incarnation than the recorded one, or this node's own id
    /// from another data dir. Says why.
    Refused(String),
}

/// The cluster's record of its nodes, as this node has it: who may use the link.
pub trait Roster: Send + Sync + 'static {
    /// The standing of `node`, whose data dir says `incarnation`.
    fn standing(&self, node: NodeId, incarnation: u64) -> Standing;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::ClusterCa;
    use rustls_pki_types::pem::PemObject;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
    }

    #[test]
    fn a_node_certificate_names_its_node() {
        let ca = ClusterCa::generate().unwrap();
        let cert = der(&ca.issue_valid_for(5, "127.0.0.1", 30).unwrap().cert);
        assert_eq!(cert_node(&cert), Ok(5));
        assert_eq!(check_claim(Some(std::slice::from_ref(&cert)), 5), Ok(()));
        assert_eq!(
            check_claim(Some(&[cert]), 1),
            Err(IdentityError::Mismatch {
                certificate: 5,
                claimed: 1
            })
        );
        assert_eq!(check_claim(None, 1), Err(IdentityError::NoCertificate));
        let by_name = der(&ca
            .issue_valid_for(12, "mail-3.example.net", 30)
            .unwrap()
            .cert);
        assert_eq!(cert_node(&by_name), Ok(12));
    }

    #[test]
    fn a_certificate_naming_no_node_or_two_names_none() {
        let ca = ClusterCa::generate().unwrap();
        // `issue` refuses such hosts, so build the bad ones directly.
        for (names, why) in [
            (vec!["127.0.0.1".to_string()], "none"),
            (vec![node_name(1), node_name(2)], "two"),
            (vec!["*.tern-cluster".to_string(), node_name(3)], "wildcard"),
            (vec!["node-07.tern-cluster".to_string()], "not canonical"),
        ] {
            let pem = ca.issue_names(&names, 30).unwrap().cert;
            assert!(
                matches!(cert_node(&der(&pem)), Err(IdentityError::NotOneNode(_))),
                "{why}: {names:?}"
            );
        }
    }
}
