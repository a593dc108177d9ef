//! The client-facing listeners: bind every configured port, admit connections under the
//! per-IP and total caps, and hand each one to a new connection actor.
//!
//! A peer listed in `proxy_protocol_from` is a load balancer: its connections are admitted
//! under the total cap only, and the connection actor reads their PROXY header
//! ([`admit_proxied`]) before anything else, then takes the real client's per-IP slot. Every
//! other peer is a direct client and never sends a header.

use crate::connection::{ConnectionActor, ConnectionArgs};
use crate::limits::{ConnectionLimiter, ConnectionPermit, Family, Refusal};
use crate::proxy::TrustedProxies;
use crate::services::Services;
use anyhow::{Context, Result};
use ractor::Actor;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tern_core::config::ListenerConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// SMTP for inbound mail (MX).
    Smtp,
    /// Submission with STARTTLS.
    Submission,
    /// Submission over implicit TLS.
    Submissions,
    /// IMAP with STARTTLS.
    Imap,
    /// IMAP over implicit TLS.
    Imaps,
    /// POP3 with STLS.
    Pop3,
    /// POP3 over implicit TLS.
    Pop3s,
}

impl Protocol {
    /// The config key and log name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Submissions => "submissions",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
        }
    }

    /// Whose connection caps it counts under.
    pub fn family(self) -> Family {
        match self {
            Protocol::Smtp => Family::Smtp,
            Protocol::Submission | Protocol::Submissions => Family::Submission,
            Protocol::Imap | Protocol::Imaps => Family::Imap,
            Protocol::Pop3 | Protocol::Pop3s => Family::Pop3,
        }
    }

    /// Whether TLS starts before the first byte (RFC 8314).
    pub fn implicit_tls(self) -> bool {
        matches!(
            self,
            Protocol::Submissions | Protocol::Imaps | Protocol::Pop3s
        )
    }

    /// What to tell a client refused at the door, in its protocol. Implicit-TLS ports get
    /// nothing: the client is waiting for a handshake, not text.
    fn refusal(self) -> &'static [u8] {
        match self {
            Protocol::Smtp | Protocol::Submission => {
                b"421 4.7.0 Too many connections, try again later\r\n"
            }
            Protocol::Imap => b"* BYE [UNAVAILABLE] Too many connections\r\n",
            Protocol::Pop3 => b"-ERR [SYS/TEMP] Too many connections\r\n",
            Protocol::Submissions | Protocol::Imaps | Protocol::Pop3s => b"",
        }
    }
}

/// How long a trusted load balancer has to deliver its PROXY header. HAProxy sends it with the
/// connection's first segment, so this only bounds a broken or hostile peer.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// One bound listener.
pub struct Bound {
    /// What it speaks.
    pub protocol: Protocol,
    /// Where it listens.
    pub addr: SocketAddr,
    listener: TcpListener,
    /// Peers that must open with a PROXY header (shared by all listeners).
    proxies: Arc<TrustedProxies>,
}

/// Binds every non-empty listener address in `config`, failing if any cannot be bound or if
/// `proxy_protocol_from` has an entry that is not an IP address or network.
pub async fn bind_all(config: &ListenerConfig) -> Result<Vec<Bound>> {
    let proxies = TrustedProxies::parse(&config.proxy_protocol_from)
        .context("invalid listeners.proxy_protocol_from")?;
    if !proxies.is_empty() {
        tracing::info!(from = %proxies, "PROXY protocol required from these peers");
    }
    let proxies = Arc::new(proxies);
    let wanted = [
        (Protocol::Smtp, &config.smtp),
        (Protocol::Submission, &config.submission),
        (Protocol::Submissions, &config.submissions),
        (Protocol::Imap, &config.imap),
        (Protocol::Imaps, &config.imaps),
        (Protocol::Pop3, &config.pop3),
        (Protocol::Pop3s, &config.pop3s),
    ];
    let mut bound = Vec::new();
    for (protocol, addr) in wanted {
        if addr.is_empty() {
            continue;
        }
        let listener = TcpListener::bind(addr.as_str())
            .await
            .with_context(|| format!("binding the {} listener on {addr}", protocol.name()))?;
        let addr = listener.local_addr()?;
        bound.push(Bound {
            protocol,
            addr,
            listener,
            proxies: proxies.clone(),
        });
    }
    Ok(bound)
}

/// Accepts connections on `bound` until `shutdown`, spawning a connection actor for each.
/// Connection actors are tracked by `tracker` so shutdown can wait for them.
pub async fn serve(
    bound: Bound,
    services: Arc<Services>,
    limiter: ConnectionLimiter,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let Bound {
        protocol,
        addr: bound_addr,
        listener,
        proxies,
    } = bound;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(listener = protocol.name(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // A load balancer's connection belongs to a client we do not know yet: only the total
        // cap applies until the connection actor has read the PROXY header.
        let via_proxy = proxies.contains(peer.ip());
        let admitted = if via_proxy {
            limiter.admit_unattributed(protocol.family())
        } else {
            limiter.admit(protocol.family(), peer.ip())
        };
        let permit = match admitted {
            Ok(permit) => permit,
            Err(refusal) => {
                tracing::warn!(%peer, listener = protocol.name(), ?refusal, "connection refused");
                tracker.spawn(refuse(stream, protocol, refusal));
                continue;
            }
        };
        // The socket knows the exact local address (relevant for a wildcard bind); the
        // listener's address is the fallback.
        let local = stream.local_addr().unwrap_or(bound_addr);
        let args = ConnectionArgs {
            stream,
            peer,
            local,
            via_proxy,
            protocol,
            services: services.clone(),
            permit,
            shutdown: shutdown.clone(),
        };
        match Actor::spawn(None, ConnectionActor, args).await {
            Ok((_actor, handle)) => {
                tracker.spawn(async move {
                    let _ = handle.await;
                });
            }
            Err(e) => tracing::error!(error = %e, "could not start a connection actor"),
        }
    }
}

/// The second half of admission for a connection from a trusted load balancer at `proxy`,
/// run in the connection's own task: reads the PROXY header, then charges `permit` to the real
/// client under the per-IP cap. Returns the stream, positioned at the client's first byte, and
/// the real client's address (the proxy's own for a LOCAL health check). `None` means the
/// connection was closed: without a valid header it is not a mail client and gets no reply;
/// over the per-IP cap it gets the protocol's refusal, as at the door.
pub(crate) async fn admit_proxied(
    mut stream: TcpStream,
    proxy: SocketAddr,
    protocol: Protocol,
    permit: &mut ConnectionPermit,
) -> Option<(TcpStream, SocketAddr)> {
    let deadline = tokio::time::Instant::now() + PROXY_HEADER_TIMEOUT;
    let header = match crate::proxy::read_header(&mut stream, deadline).await {
        Ok(header) => header,
        Err(e) => {
            // Not a mail client: a reply could only confuse whatever it is.
            tracing::warn!(error = %e, "no valid PROXY header from a trusted proxy; closing");
            return None;
        }
    };
    let client = header.source.unwrap_or(proxy);
    tracing::Span::current().record("client", tracing::field::display(client));
    if let Err(refusal) = permit.attribute(client.ip()) {
        tracing::warn!(listener = protocol.name(), ?refusal, "connection refused");
        refuse(stream, protocol, refusal).await;
        return None;
    }
    Some((stream, client))
}

/// Says goodbye to a connection refused by the limiter.
async fn refuse(mut stream: TcpStream, protocol: Protocol, _why: Refusal) {
    let msg = protocol.refusal();
    if !msg.is_empty() {
        let write = stream.write_all(msg);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), write).await;
    }
    let _ = stream.shutdown().await;
}
