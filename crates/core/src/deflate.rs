//! Raw DEFLATE in both directions of a connection (IMAP COMPRESS=DEFLATE, RFC 4978): what is
//! sent is compressed and sync-flushed at each flush, so the peer can decode every response
//! as soon as it arrives; what is received is inflated in bounded steps, so a small
//! compressed input cannot make one read hold megabytes (a deflate bomb).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;

/// Most bytes one [`Deflate::inflate`] call adds to the read buffer.
pub const INFLATE_STEP: usize = 64 * 1024;

/// The compression state of one connection.
pub struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed input received and not inflated yet.
    pending: Vec<u8>,
    /// The last inflate step filled up: the inflater may hold more output.
    full: bool,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate::new()
    }
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl Deflate {
    /// Raw deflate (no zlib header), as RFC 4978 requires.
    pub fn new() -> Deflate {
        Deflate {
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            pending: Vec::new(),
            full: false,
        }
    }

    /// Compresses all of `input` onto `out`, ending with a sync flush.
    pub fn deflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut consumed = 0;
        loop {
            out.reserve(input.len() / 2 + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(&input[consumed..], out, FlushCompress::Sync)
                .map_err(broken)?;
            consumed += (self.compress.total_in() - before) as usize;
            // Done when all input is in and the flush left spare room (nothing held back).
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }

    /// Whether received input may still hold output: bytes not inflated yet, or a last step
    /// that stopped because it was full.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.full
    }

    /// Adds received compressed bytes.
    pub fn receive(&mut self, input: &[u8]) {
        self.pending.extend_from_slice(input);
    }

    /// Inflates waiting input onto `out`, adding at most [`INFLATE_STEP`] bytes; returns how
    /// many were added (0 when the waiting input holds no complete output yet).
    pub fn inflate(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut step = Vec::with_capacity(INFLATE_STEP);
        loop {
            let (taken, made) = (self.decompress.total_in(), step.len());
            let status = self
                .decompress
                .decompress_vec(&self.pending, &mut step, FlushDecompress::Sync)
                .map_err(broken)?;
            let used = (self.decompress.total_in() - taken) as usize;
            self.pending.drain(..used);
            if status == Status::StreamEnd {
                return Err(broken("the stream ended"));
            }
            let progressed = used > 0 || step.len() > made;
            if step.len() >= step.capacity() || !progressed {
                break;
            }
        }
        self.full = step.len() >= step.capacity();
        out.extend_from_slice(&step);
        Ok(step.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_pieces_and_bounds_each_step() {
        let (mut a, mut b) = (Deflate::new(), Deflate::new());
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        let mut wire = Vec::new();
        for part in text.chunks(7_000) {
            a.deflate(part, &mut wire).unwrap();
        }
        // The receiver gets the wire in odd-sized pieces and inflates step by step.
        let mut got = Vec::new();
        for piece in wire.chunks(333) {
            b.receive(piece);
            loop {
                let before = got.len();
                let added = b.inflate(&mut got).unwrap();
                assert!(added < 2 * INFLATE_STEP);
                assert_eq!(got.len() - before, added);
                if added == 0 {
                    break;
                }
            }
        }
        assert_eq!(got, text);
    }

    #[test]
    fn a_bomb_is_inflated_a_step_at_a_time() {
        let (mut a, mut b) = (Deflate::new(), Deflate::new());
        let mut wire = Vec::new();
        a.deflate(&vec![b'a'; 10 * 1024 * 1024], &mut wire).unwrap();
        assert!(wire.len() < 64 * 1024);
        b.receive(&wire);
        let mut got = Vec::new();
        assert!(b.inflate(&mut got).unwrap() >= INFLATE_STEP);
        assert!(got.len() < 2 * INFLATE_STEP);
        assert!(b.has_pending());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut b = Deflate::new();
        b.receive(&[0xff; 64]);
        assert!(b.inflate(&mut Vec::new()).is_err());
    }
}
