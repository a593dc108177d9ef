//! Trace headers added to every accepted message (RFC 5321 §4.4): Return-Path and Received.

use std::net::IpAddr;

/// What the Received header says about the transaction.
pub struct Trace<'a> {
    /// Our host name.
    pub hostname: &'a str,
    /// What the client said in EHLO/HELO.
    pub helo: &'a str,
    /// The client's IP.
    pub peer: IpAddr,
    /// ESMTP, ESMTPS, ESMTPA or ESMTPSA (RFC 3848).
    pub protocol: &'static str,
    /// The transaction id.
    pub id: &'a str,
    /// The recipient, when there is exactly one.
    pub single_recipient: Option<&'a str>,
    /// Envelope sender.
    pub sender: &'a str,
}

/// The message with Return-Path and Received prepended.
pub fn prepend(trace: &Trace<'_>, body: &[u8]) -> Vec<u8> {
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000");
    let helo: String = trace
        .helo
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    let mut out = format!("Return-Path: <{}>\r\n", trace.sender);
    out.push_str(&format!(
        "Received: from {helo} ([{}])\r\n\tby {} (Tern) with {} id {}",
        trace.peer, trace.hostname, trace.protocol, trace.id
    ));
    if let Some(rcpt) = trace.single_recipient {
        out.push_str(&format!("\r\n\tfor <{rcpt}>"));
    }
    out.push_str(&format!(";\r\n\t{date}\r\n"));
    let mut message = out.into_bytes();
    message.extend_from_slice(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_headers_come_first() {
        let trace = Trace {
            hostname: "mx.example",
            helo: "client\r\nX-Evil: 1",
            peer: "127.0.0.1".parse().unwrap(),
            protocol: "ESMTPS",
            id: "abc",
            single_recipient: Some("bob@example.org"),
            sender: "a@b.example",
        };
        let out = String::from_utf8(prepend(&trace, b"Subject: x\r\n\r\nbody\r\n")).unwrap();
        assert!(out.starts_with("Return-Path: <a@b.example>\r\nReceived: from clientX-Evil: 1"));
        assert!(
            out.contains("by mx.example (Tern) with ESMTPS id abc\r\n\tfor <bob@example.org>;")
        );
        assert!(out.ends_with("Subject: x\r\n\r\nbody\r\n"));
    }
}
