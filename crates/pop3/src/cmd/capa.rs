//! CAPA (RFC 2449 §5): what this server supports, as the client may use it right now.

use crate::backend::Backend;
use crate::proto::Phase;
use crate::replies;
use crate::session::{Flow, Session};

/// Lists the capabilities. The login ones (USER, SASL, STLS) appear only in AUTHORIZATION,
/// and USER and SASL only where clear-text credentials are acceptable: a client that sees
/// them on an unprotected connection would send its password (RFC 2595 §4).
pub async fn capa<B: Backend>(s: &mut Session<'_, B>, phase: Phase) -> std::io::Result<Flow> {
    let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
    if phase == Phase::Authorization {
        if s.plaintext_auth_allowed() {
            lines.extend(["USER", "SASL PLAIN"]);
        }
        if s.stls_available() {
            lines.push("STLS");
        }
    }
    lines.push("IMPLEMENTATION Tern");
    s.send_multiline(&replies::CAPA, lines).await?;
    Ok(Flow::Continue)
}
