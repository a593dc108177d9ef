//! Node identity: this data dir's incarnation, the cluster's record of every node's incarnation
//! and of removed ids (meta group state, `Command::RecordNode`), and from them the standing of
//! a node on the node link.
//!
//! A data dir gets a random incarnation when it is first opened (`raft_meta`, group 0, item
//! `0xFE`). The meta group records a node's incarnation when the node joins (the first node's
//! at `cluster init`), and a removed id for ever. A node whose data dir was wiped comes back
//! with another incarnation: every member then refuses it on the link (it neither votes nor
//! replicates under its old id), and `cluster join` refuses it, until `cluster remove` takes
//! the id out; the machine joins again under a new id and re-replication fills it. Members of a
//! cluster made before incarnations existed are recorded by the meta leader the first time it
//! sees them on the link.

use crate::link::{Roster, Standing};
use crate::node::{Inner, RaftNode, unavailable};
use crate::{RaftError, TypeConfig};
use openraft::Raft;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Weak};
use tern_core::sync::lock;
use tern_core::{GroupId, NodeId};
use tern_store::schema::{CF_RAFT_META, CF_STATE, Key, table};
use tern_store::{Command, Db, Response};

/// `raft_meta` item (under the meta group) holding this data dir's incarnation.
const META_INCARNATION: u8 = 0xFE;

/// This data dir's incarnation, made (random, never 0) and synced the first time it is opened.
pub(crate) fn incarnation(db: &Db) -> Result<u64, RaftError> {
    let key = tern_store::schema::raft_meta(GroupId::META, META_INCARNATION);
    if let Some(bytes) = db.get(CF_RAFT_META, &key)? {
        let stored: [u8; 8] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| unavailable(GroupId::META, "corrupt data-dir incarnation"))?;
        return Ok(u64::from_be_bytes(stored));
    }
    let made = rand::random::<u64>().max(1);
    let mut batch = tern_store::db::WriteBatch::default();
    batch.put_cf(&db.cf(CF_RAFT_META)?, key, made.to_be_bytes());
    db.write(batch, true)?;
    Ok(made)
}

/// The meta group's record of the nodes, as this replica has applied it.
#[derive(Debug, Default)]
pub(crate) struct NodeBook {
    /// The incarnation each node joined with.
    incarnations: BTreeMap<NodeId, u64>,
    /// Removed ids, refused for ever.
    removed: BTreeSet<NodeId>,
}

impl NodeBook {
    fn read(db: &Db) -> Result<NodeBook, RaftError> {
        let mut book = NodeBook::default();
        let prefix = Key::new(GroupId::META, table::NODE_INCARNATION).build();
        for (key, _) in db.scan(CF_STATE, &prefix)? {
            if let Some((node, incarnation)) = two_u64(&key[prefix.len()..]) {
                book.incarnations.insert(node, incarnation);
            }
        }
        let prefix = Key::new(GroupId::META, table::REMOVED_NODE).build();
        for (key, _) in db.scan(CF_STATE, &prefix)? {
            if let Some(node) = key[prefix.len()..].try_into().ok().map(u64::from_be_bytes) {
                book.removed.insert(node);
            }
        }
        Ok(book)
    }
}

fn two_u64(bytes: &[u8]) -> Option<(u64, u64)> {
    let a: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    let b: [u8; 8] = bytes.get(8..)?.try_into().ok()?;
    Some((u64::from_be_bytes(a), u64::from_be_bytes(b)))
}

/// The node book, re-read only when the meta group has applied something new.
#[derive(Default)]
pub(crate) struct BookCache {
    /// The meta applied index the book was read at, and the book.
    book: Mutex<Option<(Option<u64>, Arc<NodeBook>)>>,
    /// Incarnations of members with none recorded, as they said on the link (clusters made
    /// before incarnations: the meta leader records them).
    seen: Mutex<BTreeMap<NodeId, u64>>,
}

/// The roster the node link's calling side asks: a weak handle, so the link does not keep the
/// node alive.
pub(crate) struct NodeRoster(pub Weak<Inner>);

impl Roster for NodeRoster {
    fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        match self.0.upgrade() {
            Some(inner) => RaftNode { inner }.standing(node, incarnation),
            None => Standing::Refused("shutting down".into()),
        }
    }
}

impl RaftNode {
    /// This data dir's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// The ids removed from the cluster (never used again), as this node knows them.
    pub fn removed_nodes(&self) -> Vec<NodeId> {
        self.book().removed.iter().copied().collect()
    }

    fn meta_raft(&self) -> Option<Raft<TypeConfig>> {
        self.group(GroupId::META).ok()
    }

    fn book(&self) -> Arc<NodeBook> {
        let applied = self
            .meta_raft()
            .and_then(|raft| raft.metrics().borrow().last_applied.map(|l| l.index));
        let mut cached = lock(&self.inner.book.book);
        if let Some((at, book)) = cached.as_ref()
            && *at == applied
        {
            return book.clone();
        }
        let book = Arc::new(NodeBook::read(&self.inner.db).unwrap_or_else(|e| {
            tracing::warn!("reading the node records: {e}");
            NodeBook::default()
        }));
        *cached = Some((applied, book.clone()));
        book
    }

    /// What `node`, whose data dir says `incarnation`, may do on the node link, by this node's
    /// replica of the meta group. A node that is in no cluster yet (no members known) has
    /// nothing to protect and lets every CA-signed peer in: its seed and the leader adding it.
    pub(crate) fn standing(&self, node: NodeId, incarnation: u64) -> Standing {
        if node == self.node_id() {
            return if incarnation == self.incarnation() {
                Standing::Member
            } else {
                Standing::Refused(format!(
                    "node {node} is this node's own id, presented by another data dir"
                ))
            };
        }
        let (known, member) = match self.meta_raft() {
            Some(raft) => {
                let m = raft.metrics();
                let m = m.borrow();
                let membership = m.membership_config.membership();
                (
                    membership.nodes().next().is_some(),
                    membership.get_node(&node).is_some(),
                )
            }
            None => (false, false),
        };
        if !known {
            return Standing::Member;
        }
        let book = self.book();
        if book.removed.contains(&node) && !member {
            return Standing::Refused(format!(
                "node {node} was removed from the cluster and node ids are never used again: \
                 give this machine a new node id (and a certificate for it) and join it"
            ));
        }
        match book.incarnations.get(&node) {
            Some(recorded) if *recorded != incarnation => {
                return Standing::Refused(format!(
                    "node {node}'s data dir is not the one the cluster knows (incarnation \
                     {incarnation:016x}, recorded {recorded:016x}): it lost its data. Remove it \
                     (`tern cluster remove {node} --dead`) and join the machine under a new \
                     node id"
                ));
            }
            None if member => {
                lock(&self.inner.book.seen).insert(node, incarnation);
            }
            _ => {}
        }
        if member {
            Standing::Member
        } else {
            Standing::Joining
        }
    }

    /// Whether `node` may be admitted with `incarnation`: not removed, and not a member (or an
    /// admitted node) whose recorded incarnation differs.
    pub(crate) fn check_admission(&self, node: NodeId, incarnation: u64) -> Result<(), RaftError> {
        let book = self.book();
        if book.removed.contains(&node) {
            return Err(unavailable(
                GroupId::META,
                format!(
                    "node {node} was removed from the cluster and node ids are never used \
                     again: give this machine a new node id (and a certificate for it)"
                ),
            ));
        }
        match book.incarnations.get(&node) {
            Some(recorded) if *recorded != incarnation => Err(unavailable(
                GroupId::META,
                format!(
                    "node {node} lost its data (its data dir is incarnation {incarnation:016x}, \
                     the cluster knows {recorded:016x}): remove it (`tern cluster remove {node} \
                     --dead`) and join the machine under a new node id"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Records `node`'s incarnation (`Some`) or its removal (`None`) in the meta group.
    pub(crate) async fn record_node(
        &self,
        node: NodeId,
        incarnation: Option<u64>,
    ) -> Result<(), RaftError> {
        match self
            .propose(GroupId::META, Command::RecordNode { node, incarnation })
            .await?
        {
            Response::Ok => Ok(()),
            other => Err(unavailable(
                GroupId::META,
                format!("unexpected response {other:?}"),
            )),
        }
    }

    /// On the meta leader: records the incarnation of members that have none recorded (this
    /// node's own, and those seen on the link), as a cluster made before incarnations needs.
    pub(crate) async fn record_unrecorded(&self) {
        if !self.leads(GroupId::META) {
            return;
        }
        let book = self.book();
        let unrecorded: Vec<NodeId> = self
            .members()
            .into_keys()
            .filter(|n| !book.incarnations.contains_key(n) && !book.removed.contains(n))
            .collect();
        for node in unrecorded {
            let incarnation = if node == self.node_id() {
                Some(self.incarnation())
            } else {
                lock(&self.inner.book.seen).get(&node).copied()
            };
            if let Some(incarnation) = incarnation {
                match self.record_node(node, Some(incarnation)).await {
                    Ok(()) => tracing::info!(node, "recorded the node's data-dir incarnation"),
                    Err(e) => tracing::debug!(node, "incarnation not recorded: {e}"),
                }
            }
        }
    }
}
