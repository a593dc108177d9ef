//! A buffered line connection with a deadline on every read, shared by the SMTP, IMAP and
//! POP3 clients: the load generator must report a stuck server, never hang on it.

use anyhow::{Context, Result, bail};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection read line by line.
pub struct LineConn {
    io: BufReader<TcpStream>,
    timeout: Duration,
    line: String,
    raw: Vec<u8>,
}

impl LineConn {
    /// Connects to `host:port`; every later read fails after `timeout`.
    pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<LineConn> {
        LineConn::connect_from(host, port, None, timeout).await
    }

    /// Like [`LineConn::connect`], from local address `source` when given (servers cap
    /// connections per client IP; loopback has all of 127/8 to spread over).
    pub async fn connect_from(
        host: &str,
        port: u16,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<LineConn> {
        let tcp = tokio::time::timeout(timeout, open(host, port, source))
            .await
            .with_context(|| format!("connecting to {host}:{port}: timed out"))?
            .with_context(|| format!("connecting to {host}:{port}"))?;
        // Pipelined commands go out as soon as they are written, like a real client's.
        tcp.set_nodelay(true)?;
        Ok(LineConn {
            io: BufReader::new(tcp),
            timeout,
            line: String::new(),
            raw: Vec::new(),
        })
    }

    /// Reads one line and returns it without its line ending.
    pub async fn read_line(&mut self) -> Result<&str> {
        self.line.clear();
        let n = tokio::time::timeout(self.timeout, self.io.read_line(&mut self.line))
            .await
            .context("server did not answer in time")??;
        if n == 0 {
            bail!("server closed the connection");
        }
        Ok(self.line.trim_end_matches(['\r', '\n']))
    }

    /// Reads one line as bytes (message content need not be UTF-8), line ending included.
    pub async fn read_raw_line(&mut self) -> Result<&[u8]> {
        self.raw.clear();
        let n = tokio::time::timeout(self.timeout, self.io.read_until(b'\n', &mut self.raw))
            .await
            .context("server did not answer in time")??;
        if n == 0 {
            bail!("server closed the connection");
        }
        Ok(&self.raw)
    }

    /// Reads and discards exactly `n` bytes (an IMAP literal).
    pub async fn skip_bytes(&mut self, n: u64) -> Result<()> {
        let mut part = (&mut self.io).take(n);
        let got = tokio::time::timeout(
            self.timeout,
            tokio::io::copy(&mut part, &mut tokio::io::sink()),
        )
        .await
        .context("server did not answer in time")??;
        if got < n {
            bail!("server closed the connection inside a literal");
        }
        Ok(())
    }

    /// Writes `data` and flushes it.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let stream = self.io.get_mut();
        stream.write_all(data).await?;
        stream.flush().await?;
        Ok(())
    }
}

/// Opens a TCP connection, bound to `source` first when given.
async fn open(host: &str, port: u16, source: Option<IpAddr>) -> Result<TcpStream> {
    let Some(source) = source else {
        return Ok(TcpStream::connect((host, port)).await?);
    };
    let target: SocketAddr = tokio::net::lookup_host((host, port))
        .await?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .with_context(|| format!("{host} has no address of the family of {source}"))?;
    let socket = if source.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket
        .bind(SocketAddr::new(source, 0))
        .with_context(|| format!("binding to {source}"))?;
    Ok(socket.connect(target).await?)
}
