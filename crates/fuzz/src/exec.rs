//! Running the async readers over bytes in memory: a [`Connection`] whose peer is a
//! [`Replay`], and a poll loop that needs no runtime (a replayed peer is always ready).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::task::{Context, Poll, Waker};
use tern_core::net::{Connection, Replay, Stream};

/// Runs `future` to completion. A replayed peer never makes a reader wait, so a future that
/// is still pending after a poll is a finding (it would hang on a real socket too, waiting
/// for bytes the peer never sends after it closed).
pub fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a reader waited on an in-memory peer"),
    }
}

/// Splits fuzz input into the piece size (first byte; 0: everything in one read) and the
/// stream; the pieces are what each socket read returns.
pub fn pieces(data: &[u8]) -> (Vec<Vec<u8>>, &[u8]) {
    let Some((&size, stream)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let pieces = match size {
        0 => vec![stream.to_vec()],
        n => stream.chunks(n as usize).map(<[u8]>::to_vec).collect(),
    };
    (pieces, stream)
}

/// A server connection whose client sends `pieces`, one per read, then closes.
pub fn connection(pieces: Vec<Vec<u8>>) -> Connection {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 25));
    Connection::new(Stream::Replay(Replay::new(pieces)), addr, addr)
}

/// Everything the connection has not consumed: its buffer, then the rest of the stream.
pub fn unread(conn: &mut Connection) -> Vec<u8> {
    let mut rest = Vec::new();
    loop {
        rest.extend_from_slice(conn.buffered());
        let n = conn.buffered().len();
        conn.consume(n);
        match run(conn.read_more()) {
            Ok(true) => {}
            Ok(false) | Err(_) => return rest,
        }
    }
}
