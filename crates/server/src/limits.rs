//! Connection admission: a cap on connections per client IP and in all, so one client cannot
//! exhaust the server. A permit is held for the life of the connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections per IP and in total.
#[derive(Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Mutex<Counts>>,
    per_ip: usize,
    total: usize,
}

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
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
            inner: Arc::default(),
            per_ip,
            total,
        }
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let mut counts = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.total {
            return Err(Refusal::Total);
        }
        let n = counts.by_ip.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            limiter: self.inner.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

/// Releases its slot when dropped.
pub struct ConnectionPermit {
    limiter: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
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
}
