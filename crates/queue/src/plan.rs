//! Choosing where a transaction commits: which partition gets the one `Accept`, which local
//! recipients it delivers at once and which it queues for the partition actors.

use crate::{Envelope, QueueError};
use tern_core::{AccountId, BlobId, GroupId};
use tern_directory::Recipient;
use tern_store::LocalRecipient;

/// Where new mail is filed; filters may choose otherwise later.
pub(crate) const INBOX: &str = "INBOX";

/// The `Accept` to propose, minus its id, body and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The partition that commits the transaction (and queues what it cannot deliver).
    pub group: GroupId,
    /// Recipients living in `group`: delivered by the commit itself.
    pub local: Vec<LocalRecipient>,
    /// Local recipients in other partitions: (account, address, mailbox).
    pub other_partitions: Vec<(AccountId, String, String)>,
    /// Addresses outside our domains.
    pub remote: Vec<String>,
}

/// Plans `envelope` over `partitions` data partitions.
///
/// The partition holding the most local recipients is chosen, so that the common message (one
/// local recipient, or several living together) costs exactly one commit; the choice does not
/// depend on the order of the RCPTs, so a sender's retry commits (and is recognised) in the same
/// partition as its first attempt. Outbound-only mail goes to the sender's partition, or to a
/// partition picked by hashing the sender, which spreads unauthenticated relaying
/// deterministically.
pub(crate) fn plan(envelope: &Envelope, partitions: u32) -> Result<Plan, QueueError> {
    if envelope.recipients.is_empty() {
        return Err(QueueError::NoRecipients);
    }
    let partition_of = |account| GroupId::partition_of(account, partitions);
    let group = match (
        busiest_partition(envelope, partitions),
        envelope.sender_account,
    ) {
        (Some(group), _) => group,
        (None, Some(account)) => partition_of(account),
        (None, None) => partition_of(sender_hash(&envelope.sender)),
    };
    let mailbox = envelope.mailbox.as_deref().unwrap_or(INBOX);
    let mut plan = Plan {
        group,
        local: Vec::new(),
        other_partitions: Vec::new(),
        remote: Vec::new(),
    };
    for recipient in &envelope.recipients {
        match recipient {
            Recipient::Local(info) => {
                // Aliases are expanded upstream, but two RCPTs may still reach one account;
                // it gets the message once.
                let seen = plan.local.iter().any(|l| l.account == info.id)
                    || plan.other_partitions.iter().any(|(a, _, _)| *a == info.id);
                if seen {
                    continue;
                }
                if partition_of(info.id) == group {
                    plan.local.push(LocalRecipient {
                        account: info.id,
                        address: info.address.clone(),
                        mailbox: mailbox.to_string(),
                        quota: info.quota,
                    });
                } else {
                    let queued = (info.id, info.address.clone(), mailbox.to_string());
                    plan.other_partitions.push(queued);
                }
            }
            Recipient::Remote(address) => {
                if !plan.remote.contains(address) {
                    plan.remote.push(address.clone());
                }
            }
        }
    }
    Ok(plan)
}

/// The partition with the most distinct local recipients (the lowest such group on a tie), or
/// `None` without a local recipient.
fn busiest_partition(envelope: &Envelope, partitions: u32) -> Option<GroupId> {
    let mut accounts: Vec<AccountId> = envelope
        .recipients
        .iter()
        .filter_map(|r| match r {
            Recipient::Local(info) => Some(info.id),
            Recipient::Remote(_) => None,
        })
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut groups: Vec<GroupId> = accounts
        .into_iter()
        .map(|a| GroupId::partition_of(a, partitions))
        .collect();
    groups.sort_unstable();
    // Runs of equal groups, longest first, then lowest group.
    groups
        .chunk_by(|a, b| a == b)
        .map(|run| (run.len(), run[0]))
        .max_by(|(n1, g1), (n2, g2)| n1.cmp(n2).then(g2.cmp(g1)))
        .map(|(_, g)| g)
}

/// A stable pseudo-account for a sender without one, so the same sender always lands in the
/// same partition.
fn sender_hash(sender: &str) -> AccountId {
    let digest = BlobId::of(sender.to_ascii_lowercase().as_bytes()).0;
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    AccountId(u64::from_be_bytes(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_directory::AccountInfo;

    const P: u32 = 4;

    /// Two account ids in different partitions, and one sharing the first one's partition.
    fn accounts() -> (AccountId, AccountId, AccountId) {
        let a = AccountId(1);
        let pa = GroupId::partition_of(a, P);
        let b = (2..100)
            .map(AccountId)
            .find(|x| GroupId::partition_of(*x, P) != pa)
            .unwrap();
        let c = (2..100)
            .map(AccountId)
            .find(|x| GroupId::partition_of(*x, P) == pa)
            .unwrap();
        (a, b, c)
    }

    fn local(id: AccountId) -> Recipient {
        Recipient::Local(AccountInfo {
            id,
            address: format!("u{}@example.com", id.0),
            quota: 7,
        })
    }

    fn envelope(recipients: Vec<Recipient>, sender_account: Option<AccountId>) -> Envelope {
        Envelope {
            sender: "Sender@Example.net".into(),
            recipients,
            body: b"x".to_vec(),
            sender_account,
            mailbox: None,
        }
    }

    #[test]
    fn the_busiest_local_partition_commits_and_others_are_queued() {
        let (a, b, c) = accounts();
        let rcpts = vec![
            Recipient::Remote("x@remote.net".into()),
            local(a),
            local(b),
            local(c),
            local(a),
            Recipient::Remote("x@remote.net".into()),
        ];
        let p = plan(&envelope(rcpts, None), P).unwrap();
        assert_eq!(p.group, GroupId::partition_of(a, P));
        let here: Vec<_> = p.local.iter().map(|l| (l.account, l.quota)).collect();
        assert_eq!(here, vec![(a, 7), (c, 7)]);
        assert!(p.local.iter().all(|l| l.mailbox == INBOX));
        assert_eq!(
            p.other_partitions,
            vec![(b, format!("u{}@example.com", b.0), INBOX.to_string())]
        );
        assert_eq!(p.remote, vec!["x@remote.net".to_string()]);
    }

    #[test]
    fn the_order_of_the_recipients_does_not_choose_the_partition() {
        let (a, b, _) = accounts();
        let ab = plan(&envelope(vec![local(a), local(b)], None), P).unwrap();
        let ba = plan(&envelope(vec![local(b), local(a)], None), P).unwrap();
        assert_eq!(ab.group, ba.group);
        let lowest = GroupId::partition_of(a, P).min(GroupId::partition_of(b, P));
        assert_eq!(ab.group, lowest, "a tie goes to the lowest group");
    }

    #[test]
    fn outbound_goes_to_the_sender_account_or_a_stable_hash() {
        let (_, b, _) = accounts();
        let remote = || vec![Recipient::Remote("x@remote.net".into())];
        let p = plan(&envelope(remote(), Some(b)), P).unwrap();
        assert_eq!(p.group, GroupId::partition_of(b, P));
        let first = plan(&envelope(remote(), None), P).unwrap();
        let again = plan(&envelope(remote(), None), P).unwrap();
        assert_eq!(first.group, again.group);
        assert!((1..=P).contains(&first.group.0));
        assert!(first.local.is_empty() && first.other_partitions.is_empty());
    }

    #[test]
    fn a_chosen_mailbox_reaches_every_local_recipient() {
        let (a, b, _) = accounts();
        let junk = Envelope {
            mailbox: Some("Junk".into()),
            ..envelope(vec![local(a), local(b)], None)
        };
        let p = plan(&junk, P).unwrap();
        assert!(p.local.iter().all(|l| l.mailbox == "Junk"));
        assert!(p.other_partitions.iter().all(|(_, _, m)| m == "Junk"));
        assert_eq!(p.local.len() + p.other_partitions.len(), 2);
    }

    #[test]
    fn no_recipients_is_an_error() {
        assert!(matches!(
            plan(&envelope(vec![], None), P),
            Err(QueueError::NoRecipients)
        ));
    }
}
