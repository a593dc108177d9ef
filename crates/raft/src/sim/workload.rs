//! The clients of a run: SMTP-like accepts (a transaction id each, retried with the same id
//! after an unknown outcome, as an MTA does after a 451), IMAP-like appends, flag changes and
//! expunges, and a reader taking linearizable reads — all proposed through whichever node a
//! client picks, and recorded in the [`History`].

use super::cluster::Board;
use super::history::{AcceptRecord, History};
use super::net::SimNet;
use super::rng::SimRng;
use crate::{RaftError, RaftNode};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tern_core::sync::lock;
use tern_core::{AccountId, DeliveryId, GroupId, Uid};
use tern_store::{Command, DeliveryOutcome, FlagOp, LocalRecipient, Response};
use tokio::time::Instant;

/// The mailbox the IMAP-like operations use (accepts go to INBOX).
pub const WORK: &str = "Work";

/// The marker line that names a transaction in its body.
pub fn txn_marker(id: DeliveryId) -> String {
    format!("X-Sim-Txn: {:032x}", id.0)
}

/// The marker line that names an append in its body.
pub fn append_marker(n: u64) -> String {
    format!("X-Sim-Append: {n}")
}

/// A random running node, if any.
fn pick(board: &Board, rng: &mut SimRng) -> Option<RaftNode> {
    let nodes: Vec<RaftNode> = lock(board).values().cloned().collect();
    if nodes.is_empty() {
        return None;
    }
    Some(nodes[rng.pick(nodes.len())].clone())
}

/// Proposes through `node`; gives up if the node crashes meanwhile (a client whose connection
/// died), so that nothing keeps a crashed node alive.
async fn propose(node: &RaftNode, group: GroupId, command: Command) -> Result<Response, RaftError> {
    let stop = node.inner.stop.clone();
    tokio::select! {
        r = node.propose(group, command) => r,
        _ = stop.cancelled() => Err(RaftError::Shutdown),
    }
}

/// Proposes until it is acknowledged or `deadline` passes (set-up steps).
pub async fn propose_until(
    board: &Board,
    rng: &mut SimRng,
    group: impl Fn(&RaftNode) -> GroupId,
    command: Command,
    deadline: Instant,
) -> Result<Response, String> {
    loop {
        if let Some(node) = pick(board, rng)
            && node.has_groups()
        {
            match propose(&node, group(&node), command.clone()).await {
                Ok(r) => return Ok(r),
                Err(e) if Instant::now() >= deadline => return Err(format!("{command:?}: {e}")),
                Err(_) => {}
            }
        }
        if Instant::now() >= deadline {
            return Err("no node ran".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One client.
pub struct Client {
    /// Its id (in markers and the trace).
    pub id: u64,
    /// Its random choices.
    pub rng: SimRng,
    /// The accounts it writes to.
    pub accounts: Vec<AccountId>,
    /// Where it records what it saw.
    pub history: Arc<Mutex<History>>,
    /// The running nodes.
    pub board: Board,
    /// The trace.
    pub net: SimNet,
    /// Transactions whose outcome is unknown, to retry.
    pending: Vec<Command>,
    ops: u64,
}

impl Client {
    /// A client writing to `accounts`.
    pub fn new(
        id: u64,
        rng: SimRng,
        accounts: Vec<AccountId>,
        history: Arc<Mutex<History>>,
        board: Board,
        net: SimNet,
    ) -> Client {
        Client {
            id,
            rng,
            accounts,
            history,
            board,
            net,
            pending: Vec::new(),
            ops: 0,
        }
    }

    /// Runs operations until `end`, then retries its unknown transactions a last few times.
    pub async fn run(mut self, end: Instant) {
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(self.rng.range(0, 300))).await;
            self.step().await;
        }
        for _ in 0..3 {
            for command in std::mem::take(&mut self.pending) {
                self.accept(command).await;
            }
        }
    }

    async fn step(&mut self) {
        let roll = self.rng.range(0, 100);
        if roll < 15 && !self.pending.is_empty() {
            let command = self.pending.swap_remove(self.rng.pick(self.pending.len()));
            self.accept(command).await;
            return;
        }
        let account = self.accounts[self.rng.pick(self.accounts.len())];
        match roll {
            0..55 => {
                let command = self.new_accept(account);
                self.accept(command).await
            }
            55..75 => self.append(account).await,
            75..93 => self.store(account).await,
            _ => self.expunge(account).await,
        }
    }

    fn new_accept(&mut self, account: AccountId) -> Command {
        let id = DeliveryId(u128::from(self.rng.next_u64()) << 64 | u128::from(self.id));
        Command::Accept {
            id,
            sender: "sender@remote.test".into(),
            body: format!("{}\r\nSubject: sim\r\n\r\nbody\r\n", txn_marker(id)).into_bytes(),
            received_at: 1_700_000_000,
            local: vec![LocalRecipient {
                account,
                address: format!("u{}@sim.test", account.0),
                mailbox: "INBOX".into(),
                quota: 0,
            }],
            other_partitions: vec![],
            remote: vec![],
        }
    }

    /// Proposes an accept (new or a retry) and records its outcome.
    async fn accept(&mut self, command: Command) {
        let Command::Accept { id, local, .. } = &command else {
            return;
        };
        let (id, account) = (*id, local[0].account);
        {
            let mut h = lock(&self.history);
            let inbox = h.mailboxes.get(&(account, "INBOX".into())).copied();
            let floor = inbox.and_then(|mb| h.max_uid.get(&(account, mb)).copied());
            let record = h.accepts.entry(id).or_insert(AcceptRecord {
                account,
                acked: None,
                attempts: 0,
                uid_floor: floor.unwrap_or(0),
            });
            record.attempts += 1;
        }
        let Some(node) = pick(&self.board, &mut self.rng) else {
            self.pending.push(command);
            return;
        };
        self.ops += 1;
        let group = node.partition_of(account);
        let result = propose(&node, group, command.clone()).await;
        self.net
            .note(&[20, self.id, node.node_id(), result.is_ok() as u64]);
        let mut h = lock(&self.history);
        match result {
            Ok(Response::Accepted(outcomes)) => {
                h.acked += 1;
                let floor = h.accepts.get(&id).map_or(0, |r| r.uid_floor);
                let first = h.accepts.get(&id).is_some_and(|r| r.acked.is_none());
                if let Some(before) = h.accepts.get(&id).and_then(|r| r.acked.clone())
                    && before != outcomes
                {
                    h.violations.push(format!(
                        "transaction {:x}: a retry answered {outcomes:?}, the first {before:?}",
                        id.0
                    ));
                }
                for o in &outcomes {
                    if let DeliveryOutcome::Delivered {
                        account,
                        mailbox,
                        uid,
                    } = o
                    {
                        h.mailboxes.insert((*account, "INBOX".into()), *mailbox);
                        if first {
                            h.new_uid(*account, *mailbox, *uid, floor, txn_marker(id));
                        }
                    }
                }
                if let Some(r) = h.accepts.get_mut(&id) {
                    r.acked.get_or_insert(outcomes);
                }
            }
            Ok(other) => h
                .violations
                .push(format!("transaction {:x}: answered {other:?}", id.0)),
            Err(_) => {
                h.unknown += 1;
                // An MTA retries after a 451; sometimes it gives up (the outcome stays unknown).
                if self.rng.chance(0.8) {
                    self.pending.push(command);
                }
            }
        }
    }

    async fn append(&mut self, account: AccountId) {
        let marker = self.rng.next_u64() >> 1;
        let command = Command::Append {
            account,
            mailbox: WORK.into(),
            body: format!("{}\r\nSubject: a\r\n\r\nx\r\n", append_marker(marker)).into_bytes(),
            flags: vec![],
            internal_date: 1_700_000_000,
            quota: 0,
        };
        let floor = {
            let h = lock(&self.history);
            let work = h.mailboxes.get(&(account, WORK.into())).copied();
            work.and_then(|mb| h.max_uid.get(&(account, mb)).copied())
                .unwrap_or(0)
        };
        let Some(node) = pick(&self.board, &mut self.rng) else {
            return;
        };
        let result = propose(&node, node.partition_of(account), command).await;
        self.net
            .note(&[21, self.id, node.node_id(), result.is_ok() as u64]);
        let mut h = lock(&self.history);
        match result {
            Ok(Response::Appended {
                mailbox,
                uidvalidity,
                uid,
            }) => {
                h.acked += 1;
                h.mailboxes.insert((account, WORK.into()), mailbox);
                h.saw_uidvalidity(account, mailbox, uidvalidity);
                h.new_uid(account, mailbox, uid, floor, append_marker(marker));
                h.appends.insert(marker, (account, mailbox, uid));
            }
            Ok(other) => h.violations.push(format!("append: answered {other:?}")),
            Err(_) => h.unknown += 1,
        }
    }

    /// Flags some acknowledged messages: `\Seen` in INBOX, `\Flagged` or `\Deleted` in Work.
    async fn store(&mut self, account: AccountId) {
        let in_work = self.rng.chance(0.6);
        let name = if in_work { WORK } else { "INBOX" };
        let (mailbox, uids, floor) = {
            let h = lock(&self.history);
            let Some(mailbox) = h.mailboxes.get(&(account, name.to_string())).copied() else {
                return;
            };
            let known: Vec<Uid> = h
                .owners
                .range((account, mailbox, Uid(0))..=(account, mailbox, Uid(u32::MAX)))
                .map(|((_, _, uid), _)| *uid)
                .collect();
            if known.is_empty() {
                return;
            }
            let uids: Vec<Uid> = (0..self.rng.range(1, 4))
                .map(|_| known[self.rng.pick(known.len())])
                .collect();
            let floor = h.max_modseq.get(&(account, mailbox)).copied().unwrap_or(0);
            (mailbox, uids, floor)
        };
        let flag = match (in_work, self.rng.chance(0.5)) {
            (false, _) => "\\Seen",
            (true, true) => "\\Deleted",
            (true, false) => "\\Flagged",
        };
        if flag == "\\Deleted" {
            let mut h = lock(&self.history);
            for uid in &uids {
                h.deletable.insert((account, mailbox, *uid));
            }
        }
        let command = Command::StoreFlags {
            account,
            mailbox,
            uids,
            op: FlagOp::Add,
            flags: vec![flag.into()],
            unchanged_since: None,
        };
        let Some(node) = pick(&self.board, &mut self.rng) else {
            return;
        };
        let result = propose(&node, node.partition_of(account), command).await;
        self.net
            .note(&[22, self.id, node.node_id(), result.is_ok() as u64]);
        let mut h = lock(&self.history);
        match result {
            Ok(Response::FlagsStored { changed, .. }) => {
                h.acked += 1;
                for (_, _, modseq) in changed {
                    h.new_modseq(account, mailbox, modseq.0, floor);
                }
            }
            Ok(other) => h.violations.push(format!("store: answered {other:?}")),
            Err(_) => h.unknown += 1,
        }
    }

    async fn expunge(&mut self, account: AccountId) {
        let Some(mailbox) = lock(&self.history)
            .mailboxes
            .get(&(account, WORK.to_string()))
            .copied()
        else {
            return;
        };
        let command = Command::Expunge {
            account,
            mailbox,
            uids: None,
        };
        let Some(node) = pick(&self.board, &mut self.rng) else {
            return;
        };
        let result = propose(&node, node.partition_of(account), command).await;
        self.net
            .note(&[23, self.id, node.node_id(), result.is_ok() as u64]);
        let mut h = lock(&self.history);
        match result {
            Ok(Response::Expunged(uids)) => {
                h.acked += 1;
                if let Some(bad) = uids
                    .iter()
                    .find(|u| !h.deletable.contains(&(account, mailbox, **u)))
                {
                    h.violations.push(format!(
                        "expunge removed UID {} of {account}/{}, never flagged \\Deleted",
                        bad.0, mailbox.0
                    ));
                }
            }
            Ok(other) => h.violations.push(format!("expunge: answered {other:?}")),
            Err(_) => h.unknown += 1,
        }
    }
}

/// Takes linearizable reads of every mailbox, one after another, until `end`: each must show
/// at least what was acknowledged before it began, and never less than the read before.
pub async fn reader(
    mut rng: SimRng,
    accounts: Vec<AccountId>,
    history: Arc<Mutex<History>>,
    board: Board,
    end: Instant,
) {
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(rng.range(50, 400))).await;
        let account = accounts[rng.pick(accounts.len())];
        let name = if rng.chance(0.5) { WORK } else { "INBOX" };
        let Some(node) = pick(&board, &mut rng) else {
            continue;
        };
        let Some(mailbox) = lock(&history)
            .mailboxes
            .get(&(account, name.to_string()))
            .copied()
        else {
            continue;
        };
        let floor = {
            let h = lock(&history);
            (
                h.max_uid.get(&(account, mailbox)).copied().unwrap_or(0),
                h.max_modseq.get(&(account, mailbox)).copied().unwrap_or(0),
            )
        };
        let stop = node.inner.stop.clone();
        let group = node.partition_of(account);
        let read = tokio::select! {
            r = node.read(group) => r,
            _ = stop.cancelled() => continue,
        };
        let Ok(reader) = read else { continue };
        let Ok(Some(record)) = reader.mailbox_by_id(account, mailbox) else {
            lock(&history)
                .violations
                .push(format!("a read found no mailbox {account}/{}", mailbox.0));
            continue;
        };
        let mut h = lock(&history);
        h.saw_uidvalidity(account, mailbox, record.uidvalidity);
        h.read(
            account,
            mailbox,
            floor,
            (record.uidnext, record.highest_modseq),
        );
    }
}
