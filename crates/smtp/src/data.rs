//! The DATA phase: read the message up to `CRLF.CRLF` — and only that: a line ending in a bare
//! LF never ends the message (SMTP smuggling, CVE-2023-51764 class); undo dot-stuffing; stop
//! storing past the size limit but keep reading so the reply comes at the right time.

use std::io;
use tern_core::net::Connection;

/// Longest segment read at once; longer lines arrive in pieces without loss.
const SEGMENT: usize = 64 * 1024;

/// What the client sent.
#[derive(Debug)]
pub enum Body {
    /// The unstuffed message.
    Complete(Vec<u8>),
    /// More than the limit (the rest was read and discarded).
    TooBig,
    /// A line ended with a bare LF, or had a bare CR.
    BareLineEnding,
}

/// Reads a message; `Ok(None)` if the client disconnected before the end.
pub async fn read_body(conn: &mut Connection, limit: u64) -> io::Result<Option<Body>> {
    let mut body = Vec::new();
    let mut at_line_start = true;
    let mut too_big = false;
    let mut bare = false;
    loop {
        let Some(mut seg) = conn.read_segment(SEGMENT).await? else {
            return Ok(None);
        };
        let ends_line = seg.last() == Some(&b'\n');
        if at_line_start && seg == b".\r\n" {
            break;
        }
        if ends_line && !seg.ends_with(b"\r\n") {
            bare = true;
        }
        let content_end = if seg.ends_with(b"\r\n") {
            seg.len() - 2
        } else {
            seg.len()
        };
        if seg[..content_end].contains(&b'\r') {
            bare = true;
        }
        if at_line_start && seg.first() == Some(&b'.') {
            seg.remove(0);
        }
        if !too_big && (body.len() + seg.len()) as u64 > limit {
            too_big = true;
            body = Vec::new();
        }
        if !too_big {
            body.extend_from_slice(&seg);
        }
        at_line_start = ends_line;
    }
    Ok(Some(if too_big {
        Body::TooBig
    } else if bare {
        Body::BareLineEnding
    } else {
        Body::Complete(body)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::net::Stream;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn body_of(input: &'static [u8], limit: u64) -> Option<Body> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let mut conn = Connection::new(Stream::Plain(server), peer, addr);
        client.write_all(input).await.unwrap();
        drop(client);
        read_body(&mut conn, limit).await.unwrap()
    }

    #[tokio::test]
    async fn table() {
        let complete = |b: &[u8]| Some(b.to_vec());
        type Case = (&'static [u8], u64, Option<Vec<u8>>);
        let cases: &[Case] = &[
            (
                b"Subject: x\r\n\r\nhi\r\n.\r\n",
                100,
                complete(b"Subject: x\r\n\r\nhi\r\n"),
            ),
            (b"..dot\r\n.\r\n", 100, complete(b".dot\r\n")),
            (b".\r\n", 100, complete(b"")),
            (b"partial\r\n", 100, None),
        ];
        for (input, limit, want) in cases {
            let got = match body_of(input, *limit).await {
                Some(Body::Complete(b)) => Some(b),
                Some(other) => panic!("{other:?} for {input:?}"),
                None => None,
            };
            assert_eq!(&got, want, "{}", String::from_utf8_lossy(input));
        }
    }

    #[tokio::test]
    async fn bare_lf_never_ends_data() {
        let got = body_of(b"a\n.\nMAIL FROM:<x@y.z>\r\n.\r\n", 100).await;
        assert!(matches!(got, Some(Body::BareLineEnding)), "{got:?}");
    }

    #[tokio::test]
    async fn oversized_is_read_to_the_end() {
        let got = body_of(b"0123456789\r\n0123456789\r\n.\r\n", 15).await;
        assert!(matches!(got, Some(Body::TooBig)), "{got:?}");
    }
}
