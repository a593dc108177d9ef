//! Snapshots by log size and age, on top of openraft's count-based policy
//! (`[storage] snapshot_entries`): a group whose log has grown by `snapshot_log_bytes` since its
//! last snapshot, or that has held an entry outside any snapshot for `snapshot_max_age_secs`,
//! snapshots now — and openraft then purges the log behind the snapshot. So a node's log is
//! bounded by bytes (large messages) and by time (quiet groups), not only by entry count.
//!
//! Every replica watches its own groups (each builds and purges its own snapshots). Growth is
//! counted from this process's start, so a restart only delays a size-triggered snapshot.

use crate::node::RaftNode;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::GroupId;
use tern_core::config::StorageConfig;
use tokio::time::Instant;

/// How often the groups are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A snapshot asked for and not yet seen is asked for again after this long.
const ASK_AGAIN: Duration = Duration::from_secs(60);

/// Bytes appended to one group's log by this process.
pub(crate) type LogGrowth = Arc<AtomicU64>;

/// What is known of one group since its last snapshot.
#[derive(Default)]
struct Watch {
    snapshot: Option<u64>,
    bytes_at_snapshot: u64,
    unsnapshotted_since: Option<Instant>,
    asked: Option<Instant>,
}

/// Why a group should snapshot now, if it should.
fn due(watch: &Watch, bytes: u64, storage: &StorageConfig, now: Instant) -> Option<&'static str> {
    if watch
        .asked
        .is_some_and(|at| now.duration_since(at) < ASK_AGAIN)
    {
        return None;
    }
    let grown = bytes.saturating_sub(watch.bytes_at_snapshot);
    if storage.snapshot_log_bytes > 0 && grown >= storage.snapshot_log_bytes {
        return Some("log size");
    }
    let max_age = Duration::from_secs(storage.snapshot_max_age_secs);
    let old = watch
        .unsnapshotted_since
        .is_some_and(|since| now.duration_since(since) >= max_age);
    (storage.snapshot_max_age_secs > 0 && old).then_some("log age")
}

/// Watches every group of `node` until it stops (groups that come and go with moves
/// included).
pub(crate) async fn run(node: RaftNode, storage: StorageConfig) {
    let mut watches: BTreeMap<GroupId, Watch> = BTreeMap::new();
    let stop = node.inner.stop.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let replicas = node.replicas();
        watches.retain(|g, _| replicas.iter().any(|(r, _)| r == g));
        let now = Instant::now();
        for (group, replica) in replicas {
            let (raft, watch) = (&replica.raft, watches.entry(group).or_default());
            let bytes = replica.growth.load(Ordering::Relaxed);
            let metrics = raft.metrics().borrow().clone();
            let snapshot = metrics.snapshot.map(|l| l.index);
            if snapshot != watch.snapshot {
                *watch = Watch {
                    snapshot,
                    bytes_at_snapshot: bytes,
                    ..Watch::default()
                };
            }
            let applied = metrics.last_applied.map_or(0, |l| l.index);
            if applied <= snapshot.unwrap_or(0) {
                continue;
            }
            watch.unsnapshotted_since.get_or_insert(now);
            if let Some(why) = due(watch, bytes, &storage, now) {
                watch.asked = Some(now);
                tracing::debug!(group = ?metrics.id, why, "asking for a snapshot");
                if let Err(e) = raft.trigger().snapshot().await {
                    // The group stopped (the node shuts down, or the replica moved away).
                    tracing::debug!(%group, "no snapshot: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(bytes: u64, age: u64) -> StorageConfig {
        StorageConfig {
            snapshot_log_bytes: bytes,
            snapshot_max_age_secs: age,
            ..StorageConfig::default()
        }
    }

    #[test]
    fn a_group_snapshots_by_size_or_age_and_is_not_asked_twice_in_a_row() {
        let now = Instant::now();
        let mut watch = Watch {
            bytes_at_snapshot: 1_000,
            unsnapshotted_since: Some(now),
            ..Watch::default()
        };
        assert_eq!(due(&watch, 1_500, &storage(1_000, 3600), now), None);
        assert_eq!(
            due(&watch, 2_000, &storage(1_000, 3600), now),
            Some("log size")
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            due(&watch, 1_500, &storage(1_000, 3600), later),
            Some("log age")
        );
        // Zero turns a trigger off.
        assert_eq!(due(&watch, 9_999, &storage(0, 0), later), None);
        watch.asked = Some(later);
        assert_eq!(due(&watch, 9_999, &storage(1_000, 3600), later), None);
        let much_later = later + ASK_AGAIN;
        assert_eq!(
            due(&watch, 9_999, &storage(1_000, 3600), much_later),
            Some("log size")
        );
    }
}
