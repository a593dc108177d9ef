//! The SMTP senders: parallel sessions on plain SMTP, several messages per session, with
//! MAIL, RCPT and DATA pipelined (RFC 2920) as a busy relay would send them.

use crate::wire::LineConn;
use anyhow::{Context, Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What every sender needs to know.
pub struct SendPlan {
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Recipients are user1..userN at `domain`.
    pub users: usize,
    /// The recipients' domain.
    pub domain: String,
    /// Messages to send in all.
    pub messages: usize,
    /// Messages per SMTP session.
    pub per_session: usize,
    /// Approximate message size in bytes.
    pub size: usize,
    /// Deadline of each read.
    pub io_timeout: Duration,
    /// Distinguishes this run's messages from earlier runs' in Message-ID.
    pub run_id: u64,
}

impl SendPlan {
    /// The recipient of message `i`: users take turns so every INBOX grows alike.
    pub fn recipient_index(&self, i: usize) -> usize {
        i % self.users + 1
    }
}

/// What one sender observed.
#[derive(Default)]
pub struct SendReport {
    /// SMTP transaction times (MAIL written → final 250) of accepted messages.
    pub latencies: Vec<Duration>,
    /// Messages accepted, per recipient index (1-based; index 0 unused).
    pub accepted_per_user: Vec<usize>,
    /// Messages refused or lost with their connection.
    pub failed: usize,
    /// When this sender got its last 250.
    pub last_accept: Option<Instant>,
    /// The first error seen, to show the operator.
    pub first_error: Option<String>,
}

/// Runs one sender until every message is claimed. Messages are claimed a session's worth at
/// a time from `next`, so fast senders take more.
pub async fn sender(plan: Arc<SendPlan>, next: Arc<AtomicUsize>) -> SendReport {
    let mut report = SendReport {
        accepted_per_user: vec![0; plan.users + 1],
        ..SendReport::default()
    };
    loop {
        let start = next.fetch_add(plan.per_session, Ordering::Relaxed);
        if start >= plan.messages {
            return report;
        }
        let batch = start..(start + plan.per_session).min(plan.messages);
        let count = batch.len();
        let sent_before = report.latencies.len() + report.failed;
        if let Err(e) = session(&plan, batch, &mut report).await {
            // Whatever the broken session did not finish counts as failed.
            let done = report.latencies.len() + report.failed - sent_before;
            report.failed += count - done;
            report.first_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

/// One SMTP session delivering the messages of `batch`.
async fn session(
    plan: &SendPlan,
    batch: std::ops::Range<usize>,
    report: &mut SendReport,
) -> Result<()> {
    let mut conn = LineConn::connect(&plan.host, plan.port, plan.io_timeout).await?;
    expect(&mut conn, 220, "greeting").await?;
    conn.write_all(b"EHLO tern-load.test\r\n").await?;
    expect(&mut conn, 250, "EHLO").await?;
    let sender = format!("tern-load@{}", plan.domain);
    for i in batch {
        let rcpt = plan.recipient_index(i);
        let envelope = format!(
            "MAIL FROM:<{sender}>\r\nRCPT TO:<user{rcpt}@{}>\r\nDATA\r\n",
            plan.domain
        );
        let started = Instant::now();
        conn.write_all(envelope.as_bytes()).await?;
        let mail = reply(&mut conn).await?;
        let rcpt_reply = reply(&mut conn).await?;
        let data = reply(&mut conn).await?;
        if data.0 != 354 {
            // The server refused the transaction; no body follows (RFC 2920 §3.1).
            report.failed += 1;
            report.first_error.get_or_insert_with(|| {
                format!("MAIL {} / RCPT {} / DATA {}", mail.1, rcpt_reply.1, data.1)
            });
            conn.write_all(b"RSET\r\n").await?;
            reply(&mut conn).await?;
            continue;
        }
        conn.write_all(&message(plan, i, &sender, rcpt)).await?;
        let done = reply(&mut conn).await?;
        if done.0 == 250 {
            let now = Instant::now();
            report.latencies.push(now - started);
            report.accepted_per_user[rcpt] += 1;
            report.last_accept = Some(now);
        } else {
            report.failed += 1;
            report.first_error.get_or_insert(done.1);
        }
    }
    conn.write_all(b"QUIT\r\n").await?;
    // The goodbye is a courtesy; the messages already count.
    let _ = reply(&mut conn).await;
    Ok(())
}

/// Reads a reply and fails unless its code is `code`.
async fn expect(conn: &mut LineConn, code: u16, what: &str) -> Result<()> {
    let (got, text) = reply(conn).await?;
    if got != code {
        bail!("{what}: expected {code}, got {text}");
    }
    Ok(())
}

/// Reads a possibly multi-line reply: its code and its last line.
async fn reply(conn: &mut LineConn) -> Result<(u16, String)> {
    loop {
        let line = conn.read_line().await?;
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .with_context(|| format!("not an SMTP reply: {line:?}"))?;
        // "250-" continues, "250 " (or a bare "250") ends the reply.
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, line.to_string()));
        }
    }
}

/// Message `i` with its terminating dot: headers, then lines of text up to about `size` bytes.
/// No line starts with a dot, so no stuffing is needed.
fn message(plan: &SendPlan, i: usize, sender: &str, rcpt: usize) -> Vec<u8> {
    let mut out = format!(
        "From: <{sender}>\r\nTo: <user{rcpt}@{domain}>\r\nSubject: tern-load message {i}\r\n\
         Message-ID: <load-{run}-{i}@{domain}>\r\n\r\n",
        domain = plan.domain,
        run = plan.run_id,
    )
    .into_bytes();
    const LINE: &[u8] = b"The quick brown fox jumps over the lazy dog; load test body line.";
    while out.len() + LINE.len() + 2 <= plan.size {
        out.extend_from_slice(LINE);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(size: usize) -> SendPlan {
        SendPlan {
            host: "127.0.0.1".into(),
            port: 25,
            users: 3,
            domain: "example.com".into(),
            messages: 10,
            per_session: 4,
            size,
            io_timeout: Duration::from_secs(1),
            run_id: 7,
        }
    }

    #[test]
    fn messages_have_the_requested_size_and_end_properly() {
        let p = plan(4096);
        let m = message(&p, 5, "a@example.com", 2);
        assert!(m.len() <= 4096 + 3 && m.len() > 4000, "{}", m.len());
        assert!(m.ends_with(b"\r\n.\r\n"));
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("To: <user2@example.com>"));
        assert!(!text.split("\r\n").any(|l| l.starts_with('.') && l != "."));
    }

    #[test]
    fn recipients_take_turns() {
        let p = plan(100);
        let r: Vec<usize> = (0..6).map(|i| p.recipient_index(i)).collect();
        assert_eq!(r, [1, 2, 3, 1, 2, 3]);
    }
}
