//! Connection admission: caps on connections per client IP and in all, for each protocol
//! (SMTP, submission, IMAP, POP3; a protocol's implicit-TLS port counts with it) and for the
//! server as a whole, so one client, or a flood on one protocol, cannot exhaust the server. A
//! permit is held for the life of the connection.
//!
//! A connection from a trusted PROXY-protocol load balancer is admitted in two steps: at
//! accept it counts toward the totals only ([`ConnectionLimiter::admit_unattributed`]), and
//! once its header names the real client it takes that client's per-IP slots
//! ([`ConnectionPermit::attribute`]). The per-IP caps thus limit clients, not the proxy.
//!
//! An IPv6 client counts by its /64: one host is given a whole /64 and can pick any address in
//! it, so counting single addresses would cap nothing ([`client_key`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tern_core::config::{Limits, ProtocolCaps};
use tern_core::net::client_key;

/// The protocols whose connections are capped together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// SMTP (MX).
    Smtp = 0,
    /// Submission, with STARTTLS or implicit TLS.
    Submission = 1,
    /// IMAP, with STARTTLS or implicit TLS.
    Imap = 2,
    /// POP3, with STLS or implicit TLS.
    Pop3 = 3,
}

/// Counts open connections per IP and in total, for the server and for each protocol family.
#[derive(Clone)]
pub struct ConnectionLimiter {
    server: Arc<Scope>,
    families: Arc<[Arc<Scope>; 4]>,
}

/// One set of caps and its counts.
struct Scope {
    counts: Mutex<Counts>,
    per_ip: usize,
    total: usize,
    /// Whether a refusal here is the server's or the protocol's.
    server: bool,
}

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

impl Scope {
    fn new(per_ip: usize, total: usize, server: bool) -> Arc<Scope> {
        Arc::new(Scope {
            counts: Mutex::default(),
            per_ip,
            total,
            server,
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        tern_core::sync::lock(&self.counts)
    }

    /// Takes a slot in the total and, if `ip` is known, one of its per-IP slots.
    fn take(&self, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let mut counts = self.counts();
        if counts.total >= self.total {
            return Err(self.refusal(Refusal::Total));
        }
        if let Some(ip) = ip {
            counts
                .take_ip(ip, self.per_ip)
                .map_err(|r| self.refusal(r))?;
        }
        counts.total += 1;
        Ok(())
    }

    fn refusal(&self, server_kind: Refusal) -> Refusal {
        match (self.server, server_kind) {
            (true, kind) => kind,
            (false, Refusal::PerIp) => Refusal::ProtocolPerIp,
            (false, _) => Refusal::ProtocolTotal,
        }
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
        let key = client_key(ip);
        if let Some(n) = self.by_ip.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_ip.remove(&key);
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
    /// This IP already has the maximum number of connections of this protocol.
    ProtocolPerIp,
    /// The server already has the maximum number of connections of this protocol.
    ProtocolTotal,
}

impl ConnectionLimiter {
    /// A limiter allowing `per_ip` connections per address and `total` in all, with no
    /// separate caps per protocol.
    pub fn new(per_ip: usize, total: usize) -> ConnectionLimiter {
        let open = ProtocolCaps {
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
        };
        ConnectionLimiter::with_protocols(per_ip, total, [open; 4])
    }

    /// A limiter with the caps of `[limits]`.
    pub fn from_limits(limits: &Limits) -> ConnectionLimiter {
        ConnectionLimiter::with_protocols(
            limits.max_connections_per_ip,
            limits.max_connections,
            [limits.smtp, limits.submission, limits.imap, limits.pop3],
        )
    }

    /// The server's caps, and each family's (in [`Family`] order).
    pub fn with_protocols(
        per_ip: usize,
        total: usize,
        families: [ProtocolCaps; 4],
    ) -> ConnectionLimiter {
        ConnectionLimiter {
            server: Scope::new(per_ip, total, true),
            families: Arc::new(
                families.map(|c| Scope::new(c.max_connections_per_ip, c.max_connections, false)),
            ),
        }
    }

    /// Admits a connection of `family` from `ip`, or says why not.
    pub fn admit(&self, family: Family, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        self.admit_as(family, Some(ip))
    }

    /// Admits a connection whose client is not known yet (one from a PROXY-protocol load
    /// balancer) under the total caps only; [`ConnectionPermit::attribute`] charges it to its
    /// client later.
    pub fn admit_unattributed(&self, family: Family) -> Result<ConnectionPermit, Refusal> {
        self.admit_as(family, None)
    }

    fn admit_as(&self, family: Family, ip: Option<IpAddr>) -> Result<ConnectionPermit, Refusal> {
        let family = self.families[family as usize].clone();
        family.take(ip)?;
        let protocol = Slot { scope: family, ip };
        self.server.take(ip)?;
        let server = Slot {
            scope: self.server.clone(),
            ip,
        };
        Ok(ConnectionPermit {
            slots: [server, protocol],
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.server.counts().total
    }
}

/// A connection's place in one scope; released when dropped.
struct Slot {
    scope: Arc<Scope>,
    /// The client it counts against; `None` until a proxied connection names its client.
    ip: Option<IpAddr>,
}

impl Slot {
    fn attribute(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        if self.ip == Some(ip) {
            return Ok(());
        }
        let mut counts = self.scope.counts();
        counts
            .take_ip(ip, self.scope.per_ip)
            .map_err(|r| self.scope.refusal(r))?;
        if let Some(old) = self.ip.replace(ip) {
            counts.release_ip(old);
        }
        Ok(())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.scope.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.ip {
            counts.release_ip(ip);
        }
    }
}

/// Releases its slots when dropped.
pub struct ConnectionPermit {
    /// The server's slot, then the protocol's.
    slots: [Slot; 2],
}

impl ConnectionPermit {
    /// Charges the connection to `ip` under the per-IP caps (moving it from any client it was
    /// charged to before). On refusal the permit still holds its total slots until dropped.
    pub fn attribute(&mut self, ip: IpAddr) -> Result<(), Refusal> {
        for slot in &mut self.slots {
            slot.attribute(ip)?;
        }
        Ok(())
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
        let p1 = limiter.admit(Family::Imap, a).unwrap();
        let _p2 = limiter.admit(Family::Imap, a).unwrap();
        assert_eq!(limiter.admit(Family::Imap, a).err(), Some(Refusal::PerIp));
        let _p3 = limiter.admit(Family::Imap, b).unwrap();
        assert_eq!(limiter.admit(Family::Imap, b).err(), Some(Refusal::Total));
        drop(p1);
        let _p4 = limiter
            .admit(Family::Imap, a)
            .expect("a released slot is reusable");
        assert_eq!(limiter.open(), 3);
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64() {
        let limiter = ConnectionLimiter::new(2, 10);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = limiter.admit(Family::Imap, ip("2001:db8:1:2::1")).unwrap();
        let _second = limiter
            .admit(Family::Imap, ip("2001:db8:1:2:ffff::9"))
            .unwrap();
        // Any other address in the same /64 is the same client.
        assert_eq!(
            limiter
                .admit(Family::Imap, ip("2001:db8:1:2:abcd::7"))
                .err(),
            Some(Refusal::PerIp)
        );
        // The next /64 is another client.
        let _other = limiter.admit(Family::Imap, ip("2001:db8:1:3::1")).unwrap();
        drop(first);
        let _again = limiter
            .admit(Family::Imap, ip("2001:db8:1:2:1234::1"))
            .unwrap();
        // IPv4, also written IPv4-mapped, counts per address.
        let _v4 = limiter.admit(Family::Imap, ip("192.0.2.1")).unwrap();
        let _mapped = limiter.admit(Family::Imap, ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            limiter.admit(Family::Imap, ip("192.0.2.1")).err(),
            Some(Refusal::PerIp)
        );
        let _v4b = limiter.admit(Family::Imap, ip("192.0.2.2")).unwrap();
        assert_eq!(client_key(ip("2001:db8::1")), ip("2001:db8::"));
    }

    #[test]
    fn proxied_connections_count_against_their_client() {
        let limiter = ConnectionLimiter::new(1, 3);
        let proxy: IpAddr = "127.0.0.254".parse().unwrap();
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        // The proxy's own address never fills up: only the total cap applies at accept.
        let mut p1 = limiter.admit_unattributed(Family::Imap).unwrap();
        let mut p2 = limiter.admit_unattributed(Family::Imap).unwrap();
        assert_eq!(limiter.open(), 2);
        p1.attribute(client).unwrap();
        assert_eq!(p2.attribute(client), Err(Refusal::PerIp));
        assert_eq!(
            limiter.admit(Family::Imap, client).err(),
            Some(Refusal::PerIp)
        );
        let _direct = limiter
            .admit(Family::Imap, proxy)
            .expect("the proxy's IP has its own slot");
        assert_eq!(
            limiter.admit_unattributed(Family::Imap).err(),
            Some(Refusal::Total)
        );
        drop(p2);
        drop(p1);
        assert_eq!(limiter.open(), 1);
        let _again = limiter
            .admit(Family::Imap, client)
            .expect("released by the proxied permit");
    }

    #[test]
    fn each_protocol_has_its_own_caps_within_the_servers() {
        let caps = |per_ip, total| ProtocolCaps {
            max_connections_per_ip: per_ip,
            max_connections: total,
        };
        let limiter = ConnectionLimiter::with_protocols(
            3,
            5,
            [caps(1, 2), caps(9, 9), caps(9, 9), caps(9, 9)],
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let smtp = limiter.admit(Family::Smtp, ip("192.0.2.1")).unwrap();
        assert_eq!(
            limiter.admit(Family::Smtp, ip("192.0.2.1")).err(),
            Some(Refusal::ProtocolPerIp)
        );
        // The same client may still use another protocol, up to the server's per-IP cap.
        let imap = limiter.admit(Family::Imap, ip("192.0.2.1")).unwrap();
        let _smtp2 = limiter.admit(Family::Smtp, ip("2001:db8::1")).unwrap();
        assert_eq!(
            limiter.admit(Family::Smtp, ip("192.0.2.2")).err(),
            Some(Refusal::ProtocolTotal)
        );
        let _pop = limiter.admit(Family::Pop3, ip("192.0.2.1")).unwrap();
        assert_eq!(
            limiter.admit(Family::Submission, ip("192.0.2.1")).err(),
            Some(Refusal::PerIp)
        );
        // A refusal by the server leaves the protocol's count as it was.
        assert_eq!(
            limiter.families[Family::Submission as usize].counts().total,
            0
        );
        let _sub = limiter.admit(Family::Submission, ip("192.0.2.9")).unwrap();
        assert_eq!(
            limiter.admit(Family::Imap, ip("192.0.2.10")).err(),
            Some(Refusal::Total)
        );
        drop(smtp);
        drop(imap);
        assert_eq!(limiter.open(), 3);
        let _smtp3 = limiter.admit(Family::Smtp, ip("192.0.2.1")).unwrap();
    }
}
