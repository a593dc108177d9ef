//! A small deterministic mutator for the bounded run in `cargo test`: no coverage feedback,
//! only byte edits, protocol tokens and splices of the corpus, from a fixed seed so a failure
//! reproduces. `make fuzz` is the real search; this catches what a change breaks near the corpus.

/// Tokens that steer the readers into their interesting paths.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r",
    b"\n",
    b".\r\n",
    b"\r\n.\r\n",
    b"{5}\r\n",
    b"{99999}",
    b"~{3+}\r\n",
    b"\"",
    b"\\",
    b"(",
    b")",
    b" ",
    b"PROXY TCP4 ",
    b"\r\n\r\n\0\r\nQUIT\n",
    b"MAIL FROM:<",
    b"RCPT TO:<",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"--b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"=?utf-8?B?",
    b"\xff\xff\xff\xff",
    b"\0\0\0",
];

/// FNV-1a of `bytes`: a seed, or a short name for an input.
pub fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// A xorshift generator: fast, seedable, good enough to pick edits.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `name` (a target), so each target gets its own sequence.
    pub fn new(name: &str) -> Rng {
        Rng(hash(name.as_bytes()) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Mutates `input` in place with one to four edits; `other` is a splice partner.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8], max_len: usize) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(8) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = rng.next_u64() as u8,
            2 => input.insert(at, rng.next_u64() as u8),
            3 if at < input.len() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                input.splice(at..at, other[from..end].iter().copied());
            }
            6 if at < input.len() => {
                let end = (at + 1 + rng.below(32)).min(input.len());
                let chunk = input[at..end].to_vec();
                input.splice(at..at, chunk);
            }
            _ if !input.is_empty() => input[0] = rng.next_u64() as u8,
            _ => input.push(rng.next_u64() as u8),
        }
    }
    input.truncate(max_len);
}
