//! STLS (RFC 2595 §4): upgrade the connection to TLS.

use crate::backend::Backend;
use crate::error::Pop3Error;
use crate::replies;
use crate::session::{Authorization, Flow, Session};

/// Starts TLS. Anything the client pipelined after STLS is discarded by the connection, and
/// a USER given in clear text is forgotten, so nothing said before the handshake carries over.
pub async fn stls<B: Backend>(
    s: &mut Session<'_, B>,
    auth: &mut Authorization,
) -> Result<Flow, Pop3Error> {
    if s.conn.is_tls() {
        s.send(&replies::STLS_ALREADY_TLS);
        return Ok(Flow::Continue);
    }
    let Some(acceptor) = s.cfg.tls else {
        s.send(&replies::STLS_UNAVAILABLE);
        return Ok(Flow::Continue);
    };
    s.send(&replies::STLS_BEGIN);
    // A client that never finishes the handshake must not hold the connection.
    let limit = std::time::Duration::from_secs(s.cfg.limits.tls_handshake_timeout_secs);
    s.conn
        .start_tls(acceptor, limit)
        .await
        .map_err(Pop3Error::Tls)?;
    auth.user = None;
    Ok(Flow::Continue)
}
