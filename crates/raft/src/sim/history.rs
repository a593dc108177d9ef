//! What the clients saw: every proposal and its outcome, and the invariants that can be checked
//! as answers arrive (a new UID above every UID acknowledged before the request began, MODSEQ
//! likewise, a UID never given to two messages, UIDVALIDITY never changing).

use std::collections::{BTreeMap, BTreeSet};
use tern_core::{AccountId, DeliveryId, MailboxId, Uid};
use tern_store::DeliveryOutcome;

/// One `Accept` transaction.
#[derive(Debug, Clone)]
pub struct AcceptRecord {
    /// The recipient.
    pub account: AccountId,
    /// The outcome of the first acknowledged attempt.
    pub acked: Option<Vec<DeliveryOutcome>>,
    /// Attempts made (retries after an unknown outcome use the same id).
    pub attempts: u32,
    /// The highest UID acknowledged in the recipient's INBOX when the first attempt began.
    pub uid_floor: u32,
}

/// Everything the clients and the reader saw.
#[derive(Debug, Default)]
pub struct History {
    /// Every transaction by id.
    pub accepts: BTreeMap<DeliveryId, AcceptRecord>,
    /// Acknowledged appends to `Work`: marker to (account, mailbox, uid).
    pub appends: BTreeMap<u64, (AccountId, MailboxId, Uid)>,
    /// `(account, mailbox, uid)` given to whom (a marker), as acknowledged.
    pub owners: BTreeMap<(AccountId, MailboxId, Uid), String>,
    /// UIDs some `StoreFlags ... \Deleted` named (acknowledged or not): an expunge may remove
    /// them.
    pub deletable: BTreeSet<(AccountId, MailboxId, Uid)>,
    /// Highest acknowledged UID per mailbox.
    pub max_uid: BTreeMap<(AccountId, MailboxId), u32>,
    /// Highest acknowledged MODSEQ per mailbox.
    pub max_modseq: BTreeMap<(AccountId, MailboxId), u64>,
    /// UIDVALIDITY per mailbox, as first seen.
    pub uidvalidity: BTreeMap<(AccountId, MailboxId), u32>,
    /// Mailbox ids by account and name, as learnt from answers.
    pub mailboxes: BTreeMap<(AccountId, String), MailboxId>,
    /// What a linearizable reader last saw per mailbox: (uidnext, highest MODSEQ).
    pub last_read: BTreeMap<(AccountId, MailboxId), (u32, u64)>,
    /// Operations acknowledged, and those whose outcome stayed unknown.
    pub acked: u64,
    /// See `acked`.
    pub unknown: u64,
    /// Broken invariants.
    pub violations: Vec<String>,
}

impl History {
    /// A message `owner` got `uid` in `mailbox`, acknowledged, for an operation that began when
    /// the highest acknowledged UID there was `floor`.
    pub fn new_uid(
        &mut self,
        account: AccountId,
        mailbox: MailboxId,
        uid: Uid,
        floor: u32,
        owner: String,
    ) {
        if uid.0 <= floor {
            self.violations.push(format!(
                "{owner}: UID {} in mailbox {account}/{} is not above {floor}, acknowledged \
                 before it began",
                uid.0, mailbox.0
            ));
        }
        let key = (account, mailbox, uid);
        match self.owners.get(&key) {
            Some(other) if *other != owner => self.violations.push(format!(
                "UID {} of mailbox {account}/{} given twice: {other} and {owner}",
                uid.0, mailbox.0
            )),
            _ => {
                self.owners.insert(key, owner);
            }
        }
        let max = self.max_uid.entry((account, mailbox)).or_default();
        *max = (*max).max(uid.0);
    }

    /// `mailbox` answered with UIDVALIDITY `value`.
    pub fn saw_uidvalidity(&mut self, account: AccountId, mailbox: MailboxId, value: u32) {
        let first = *self.uidvalidity.entry((account, mailbox)).or_insert(value);
        if first != value {
            self.violations.push(format!(
                "UIDVALIDITY of mailbox {account}/{} changed from {first} to {value}",
                mailbox.0
            ));
        }
    }

    /// A MODSEQ acknowledged for an operation that began when the highest was `floor`.
    pub fn new_modseq(&mut self, account: AccountId, mailbox: MailboxId, modseq: u64, floor: u64) {
        if modseq <= floor {
            self.violations.push(format!(
                "MODSEQ {modseq} of mailbox {account}/{} is not above {floor}, acknowledged \
                 before the STORE began",
                mailbox.0
            ));
        }
        let max = self.max_modseq.entry((account, mailbox)).or_default();
        *max = (*max).max(modseq);
    }

    /// A linearizable read of `mailbox` that began when the acknowledged highs were `floor`
    /// (UID, MODSEQ) saw `uidnext` and `highest`.
    pub fn read(
        &mut self,
        account: AccountId,
        mailbox: MailboxId,
        floor: (u32, u64),
        seen: (u32, u64),
    ) {
        let (uidnext, highest) = seen;
        if uidnext <= floor.0 || highest < floor.1 {
            self.violations.push(format!(
                "a read of mailbox {account}/{} saw UIDNEXT {uidnext} and HIGHESTMODSEQ \
                 {highest}, below what was acknowledged before it began ({floor:?})",
                mailbox.0
            ));
        }
        if let Some(&(u, m)) = self.last_read.get(&(account, mailbox))
            && (uidnext < u || highest < m)
        {
            self.violations.push(format!(
                "a read of mailbox {account}/{} went back from ({u}, {m}) to ({uidnext}, \
                 {highest})",
                mailbox.0
            ));
        }
        self.last_read.insert((account, mailbox), seen);
    }
}
