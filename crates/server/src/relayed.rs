//! Client sessions that other nodes relay here: an IMAP or POP3 client logged in on a node
//! that holds no replica of its account's partition, and that node relays the session to this
//! one over the node link (see `tern_mailbox::relay`). The session runs here as if the client
//! had logged in here; shutdown waits for it like any other session.

use futures::future::BoxFuture;
use std::sync::Arc;
use tern_core::NodeId;
use tern_core::net::{Connection, Stream};
use tern_directory::Directory;
use tern_imap::ImapContext;
use tern_mailbox::{RelayProtocol, RelayRefusal, RelayRequest, status_line};
use tern_pop3::Pop3Context;
use tern_raft::RelayAcceptor;
use tern_raft::link::RelayedStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves relayed sessions with this node's protocol contexts.
pub struct RelayedSessions {
    /// IMAP sessions.
    pub imap: Arc<ImapContext>,
    /// POP3 sessions.
    pub pop3: Arc<Pop3Context>,
    /// Finds the account the client logged in as.
    pub directory: Directory,
    /// Shutdown waits for relayed sessions too.
    pub tracker: TaskTracker,
    /// Tells sessions the server is shutting down.
    pub shutdown: CancellationToken,
}

impl RelayAcceptor for RelayedSessions {
    fn accept(
        &self,
        from: NodeId,
        request: Vec<u8>,
        stream: RelayedStream,
    ) -> BoxFuture<'static, ()> {
        let (imap, pop3) = (self.imap.clone(), self.pop3.clone());
        let (directory, shutdown) = (self.directory.clone(), self.shutdown.clone());
        let session = async move {
            let request = match RelayRequest::decode(&request) {
                Ok(request) => request,
                Err(e) => {
                    tracing::warn!(from, "unreadable relay request: {e}");
                    return;
                }
            };
            let local = match stream.get_ref().0.local_addr() {
                Ok(addr) => addr,
                Err(e) => {
                    tracing::debug!(from, "relay connection gone: {e}");
                    return;
                }
            };
            let mut conn = Connection::new(Stream::Tls(Box::new(stream)), request.client, local);
            let info = match directory.account(&request.address).await {
                Ok(Some(info)) => info,
                outcome => {
                    let why = match outcome {
                        Err(e) => e.to_string(),
                        _ => format!("no account {}", request.address),
                    };
                    tracing::info!(from, address = %request.address, "relayed session refused: {why}");
                    conn.write(status_line(Err(RelayRefusal::Unavailable(why))).as_bytes());
                    let _ = conn.shutdown().await;
                    return;
                }
            };
            match request.protocol {
                RelayProtocol::Imap => {
                    tern_imap::run_relayed_session(conn, imap, info, request.tag, shutdown).await
                }
                RelayProtocol::Pop3 => {
                    tern_pop3::run_relayed_session(conn, pop3, info, shutdown).await
                }
            }
        };
        Box::pin(self.tracker.track_future(session))
    }
}
