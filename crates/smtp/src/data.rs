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

/// Reads a message; `Ok(None)` if the client disconnected before the end. Works on the
/// connection's buffer in place: each line is checked and copied once, into the body.
pub async fn read_body(conn: &mut Connection, limit: u64) -> io::Result<Option<Body>> {
    let mut body = Vec::new();
    let mut scan = Scan {
        at_line_start: true,
        too_big: false,
        bare: false,
    };
    loop {
        let buf = conn.buffered();
        let mut used = 0;
        let mut ended = false;
        while used < buf.len() {
            let rest = &buf[used..];
            let window = &rest[..rest.len().min(SEGMENT)];
            let seg = match window.iter().position(|&b| b == b'\n') {
                Some(i) => &rest[..=i],
                None if window.len() == SEGMENT => window,
                None => break, // the rest of a line is still on its way
            };
            used += seg.len();
            if scan.segment(seg, &mut body, limit) {
                ended = true;
                break;
            }
        }
        conn.consume(used);
        if ended {
            return Ok(Some(scan.finish(body)));
        }
        if !conn.read_more().await? {
            return Ok(None);
        }
    }
}

/// What the DATA reader has seen so far.
struct Scan {
    at_line_start: bool,
    too_big: bool,
    bare: bool,
}

impl Scan {
    /// Takes one line (up to and including its LF) or one `SEGMENT` of a longer line; true
    /// when it is the end-of-data line.
    fn segment(&mut self, seg: &[u8], body: &mut Vec<u8>, limit: u64) -> bool {
        if self.at_line_start && seg == b".\r\n" {
            return true;
        }
        let ends_line = seg.last() == Some(&b'\n');
        let crlf = seg.ends_with(b"\r\n");
        if ends_line && !crlf {
            self.bare = true;
        }
        let content = if crlf { &seg[..seg.len() - 2] } else { seg };
        if content.contains(&b'\r') {
            self.bare = true;
        }
        let seg = match seg.first() {
            Some(b'.') if self.at_line_start => &seg[1..],
            _ => seg,
        };
        if !self.too_big && (body.len() + seg.len()) as u64 > limit {
            self.too_big = true;
            *body = Vec::new();
        }
        if !self.too_big {
            body.extend_from_slice(seg);
        }
        self.at_line_start = ends_line;
        false
    }

    fn finish(self, body: Vec<u8>) -> Body {
        if self.too_big {
            Body::TooBig
        } else if self.bare {
            Body::BareLineEnding
        } else {
            Body::Complete(body)
        }
    }
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
    async fn lines_split_across_reads_and_long_lines_arrive_whole() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let mut conn = Connection::new(Stream::Plain(server), peer, addr);
        let long = vec![b'x'; 3 * SEGMENT + 5];
        let mut input = b"Subject: pieces\r\n\r\n..dot\r\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\r\n.\r\n");
        let writer = tokio::spawn(async move {
            for piece in input.chunks(7) {
                client.write_all(piece).await.unwrap();
                client.flush().await.unwrap();
            }
        });
        let got = read_body(&mut conn, 1 << 20).await.unwrap();
        writer.await.unwrap();
        let mut want = b"Subject: pieces\r\n\r\n.dot\r\n".to_vec();
        want.extend_from_slice(&long);
        want.extend_from_slice(b"\r\n");
        match got {
            Some(Body::Complete(body)) => assert!(body == want, "{} bytes", body.len()),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn oversized_is_read_to_the_end() {
        let got = body_of(b"0123456789\r\n0123456789\r\n.\r\n", 15).await;
        assert!(matches!(got, Some(Body::TooBig)), "{got:?}");
    }
}
