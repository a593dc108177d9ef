//! The IMAP client: plain LOGIN (allowed from loopback with `tern serve --dev`), the few
//! commands the workloads send, and the readers of the smtp workload, which poll
//! `STATUS INBOX (MESSAGES)` until each INBOX holds what was sent to it.

use crate::wire::LineConn;
use anyhow::{Context, Result, bail};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One logged-in IMAP session.
pub struct ImapSession {
    conn: LineConn,
    tag: u32,
    /// The tag of the IDLE in progress.
    idle_tag: Option<String>,
    /// Bytes received in literals (message bodies), in all.
    pub literal_bytes: u64,
}

impl ImapSession {
    /// Connects and logs in as `user`.
    pub async fn login(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<ImapSession> {
        ImapSession::login_from(host, port, None, user, password, timeout).await
    }

    /// Like [`ImapSession::login`], from local address `source` when given.
    pub async fn login_from(
        host: &str,
        port: u16,
        source: Option<IpAddr>,
        user: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<ImapSession> {
        let mut conn = LineConn::connect_from(host, port, source, timeout).await?;
        let greeting = conn.read_line().await?;
        if !greeting.starts_with("* OK") {
            bail!("IMAP greeting: {greeting}");
        }
        let mut session = ImapSession {
            conn,
            tag: 0,
            idle_tag: None,
            literal_bytes: 0,
        };
        session
            .command(&format!("LOGIN {} {}", quoted(user), quoted(password)))
            .await
            .with_context(|| format!("LOGIN {user}"))?;
        Ok(session)
    }

    /// The number of messages in INBOX.
    pub async fn inbox_messages(&mut self) -> Result<usize> {
        let untagged = self.command("STATUS INBOX (MESSAGES)").await?;
        untagged
            .iter()
            .find_map(|line| status_messages(line))
            .context("STATUS reply without MESSAGES")
    }

    /// Selects INBOX and returns its number of messages.
    pub async fn select_inbox(&mut self) -> Result<usize> {
        let untagged = self.command("SELECT INBOX").await?;
        untagged
            .iter()
            .find_map(|line| exists(line))
            .context("SELECT reply without EXISTS")
    }

    /// Logs out; errors are ignored because the measurement is already done.
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }

    /// Logs out and fails unless the server says OK.
    pub async fn logout_checked(mut self) -> Result<()> {
        self.command("LOGOUT").await.map(drop)
    }

    /// Starts IDLE and waits for the server's `+` continuation.
    pub async fn idle_start(&mut self) -> Result<()> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.conn
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        loop {
            let line = self.response_line().await?;
            if line.starts_with('+') {
                self.idle_tag = Some(tag);
                return Ok(());
            }
            if let Some(status) = line.strip_prefix(&tag).and_then(|r| r.strip_prefix(' ')) {
                bail!("IDLE: {status}");
            }
        }
    }

    /// Ends IDLE with DONE and waits for the tagged OK.
    pub async fn idle_done(&mut self) -> Result<()> {
        let tag = self.idle_tag.take().context("DONE without IDLE")?;
        self.conn.write_all(b"DONE\r\n").await?;
        self.finish(&tag, "IDLE").await.map(drop)
    }

    /// Sends a command and returns its untagged lines (literals left out); fails unless it
    /// ends in OK.
    pub async fn command(&mut self, command: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.conn
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.finish(&tag, command).await
    }

    /// Reads responses up to the one tagged `tag`; fails unless it is OK.
    async fn finish(&mut self, tag: &str, command: &str) -> Result<Vec<String>> {
        let mut untagged = Vec::new();
        loop {
            let line = self.response_line().await?;
            if let Some(status) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                if status.starts_with("OK") {
                    return Ok(untagged);
                }
                bail!("{command}: {status}");
            }
            untagged.push(line);
        }
    }

    /// Reads one response line; literals inside it are read, counted and left out.
    async fn response_line(&mut self) -> Result<String> {
        let mut line = self.conn.read_line().await?.to_string();
        while let Some(n) = literal_len(&line) {
            self.conn.skip_bytes(n).await?;
            self.literal_bytes += n;
            line.push_str(self.conn.read_line().await?);
        }
        Ok(line)
    }
}

/// The length of the literal announced at the end of `line` (`{12}` or `{12+}`).
fn literal_len(line: &str) -> Option<u64> {
    let open = line.strip_suffix('}')?.rfind('{')?;
    let inner = &line[open + 1..line.len() - 1];
    inner.strip_suffix('+').unwrap_or(inner).parse().ok()
}

/// The count in `* 12 EXISTS`.
fn exists(line: &str) -> Option<usize> {
    line.strip_prefix("* ")?
        .strip_suffix(" EXISTS")?
        .parse()
        .ok()
}

/// An IMAP quoted string (RFC 9051 §4.3).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The count in `* STATUS INBOX (MESSAGES 12)`.
fn status_messages(line: &str) -> Option<usize> {
    if !line.starts_with("* STATUS ") {
        return None;
    }
    let rest = &line[line.find("MESSAGES ")? + "MESSAGES ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One user's wait for visibility.
pub struct Watch {
    /// Login name.
    pub user: String,
    /// The INBOX size to wait for.
    pub expected: usize,
}

/// Polls each user in turn until its INBOX reaches the expected size, and returns when each
/// became visible (`None` if not before `deadline`).
pub async fn wait_visible(
    host: &str,
    port: u16,
    password: &str,
    watches: Vec<Watch>,
    poll: Duration,
    deadline: Instant,
    io_timeout: Duration,
) -> Result<Vec<(String, Option<Instant>)>> {
    let mut seen = Vec::with_capacity(watches.len());
    for watch in watches {
        let mut session = ImapSession::login(host, port, &watch.user, password, io_timeout).await?;
        let visible = loop {
            if session.inbox_messages().await? >= watch.expected {
                break Some(Instant::now());
            }
            if Instant::now() >= deadline {
                break None;
            }
            // Polling is what a benchmark can do without IDLE support in the client; the
            // interval bounds the measurement error, and the report says so.
            tokio::time::sleep(poll).await;
        };
        session.logout().await;
        seen.push((watch.user, visible));
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_replies() {
        assert_eq!(status_messages("* STATUS INBOX (MESSAGES 12)"), Some(12));
        assert_eq!(
            status_messages("* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 3)"),
            Some(0)
        );
        assert_eq!(status_messages("* OK [ALERT] MESSAGES 4"), None);
        assert_eq!(status_messages("* STATUS INBOX ()"), None);
    }

    #[test]
    fn parses_literals_and_exists() {
        assert_eq!(literal_len("* 1 FETCH (UID 3 BODY[] {4096}"), Some(4096));
        assert_eq!(literal_len("* 1 FETCH (ENVELOPE (\"x\" {12+}"), Some(12));
        assert_eq!(literal_len("* OK {not}"), None);
        assert_eq!(literal_len("t1 OK done"), None);
        assert_eq!(exists("* 17 EXISTS"), Some(17));
        assert_eq!(exists("* 0 RECENT"), None);
    }

    #[test]
    fn quotes_strings() {
        assert_eq!(quoted(r#"pa"ss\word"#), r#""pa\"ss\\word""#);
    }
}
