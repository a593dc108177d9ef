//! PROXY protocol v1/v2: `examine` as the listener drives it (read exactly what it asks for,
//! examine again), so a header is taken with exactly its own bytes; a header it accepts, written
//! again in v1 and v2, reads back the same.

use std::net::SocketAddr;
use tern::proxy::{Progress, ProxyHeader, examine};

/// Fuzz target: input = the first bytes of a connection from a trusted proxy.
pub fn proxy(data: &[u8]) {
    let _ = examine(data);
    let mut taken = 0;
    // Each step takes at least one byte, so this many steps always suffice.
    for _ in 0..=data.len() + 1 {
        match examine(&data[..taken]) {
            Ok(Progress::Need(n)) => {
                assert!(n > 0, "examine asked for nothing");
                if taken + n > data.len() {
                    return;
                }
                taken += n;
            }
            Ok(Progress::Done(header)) => {
                check_done(header);
                return;
            }
            Err(_) => return,
        }
    }
    panic!("examine did not finish within {} steps", data.len() + 2);
}

/// The header written again reads back the same, in both versions.
fn check_done(header: ProxyHeader) {
    let (Some(source), Some(destination)) = (header.source, header.destination) else {
        assert_eq!(header.source, header.destination, "half an address pair");
        return;
    };
    assert_eq!(source.is_ipv4(), destination.is_ipv4(), "mixed families");
    for encoded in [v1(source, destination), v2(source, destination)] {
        assert_eq!(
            examine(&encoded).ok(),
            Some(Progress::Done(header)),
            "{encoded:?} does not read back"
        );
    }
}

fn v1(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    )
    .into_bytes()
}

fn v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    let mut addresses = Vec::new();
    match (source, destination) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            addresses.extend_from_slice(&s.ip().octets());
            addresses.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            out.push(0x21);
            addresses.extend_from_slice(&s.ip().octets());
            addresses.extend_from_slice(&d.ip().octets());
        }
        _ => unreachable!("checked by the caller"),
    }
    addresses.extend_from_slice(&source.port().to_be_bytes());
    addresses.extend_from_slice(&destination.port().to_be_bytes());
    out.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    out.extend_from_slice(&addresses);
    out
}
