//! Where to send a request for a group this node holds no replica of: the leader it last
//! learnt of, then the group's replicas as placement has them, then every other member (a
//! replica that is moving may still be where placement no longer wants it). Whoever answers
//! "not the leader" names the leader when it knows it.

use std::collections::BTreeMap;
use std::sync::RwLock;
use tern_core::sync::{read, write};
use tern_core::{GroupId, NodeId};

/// The last known leader of each group without a local replica.
#[derive(Default)]
pub(crate) struct Routes {
    leaders: RwLock<BTreeMap<GroupId, NodeId>>,
}

impl Routes {
    /// `node` leads `group` (it answered, or another replica said so).
    pub fn learn(&self, group: GroupId, node: NodeId) {
        write(&self.leaders).insert(group, node);
    }

    /// The nodes to ask, best first, each once: `hint`, the known leader, the placement's
    /// replicas, the other members.
    pub fn candidates(
        &self,
        group: GroupId,
        hint: Option<NodeId>,
        members: &BTreeMap<NodeId, String>,
        replicas: Vec<NodeId>,
    ) -> Vec<NodeId> {
        let known = read(&self.leaders).get(&group).copied();
        let mut out: Vec<NodeId> = Vec::with_capacity(members.len() + 2);
        let all = hint
            .into_iter()
            .chain(known)
            .chain(replicas)
            .chain(members.keys().copied());
        for node in all {
            if !out.contains(&node) {
                out.push(node);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cluster::placement;

    fn members(ids: &[NodeId]) -> BTreeMap<NodeId, String> {
        ids.iter().map(|id| (*id, format!("n{id}"))).collect()
    }

    #[test]
    fn candidates_put_the_hint_and_the_known_leader_first_and_name_everyone_once() {
        let routes = Routes::default();
        let group = GroupId(7);
        let all = members(&[1, 2, 3, 4, 5]);
        let placed = || placement(group, [1, 2, 3, 4, 5], 3);
        let first = routes.candidates(group, None, &all, placed());
        assert_eq!(first.len(), 5);
        assert_eq!(first[..3], placement(group, [1, 2, 3, 4, 5], 3)[..]);

        routes.learn(group, 4);
        let known = routes.candidates(group, None, &all, placed());
        assert_eq!(known[0], 4);
        assert_eq!(known.len(), 5);

        let hinted = routes.candidates(group, Some(5), &all, placed());
        assert_eq!(hinted[..2], [5, 4]);
        assert_eq!(hinted.len(), 5);
    }
}
