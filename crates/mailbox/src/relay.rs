//! Sessions relayed to where an account's mail is. In a cluster larger than the replication
//! factor, a node holds only some partitions. A client's IMAP or POP3 connection may land on
//! any node; once it has authenticated, a node without the account's partition opens a
//! connection of its own over the node link (mTLS) to a node that has it, and from then on
//! only copies bytes. The node with the mail runs the session as if the client had logged in
//! there.
//!
//! The relay connection starts with a [`RelayRequest`] (in the link's hello); the serving node
//! answers with one status line: `OK` (the session's bytes follow, beginning with its answer
//! to the login), or `NO <code> <text>`.

use crate::{MailboxError, Mailboxes};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use tern_directory::AccountInfo;
pub use tern_raft::link::RelayStream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

/// How long the serving node may take to open the account and answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest status line.
const STATUS_MAX: usize = 1024;

/// The protocol of a relayed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayProtocol {
    /// IMAP, in the authenticated state.
    Imap,
    /// POP3, entering the transaction state.
    Pop3,
}

/// The most a [`RelayRequest`] may take to decode (an address, a tag and a socket address).
pub const MAX_RELAY_REQUEST: usize = 64 * 1024;

/// What the relaying node asks of the node it relays to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayRequest {
    /// The session's protocol.
    pub protocol: RelayProtocol,
    /// The address the client authenticated as.
    pub address: String,
    /// The client's address, for the serving node's logs.
    pub client: SocketAddr,
    /// IMAP: the tag of the LOGIN or AUTHENTICATE that the serving node answers first.
    pub tag: String,
}

impl RelayRequest {
    /// The request as it travels.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    /// A request as it arrived. Decoded with a limit, so a length inside it cannot make the
    /// decoder reserve more than [`MAX_RELAY_REQUEST`].
    pub fn decode(bytes: &[u8]) -> Result<RelayRequest, String> {
        let config = bincode::config::standard().with_limit::<MAX_RELAY_REQUEST>();
        bincode::serde::decode_from_slice(bytes, config)
            .map(|(r, _)| r)
            .map_err(|e| e.to_string())
    }
}

/// Why the serving node refused a relayed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayRefusal {
    /// It holds no replica of the account's partition (any more): ask another node.
    NoReplica,
    /// POP3: another session holds the maildrop.
    InUse,
    /// Anything else, for now.
    Unavailable(String),
}

impl RelayRefusal {
    /// How the serving node refuses when opening the account failed with `e`.
    pub fn from_error(e: &MailboxError) -> RelayRefusal {
        match e {
            MailboxError::Elsewhere(_) => RelayRefusal::NoReplica,
            MailboxError::InUse => RelayRefusal::InUse,
            other => RelayRefusal::Unavailable(other.to_string()),
        }
    }
}

/// The status line the serving node sends first: `OK`, or the refusal.
pub fn status_line(status: Result<(), RelayRefusal>) -> String {
    match status {
        Ok(()) => "OK\r\n".to_string(),
        Err(RelayRefusal::NoReplica) => "NO NOREPLICA\r\n".into(),
        Err(RelayRefusal::InUse) => "NO INUSE\r\n".into(),
        Err(RelayRefusal::Unavailable(why)) => {
            let why: String = why.chars().filter(|c| !c.is_control()).take(512).collect();
            format!("NO UNAVAILABLE {why}\r\n")
        }
    }
}

/// Reads the status line. Reads byte by byte: nothing after the line may be consumed, it
/// belongs to the session.
async fn read_status(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Result<(), RelayRefusal>> {
    let mut reader = BufReader::with_capacity(1, stream);
    let mut line = Vec::new();
    let read = (&mut reader)
        .take(STATUS_MAX as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 || !line.ends_with(b"\n") {
        return Err(std::io::Error::other("relay closed before its status line"));
    }
    let line = String::from_utf8_lossy(&line);
    let line = line.trim_end();
    Ok(match line.split_once(' ').unwrap_or((line, "")) {
        ("OK", _) => Ok(()),
        ("NO", "NOREPLICA") => Err(RelayRefusal::NoReplica),
        ("NO", "INUSE") => Err(RelayRefusal::InUse),
        (_, rest) => Err(RelayRefusal::Unavailable(
            rest.strip_prefix("UNAVAILABLE ")
                .unwrap_or(rest)
                .to_string(),
        )),
    })
}

impl Mailboxes {
    /// Opens a relayed session for `account` at a node that holds its partition (its leader
    /// first). On success the stream's next bytes are the session's answer to the login.
    pub async fn relay(
        &self,
        account: &AccountInfo,
        request: &RelayRequest,
    ) -> Result<RelayStream, MailboxError> {
        let raft = self.raft();
        let group = raft.partition_of(account.id);
        let payload = request.encode();
        let mut last = String::from("no other node holds the account's mail");
        for node in raft.relay_candidates(group) {
            let mut stream = match raft.open_relay(node, payload.clone()).await {
                Ok(stream) => stream,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match tokio::time::timeout(STATUS_TIMEOUT, read_status(&mut stream)).await {
                Ok(Ok(Ok(()))) => {
                    tracing::debug!(%group, node, "session relayed");
                    return Ok(stream);
                }
                Ok(Ok(Err(RelayRefusal::NoReplica))) => {
                    last = format!("node {node} holds no replica");
                }
                Ok(Ok(Err(RelayRefusal::InUse))) => return Err(MailboxError::InUse),
                Ok(Ok(Err(RelayRefusal::Unavailable(why)))) => last = why,
                Ok(Err(e)) => last = format!("node {node}: {e}"),
                Err(_) => last = format!("node {node} did not answer in time"),
            }
        }
        Err(MailboxError::unavailable(group, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn status_lines_round_trip_and_leave_the_session_bytes_unread() {
        for status in [
            Ok(()),
            Err(RelayRefusal::NoReplica),
            Err(RelayRefusal::InUse),
            Err(RelayRefusal::Unavailable("no leader\r\n(yet)".into())),
        ] {
            let (mut a, mut b) = tokio::io::duplex(4096);
            a.write_all(status_line(status.clone()).as_bytes())
                .await
                .unwrap();
            a.write_all(b"* session bytes\r\n").await.unwrap();
            let read = read_status(&mut b).await.unwrap();
            let expected = match status {
                Err(RelayRefusal::Unavailable(_)) => {
                    Err(RelayRefusal::Unavailable("no leader(yet)".into()))
                }
                other => other,
            };
            assert_eq!(read, expected);
            let mut rest = [0u8; 17];
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut rest)
                .await
                .unwrap();
            assert_eq!(&rest, b"* session bytes\r\n");
        }
    }

    #[tokio::test]
    async fn a_relay_that_closes_without_a_status_is_an_error() {
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        assert!(read_status(&mut b).await.is_err());
    }

    #[test]
    fn requests_round_trip() {
        let request = RelayRequest {
            protocol: RelayProtocol::Imap,
            address: "alice@example.test".into(),
            client: "127.0.0.1:4143".parse().unwrap(),
            tag: "a1".into(),
        };
        let back = RelayRequest::decode(&request.encode()).unwrap();
        assert_eq!(back.address, request.address);
        assert_eq!(back.protocol, RelayProtocol::Imap);
        assert_eq!(back.tag, "a1");
        assert!(RelayRequest::decode(b"\xff").is_err());
        // Protocol 0, then a string announcing 2^62 bytes (varint marker 253 + u64): refused
        // by the decode limit instead of reserving it.
        let mut huge = vec![0u8, 253];
        huge.extend_from_slice(&(1u64 << 62).to_le_bytes());
        assert!(RelayRequest::decode(&huge).is_err());
    }
}
