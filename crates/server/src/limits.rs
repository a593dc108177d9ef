//! Connection admission: a cap on connections per client IP and in all, so one client cannot
//! exhaust the server. A permit is held for the life of the connection.
//!
//! A connection from a trusted PROXY-protocol load balancer is admitted in two steps: at
//! accept it counts toward the total only ([`ConnectionLimiter::admit_unattributed`]), and
//! once its header names the real client it takes that client's per-IP slot
//! ([`ConnectionPermit::attribute`]). The per-IP cap thus limits clients, not the proxy.
//!
//! An IPv6 client counts by its /64: one host is given a whole /64 and can pick any address in
//! it, so counting single addresses would cap nothing ([`client_key`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tern_core::net::client_key;

/// Counts open connections per IP and in total.
#[derive(Clone)]
pub struct ConnectionLimiter {
    shared: Arc<Shared>,
}

/// The counts and caps, shared by the limiter and every permit.
struct Shared {
    counts: Mutex<Counts>,
    per_ip: usize,
    total: usize,
}

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl Shared {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        tern_core::sync::lock(&self.counts)
    }
}

impl Counts {
    /// Takes a per-IP slot for `ip` (its [`client_key`]) if it has one free.
    fn take_ip(&mut self, ip: IpAddr, per_ip: usize) -> Result<(), Refusal> {
        let ip = client_key(ip);
        if self.by_ip.get(&ip).copied().unwrap_or(0) >= per_ip {
            return Err(Refusal::PerIp);
        }
        *self.by_ip.entry(ip).or_insert(0) += 1;
        Ok(())
    }

    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.by_ip.get_mut(&client_key(ip)) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_ip.remove(&client_key(ip));
            }
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This IP already has the maximum number of connections.
    PerIp,
    /// The server already has the maximum number of connections.
    Total,
}

impl ConnectionLimiter {
    /// A limiter allowing `per_ip` connections per address and `total` in all.
    pub fn new(per_ip: usize, total: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            shared: Arc::new(Shared {
                counts: Mutex::default(),
                per_ip,
                total,
            }),
        }
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut counts = self.shared.counts();
        if counts.total >= self.shared.total {
            return Err(Refusal::Total);
        }
        counts.take_ip(ip, self.shared.per_ip)?;
        counts.total += 1;
        Ok(ConnectionPermit {
            shared: self.shared.clone(),
            ip: Some(ip),
        })
    }

    /// Admits a connection whose client is not known yet (one from a PROXY-protocol load
    /// balancer) under the total cap only; [`ConnectionPermit::attribute`] charges it to its
    /// client later.
    pub fn admit_unattributed(&self) -> Result<ConnectionPermit, Refusal> {
        let mut counts = self.shared.counts();
        if counts.total >= self.shared.total {
            return Err(Refusal::Total);
        }
        counts.total += 1;
        Ok(ConnectionPermit {
            shared: self.shared.clone(),
            ip: None,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.shared.counts().total
    }
}

/// Releases its slots when dropped.
pub struct ConnectionPermit {
    shared: Arc<Shared>,
    /// The client it counts against; `None` until a proxied connection names its client.
    ip: Option<IpAddr>,
}

impl ConnectionPermit {
    /// Charges the connection to `ip` under the per-IP cap (moving it from any client it was
    /// charged to before). On refusal the permit still holds its total slot until dropped.
    pub fn attribute(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        if self.ip == Some(ip) {
            return Ok(());
        }
        let mut counts = self.shared.counts();
        counts.take_ip(ip, self.shared.per_ip)?;
        if let Some(old) = self.ip.replace(ip) {
            counts.release_ip(old);
        }
        Ok(())
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.shared.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            counts.release_ip(ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_caps_and_release() {
        let limiter = ConnectionLimiter::new(2, 3);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let p1 = limiter.admit(a).unwrap();
        let _p2 = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).err(), Some(Refusal::PerIp));
        let _p3 = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).err(), Some(Refusal::Total));
        drop(p1);
        let _p4 = limiter.admit(a).expect("a released slot is reusable");
        assert_eq!(limiter.open(), 3);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let limiter = ConnectionLimiter::new(2, 10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = limiter.admit(ip("2001:db8:1:2::1")).unwrap();
        let _second = limiter.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        // Any other address in the same /64 is the same client.
        assert_eq!(
            limiter.admit(ip("2001:db8:1:2:abcd::7")).err(),
            Some(Refusal::PerIp)
        );
        // The next /64 is another client.
        let _other = limiter.admit(ip("2001:db8:1:3::1")).unwrap();
        drop(first);
        let _again = limiter.admit(ip("2001:db8:1:2:1234::1")).unwrap();
        // IPv4, also written IPv4-mapped, counts per address.
        let _v4 = limiter.admit(ip("192.0.2.1")).unwrap();
        let _mapped = limiter.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(limiter.admit(ip("192.0.2.1")).err(), Some(Refusal::PerIp));
        let _v4b = limiter.admit(ip("192.0.2.2")).unwrap();
        assert_eq!(client_key(ip("2001:db8::1")), ip("2001:db8::"));
    }

    #[test]
    fn proxied_connections_count_against_their_client() {
        let limiter = ConnectionLimiter::new(1, 3);
        let proxy: IpAddr = "127.0.0.254".parse().unwrap();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        // The proxy's own address never fills up: only the total cap applies at accept.
        let mut p1 = limiter.admit_unattributed().unwrap();
        let mut p2 = limiter.admit_unattributed().unwrap();
        assert_eq!(limiter.open(), 2);
        p1.attribute(client).unwrap();
        assert_eq!(p2.attribute(client), Err(Refusal::PerIp));
        assert_eq!(limiter.admit(client).err(), Some(Refusal::PerIp));
        let _direct = limiter
            .admit(proxy)
            .expect("the proxy's IP has its own slot");
        assert_eq!(limiter.admit_unattributed().err(), Some(Refusal::Total));
        drop(p2);
        drop(p1);
        assert_eq!(limiter.open(), 1);
        let _again = limiter
            .admit(client)
            .expect("released by the proxied permit");
    }
}
