//! Typed identifiers. Each wraps an integer so that a UID can never be passed as a MODSEQ.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A Raft node in the cluster (1-based; a single node is node 1).
pub type NodeId = u64;

/// A Raft group: 0 is the meta group, 1..=P are data partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupId(pub u32);

impl GroupId {
    /// The meta group: membership, partition map, domains, accounts, aliases.
    pub const META: GroupId = GroupId(0);

    /// The data partition that owns `account`, given `partitions` partitions.
    pub fn partition_of(account: AccountId, partitions: u32) -> GroupId {
        // A multiplicative hash spreads sequential account ids over partitions.
        let h = account.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        GroupId(1 + (h % u64::from(partitions.max(1))) as u32)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// An account, assigned by the meta group's state machine; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccountId(pub u64);

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a{}", self.0)
    }
}

/// A mailbox (folder) within one account; never reused within the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MailboxId(pub u32);

/// An IMAP UID: strictly increasing within a mailbox for one UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Uid(pub u32);

/// A modification sequence (RFC 7162): strictly increasing per mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModSeq(pub u64);

/// A message body, content-addressed by its BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// The id of `body`.
    pub fn of(body: &[u8]) -> BlobId {
        BlobId(*blake3::hash(body).as_bytes())
    }

    /// Lower-case hex, as shown to operators.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", &self.to_hex()[..16])
    }
}

/// One accepted SMTP transaction (or one APPEND): makes delivery idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeliveryId(pub u128);

impl DeliveryId {
    /// A fresh random id.
    pub fn random() -> DeliveryId {
        DeliveryId(rand::random())
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for DeliveryId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u128::from_str_radix(s, 16).map(DeliveryId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_in_range_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for a in 0..1000 {
            let g = GroupId::partition_of(AccountId(a), 64);
            assert!((1..=64).contains(&g.0));
            seen.insert(g);
        }
        assert!(seen.len() > 48, "only {} partitions used", seen.len());
    }

    #[test]
    fn delivery_id_round_trips_through_text() {
        let id = DeliveryId::random();
        assert_eq!(id.to_string().parse::<DeliveryId>().ok(), Some(id));
    }
}
