//! An SMTP client session to one remote MX address (RFC 5321): greeting, EHLO (falling back to
//! HELO), STARTTLS (RFC 3207), then any number of transactions — MAIL, RCPT (pipelined when
//! the server offers PIPELINING, RFC 2920), DATA with dot-stuffing — and QUIT. Every read and
//! write has a deadline. The session knows nothing about the queue: it reports replies.

use super::reply::{RemoteReply, ReplyError, ReplyParser};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why a session cannot go on. Always temporary for the recipients concerned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server did not answer in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server sent something that is not an SMTP reply.
    #[error("protocol error: {0}")]
    Protocol(#[from] ReplyError),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    /// A reply refused a step the session depends on (greeting, EHLO, STARTTLS).
    #[error("{step}: {reply}")]
    Refused {
        /// What was refused.
        step: &'static str,
        /// The server's reply.
        reply: RemoteReply,
    },
}

/// Deadlines of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// For the TCP connection.
    pub connect: Duration,
    /// For each reply.
    pub command: Duration,
}

/// What the server announced in its EHLO reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870: the largest message accepted; 0 = not announced or no limit.
    pub size: Option<u64>,
    /// RFC 6152.
    pub eight_bit: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3207.
    pub starttls: bool,
}

impl Extensions {
    fn of(ehlo: &RemoteReply) -> Extensions {
        let mut ext = Extensions::default();
        for (keyword, params) in ehlo.extensions() {
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "SIZE" => ext.size = Some(params.parse().unwrap_or(0)),
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                _ => {}
            }
        }
        ext
    }
}

/// The session's stream: plaintext until STARTTLS, then client-side TLS.
type Stream = tern_core::net::Stream<TlsStream<TcpStream>>;

/// One message for one transaction.
pub(crate) struct Transaction<'a> {
    /// Envelope sender, empty for `<>`.
    pub from: &'a str,
    /// Envelope recipients.
    pub to: &'a [String],
    /// The message, CRLF line endings, not yet dot-stuffed.
    pub body: &'a [u8],
    /// Send `SMTPUTF8` with MAIL (the server announced it and the message needs it).
    pub smtputf8: bool,
}

/// The outcome of one transaction: for each recipient, in order, the reply that settled it —
/// the final DATA reply when accepted, or the refusal of MAIL, RCPT or DATA.
pub(crate) type Settled = Vec<RemoteReply>;

/// An open session, greeted, EHLO done (and TLS up if it was negotiated).
pub(crate) struct SmtpClient {
    stream: BufReader<Stream>,
    timeouts: Timeouts,
    /// What the server offers (after TLS, the second EHLO's answer).
    pub extensions: Extensions,
    /// The server's name from its EHLO reply.
    pub server_name: String,
    /// Whether the session is encrypted.
    pub tls: bool,
}

impl SmtpClient {
    /// Connects to `addr`, reads the greeting and says EHLO (or HELO) as `helo`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        helo: &str,
        timeouts: Timeouts,
    ) -> Result<SmtpClient, ClientError> {
        let tcp = tokio::time::timeout(timeouts.connect, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout("the TCP connection"))??;
        let _ = tcp.set_nodelay(true);
        let mut session = SmtpClient {
            stream: BufReader::new(Stream::Plain(tcp)),
            timeouts,
            extensions: Extensions::default(),
            server_name: String::new(),
            tls: false,
        };
        let greeting = session.read_reply("the greeting").await?;
        if greeting.code != 220 {
            session.quit().await;
            return Err(ClientError::Refused {
                step: "greeting",
                reply: greeting,
            });
        }
        session.hello(helo).await?;
        Ok(session)
    }

    /// EHLO, or HELO when EHLO is refused (a server too old for ESMTP).
    async fn hello(&mut self, helo: &str) -> Result<(), ClientError> {
        let ehlo = self.command(&format!("EHLO {helo}\r\n"), "EHLO").await?;
        let reply = if ehlo.is_positive() {
            self.extensions = Extensions::of(&ehlo);
            ehlo
        } else {
            let helo_reply = self.command(&format!("HELO {helo}\r\n"), "HELO").await?;
            if !helo_reply.is_positive() {
                return Err(ClientError::Refused {
                    step: "HELO",
                    reply: helo_reply,
                });
            }
            self.extensions = Extensions::default();
            helo_reply
        };
        let first = reply.lines.first().map(String::as_str).unwrap_or("");
        self.server_name = first.split(' ').next().unwrap_or("").to_string();
        Ok(())
    }

    /// STARTTLS, the handshake, then EHLO again (RFC 3207 §4.2: forget what was learnt
    /// before). A failed handshake leaves the session unusable: the caller reconnects.
    pub(crate) async fn starttls(
        mut self,
        tls: &Arc<rustls::ClientConfig>,
        host: &str,
        helo: &str,
    ) -> Result<SmtpClient, ClientError> {
        let reply = self.command("STARTTLS\r\n", "STARTTLS").await?;
        if reply.code != 220 {
            return Err(ClientError::Refused {
                step: "STARTTLS",
                reply,
            });
        }
        // Anything the server sent after its 220 would be plaintext injected into the TLS
        // session (the CVE-2011-0411 class): refuse it.
        if !self.stream.buffer().is_empty() {
            return Err(ReplyError::Malformed("data after STARTTLS".into()).into());
        }
        let Stream::Plain(tcp) = self.stream.into_inner() else {
            return Err(ReplyError::Malformed("STARTTLS twice".into()).into());
        };
        let connector = TlsConnector::from(tls.clone());
        let name = super::tls::server_name(host);
        let handshake = tokio::time::timeout(self.timeouts.command, connector.connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout("the TLS handshake"))?
            .map_err(ClientError::Tls)?;
        self.stream = BufReader::new(Stream::Tls(Box::new(handshake)));
        self.tls = true;
        self.hello(helo).await?;
        Ok(self)
    }

    /// Runs one transaction. `Err` means the session broke and every recipient's fate is
    /// unknown; otherwise each recipient has the reply that settled it.
    pub(crate) async fn send(&mut self, t: &Transaction<'_>) -> Result<Settled, ClientError> {
        let mut mail = format!("MAIL FROM:<{}>", t.from);
        if self.extensions.size.is_some() {
            mail.push_str(&format!(" SIZE={}", t.body.len()));
        }
        if self.extensions.eight_bit && !t.body.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if t.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let rcpts: Vec<String> = t.to.iter().map(|r| format!("RCPT TO:<{r}>\r\n")).collect();

        let (mail_reply, rcpt_replies) = if self.extensions.pipelining {
            let mut batch = mail.clone();
            rcpts.iter().for_each(|r| batch.push_str(r));
            self.write(batch.as_bytes()).await?;
            let mail_reply = self.read_reply("the MAIL reply").await?;
            let mut replies = Vec::with_capacity(rcpts.len());
            for _ in &rcpts {
                replies.push(self.read_reply("an RCPT reply").await?);
            }
            (mail_reply, replies)
        } else {
            let mail_reply = self.command(&mail, "MAIL").await?;
            let mut replies = Vec::with_capacity(rcpts.len());
            if mail_reply.is_positive() {
                for r in &rcpts {
                    replies.push(self.command(r, "RCPT").await?);
                }
            }
            (mail_reply, replies)
        };
        if !mail_reply.is_positive() {
            self.reset().await?;
            return Ok(vec![mail_reply; t.to.len()]);
        }
        if !rcpt_replies.iter().any(RemoteReply::is_positive) {
            self.reset().await?;
            return Ok(rcpt_replies);
        }
        let data = self.command("DATA\r\n", "DATA").await?;
        if data.code != 354 {
            self.reset().await?;
            return Ok(rcpt_replies
                .into_iter()
                .map(|r| if r.is_positive() { data.clone() } else { r })
                .collect());
        }
        self.write(&dot_stuff(t.body)).await?;
        let done = self.read_reply("the end of DATA").await?;
        if !done.is_positive() {
            self.reset().await?;
        }
        Ok(rcpt_replies
            .into_iter()
            .map(|r| if r.is_positive() { done.clone() } else { r })
            .collect())
    }

    /// RSET after a failed transaction, so the session can carry the next one.
    async fn reset(&mut self) -> Result<(), ClientError> {
        let reply = self.command("RSET\r\n", "RSET").await?;
        if reply.is_positive() {
            Ok(())
        } else {
            Err(ClientError::Refused {
                step: "RSET",
                reply,
            })
        }
    }

    /// QUIT, politely but without waiting long; errors do not matter any more.
    pub(crate) async fn quit(mut self) {
        let short = Timeouts {
            command: self.timeouts.command.min(Duration::from_secs(5)),
            ..self.timeouts
        };
        self.timeouts = short;
        let _ = self.command("QUIT\r\n", "QUIT").await;
        let _ = tokio::time::timeout(short.command, self.stream.get_mut().shutdown()).await;
    }

    async fn command(
        &mut self,
        line: &str,
        what: &'static str,
    ) -> Result<RemoteReply, ClientError> {
        self.write(line.as_bytes()).await?;
        self.read_reply(what).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let stream = self.stream.get_mut();
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        tokio::time::timeout(self.timeouts.command, write)
            .await
            .map_err(|_| ClientError::Timeout("the server to take our data"))??;
        Ok(())
    }

    async fn read_reply(&mut self, what: &'static str) -> Result<RemoteReply, ClientError> {
        let mut parser = ReplyParser::default();
        let deadline = tokio::time::Instant::now() + self.timeouts.command;
        loop {
            let mut raw = Vec::new();
            let mut limited = (&mut self.stream).take(super::reply::MAX_LINE as u64 + 2);
            let read = limited.read_until(b'\n', &mut raw);
            let n = tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| ClientError::Timeout(what))??;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            if raw.last() != Some(&b'\n') && raw.len() > super::reply::MAX_LINE {
                return Err(ReplyError::TooLong.into());
            }
            if let Some(reply) = parser.line(&String::from_utf8_lossy(&raw))? {
                return Ok(reply);
            }
        }
    }
}

/// The message as it goes on the wire after DATA: CRLF line endings (a bare LF becomes CRLF),
/// a dot doubled at the start of every line (RFC 5321 §4.5.2), and the final `.` line.
pub(crate) fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        previous = b;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b"bare\n.lf\n"), b"bare\r\n..lf\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(dot_stuff(b"x.y\r\n"), b"x.y\r\n.\r\n");
    }

    #[test]
    fn extensions_from_ehlo() {
        let ehlo = RemoteReply {
            code: 250,
            lines: vec![
                "mx.example".into(),
                "PIPELINING".into(),
                "SIZE 10240000".into(),
                "8BITMIME".into(),
                "STARTTLS".into(),
            ],
        };
        let ext = Extensions::of(&ehlo);
        assert!(ext.pipelining && ext.eight_bit && ext.starttls && !ext.smtputf8);
        assert_eq!(ext.size, Some(10_240_000));
    }
}
