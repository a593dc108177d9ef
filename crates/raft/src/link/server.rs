//! The answering side of node links: accept mTLS connections from peers whose certificate the
//! cluster CA signed, check who they are (the certificate names the hello's node id; the
//! handler's roster says whether that node, with that data-dir incarnation, may take part),
//! welcome or refuse them, then handle each request concurrently and send the replies back on
//! the same connection. A node that is not a member yet may only ask `Info` and `Join` for
//! itself; its standing is looked at again for every request, so a node removed while its
//! connection is open loses it at its next request.

use super::frame;
use super::identity::{Standing, check_claim};
use super::rpc::{Answer, Hello, Request, Tagged, Welcome};
use super::tls::LinkTls;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tern_core::NodeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a peer has to finish the TLS handshake and say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The answering side of a connection that relays a client session.
pub type RelayedStream = tokio_rustls::server::TlsStream<TcpStream>;

/// What answers requests.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request from node `from`.
    fn handle(&self, from: NodeId, request: Request) -> impl Future<Output = Answer> + Send;

    /// Serves a client session that node `from` relays here (`request` as it sent it),
    /// until the session ends.
    fn relay(
        &self,
        from: NodeId,
        request: Vec<u8>,
        stream: RelayedStream,
    ) -> impl Future<Output = ()> + Send;

    /// Whether `node`, whose data dir says `incarnation`, may use the link (by default every
    /// node the cluster CA signed is a member).
    fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        let _ = (node, incarnation);
        Standing::Member
    }

    /// This node's data-dir incarnation, told to callers in the welcome.
    fn incarnation(&self) -> u64 {
        0
    }
}

/// Whether a caller of standing `standing` (node `node`, `incarnation`) may make `request`:
/// members anything, a joining node only `Info` and `Join` for itself. Says why not.
pub(crate) fn allowed(
    standing: &Standing,
    node: NodeId,
    incarnation: u64,
    request: &Request,
) -> Result<(), String> {
    match (standing, request) {
        (Standing::Member, _) | (Standing::Joining, Request::Info) => Ok(()),
        (Standing::Joining, Request::Join(id, _, inc)) if *id == node && *inc == incarnation => {
            Ok(())
        }
        (Standing::Joining, _) => Err(format!(
            "node {node} is not a member of the cluster: it may only ask to join as itself"
        )),
        (Standing::Refused(why), _) => Err(why.clone()),
    }
}

/// Serves node links on `listener` until `stop` is cancelled.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: LinkTls,
    handler: Arc<H>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("node link accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (tls, handler, stop) = (tls.clone(), handler.clone(), stop.clone());
        tokio::spawn(async move {
            let me = tls.node.unwrap_or_default();
            let handshake = async {
                let mut stream = tls.acceptor.accept(tcp).await?;
                let hello: Option<Hello> = frame::read(&mut stream)
                    .await
                    .map_err(std::io::Error::other)?;
                let hello = hello.ok_or_else(|| std::io::Error::other("closed before hello"))?;
                let verdict = match check_claim(stream.get_ref().1.peer_certificates(), hello.node)
                {
                    Err(e) => Err(e.to_string()),
                    Ok(()) => match handler.standing(hello.node, hello.incarnation) {
                        Standing::Refused(why) => Err(why),
                        Standing::Joining if hello.relay.is_some() => Err(format!(
                            "node {} is not a member of the cluster",
                            hello.node
                        )),
                        standing => Ok(standing),
                    },
                };
                let welcome = match &verdict {
                    Ok(_) => Welcome::Accepted {
                        node: me,
                        incarnation: handler.incarnation(),
                    },
                    Err(why) => Welcome::Refused(why.clone()),
                };
                let encoded = frame::encode(&welcome).map_err(std::io::Error::other)?;
                frame::write(&mut stream, &encoded)
                    .await
                    .map_err(std::io::Error::other)?;
                let standing = verdict.map_err(|why| {
                    std::io::Error::other(format!("node {} refused: {why}", hello.node))
                })?;
                Ok::<_, std::io::Error>((stream, hello, standing))
            };
            let (stream, hello, standing) =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(parts)) => parts,
                    Ok(Err(e)) => {
                        tracing::warn!(%peer, "node link refused: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%peer, "node link refused: handshake timed out");
                        return;
                    }
                };
            tracing::debug!(%peer, node = hello.node, ?standing, "node link accepted");
            if let Some(request) = hello.relay {
                // A relayed session ends by itself (its own deadlines and shutdown).
                handler.relay(hello.node, request, stream).await;
                return;
            }
            let (reader, writer) = tokio::io::split(stream);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection(reader, writer, (hello.node, hello.incarnation), handler) => {}
            }
        });
    }
}

async fn connection<R, W, H>(
    mut reader: R,
    mut writer: W,
    (from, incarnation): (NodeId, u64),
    handler: Arc<H>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let (replies, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_task = tokio::spawn(async move {
        while let Some(f) = outbox.recv().await {
            if frame::write(&mut writer, &f).await.is_err() {
                break;
            }
        }
    });
    loop {
        let request = match frame::read::<_, Tagged<Request>>(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(node = from, "node link closed: {e}");
                break;
            }
        };
        let standing = handler.standing(from, incarnation);
        if let Err(why) = allowed(&standing, from, incarnation, &request.body) {
            tracing::debug!(node = from, "node link request refused: {why}");
            if let Ok(f) = frame::encode(&Tagged {
                id: request.id,
                body: Answer::Error(why),
            }) {
                let _ = replies.send(f);
            }
            if matches!(standing, Standing::Refused(_)) {
                // Removed or replaced while connected: the link ends once the refusal is out.
                drop(replies);
                let mut writer_task = writer_task;
                if tokio::time::timeout(HANDSHAKE_TIMEOUT, &mut writer_task)
                    .await
                    .is_err()
                {
                    writer_task.abort();
                }
                return;
            }
            continue;
        }
        let (handler, replies) = (handler.clone(), replies.clone());
        tokio::spawn(async move {
            let body = handler.handle(from, request.body).await;
            let encoded = frame::encode(&Tagged {
                id: request.id,
                body,
            })
            .or_else(|e| {
                frame::encode(&Tagged {
                    id: request.id,
                    body: Answer::Error(e.to_string()),
                })
            });
            if let Ok(f) = encoded {
                let _ = replies.send(f);
            }
        });
    }
    writer_task.abort();
}
