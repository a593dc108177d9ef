//! The connection a protocol session reads and writes: a TCP stream, plain or TLS, with a read
//! buffer for line-oriented protocols and a write buffer flushed before every read.
//!
//! STARTTLS/STLS call [`Connection::start_tls`], which discards any plaintext the client
//! pipelined after the command (the CVE-2011-0411 class of command injection).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A TCP stream, plain or wrapped in TLS: server-side by default, `Stream<client::TlsStream>`
/// for the outbound SMTP client.
pub enum Stream<T = TlsStream<TcpStream>> {
    /// Before STARTTLS, or on a plaintext-only listener.
    Plain(TcpStream),
    /// After STARTTLS or on an implicit-TLS listener.
    Tls(Box<T>),
    /// A scripted peer in memory, for tests and fuzz harnesses of the readers (see [`Replay`]).
    Replay(Replay),
}

/// A peer in memory: each read hands out (at most) the next scripted piece, then the stream
/// ends; writes are accepted and dropped. It lets a test choose where the bytes of a line fall
/// between reads, which a TCP socket does not.
#[derive(Debug, Default)]
pub struct Replay {
    pieces: std::collections::VecDeque<Vec<u8>>,
}

impl Replay {
    /// A peer that sends `pieces`, one per read, then closes.
    pub fn new(pieces: impl IntoIterator<Item = Vec<u8>>) -> Replay {
        Replay {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
        }
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(mut piece) = this.pieces.pop_front() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                this.pieces.push_front(piece.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Replay(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stream<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
            Stream::Replay(s) => Pin::new(s).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Replay(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Replay(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Why a line could not be read.
#[derive(Debug, Error)]
pub enum ReadError {
    /// The line exceeded the limit; the rest of it was discarded and the connection is usable.
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    /// The line ended in a bare LF or held a bare CR. Only CRLF ends a line (RFC 5321 §2.3.8,
    /// RFC 9051 §2.2, RFC 1939 §3): the peer must not be read further, since another server
    /// might split its bytes into other lines (SMTP smuggling), so sessions answer and close.
    #[error("bare LF or CR in a line")]
    BareLineEnding,
    /// The socket failed or the TLS layer rejected the peer.
    #[error(transparent)]
    Io(#[from] io::Error),
}

const READ_CHUNK: usize = 16 * 1024;
/// What per-client limits (connection caps, the login throttle) count `ip` as: an IPv4 address
/// itself (also when written IPv4-mapped), an IPv6 address its /64 network (a host is given a
/// whole /64 and can pick any address in it, so counting single addresses would limit nothing).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
}

/// Pipelined bytes read while [`Connection::unless_hung_up`] waits, at most.
const PIPELINE_WHILE_WAITING: usize = 64 * 1024;
/// Bytes handed to one socket write, and the output buffer capacity kept between responses.
const WRITE_CHUNK: usize = 64 * 1024;

/// Runs one socket operation, failing with `TimedOut` if it makes no progress within `limit`.
async fn within<T>(
    limit: Option<Duration>,
    op: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => op.await,
        Some(limit) => tokio::time::timeout(limit, op)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client went silent"))?,
    }
}

/// The one plaintext-login policy of SMTP, IMAP and POP3: a password travels only over TLS,
/// except from a loopback peer when `allow_on_loopback` is set (`--dev`). An IPv4-mapped IPv6
/// peer (`::ffff:127.0.0.1`, as a dual-stack listener reports it) counts as the IPv4 address.
pub fn plaintext_auth_allowed(tls: bool, peer: IpAddr, allow_on_loopback: bool) -> bool {
    tls || (allow_on_loopback && peer.to_canonical().is_loopback())
}

/// A client connection with buffered reads and writes.
pub struct Connection {
    stream: Option<Stream>,
    inbuf: Vec<u8>,
    /// Start of unread data in `inbuf`.
    pos: usize,
    outbuf: Vec<u8>,
    /// The client's address (the real one, after a PROXY header if one was accepted).
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// How much of `outbuf` has been sent (a flush cancelled midway resumes here).
    sent: usize,
    /// The longest one socket read may wait (`None`: for ever); see [`Connection::set_read_timeout`].
    read_timeout: Option<Duration>,
    /// The first bytes of the last line refused as too long (see [`Connection::overlong_head`]).
    overlong_head: Vec<u8>,
    /// COMPRESS=DEFLATE, once started (see [`Connection::start_deflate`]).
    deflate: Option<Box<crate::deflate::Deflate>>,
    /// Compressed output not fully sent yet (with `deflate`; `sent` counts into it).
    wire: Vec<u8>,
}

/// How much of an overlong line [`Connection::overlong_head`] keeps.
const OVERLONG_HEAD: usize = 64;

impl Connection {
    /// Wraps an accepted stream.
    pub fn new(stream: Stream, peer: SocketAddr, local: SocketAddr) -> Connection {
        Connection {
            stream: Some(stream),
            inbuf: Vec::new(),
            pos: 0,
            outbuf: Vec::new(),
            sent: 0,
            peer,
            local,
            read_timeout: None,
            overlong_head: Vec::new(),
            deflate: None,
            wire: Vec::new(),
        }
    }

    /// Compresses both directions from now on (RFC 4978); call it once the response that
    /// accepts COMPRESS has been flushed. Bytes already received and not read are taken as
    /// compressed: the client starts compressing right after that response.
    pub fn start_deflate(&mut self) {
        let mut deflate = Box::new(crate::deflate::Deflate::new());
        deflate.receive(&self.inbuf[self.pos..]);
        self.inbuf.truncate(self.pos);
        self.deflate = Some(deflate);
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_deflating(&self) -> bool {
        self.deflate.is_some()
    }

    /// The first bytes (at most 64) of the last line [`Connection::read_line`] refused as too
    /// long: enough for a protocol to find the command's tag and answer it.
    pub fn overlong_head(&self) -> &[u8] {
        &self.overlong_head
    }

    /// Bounds every read from the peer from now on: one that waits longer fails with
    /// `io::ErrorKind::TimedOut`, so a client that stops sending mid-command, mid-DATA or
    /// mid-literal cannot hold its connection for ever. Writes get the same bound on their
    /// progress: a client that stops reading is as gone as one that stops sending.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.read_timeout = timeout;
    }

    /// The current read bound.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    /// Whether the transport is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// Whether a password may be sent in the clear on this connection: see
    /// [`plaintext_auth_allowed`].
    pub fn plaintext_auth_allowed(&self, allow_on_loopback: bool) -> bool {
        plaintext_auth_allowed(self.is_tls(), self.peer.ip(), allow_on_loopback)
    }

    /// Whether the client has sent bytes we have not consumed yet (pipelined input).
    pub fn has_buffered_input(&self) -> bool {
        self.pos < self.inbuf.len()
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "TLS handshake failed"))
    }

    /// Queues `data` for sending; it goes out at the next [`flush`](Self::flush) or read.
    pub fn write(&mut self, data: &[u8]) {
        self.outbuf.extend_from_slice(data);
    }

    /// Sends everything queued. Each socket write must make progress within the read timeout
    /// (if one is set), else `io::ErrorKind::TimedOut`. Cancel-safe: a flush dropped midway
    /// (IDLE's select) resumes where it stopped, sending no byte twice.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.deflate.is_some() {
            return self.flush_deflated().await;
        }
        if self.outbuf.is_empty() {
            return Ok(());
        }
        let Connection {
            stream,
            outbuf,
            sent,
            read_timeout,
            ..
        } = self;
        let s = stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
        while *sent < outbuf.len() {
            let end = outbuf.len().min(*sent + WRITE_CHUNK);
            let n = within(*read_timeout, s.write(&outbuf[*sent..end])).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            *sent += n;
        }
        outbuf.clear();
        *sent = 0;
        // One large response must not pin its buffer for the rest of the session.
        outbuf.shrink_to(WRITE_CHUNK);
        within(*read_timeout, s.flush()).await
    }

    /// [`Connection::flush`] under COMPRESS=DEFLATE: what is queued is compressed once into
    /// `wire` (so a cancelled flush resumes without compressing twice), then sent.
    async fn flush_deflated(&mut self) -> io::Result<()> {
        loop {
            if self.sent >= self.wire.len() {
                self.wire.clear();
                self.sent = 0;
                if self.outbuf.is_empty() {
                    break;
                }
                if let Some(d) = self.deflate.as_mut() {
                    d.deflate(&self.outbuf, &mut self.wire)?;
                }
                self.outbuf.clear();
                self.outbuf.shrink_to(WRITE_CHUNK);
            }
            let s = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
            let end = self.wire.len().min(self.sent + WRITE_CHUNK);
            let n = within(self.read_timeout, s.write(&self.wire[self.sent..end])).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent += n;
        }
        self.wire.shrink_to(WRITE_CHUNK);
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
        within(self.read_timeout, s.flush()).await
    }

    /// Reads more bytes into the buffer; `Ok(false)` on end of stream. Cancel-safe: if the
    /// future is dropped (IDLE's select), no byte is lost and the buffer stays consistent.
    async fn fill(&mut self) -> io::Result<bool> {
        self.flush().await?;
        if self.pos > 0 && self.pos == self.inbuf.len() {
            self.inbuf.clear();
            self.pos = 0;
        } else if self.pos > READ_CHUNK {
            self.inbuf.drain(..self.pos);
            self.pos = 0;
        }
        loop {
            // Under COMPRESS, inflate what is waiting (a bounded step) before reading more.
            if let Some(d) = self.deflate.as_mut()
                && d.has_pending()
                && d.inflate(&mut self.inbuf)? > 0
            {
                return Ok(true);
            }
            let mut chunk = [0u8; READ_CHUNK];
            let s = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
            let n = within(self.read_timeout, s.read(&mut chunk)).await?;
            match self.deflate.as_mut() {
                Some(d) if n > 0 => d.receive(&chunk[..n]),
                _ => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    return Ok(n > 0);
                }
            }
        }
    }

    /// Runs `work` unless the peer hangs up (or goes silent past the read timeout) first, in
    /// which case `work` is dropped and `None` returned: a login whose client has gone is not
    /// worth a password hash. Bytes the peer pipelines meanwhile are kept for the next read
    /// (up to a bound, after which they are left in the socket).
    pub async fn unless_hung_up<F: std::future::Future>(&mut self, work: F) -> Option<F::Output> {
        let watch = async {
            loop {
                if self.inbuf.len() - self.pos >= PIPELINE_WHILE_WAITING {
                    std::future::pending::<()>().await;
                }
                match self.fill().await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => return,
                }
            }
        };
        tokio::select! {
            out = work => Some(out),
            () = watch => None,
        }
    }

    /// Reads one line, returned without its CRLF.
    ///
    /// `Ok(None)` means the client closed the connection. A line longer than `max` bytes is
    /// consumed to its end and reported as [`ReadError::TooLong`]; one that ends in a bare LF
    /// or holds a bare CR as [`ReadError::BareLineEnding`].
    pub async fn read_line(&mut self, max: usize) -> Result<Option<Vec<u8>>, ReadError> {
        let mut discarding = false;
        let mut scanned = 0;
        loop {
            let avail = &self.inbuf[self.pos..];
            if let Some(i) = avail[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let mut line = avail[..end].to_vec();
                self.pos += end + 1;
                if discarding || line.len() > max + 1 {
                    if !discarding {
                        line.truncate(OVERLONG_HEAD);
                        self.overlong_head = line;
                    }
                    return Err(ReadError::TooLong(max));
                }
                if line.pop_if(|b| *b == b'\r').is_none() || line.contains(&b'\r') {
                    return Err(ReadError::BareLineEnding);
                }
                if line.len() > max {
                    line.truncate(OVERLONG_HEAD);
                    self.overlong_head = line;
                    return Err(ReadError::TooLong(max));
                }
                return Ok(Some(line));
            }
            scanned = avail.len();
            if scanned > max + 1 {
                // Drop what we have of an overlong line and keep looking for its end.
                if !discarding {
                    let head = avail.len().min(OVERLONG_HEAD);
                    self.overlong_head = avail[..head].to_vec();
                }
                discarding = true;
                self.pos = self.inbuf.len();
                scanned = 0;
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// The bytes read from the peer and not consumed yet (see [`Connection::consume`]).
    pub fn buffered(&self) -> &[u8] {
        &self.inbuf[self.pos..]
    }

    /// Marks the first `n` bytes of [`Connection::buffered`] as consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.inbuf.len());
    }

    /// Reads more from the peer into the buffer (after writing out pending replies);
    /// `Ok(false)` at end of stream.
    pub async fn read_more(&mut self) -> io::Result<bool> {
        self.fill().await
    }

    /// Reads exactly `n` bytes (an IMAP literal, a BDAT chunk).
    pub async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(n.min(1 << 20));
        while out.len() < n {
            if self.pos == self.inbuf.len() && !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = (n - out.len()).min(self.inbuf.len() - self.pos);
            out.extend_from_slice(&self.inbuf[self.pos..self.pos + take]);
            self.pos += take;
        }
        Ok(out)
    }

    /// Upgrades to TLS (STARTTLS/STLS), failing with `io::ErrorKind::TimedOut` if the
    /// handshake takes longer than `limit`. Unread plaintext is discarded first.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor, limit: Duration) -> io::Result<()> {
        self.flush().await?;
        self.inbuf.clear();
        self.pos = 0;
        match self.stream.take() {
            Some(Stream::Plain(tcp)) => {
                let tls = tokio::time::timeout(limit, acceptor.accept(tcp))
                    .await
                    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
                self.stream = Some(Stream::Tls(Box::new(tls)));
                Ok(())
            }
            Some(other) => {
                self.stream = Some(other);
                Err(io::Error::other("already using TLS"))
            }
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Hands the session over to `upstream` (a relay to the node that serves it): sends what
    /// is queued, passes on what the client already sent and we have not read, then copies
    /// bytes both ways until either side closes or `stop` fires.
    pub async fn relay<U>(
        mut self,
        mut upstream: U,
        stop: impl std::future::Future<Output = ()>,
    ) -> io::Result<()>
    where
        U: AsyncRead + AsyncWrite + Unpin,
    {
        self.flush().await?;
        upstream.write_all(&self.inbuf[self.pos..]).await?;
        upstream.flush().await?;
        let mut client = self
            .stream
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
        tokio::select! {
            _ = stop => {}
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                copied?;
            }
        }
        let _ = client.shutdown().await;
        Ok(())
    }

    /// Flushes and closes the write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.flush().await?;
        self.stream()?.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        (Connection::new(Stream::Plain(server), peer, addr), client)
    }

    /// Paused time: the clock jumps whenever every task waits, so five minutes take no time.
    #[tokio::test(start_paused = true)]
    async fn a_silent_client_times_out_and_a_trickling_one_does_not() {
        let limit = Duration::from_secs(300);
        let (mut conn, mut client) = pair().await;
        conn.set_read_timeout(Some(limit));
        let writer = tokio::spawn(async move {
            // One byte every 200 s: each read waits less than the limit.
            for byte in b"NOOP\r\n" {
                tokio::time::sleep(Duration::from_secs(200)).await;
                client.write_all(&[*byte]).await.unwrap();
            }
            client // then silence, with the connection open
        });
        assert_eq!(conn.read_line(20).await.unwrap(), Some(b"NOOP".to_vec()));
        let _client = writer.await.unwrap();
        let started = tokio::time::Instant::now();
        match conn.read_line(20).await {
            Err(ReadError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= limit);
    }

    #[test]
    fn plaintext_login_needs_tls_or_dev_loopback() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for peer in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert!(plaintext_auth_allowed(false, ip(peer), true), "{peer}");
            assert!(!plaintext_auth_allowed(false, ip(peer), false), "{peer}");
        }
        for peer in ["192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1"] {
            assert!(!plaintext_auth_allowed(false, ip(peer), true), "{peer}");
            assert!(plaintext_auth_allowed(true, ip(peer), false), "{peer}");
        }
    }

    #[tokio::test]
    async fn reads_lines_and_recovers_from_overlong_ones() {
        let (mut conn, mut client) = pair().await;
        let mut long = b"tag1 ".to_vec();
        long.resize(100, b'x');
        client.write_all(b"HELO a\r\n").await.unwrap();
        client.write_all(&long).await.unwrap();
        client.write_all(b"\r\nNOOP\r\n").await.unwrap();
        drop(client);
        assert_eq!(conn.read_line(20).await.unwrap(), Some(b"HELO a".to_vec()));
        assert!(matches!(
            conn.read_line(20).await,
            Err(ReadError::TooLong(20))
        ));
        // Its first bytes are kept, so the protocol can answer the command's tag.
        assert_eq!(conn.overlong_head(), &long[..64]);
        assert_eq!(conn.read_line(20).await.unwrap(), Some(b"NOOP".to_vec()));
        assert_eq!(conn.read_line(20).await.unwrap(), None);
    }

    #[tokio::test]
    async fn only_crlf_ends_a_line() {
        for input in [
            &b"NOOP\n"[..],
            b"NOOP\rQUIT\r\n",
            b"\rNOOP\r\n",
            b"NOOP\r\r\n",
            b"\n",
            b"NOOP\n\r\n",
        ] {
            let (mut conn, mut client) = pair().await;
            client.write_all(input).await.unwrap();
            drop(client);
            let got = conn.read_line(20).await;
            assert!(
                matches!(got, Err(ReadError::BareLineEnding)),
                "{input:?}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn overlong_line_split_across_reads_is_discarded_whole() {
        let (mut conn, mut client) = pair().await;
        let writer = tokio::spawn(async move {
            for _ in 0..5 {
                client.write_all(&[b'y'; READ_CHUNK]).await.unwrap();
            }
            client.write_all(b"\r\nOK\r\n").await.unwrap();
        });
        assert!(matches!(
            conn.read_line(1000).await,
            Err(ReadError::TooLong(_))
        ));
        assert_eq!(conn.read_line(1000).await.unwrap(), Some(b"OK".to_vec()));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn buffered_bytes_stay_until_consumed() {
        let (mut conn, mut client) = pair().await;
        client.write_all(b"a\r\nb").await.unwrap();
        drop(client);
        while conn.buffered().len() < 4 {
            assert!(conn.read_more().await.unwrap());
        }
        assert_eq!(conn.buffered(), b"a\r\nb");
        conn.consume(3);
        assert_eq!(conn.buffered(), b"b");
        assert!(!conn.read_more().await.unwrap());
        assert_eq!(conn.buffered(), b"b");
        conn.consume(10);
        assert_eq!(conn.buffered(), b"");
    }

    #[tokio::test]
    async fn read_exact_spans_buffer_and_socket() {
        let (mut conn, mut client) = pair().await;
        client.write_all(b"A1 APPEND x {5}\r\nhel").await.unwrap();
        let line = conn.read_line(100).await.unwrap().unwrap();
        assert_eq!(line, b"A1 APPEND x {5}");
        client.write_all(b"lo\r\n").await.unwrap();
        assert_eq!(conn.read_exact(5).await.unwrap(), b"hello");
        assert_eq!(conn.read_line(100).await.unwrap(), Some(Vec::new()));
    }
}
