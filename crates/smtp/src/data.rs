//! The DATA phase: read the message up to `CRLF.CRLF` — and only that: a bare LF or CR stops
//! the reading at once (SMTP smuggling, CVE-2023-51764 class: the session then answers and
//! closes, so no byte after it is read as message or command); undo dot-stuffing; stop storing
//! past the size limit but keep reading so the reply comes at the right time.

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
    /// A line ended with a bare LF, or had a bare CR (what follows it was not read).
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
                // A long line's piece never ends between a CR and the LF that may follow.
                None if window.len() == SEGMENT => window.strip_suffix(b"\r").unwrap_or(window),
                None => break, // the rest of a line is still on its way
            };
            used += seg.len();
            if scan.segment(seg, &mut body, limit) || scan.bare {
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
        // A bare line ending stopped the reading mid-message: it wins over the size.
        if self.bare {
            Body::BareLineEnding
        } else if self.too_big {
            Body::TooBig
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

    /// A server connection whose client sent `input` and closed.
    async fn connection_that_sent(input: &[u8]) -> Connection {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, peer) = listener.accept().await.unwrap();
        let conn = Connection::new(Stream::Plain(server), peer, addr);
        client.write_all(input).await.unwrap();
        drop(client);
        conn
    }

    async fn body_of(input: &'static [u8], limit: u64) -> Option<Body> {
        let mut conn = connection_that_sent(input).await;
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
    async fn reading_stops_at_the_first_bare_line_ending() {
        for (input, rest) in [
            (&b"ok\r\nbad\n.\r\nQUIT\r\n"[..], &b".\r\nQUIT\r\n"[..]),
            (b"bad\rline\r\n.\r\nRSET\r\n", b".\r\nRSET\r\n"),
            (b"\n.\r\n", b".\r\n"),
            (b"x\r\r\n.\r\n", b".\r\n"),
        ] {
            let mut conn = connection_that_sent(input).await;
            // A limit of 2 bytes: oversized too, the bare line ending is still what is reported.
            let got = read_body(&mut conn, 2).await.unwrap();
            assert!(
                matches!(got, Some(Body::BareLineEnding)),
                "{input:?}: {got:?}"
            );
            assert_eq!(conn.buffered(), rest, "{input:?}");
        }
    }

    #[tokio::test]
    async fn a_crlf_split_between_long_line_pieces_is_not_bare() {
        let mut input = vec![b'x'; SEGMENT - 1];
        input.extend_from_slice(b"\r\n.\r\n");
        let input: &'static [u8] = input.leak();
        match body_of(input, 1 << 20).await {
            Some(Body::Complete(body)) => assert_eq!(body.len(), SEGMENT + 1),
            other => panic!("{other:?}"),
        }
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
