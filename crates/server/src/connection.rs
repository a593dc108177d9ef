//! The connection actor: one ractor actor per accepted TCP connection. It reads the PROXY
//! header of a connection from a trusted load balancer, finishes the TLS handshake for
//! implicit-TLS ports, runs the protocol session to its end, then stops. Sessions watch the
//! shutdown token, so stopping the server ends them with a proper goodbye.

use crate::limits::ConnectionPermit;
use crate::listeners::{self, Protocol};
use crate::services::Services;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::net::{Connection, Stream};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Numbers connections for the logs, so every line of one session can be found together.
static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Everything a connection actor needs to serve one client.
pub struct ConnectionArgs {
    /// The accepted socket.
    pub stream: TcpStream,
    /// The TCP peer: the client, or a trusted load balancer when `via_proxy` is set.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// Whether the peer is a trusted load balancer whose PROXY header names the real client.
    pub via_proxy: bool,
    /// Which protocol this listener speaks.
    pub protocol: Protocol,
    /// Shared services and protocol contexts.
    pub services: Arc<Services>,
    /// The admission slot, released when the actor stops.
    pub permit: ConnectionPermit,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

/// The actor type (stateless: the connection is the state while the session runs).
pub struct ConnectionActor;

/// Messages the connection actor accepts: only the kick-off of its own session.
pub enum ConnectionMsg {
    /// Run the session to its end.
    Serve,
}

#[ractor::async_trait]
impl Actor for ConnectionActor {
    type Msg = ConnectionMsg;
    type State = Option<ConnectionArgs>;
    type Arguments = ConnectionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConnectionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_message(ConnectionMsg::Serve)?;
        Ok(Some(args))
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        _serve: ConnectionMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(args) = state.take() {
            let session = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // `client` is the real client; `proxy` the load balancer it came through, if any.
            // Behind a proxy the client is known only once the PROXY header has been read.
            let span = tracing::info_span!(
                "conn",
                session,
                proto = args.protocol.name(),
                client = tracing::field::Empty,
                proxy = tracing::field::Empty,
            );
            let field = if args.via_proxy { "proxy" } else { "client" };
            span.record(field, tracing::field::display(args.peer));
            serve(args).instrument(span).await;
        }
        myself.stop(None);
        Ok(())
    }
}

/// Runs one session; errors are logged, never propagated (one client cannot hurt the node).
async fn serve(args: ConnectionArgs) {
    let ConnectionArgs {
        stream,
        peer,
        local,
        via_proxy,
        protocol,
        services,
        mut permit,
        shutdown,
    } = args;
    let _ = stream.set_nodelay(true);
    // The header comes before anything else, TLS included: the ClientHello follows it.
    let (stream, peer) = if via_proxy {
        match listeners::admit_proxied(stream, peer, protocol, &mut permit).await {
            Some(admitted) => admitted,
            None => return,
        }
    } else {
        (stream, peer)
    };
    // The admission slot is released when the session ends.
    let _permit = permit;
    let stream = if protocol.implicit_tls() {
        let handshake = services.tls.accept(stream);
        // `[limits] tls_handshake_timeout_secs` (every protocol context holds the same limits).
        let limit = Duration::from_secs(services.imap.limits.tls_handshake_timeout_secs);
        match tokio::time::timeout(limit, handshake).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        }
    } else {
        Stream::Plain(stream)
    };
    let conn = Connection::new(stream, peer, local);
    tracing::debug!("session start");
    match protocol {
        Protocol::Smtp => tern_smtp::run_session(conn, services.smtp_mx.clone(), shutdown).await,
        Protocol::Submission | Protocol::Submissions => {
            tern_smtp::run_session(conn, services.smtp_submission.clone(), shutdown).await
        }
        Protocol::Imap | Protocol::Imaps => {
            tern_imap::run_session(conn, services.imap.clone(), shutdown).await
        }
        Protocol::Pop3 | Protocol::Pop3s => {
            tern_pop3::run_session(conn, services.pop3.clone(), shutdown).await
        }
    }
    tracing::debug!("session end");
}
