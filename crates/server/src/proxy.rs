//! The PROXY protocol (HAProxy's `send-proxy` / `send-proxy-v2`): a load balancer in TCP mode
//! opens each connection with a short header that names the real client, and the mail protocol
//! follows.
//!
//! [`read_header`] reads exactly the header's bytes and not one more, so the client protocol's
//! first bytes (a TLS ClientHello on an implicit-TLS port) stay in the socket for the session.
//! The decision of how many bytes to read next is pure ([`examine`] does no I/O), which keeps
//! the parser testable on plain byte slices. [`TrustedProxies`] says which TCP peers must send
//! a header: only a listed load balancer may claim another client's address.
//!
//! Both versions are accepted: v2 (binary; TCP over IPv4 or IPv6, LOCAL for health checks,
//! TLVs skipped) and v1 (one text line of at most 107 bytes).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The fixed part of a v2 header: signature, version/command, family/protocol, length.
const V2_FIXED: usize = 16;

/// The most address and TLV bytes a v2 header may carry. The field allows 65535, but a header
/// from HAProxy is a few dozen bytes; anything this large is abuse, not a load balancer.
pub const V2_MAX_PAYLOAD: usize = 2048;

/// The longest v1 line, CRLF included (the specification's own bound).
pub const V1_MAX_LINE: usize = 107;

/// The text every v1 header starts with.
const V1_PREFIX: &[u8] = b"PROXY ";

/// What a PROXY header says about the connection. `None` addresses mean the header carried
/// none (v2 LOCAL, as in HAProxy's health checks; v2 UNSPEC; v1 UNKNOWN): the caller keeps the
/// TCP peer's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyHeader {
    /// The real client.
    pub source: Option<SocketAddr>,
    /// The address the client connected to (the load balancer's frontend).
    pub destination: Option<SocketAddr>,
}

/// Why a PROXY header was refused. The connection cannot be served after any of these: the
/// stream position inside the header is unknown.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// Not a PROXY header, or a header that breaks the specification.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// A well-formed header for something a mail listener cannot serve (a version other than
    /// 2, UDP, Unix sockets).
    #[error("unsupported PROXY header: {0}")]
    Unsupported(&'static str),
    /// A header longer than [`V2_MAX_PAYLOAD`] or [`V1_MAX_LINE`] allows.
    #[error("PROXY header too long: {0} bytes")]
    TooLong(usize),
    /// The header did not arrive before the deadline.
    #[error("no complete PROXY header before the deadline")]
    TimedOut,
    /// The socket failed or closed inside the header.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// What the bytes read so far say, from [`examine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The header is incomplete: read exactly this many more bytes, then examine again. The
    /// count never reaches past the header's end.
    Need(usize),
    /// The bytes examined are exactly one complete header.
    Done(ProxyHeader),
}

/// Reads one PROXY header (v1 or v2) from `stream`, consuming exactly its bytes.
///
/// Fails with [`ProxyError::TimedOut`] if the whole header has not arrived by `deadline`. A
/// peer that closes the connection inside the header yields [`ProxyError::Io`] with
/// `UnexpectedEof`.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Instant,
) -> Result<ProxyHeader, ProxyError> {
    match tokio::time::timeout_at(deadline, read_until_complete(stream)).await {
        Ok(result) => result,
        Err(_) => Err(ProxyError::TimedOut),
    }
}

async fn read_until_complete<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<ProxyHeader, ProxyError> {
    let mut buf = Vec::with_capacity(64);
    loop {
        match examine(&buf)? {
            Progress::Done(header) => return Ok(header),
            Progress::Need(n) => {
                let start = buf.len();
                buf.resize(start + n, 0);
                stream.read_exact(&mut buf[start..]).await?;
            }
        }
    }
}

/// Looks at the first bytes of a connection and says whether they are a complete header, the
/// start of one (and how many bytes to read next), or not a header at all. Pure: no I/O.
///
/// `buf` must be exactly what the stream delivered so far: a `buf` with bytes past a complete
/// header is malformed, since [`Progress::Need`] never asks for them.
pub fn examine(buf: &[u8]) -> Result<Progress, ProxyError> {
    match buf.first() {
        None => Ok(Progress::Need(1)),
        Some(b'\r') => examine_v2(buf),
        Some(b'P') => examine_v1(buf),
        Some(_) => Err(ProxyError::Malformed("no PROXY signature")),
    }
}

fn examine_v2(buf: &[u8]) -> Result<Progress, ProxyError> {
    let sig_len = buf.len().min(V2_SIGNATURE.len());
    if buf[..sig_len] != V2_SIGNATURE[..sig_len] {
        return Err(ProxyError::Malformed("no PROXY signature"));
    }
    // The signature goes byte by byte so that anything else is refused at its first wrong
    // byte rather than at the deadline.
    if buf.len() < V2_SIGNATURE.len() {
        return Ok(Progress::Need(1));
    }
    if buf.len() < V2_FIXED {
        return Ok(Progress::Need(V2_FIXED - buf.len()));
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::Unsupported(
            "v2 signature with a version other than 2",
        ));
    }
    let local = match version_command & 0x0f {
        0x0 => true,
        0x1 => false,
        _ => return Err(ProxyError::Malformed("unknown v2 command")),
    };
    let family = buf[13];
    let payload_len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if payload_len > V2_MAX_PAYLOAD {
        return Err(ProxyError::TooLong(V2_FIXED + payload_len));
    }
    let total = V2_FIXED + payload_len;
    if buf.len() < total {
        return Ok(Progress::Need(total - buf.len()));
    }
    if buf.len() > total {
        return Err(ProxyError::Malformed("bytes past the end of the header"));
    }
    let payload = &buf[V2_FIXED..];
    // LOCAL: the proxy speaks for itself (a health check). The specification says to ignore
    // the family and the address block, whatever they hold.
    if local {
        return Ok(Progress::Done(ProxyHeader::default()));
    }
    // Whatever follows the addresses is TLVs (ALPN, TLS details, unique ids): not needed here.
    let header = match family {
        0x00 => ProxyHeader::default(),
        0x11 => {
            let a = payload
                .get(..12)
                .ok_or(ProxyError::Malformed("v2 TCP4 address block too short"))?;
            let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]));
            let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
            ProxyHeader {
                source: Some(SocketAddr::new(ip(0), port(8))),
                destination: Some(SocketAddr::new(ip(4), port(10))),
            }
        }
        0x21 => {
            let a = payload
                .get(..36)
                .ok_or(ProxyError::Malformed("v2 TCP6 address block too short"))?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
            ProxyHeader {
                source: Some(SocketAddr::new(ip(0), port(32))),
                destination: Some(SocketAddr::new(ip(16), port(34))),
            }
        }
        0x12 | 0x22 => return Err(ProxyError::Unsupported("v2 UDP on a TCP listener")),
        0x31 | 0x32 => return Err(ProxyError::Unsupported("v2 Unix socket addresses")),
        _ => {
            return Err(ProxyError::Malformed(
                "unknown v2 address family or protocol",
            ));
        }
    };
    Ok(Progress::Done(header))
}

fn examine_v1(buf: &[u8]) -> Result<Progress, ProxyError> {
    let prefix_len = buf.len().min(V1_PREFIX.len());
    if buf[..prefix_len] != V1_PREFIX[..prefix_len] {
        return Err(ProxyError::Malformed("no PROXY signature"));
    }
    // The line is read a byte at a time, so its LF can only be the last byte of `buf`.
    match buf.iter().position(|&b| b == b'\n') {
        None if buf.len() >= V1_MAX_LINE => Err(ProxyError::TooLong(buf.len())),
        None => Ok(Progress::Need(1)),
        Some(end) if end + 1 != buf.len() => {
            Err(ProxyError::Malformed("bytes past the end of the header"))
        }
        Some(end) => match buf[..end].strip_suffix(b"\r") {
            Some(line) => parse_v1_line(line).map(Progress::Done),
            None => Err(ProxyError::Malformed("v1 line not ended by CRLF")),
        },
    }
}

/// Parses `PROXY TCP4|TCP6 src dst sport dport` or `PROXY UNKNOWN ...` (CRLF removed).
fn parse_v1_line(line: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 line not ASCII"))?;
    let rest = line
        .strip_prefix("PROXY ")
        .ok_or(ProxyError::Malformed("no PROXY signature"))?;
    let mut fields = rest.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        // The sender may append anything after UNKNOWN; the receiver ignores it.
        return Ok(ProxyHeader::default());
    }
    let v6 = match family {
        "TCP4" => false,
        "TCP6" => true,
        _ => return Err(ProxyError::Unsupported("v1 protocol other than TCP4/TCP6")),
    };
    let mut next = || {
        fields
            .next()
            .ok_or(ProxyError::Malformed("v1 line has too few fields"))
    };
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if fields.next().is_some() {
        return Err(ProxyError::Malformed("v1 line has too many fields"));
    }
    let ip = |text: &str| -> Result<IpAddr, ProxyError> {
        let parsed = if v6 {
            text.parse::<Ipv6Addr>().map(IpAddr::V6)
        } else {
            text.parse::<Ipv4Addr>().map(IpAddr::V4)
        };
        parsed.map_err(|_| ProxyError::Malformed("v1 address does not match its family"))
    };
    Ok(ProxyHeader {
        source: Some(SocketAddr::new(ip(src)?, v1_port(sport)?)),
        destination: Some(SocketAddr::new(ip(dst)?, v1_port(dport)?)),
    })
}

/// A v1 port: decimal digits only, no sign, no leading zero (the specification's wording).
fn v1_port(text: &str) -> Result<u16, ProxyError> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero {
        return Err(ProxyError::Malformed("v1 port is not a decimal number"));
    }
    text.parse()
        .map_err(|_| ProxyError::Malformed("v1 port out of range"))
}

/// The networks whose connections must start with a PROXY header: the load balancers. Any
/// other peer is a direct client, served without one. Empty means PROXY is disabled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

/// A `proxy_protocol_from` entry that is not an IP address or a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{entry:?} is not an IP address or CIDR network: {reason}")]
pub struct InvalidNetwork {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TrustedProxies {
    /// Parses entries such as `10.0.0.0/8`, `127.0.0.254` (one host) or `fd00::/8`. Host bits
    /// below the prefix are ignored (`10.1.2.3/8` means `10.0.0.0/8`); IPv4-mapped IPv6
    /// networks are stored as IPv4.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, InvalidNetwork> {
        let mut networks = Vec::with_capacity(entries.len());
        for entry in entries {
            let bad = |reason| InvalidNetwork {
                entry: entry.clone(),
                reason,
            };
            let text = entry.trim();
            let (addr, prefix) = match text.split_once('/') {
                Some((addr, prefix)) => (addr, Some(prefix)),
                None => (text, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| bad("bad IP address"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                    .parse::<u8>()
                    .map_err(|_| bad("prefix length too large"))?,
                Some(_) => return Err(bad("prefix length is not a number")),
            };
            if prefix > max {
                return Err(bad("prefix length too large"));
            }
            let (ip, prefix) = match ip {
                IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                    Some(v4) => (IpAddr::V4(v4), prefix - 96),
                    None => (ip, prefix),
                },
                _ => (ip, prefix),
            };
            networks.push((mask(ip, prefix), prefix));
        }
        Ok(TrustedProxies(networks))
    }

    /// Whether no network is trusted (PROXY disabled).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is inside one of the networks. An IPv4-mapped IPv6 peer (a dual-stack
    /// socket's view of an IPv4 client) matches IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0
            .iter()
            .any(|&(net, prefix)| net.is_ipv4() == ip.is_ipv4() && mask(ip, prefix) == net)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (net, prefix)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}/{prefix}")?;
        }
        Ok(())
    }
}

/// `ip` with every bit below the first `prefix` bits cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & keep))
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & keep))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::any;
    use std::time::Duration;
    use tern_core::config::Config;
    use tokio::io::AsyncWriteExt;

    /// A v2 header as HAProxy builds one: `command` 0x20 LOCAL / 0x21 PROXY, then `payload`.
    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(command);
        out.push(family);
        let len = u16::try_from(payload.len()).unwrap();
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn tcp4_payload(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p
    }

    fn tcp6_payload(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&src.octets());
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    /// Parses `bytes` from an in-memory reader; also returns what was left unread.
    async fn parse(bytes: &[u8]) -> (Result<ProxyHeader, ProxyError>, Vec<u8>) {
        let mut reader = bytes;
        let result = read_header(&mut reader, soon()).await;
        (result, reader.to_vec())
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[tokio::test]
    async fn v2_tcp4() {
        let mut bytes = v2(
            0x21,
            0x11,
            &tcp4_payload([192, 0, 2, 7], [10, 0, 0, 1], 40000, 25),
        );
        bytes.extend_from_slice(b"EHLO");
        let (result, rest) = parse(&bytes).await;
        let header = result.unwrap();
        assert_eq!(header.source, addr("192.0.2.7:40000"));
        assert_eq!(header.destination, addr("10.0.0.1:25"));
        assert_eq!(rest, b"EHLO");
    }

    #[tokio::test]
    async fn v2_tcp6() {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let bytes = v2(0x21, 0x21, &tcp6_payload(src, dst, 50000, 993));
        let header = parse(&bytes).await.0.unwrap();
        assert_eq!(header.source, addr("[2001:db8::7]:50000"));
        assert_eq!(header.destination, addr("[2001:db8::1]:993"));
    }

    #[tokio::test]
    async fn v2_local_and_unspec_carry_no_address() {
        // LOCAL ignores whatever family and addresses follow (HAProxy's health checks).
        let local = v2(0x20, 0x11, &tcp4_payload([1, 2, 3, 4], [5, 6, 7, 8], 1, 2));
        assert_eq!(parse(&local).await.0.unwrap(), ProxyHeader::default());
        let local_empty = v2(0x20, 0x00, b"");
        assert_eq!(parse(&local_empty).await.0.unwrap(), ProxyHeader::default());
        let unspec = v2(0x21, 0x00, b"");
        assert_eq!(parse(&unspec).await.0.unwrap(), ProxyHeader::default());
    }

    #[tokio::test]
    async fn v2_tlvs_are_skipped_and_not_overread() {
        let mut payload = tcp4_payload([203, 0, 113, 9], [10, 0, 0, 1], 1234, 587);
        // PP2_TYPE_ALPN "smtp", then PP2_TYPE_UNIQUE_ID of 8 bytes.
        payload.extend_from_slice(&[0x01, 0x00, 0x04]);
        payload.extend_from_slice(b"smtp");
        payload.extend_from_slice(&[0x05, 0x00, 0x08]);
        payload.extend_from_slice(&[9; 8]);
        let mut bytes = v2(0x21, 0x11, &payload);
        bytes.extend_from_slice(b"\x16\x03\x01"); // a TLS ClientHello starts here
        let (result, rest) = parse(&bytes).await;
        assert_eq!(result.unwrap().source, addr("203.0.113.9:1234"));
        assert_eq!(rest, b"\x16\x03\x01");
    }

    #[tokio::test]
    async fn v1_variants() {
        let cases: &[(&[u8], Option<SocketAddr>, Option<SocketAddr>)] = &[
            (
                b"PROXY TCP4 192.0.2.1 10.0.0.1 56324 25\r\n",
                addr("192.0.2.1:56324"),
                addr("10.0.0.1:25"),
            ),
            (
                b"PROXY TCP6 2001:db8::1 ::1 65535 143\r\n",
                addr("[2001:db8::1]:65535"),
                addr("[::1]:143"),
            ),
            (b"PROXY UNKNOWN\r\n", None, None),
            (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None, None),
            (
                b"PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n",
                addr("0.0.0.0:0"),
                addr("255.255.255.255:0"),
            ),
        ];
        for (line, source, destination) in cases {
            let mut bytes = line.to_vec();
            bytes.extend_from_slice(b"A1 LOGIN");
            let (result, rest) = parse(&bytes).await;
            let header = result.unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(header.source, *source, "{line:?}");
            assert_eq!(header.destination, *destination, "{line:?}");
            assert_eq!(rest, b"A1 LOGIN", "{line:?}");
        }
        // The longest legal line (TCP6 with full-width addresses) is exactly 104 bytes + CRLF.
        let widest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
                      ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert!(widest.len() <= V1_MAX_LINE);
        assert!(parse(widest.as_bytes()).await.0.is_ok());
    }

    #[tokio::test]
    async fn malformed_headers() {
        let long_v1 = {
            let mut l = b"PROXY UNKNOWN ".to_vec();
            l.resize(200, b'x');
            l
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("a mail command", b"EHLO client.example\r\n".to_vec()),
            (
                "a TLS ClientHello",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
            ),
            ("bad v2 signature", {
                let mut b = v2(0x21, 0x11, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
                b[8] = b'X';
                b
            }),
            (
                "v2 version 1",
                v2(0x11, 0x11, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            ),
            (
                "v2 version 3",
                v2(0x31, 0x11, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            ),
            (
                "v2 command 2",
                v2(0x22, 0x11, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            ),
            (
                "v2 TCP4 block too short",
                v2(0x21, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8]),
            ),
            ("v2 TCP6 block too short", v2(0x21, 0x21, &[0; 20])),
            (
                "v2 UDP",
                v2(0x21, 0x12, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)),
            ),
            ("v2 unix", v2(0x21, 0x31, &[0; 216])),
            ("v2 unknown family", v2(0x21, 0x41, &[0; 12])),
            ("v2 overlong", v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD + 1])),
            ("v2 maximal length field", {
                let mut b = V2_SIGNATURE.to_vec();
                b.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
                b
            }),
            (
                "v1 lowercase",
                b"proxy TCP4 1.1.1.1 2.2.2.2 1 2\r\n".to_vec(),
            ),
            ("v1 bare LF", b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n".to_vec()),
            (
                "v1 CR inside",
                b"PROXY TCP4 1.1.1.1\r2.2.2.2 1 2\r\n".to_vec(),
            ),
            ("v1 UDP4", b"PROXY UDP4 1.1.1.1 2.2.2.2 1 2\r\n".to_vec()),
            (
                "v1 v6 address as TCP4",
                b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(),
            ),
            (
                "v1 v4 address as TCP6",
                b"PROXY TCP6 1.1.1.1 2.2.2.2 1 2\r\n".to_vec(),
            ),
            (
                "v1 port too large",
                b"PROXY TCP4 1.1.1.1 2.2.2.2 65536 2\r\n".to_vec(),
            ),
            (
                "v1 port with sign",
                b"PROXY TCP4 1.1.1.1 2.2.2.2 +1 2\r\n".to_vec(),
            ),
            (
                "v1 port leading zero",
                b"PROXY TCP4 1.1.1.1 2.2.2.2 01 2\r\n".to_vec(),
            ),
            (
                "v1 missing field",
                b"PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n".to_vec(),
            ),
            (
                "v1 extra field",
                b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2 3\r\n".to_vec(),
            ),
            (
                "v1 double space",
                b"PROXY TCP4  1.1.1.1 2.2.2.2 1 2\r\n".to_vec(),
            ),
            ("v1 no family", b"PROXY \r\n".to_vec()),
            (
                "v1 not UTF-8",
                b"PROXY TCP4 \xff.1.1.1 2.2.2.2 1 2\r\n".to_vec(),
            ),
            ("v1 overlong", long_v1),
        ];
        for (what, bytes) in cases {
            let (result, _) = parse(&bytes).await;
            let err = result
                .err()
                .unwrap_or_else(|| panic!("{what} was accepted"));
            assert!(!matches!(err, ProxyError::TimedOut), "{what}: {err}");
        }
    }

    #[tokio::test]
    async fn errors_name_the_problem() {
        let overlong = v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD + 1]);
        assert!(matches!(
            parse(&overlong).await.0,
            Err(ProxyError::TooLong(_))
        ));
        let v1_long = [b"PROXY U".to_vec(), vec![b'x'; 200]].concat();
        assert!(matches!(
            parse(&v1_long).await.0,
            Err(ProxyError::TooLong(_))
        ));
        let udp = v2(0x21, 0x12, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
        assert!(matches!(
            parse(&udp).await.0,
            Err(ProxyError::Unsupported(_))
        ));
        assert!(matches!(
            parse(b"HELO x\r\n").await.0,
            Err(ProxyError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn garbage_is_refused_at_the_first_wrong_byte() {
        // The parser must not wait for 12 or 16 bytes before refusing: a client that sends
        // one wrong byte and then waits is refused at once, not at the deadline.
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"X").await.unwrap();
        let result = read_header(&mut server, soon()).await;
        assert!(matches!(result, Err(ProxyError::Malformed(_))));
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"\r\n\r\n\0\r\nQUIZ").await.unwrap();
        let result = read_header(&mut server, soon()).await;
        assert!(matches!(result, Err(ProxyError::Malformed(_))));
    }

    #[tokio::test]
    async fn truncated_headers_fail_at_end_of_stream() {
        let full = v2(0x21, 0x11, &tcp4_payload([1, 1, 1, 1], [2, 2, 2, 2], 1, 2));
        for cut in [1, 11, 12, 15, 16, 20, full.len() - 1] {
            let (result, _) = parse(&full[..cut]).await;
            match result {
                Err(ProxyError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let (result, _) = parse(b"PROXY TCP4 1.1.1.1 2.2.2.2 1 2\r").await;
        assert!(matches!(result, Err(ProxyError::Io(_))));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(50);
        let result = read_header(&mut server, deadline).await;
        assert!(matches!(result, Err(ProxyError::TimedOut)));
        // A header that stops half way is no better than none.
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"PROXY TCP4 1.1.1.1").await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        let result = read_header(&mut server, deadline).await;
        assert!(matches!(result, Err(ProxyError::TimedOut)));
    }

    #[tokio::test]
    async fn bytes_after_the_header_stay_in_the_socket() {
        // A real loopback socket with header and protocol bytes in one segment: whatever the
        // kernel has buffered, the header reader must take only the header.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_addr = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(server_addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let mut sent = v2(
            0x21,
            0x11,
            &tcp4_payload([198, 51, 100, 4], [127, 0, 0, 1], 9, 465),
        );
        sent.extend_from_slice(b"\x16\x03\x01 client hello");
        let v1 = b"PROXY TCP4 198.51.100.5 127.0.0.1 10 465\r\nA1 CAPABILITY\r\n";
        client.write_all(&sent).await.unwrap();
        let header = read_header(&mut server, soon()).await.unwrap();
        assert_eq!(header.source, addr("198.51.100.4:9"));
        let mut next = [0u8; 16];
        server.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"\x16\x03\x01 client hello");

        // The same over an in-memory pipe, with v1.
        let (mut client, mut server) = tokio::io::duplex(256);
        client.write_all(v1).await.unwrap();
        drop(client);
        let header = read_header(&mut server, soon()).await.unwrap();
        assert_eq!(header.source, addr("198.51.100.5:10"));
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"A1 CAPABILITY\r\n");
    }

    #[test]
    fn trusted_networks() {
        let entries: Vec<String> = ["127.0.0.254/32", "10.0.0.0/8", "192.168.1.7", "fd00::/8"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let trusted = TrustedProxies::parse(&entries).unwrap();
        let yes = [
            "127.0.0.254",
            "10.0.0.1",
            "10.255.255.255",
            "192.168.1.7",
            "fd12::1",
        ];
        let no = [
            "127.0.0.1",
            "11.0.0.1",
            "192.168.1.8",
            "fe80::1",
            "::1",
            "::ffff:11.0.0.1",
        ];
        for ip in yes {
            assert!(
                trusted.contains(ip.parse().unwrap()),
                "{ip} should be trusted"
            );
        }
        for ip in no {
            assert!(
                !trusted.contains(ip.parse().unwrap()),
                "{ip} should not be trusted"
            );
        }
        // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
        assert!(trusted.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(trusted.contains("::ffff:127.0.0.254".parse().unwrap()));
        assert_eq!(
            trusted.to_string(),
            "127.0.0.254/32, 10.0.0.0/8, 192.168.1.7/32, fd00::/8"
        );
    }

    #[test]
    fn trusted_network_edge_cases() {
        let parse = |list: &[&str]| {
            TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(parse(&[]).unwrap().is_empty());
        assert!(!parse(&[]).unwrap().contains("127.0.0.1".parse().unwrap()));
        let everyone = parse(&["0.0.0.0/0"]).unwrap();
        assert!(everyone.contains("203.0.113.1".parse().unwrap()));
        assert!(
            !everyone.contains("2001:db8::1".parse().unwrap()),
            "v4 /0 is not v6"
        );
        let host_bits = parse(&["10.1.2.3/8"]).unwrap();
        assert!(host_bits.contains("10.200.0.1".parse().unwrap()));
        let mapped = parse(&["::ffff:10.0.0.0/104"]).unwrap();
        assert!(mapped.contains("10.9.9.9".parse().unwrap()));
        assert!(
            parse(&[" 10.0.0.0/8 "]).is_ok(),
            "surrounding spaces are tolerated"
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/999",
        ] {
            let err = parse(&["127.0.0.1", bad]).err();
            let err = err.unwrap_or_else(|| panic!("{bad:?} was accepted"));
            assert_eq!(err.entry, bad);
        }
    }

    #[test]
    fn config_lists_trusted_proxies() {
        let trusted = |text: &str| {
            let config: Config = toml::from_str(text).unwrap();
            TrustedProxies::parse(&config.listeners.proxy_protocol_from)
        };
        let listed = "[listeners]\nproxy_protocol_from = [\"127.0.0.254/32\", \"10.0.0.0/8\"]\n";
        assert!(
            trusted(listed)
                .unwrap()
                .contains("10.3.3.3".parse().unwrap())
        );
        assert!(trusted("").unwrap().is_empty());
        let err = trusted("[listeners]\nproxy_protocol_from = [\"10.0.0.0/40\"]\n").unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (result, rest) = block_on(parse(&bytes));
            // Whatever the outcome, the reader never reads past a header.
            if result.is_ok() {
                proptest::prop_assert!(rest.len() < bytes.len());
            }
        }

        #[test]
        fn random_bytes_after_a_signature_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..300),
            v1 in any::<bool>(),
        ) {
            let mut bytes = if v1 { b"PROXY ".to_vec() } else { V2_SIGNATURE.to_vec() };
            bytes.extend_from_slice(&tail);
            let _ = block_on(parse(&bytes));
        }

        #[test]
        fn v2_headers_round_trip(
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            tlvs in proptest::collection::vec(any::<u8>(), 0..200),
            after in proptest::collection::vec(any::<u8>(), 0..50),
        ) {
            let mut payload = tcp4_payload(src, dst, sport, dport);
            payload.extend_from_slice(&tlvs);
            let mut bytes = v2(0x21, 0x11, &payload);
            bytes.extend_from_slice(&after);
            let (result, rest) = block_on(parse(&bytes));
            let header = result.unwrap();
            proptest::prop_assert_eq!(header.source, Some(SocketAddr::from((src, sport))));
            proptest::prop_assert_eq!(header.destination, Some(SocketAddr::from((dst, dport))));
            proptest::prop_assert_eq!(rest, after);
        }
    }
}
