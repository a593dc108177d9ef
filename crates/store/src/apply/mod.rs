//! The deterministic state machine: `apply(db, group, command)` computes the command's writes
//! and response from the current state alone, so every replica that applies the same log
//! arrives at the same bytes.
//!
//! - [`directory`]: domains, accounts, aliases (meta group).
//! - [`folders`]: mailbox create/delete/rename/subscribe and default mailboxes.
//! - [`messages`]: append, flags, copy/move, expunge.
//! - [`delivery`]: SMTP accept, queued delivery, dequeue.
//! - [`outbound`]: remote recipients' retry state and operator retries.
//! - [`limits`]: per-account sending limits.
//! - [`lease`]: the POP3 maildrop lease.

mod delivery;
mod directory;
mod folders;
mod lease;
mod limits;
mod messages;
mod outbound;

pub(crate) use directory::decode_all as directory_decode_all;
pub(crate) use folders::{AccountState, normalize_name};
pub use limits::SendCounter;

use crate::body::{BodyRef, PartsRef, staged_id};
use crate::command::{Command, Response};
use crate::schema;
use crate::tx::Tx;
use crate::{Db, StoreError};
use rocksdb::WriteBatch;
use tern_core::{BlobId, GroupId};

/// Applies `command`, the entry at log `index`, to `group`'s state; returns the response and
/// the writes to commit.
///
/// A command's body lives under [`body::staged_id`](crate::body::staged_id)`(index, hash)`:
/// usually the log store put it there when the entry was appended, otherwise (an entry written
/// before bodies were split, or a test) it is written here. Whatever the outcome, a staged body
/// no message refers to is deleted, so every replica ends with the same rows.
pub fn apply(
    db: &Db,
    group: GroupId,
    index: u64,
    command: &Command,
) -> Result<(Response, WriteBatch), StoreError> {
    let body = command.body().map(|bytes| Body::at(index, bytes));
    let mut tx = Tx::new(db);
    let response = match dispatch(&mut tx, group, command, body.as_ref()) {
        Ok(response) => response,
        Err(Outcome::Rejected(r)) => {
            // A refused command changes nothing: drop whatever it had staged.
            tx = Tx::new(db);
            Response::Rejected(r)
        }
        Err(Outcome::Store(e)) => return Err(e),
    };
    if let Some(body) = &body {
        messages::drop_unreferenced_blob(&mut tx, group, &body.id)?;
        if let Some(parts) = &body.parts {
            tx.delete(schema::upload(group, parts.started, &parts.blob));
        }
    }
    Ok((response, tx.into_batch()?))
}

/// The body a command carries, as its apply sees it.
pub(crate) struct Body<'c> {
    /// Where it is stored.
    pub id: BlobId,
    /// RFC822.SIZE.
    pub size: u64,
    /// The bytes, unless the entry only holds a reference (its body already gone, or stored
    /// in parts).
    pub bytes: Option<&'c [u8]>,
    /// Where the parts are, for a body proposed in parts.
    pub parts: Option<PartsRef>,
}

impl<'c> Body<'c> {
    fn at(index: u64, bytes: &'c [u8]) -> Body<'c> {
        if let Some(parts) = PartsRef::parse(bytes) {
            return Body {
                id: parts.blob,
                size: parts.len,
                bytes: None,
                parts: Some(parts),
            };
        }
        let facts = BodyRef::of(bytes);
        Body {
            id: staged_id(index, &facts.hash),
            size: facts.len,
            bytes: BodyRef::parse(bytes).is_none().then_some(bytes),
            parts: None,
        }
    }
}

/// The body of a body-carrying command (always there: `apply` computes it for them).
fn carried<'a, 'c>(body: Option<&'a Body<'c>>) -> Result<&'a Body<'c>, Outcome> {
    body.ok_or_else(|| {
        Outcome::Store(StoreError::Corrupt {
            key: String::new(),
            reason: "a body-carrying command without its body".into(),
        })
    })
}

/// Why a command handler stopped early.
pub(crate) enum Outcome {
    /// Deterministic refusal.
    Rejected(crate::Rejection),
    /// Storage failure.
    Store(StoreError),
}

impl From<StoreError> for Outcome {
    fn from(e: StoreError) -> Self {
        Outcome::Store(e)
    }
}

impl From<crate::Rejection> for Outcome {
    fn from(r: crate::Rejection) -> Self {
        Outcome::Rejected(r)
    }
}

pub(crate) type Applied = Result<Response, Outcome>;

fn dispatch(tx: &mut Tx<'_>, g: GroupId, command: &Command, body: Option<&Body<'_>>) -> Applied {
    use Command::*;
    match command {
        AddDomain { name, now } => directory::add_domain(tx, g, name, *now),
        DeleteDomain { name } => directory::delete_domain(tx, g, name),
        AddAccount {
            address,
            password_hash,
            quota,
            now,
        } => directory::add_account(tx, g, address, password_hash, *quota, *now),
        DeleteAccount { address } => directory::delete_account(tx, g, address),
        SetPassword {
            address,
            password_hash,
        } => directory::update_account(tx, g, address, |a| a.password_hash = password_hash.clone()),
        SetQuota { address, quota } => {
            directory::update_account(tx, g, address, |a| a.quota = *quota)
        }
        AddAlias { address, target } => directory::add_alias(tx, g, address, target),
        DeleteAlias { address } => directory::delete_alias(tx, g, address),
        SetDkimKey {
            domain,
            selector,
            algorithm,
            private_key_pkcs8_der,
            now,
        } => directory::set_dkim_key(
            tx,
            g,
            tern_core::records::DkimKeyRecord {
                domain: domain.clone(),
                selector: selector.clone(),
                algorithm: *algorithm,
                private_key: private_key_pkcs8_der.clone(),
                created: *now,
            },
        ),
        InitAccount { account, now } => folders::init_account(tx, g, *account, *now),
        PurgeAccount { account } => folders::purge_account(tx, g, *account),
        CreateMailbox {
            account,
            name,
            special_use,
            now,
        } => folders::create(tx, g, *account, name, *special_use, *now).map(|_| Response::Ok),
        DeleteMailbox { account, name } => folders::delete(tx, g, *account, name),
        RenameMailbox {
            account,
            from,
            to,
            now,
        } => folders::rename(tx, g, *account, from, to, *now),
        SetSubscribed {
            account,
            name,
            subscribed,
        } => folders::subscribe(tx, g, *account, name, *subscribed),
        Append {
            account,
            mailbox,
            flags,
            internal_date,
            quota,
            ..
        } => messages::append(
            tx,
            g,
            *account,
            mailbox,
            carried(body)?,
            flags,
            *internal_date,
            *quota,
        ),
        StoreFlags {
            account,
            mailbox,
            uids,
            op,
            flags,
            unchanged_since,
        } => messages::store(
            tx,
            g,
            *account,
            *mailbox,
            uids,
            *op,
            flags,
            *unchanged_since,
        ),
        CopyMessages {
            account,
            from,
            uids,
            to,
            remove_source,
            quota,
        } => messages::copy(tx, g, *account, *from, uids, to, *remove_source, *quota),
        Expunge {
            account,
            mailbox,
            uids,
        } => messages::expunge(tx, g, *account, *mailbox, uids.as_deref()),
        ExpireDedup { before, limit } => delivery::expire_dedup(tx, g, *before, *limit),
        BodyPart { blob, started, .. } => {
            tx.put(schema::upload(g, *started, blob), &());
            Ok(Response::Ok)
        }
        LeaseMaildrop {
            account,
            holder,
            now,
            until,
        } => lease::take(tx, g, *account, *holder, *now, *until),
        ReleaseMaildrop { account, holder } => lease::release(tx, g, *account, *holder),
        ClaimRecent {
            account,
            mailbox,
            up_to,
        } => folders::claim_recent(tx, g, *account, *mailbox, *up_to),
        SetDraining { node, draining } => {
            if *draining {
                tx.put(schema::draining(g, *node), &());
            } else {
                tx.delete(schema::draining(g, *node));
            }
            Ok(Response::Ok)
        }
        RecordNode { node, incarnation } => {
            // Removal is for ever; an incarnation is recorded once (admission refuses another).
            if tx.exists(&schema::removed_node(g, *node))? {
                return Ok(Response::Ok);
            }
            match incarnation {
                None => tx.put(schema::removed_node(g, *node), &()),
                Some(incarnation) => {
                    let prefix = schema::incarnations_of(g, *node);
                    if tx.db().scan(schema::CF_STATE, &prefix)?.is_empty() {
                        tx.put(schema::node_incarnation(g, *node, *incarnation), &());
                    }
                }
            }
            Ok(Response::Ok)
        }
        Accept {
            id,
            sender,
            received_at,
            local,
            other_partitions,
            remote,
            ..
        } => delivery::accept(
            tx,
            g,
            delivery::Accept {
                id: *id,
                sender,
                body: carried(body)?,
                received_at: *received_at,
                local,
                other_partitions,
                remote,
            },
        ),
        Deliver {
            id,
            received_at,
            recipient,
            ..
        } => delivery::deliver(tx, g, *id, carried(body)?, *received_at, recipient),
        Dequeue { id, recipient } => delivery::dequeue(tx, g, *id, recipient),
        DeleteQueued { id } => delivery::delete_queued(tx, g, *id),
        Defer {
            id,
            recipient,
            attempts,
            next_attempt,
            error,
        } => outbound::defer(tx, g, *id, recipient, *attempts, *next_attempt, error),
        RetryQueued { id, now } => outbound::retry(tx, g, *id, *now),
        ChargeSend {
            account,
            at,
            limits,
        } => limits::charge(tx, g, *account, *at, *limits),
    }
}
