//! The answering side of node links: accept mTLS connections from peers whose certificate the
//! cluster CA signed, then handle each request concurrently and send the replies back on the
//! same connection.

use super::frame;
use super::rpc::{Answer, Hello, Request, Tagged};
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
            let handshake = async {
                let stream = tls.acceptor.accept(tcp).await?;
                let (mut reader, writer) = tokio::io::split(stream);
                let hello: Option<Hello> = frame::read(&mut reader)
                    .await
                    .map_err(std::io::Error::other)?;
                let hello = hello.ok_or_else(|| std::io::Error::other("closed before hello"))?;
                Ok::<_, std::io::Error>((reader, writer, hello))
            };
            let (reader, writer, hello) =
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
            tracing::debug!(%peer, node = hello.node, "node link accepted");
            if let Some(request) = hello.relay {
                let stream = reader.unsplit(writer);
                // A relayed session ends by itself (its own deadlines and shutdown).
                handler.relay(hello.node, request, stream).await;
                return;
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = connection(reader, writer, hello.node, handler) => {}
            }
        });
    }
}

async fn connection<R, W, H>(mut reader: R, mut writer: W, from: NodeId, handler: Arc<H>)
where
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
