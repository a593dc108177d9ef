//! Per-destination concurrency: at most `max_connections_per_destination` sessions to one
//! domain from this node at a time, across every partition's actor. A delivery task holds a
//! permit for as long as its session is open, and sends every message it has for the domain
//! over that one session (connection reuse).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Destinations remembered before idle ones are forgotten (so the map stays bounded).
const FORGET_ABOVE: usize = 1024;

/// The node's connection limits, by destination domain.
pub(crate) struct Pool {
    per_destination: usize,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Pool {
    /// A pool allowing `per_destination` (at least 1) sessions per domain.
    pub(crate) fn new(per_destination: usize) -> Pool {
        Pool {
            per_destination: per_destination.max(1),
            limits: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a free slot for `destination`; the slot is free again when the permit drops.
    pub(crate) async fn acquire(&self, destination: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut limits = tern_core::sync::lock(&self.limits);
            if limits.len() > FORGET_ABOVE {
                let full = self.per_destination;
                // Only idle entries (no permit out, nobody else holding the semaphore) go.
                limits.retain(|_, s| s.available_permits() < full || Arc::strong_count(s) > 1);
            }
            limits
                .entry(destination.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
                .clone()
        };
        // The semaphore is never closed; were it, delivery goes on without a limit rather
        // than stopping.
        semaphore.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_destination_is_limited_and_others_are_not() {
        let pool = Arc::new(Pool::new(2));
        let a1 = pool.acquire("a.example").await;
        let _a2 = pool.acquire("a.example").await;
        // A third session to a.example waits ...
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire("a.example").await }
        });
        // ... while b.example is free.
        let _b = pool.acquire("b.example").await;
        assert!(!waiting.is_finished());
        drop(a1);
        let third = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert!(matches!(third, Ok(Ok(Some(_)))));
    }
}
