//! Mail delivery: an SMTP transaction (`Accept`) stores the body once, delivers to the local
//! recipients of this partition and queues the rest; `Deliver` brings a queued message to one
//! recipient; `Dequeue` and `DeleteQueued` shrink the queue. Both deliveries are idempotent by
//! transaction id, so a retried proposal never delivers twice.

use super::folders::{init_account, mailbox_by_name, save_mailbox};
use super::messages::{NewMessage, fits, insert, release_blob, retain_blob};
use super::{Applied, Body, Outcome};
use crate::command::{DeliveryOutcome, LocalRecipient, Rejection, Response};
use crate::db::Direction;
use crate::schema;
use crate::tx::Tx;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_core::{AccountId, DeliveryId, GroupId};

/// The fields of `Command::Accept`.
pub(super) struct Accept<'c> {
    pub id: DeliveryId,
    pub sender: &'c str,
    pub body: &'c Body<'c>,
    pub received_at: i64,
    pub local: &'c [LocalRecipient],
    pub other_partitions: &'c [(AccountId, String, String)],
    pub remote: &'c [String],
}

pub(super) fn accept(tx: &mut Tx<'_>, g: GroupId, a: Accept<'_>) -> Applied {
    let dedup = schema::accepted(g, a.id);
    if let Some(outcomes) = tx.get::<Vec<DeliveryOutcome>>(&dedup)? {
        return Ok(Response::Accepted(outcomes));
    }
    let blob = a.body.id;
    let mut outcomes = Vec::with_capacity(a.local.len());
    for rcpt in a.local {
        outcomes.push(deliver_one(tx, g, a.body, a.received_at, rcpt)?);
    }
    let mut queued: Vec<QueuedRecipient> = a
        .other_partitions
        .iter()
        .map(|(account, address, mailbox)| QueuedRecipient::Local {
            account: *account,
            address: address.clone(),
            mailbox: mailbox.clone(),
        })
        .collect();
    queued.extend(a.remote.iter().map(|address| QueuedRecipient::Remote {
        address: address.clone(),
        attempts: 0,
        next_attempt: a.received_at,
        last_error: None,
    }));
    if !queued.is_empty() {
        retain_blob(tx, g, &blob, a.body.bytes)?;
        tx.put(
            schema::queue(g, a.id),
            &QueueRecord {
                id: a.id,
                sender: a.sender.to_string(),
                recipients: queued,
                blob,
                size: a.body.size,
                created: a.received_at,
            },
        );
    }
    tx.put(schema::dedup_expiry(g, a.received_at, &dedup), &());
    tx.put(dedup, &outcomes);
    Ok(Response::Accepted(outcomes))
}

/// Delivers to one local recipient: its chosen mailbox, or INBOX if that is gone.
fn deliver_one(
    tx: &mut Tx<'_>,
    g: GroupId,
    body: &Body<'_>,
    received_at: i64,
    rcpt: &LocalRecipient,
) -> Result<DeliveryOutcome, Outcome> {
    let size = body.size;
    if !fits(tx, g, rcpt.account, rcpt.quota, size)? {
        return Ok(DeliveryOutcome::OverQuota {
            account: rcpt.account,
        });
    }
    let chosen = mailbox_by_name(tx, g, rcpt.account, &rcpt.mailbox)?;
    let mut mailbox = match chosen {
        Some(m) => m,
        None => {
            // An account whose mailboxes were never created gets them now, so accepted mail
            // always lands somewhere.
            if mailbox_by_name(tx, g, rcpt.account, "INBOX")?.is_none() {
                init_account(tx, g, rcpt.account, received_at)?;
            }
            mailbox_by_name(tx, g, rcpt.account, "INBOX")?.ok_or(Rejection::NoSuchMailbox)?
        }
    };
    let new = NewMessage {
        blob: body.id,
        body: body.bytes,
        size,
        internal_date: received_at,
        flags: Vec::new(),
    };
    let uid = insert(tx, g, rcpt.account, &mut mailbox, new)?;
    save_mailbox(tx, g, rcpt.account, &mailbox);
    Ok(DeliveryOutcome::Delivered {
        account: rcpt.account,
        mailbox: mailbox.id,
        uid,
    })
}

pub(super) fn deliver(
    tx: &mut Tx<'_>,
    g: GroupId,
    id: DeliveryId,
    body: &Body<'_>,
    received_at: i64,
    rcpt: &LocalRecipient,
) -> Applied {
    let dedup = schema::delivered(g, id, rcpt.account);
    if let Some(outcome) = tx.get::<DeliveryOutcome>(&dedup)? {
        return Ok(Response::Accepted(vec![outcome]));
    }
    let outcome = deliver_one(tx, g, body, received_at, rcpt)?;
    tx.put(schema::dedup_expiry(g, received_at, &dedup), &());
    tx.put(dedup, &outcome);
    Ok(Response::Accepted(vec![outcome]))
}

fn recipient_name(r: &QueuedRecipient) -> &str {
    match r {
        QueuedRecipient::Local { address, .. } | QueuedRecipient::Remote { address, .. } => address,
    }
}

pub(super) fn dequeue(tx: &mut Tx<'_>, g: GroupId, id: DeliveryId, recipient: &str) -> Applied {
    let key = schema::queue(g, id);
    let Some(mut entry) = tx.get::<QueueRecord>(&key)? else {
        return Err(Rejection::NotQueued.into());
    };
    let before = entry.recipients.len();
    entry.recipients.retain(|r| recipient_name(r) != recipient);
    if entry.recipients.len() == before {
        return Err(Rejection::NotQueued.into());
    }
    if entry.recipients.is_empty() {
        tx.delete(key);
        release_blob(tx, g, &entry.blob)?;
    } else {
        tx.put(key, &entry);
    }
    Ok(Response::Ok)
}

pub(super) fn delete_queued(tx: &mut Tx<'_>, g: GroupId, id: DeliveryId) -> Applied {
    let key = schema::queue(g, id);
    let Some(entry) = tx.get::<QueueRecord>(&key)? else {
        return Err(Rejection::NotQueued.into());
    };
    tx.delete(key);
    release_blob(tx, g, &entry.blob)?;
    Ok(Response::Ok)
}

/// Removes the de-duplication records of transactions received before `before`, oldest first,
/// at most `limit`, with their expiry index entries. Reads committed state only, so every
/// replica removes the same records.
pub(super) fn expire_dedup(tx: &mut Tx<'_>, g: GroupId, before: i64, limit: u32) -> Applied {
    let index = schema::dedup_expiry_all(g);
    let cutoff = schema::dedup_expiry(g, before, &[]);
    let prefix = schema::group_prefix(g);
    let mut expired = Vec::new();
    for item in tx
        .db()
        .iter_from(crate::schema::CF_STATE, &index, Direction::Forward)?
    {
        let (key, _) = item?;
        if !key.starts_with(&index) || *key >= *cutoff || expired.len() as u32 >= limit {
            break;
        }
        expired.push(key);
    }
    for key in &expired {
        // group | table | received-at (8 bytes) | the record's key after its group prefix
        let row = [&prefix[..], &key[index.len() + 8..]].concat();
        tx.delete(row);
        tx.delete(key.to_vec());
    }
    let left = limit.saturating_sub(expired.len() as u32);
    let uploads = expire_uploads(tx, g, before, left)?;
    Ok(Response::Expired(expired.len() as u32 + uploads))
}

/// Removes the parts of bodies proposed in parts before `before` whose message never came
/// (the proposer failed between the parts and the message), at most `limit` of them.
fn expire_uploads(tx: &mut Tx<'_>, g: GroupId, before: i64, limit: u32) -> Result<u32, Outcome> {
    let all = schema::uploads_all(g);
    let cutoff = schema::upload(g, before, &tern_core::BlobId([0; 32]));
    let mut stale = Vec::new();
    for item in tx.db().iter_prefix(crate::schema::CF_STATE, &all)? {
        let (key, _) = item?;
        if *key >= *cutoff || stale.len() as u32 >= limit {
            break;
        }
        stale.push(key);
    }
    for key in &stale {
        // group | table | started (8 bytes) | blob id
        let id = tern_core::BlobId(key[all.len() + 8..].try_into().map_err(|_| {
            crate::StoreError::Corrupt {
                key: String::new(),
                reason: "upload row without a blob id".into(),
            }
        })?);
        if !tx.exists(&schema::blob_refs(g, &id))? {
            tx.delete_blob(schema::blob(g, &id));
        }
        tx.delete(key.to_vec());
    }
    Ok(stale.len() as u32)
}
