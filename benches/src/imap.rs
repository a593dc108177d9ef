//! The IMAP readers: plain LOGIN (allowed from loopback with `tern serve --dev`) and
//! `STATUS INBOX (MESSAGES)` polls until each INBOX holds what was sent to it.

use crate::wire::LineConn;
use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};

/// One logged-in IMAP session.
pub struct ImapSession {
    conn: LineConn,
    tag: u32,
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
        let mut conn = LineConn::connect(host, port, timeout).await?;
        let greeting = conn.read_line().await?;
        if !greeting.starts_with("* OK") {
            bail!("IMAP greeting: {greeting}");
        }
        let mut session = ImapSession { conn, tag: 0 };
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

    /// Logs out; errors are ignored because the measurement is already done.
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }

    /// Sends a command and returns its untagged lines; fails unless it ends in OK.
    async fn command(&mut self, command: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.conn
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let mut untagged = Vec::new();
        loop {
            let line = self.conn.read_line().await?;
            if let Some(status) = line.strip_prefix(&tag).and_then(|r| r.strip_prefix(' ')) {
                if status.starts_with("OK") {
                    return Ok(untagged);
                }
                bail!("{command}: {status}");
            }
            untagged.push(line.to_string());
        }
    }
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
    fn quotes_strings() {
        assert_eq!(quoted(r#"pa"ss\word"#), r#""pa\"ss\\word""#);
    }
}
