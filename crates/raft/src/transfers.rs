//! How far the snapshots this node is sending have got: bytes sent per group and receiving
//! node. `tern cluster status` turns these into the progress of replica moves.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
// tokio's clock: the real one, or the simulator's paused one.
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tokio::time::Instant;

/// A transfer that has sent nothing for this long is over (finished, failed or cancelled).
const STALE_AFTER: Duration = Duration::from_secs(30);

/// One snapshot on its way to one node.
#[derive(Debug, Clone, Copy)]
struct Sending {
    bytes: u64,
    last: Instant,
}

/// Bytes sent so far of each snapshot under way, by group and receiver.
#[derive(Debug, Default)]
pub struct Transfers {
    sending: Mutex<BTreeMap<(GroupId, NodeId), Sending>>,
}

impl Transfers {
    /// Records a chunk of `len` bytes at `offset` of `group`'s snapshot sent to `to`; `done`
    /// on the last one.
    pub fn sent(&self, group: GroupId, to: NodeId, offset: u64, len: usize, done: bool) {
        let mut sending = lock(&self.sending);
        if done {
            sending.remove(&(group, to));
            return;
        }
        sending.insert(
            (group, to),
            Sending {
                bytes: offset + len as u64,
                last: Instant::now(),
            },
        );
    }

    /// Bytes sent so far to each receiver of `group`'s snapshot, for transfers still going.
    pub fn of(&self, group: GroupId) -> BTreeMap<NodeId, u64> {
        let mut sending = lock(&self.sending);
        sending.retain(|_, s| s.last.elapsed() < STALE_AFTER);
        sending
            .range((group, NodeId::MIN)..=(group, NodeId::MAX))
            .map(|((_, to), s)| (*to, s.bytes))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_counts_up_per_receiver_and_ends_with_its_last_chunk() {
        let t = Transfers::default();
        t.sent(GroupId(3), 2, 0, 100, false);
        t.sent(GroupId(3), 2, 100, 50, false);
        t.sent(GroupId(3), 4, 0, 10, false);
        t.sent(GroupId(5), 2, 0, 7, false);
        assert_eq!(t.of(GroupId(3)), BTreeMap::from([(2, 150), (4, 10)]));
        t.sent(GroupId(3), 2, 150, 1, true);
        assert_eq!(t.of(GroupId(3)), BTreeMap::from([(4, 10)]));
        assert_eq!(t.of(GroupId(5)), BTreeMap::from([(2, 7)]));
    }
}
