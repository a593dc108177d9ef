//! A buffered line connection with a deadline on every read, shared by the SMTP and IMAP
//! clients: the load generator must report a stuck server, never hang on it.

use anyhow::{Context, Result, bail};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A TCP connection read line by line.
pub struct LineConn {
    io: BufReader<TcpStream>,
    timeout: Duration,
    line: String,
}

impl LineConn {
    /// Connects to `host:port`; every later read fails after `timeout`.
    pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<LineConn> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
            .await
            .with_context(|| format!("connecting to {host}:{port}: timed out"))?
            .with_context(|| format!("connecting to {host}:{port}"))?;
        // Pipelined commands go out as soon as they are written, like a real client's.
        tcp.set_nodelay(true)?;
        Ok(LineConn {
            io: BufReader::new(tcp),
            timeout,
            line: String::new(),
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

    /// Writes `data` and flushes it.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let stream = self.io.get_mut();
        stream.write_all(data).await?;
        stream.flush().await?;
        Ok(())
    }
}
