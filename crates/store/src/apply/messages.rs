//! Messages in mailboxes: append, flag changes, copy/move, expunge. UIDs come from the
//! mailbox's `uidnext` and are never reused; every change takes the next MODSEQ.

use super::folders::{account_state, charge_group, mailbox_by_id, mailbox_by_name, save_mailbox};
use super::{Applied, Body, Outcome};
use crate::StoreError;
use crate::codec;
use crate::command::{FlagOp, Rejection, Response};
use crate::schema::{self, CF_STATE};
use crate::tx::Tx;
use tern_core::flags::{DELETED, SEEN, canonical};
use tern_core::records::{MailboxRecord, MessageRecord};
use tern_core::{AccountId, BlobId, GroupId, MailboxId, ModSeq, Uid};

/// Adds one reference to a blob, storing the body if the group does not have it yet (the log
/// store usually wrote it when the entry was appended).
pub(crate) fn retain_blob(
    tx: &mut Tx<'_>,
    g: GroupId,
    blob: &BlobId,
    body: Option<&[u8]>,
) -> Result<(), StoreError> {
    let key = schema::blob_refs(g, blob);
    let refs: u64 = tx.get(&key)?.unwrap_or(0);
    if refs == 0
        && let Some(body) = body
        && !tx.blob_exists(&schema::blob(g, blob))?
    {
        tx.put_blob(schema::blob(g, blob), body);
    }
    tx.put(key, &(refs + 1));
    Ok(())
}

/// Deletes the body at `blob` if nothing refers to it (a staged body whose command created no
/// message).
pub(crate) fn drop_unreferenced_blob(
    tx: &mut Tx<'_>,
    g: GroupId,
    blob: &BlobId,
) -> Result<(), StoreError> {
    if !tx.exists(&schema::blob_refs(g, blob))? {
        tx.delete_blob(schema::blob(g, blob));
    }
    Ok(())
}

/// Drops one reference; the body goes with the last one.
pub(crate) fn release_blob(tx: &mut Tx<'_>, g: GroupId, blob: &BlobId) -> Result<(), StoreError> {
    let key = schema::blob_refs(g, blob);
    let refs: u64 = tx.get(&key)?.unwrap_or(0);
    if refs <= 1 {
        tx.delete(key);
        tx.delete_blob(schema::blob(g, blob));
    } else {
        tx.put(key, &(refs - 1));
    }
    Ok(())
}

/// Normalises a flag list: canonical spelling, sorted, no duplicates.
pub(crate) fn normalize_flags(flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = flags.iter().map(|f| canonical(f)).collect();
    out.sort();
    out.dedup();
    out
}

fn is_seen(flags: &[String]) -> bool {
    flags.iter().any(|f| f == SEEN)
}

/// What a new message looks like before it gets its UID.
pub(crate) struct NewMessage<'b> {
    pub blob: BlobId,
    /// The body when it may be new to the group; `None` when the blob surely exists (copy).
    pub body: Option<&'b [u8]>,
    pub size: u64,
    pub internal_date: i64,
    pub flags: Vec<String>,
}

/// Appends a message to `mailbox` (whose record the caller saves afterwards).
pub(crate) fn insert(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: &mut MailboxRecord,
    new: NewMessage<'_>,
) -> Result<Uid, StoreError> {
    let uid = Uid(mailbox.uidnext);
    mailbox.uidnext += 1;
    mailbox.highest_modseq += 1;
    mailbox.messages += 1;
    mailbox.size += new.size;
    if !is_seen(&new.flags) {
        mailbox.unseen += 1;
    }
    retain_blob(tx, g, &new.blob, new.body)?;
    let record = MessageRecord {
        uid,
        blob: new.blob,
        size: new.size,
        internal_date: new.internal_date,
        flags: new.flags,
        modseq: ModSeq(mailbox.highest_modseq),
    };
    tx.put(schema::message(g, a, mailbox.id, uid), &record);
    let mut state = account_state(tx, g, a)?;
    state.usage += new.size;
    tx.put(schema::account_state(g, a), &state);
    charge_group(tx, g, i64::try_from(new.size).unwrap_or(i64::MAX))?;
    Ok(uid)
}

/// Removes a message (the caller bumps the mailbox's MODSEQ and saves the record).
fn remove(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: &mut MailboxRecord,
    m: &MessageRecord,
) -> Result<(), StoreError> {
    tx.delete(schema::message(g, a, mailbox.id, m.uid));
    mailbox.messages = mailbox.messages.saturating_sub(1);
    mailbox.size = mailbox.size.saturating_sub(m.size);
    if !is_seen(&m.flags) {
        mailbox.unseen = mailbox.unseen.saturating_sub(1);
    }
    release_blob(tx, g, &m.blob)?;
    let mut state = account_state(tx, g, a)?;
    let freed = state.usage.min(m.size);
    state.usage -= freed;
    tx.put(schema::account_state(g, a), &state);
    charge_group(tx, g, -i64::try_from(freed).unwrap_or(i64::MAX))?;
    Ok(())
}

/// Whether `extra` more bytes fit in the account's quota (0 = unlimited).
pub(crate) fn fits(
    tx: &Tx<'_>,
    g: GroupId,
    a: AccountId,
    quota: u64,
    extra: u64,
) -> Result<bool, StoreError> {
    Ok(quota == 0 || account_state(tx, g, a)?.usage.saturating_add(extra) <= quota)
}

/// The mailbox's messages in UID order (as committed before this command).
pub(crate) fn list(
    tx: &Tx<'_>,
    g: GroupId,
    a: AccountId,
    m: MailboxId,
) -> Result<Vec<MessageRecord>, StoreError> {
    let rows = tx.db().scan(CF_STATE, &schema::messages_of(g, a, m))?;
    rows.iter().map(|(k, v)| codec::decode(k, v)).collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn append(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: &str,
    body: &Body<'_>,
    flags: &[String],
    internal_date: i64,
    quota: u64,
) -> Applied {
    let Some(mut target) = mailbox_by_name(tx, g, a, mailbox)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    let size = body.size;
    if !fits(tx, g, a, quota, size)? {
        return Err(Rejection::OverQuota.into());
    }
    let new = NewMessage {
        blob: body.id,
        body: body.bytes,
        size,
        internal_date,
        flags: normalize_flags(flags),
    };
    let uid = insert(tx, g, a, &mut target, new)?;
    save_mailbox(tx, g, a, &target);
    Ok(Response::Appended {
        mailbox: target.id,
        uidvalidity: target.uidvalidity,
        uid,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn store(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    flags: &[String],
    unchanged_since: Option<u64>,
) -> Applied {
    let Some(mut record) = mailbox_by_id(tx, g, a, mailbox)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    let flags = normalize_flags(flags);
    let mut uids = uids.to_vec();
    uids.sort();
    uids.dedup();
    let (mut changed, mut modified) = (Vec::new(), Vec::new());
    for uid in uids {
        let key = schema::message(g, a, mailbox, uid);
        let Some(mut m) = tx.get::<MessageRecord>(&key)? else {
            continue;
        };
        if unchanged_since.is_some_and(|u| m.modseq.0 > u) {
            modified.push(uid);
            continue;
        }
        let new_flags = match op {
            FlagOp::Replace => flags.clone(),
            FlagOp::Add => normalize_flags(&[m.flags.clone(), flags.clone()].concat()),
            FlagOp::Remove => m
                .flags
                .iter()
                .filter(|f| !flags.contains(f))
                .cloned()
                .collect(),
        };
        if new_flags == m.flags {
            continue;
        }
        match (is_seen(&m.flags), is_seen(&new_flags)) {
            (false, true) => record.unseen = record.unseen.saturating_sub(1),
            (true, false) => record.unseen += 1,
            _ => {}
        }
        record.highest_modseq += 1;
        m.flags = new_flags;
        m.modseq = ModSeq(record.highest_modseq);
        changed.push((uid, m.flags.clone(), m.modseq));
        tx.put(key, &m);
    }
    save_mailbox(tx, g, a, &record);
    Ok(Response::FlagsStored { changed, modified })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn copy(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    from: MailboxId,
    uids: &[Uid],
    to: &str,
    remove_source: bool,
    quota: u64,
) -> Applied {
    if mailbox_by_id(tx, g, a, from)?.is_none() {
        return Err(Rejection::NoSuchMailbox.into());
    }
    let Some(mut target) = mailbox_by_name(tx, g, a, to)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    let mut wanted = uids.to_vec();
    wanted.sort();
    wanted.dedup();
    let mut originals = Vec::new();
    for uid in wanted {
        if let Some(m) = tx.get::<MessageRecord>(&schema::message(g, a, from, uid))? {
            originals.push(m);
        }
    }
    let total: u64 = originals.iter().map(|m| m.size).sum();
    if !remove_source && !fits(tx, g, a, quota, total)? {
        return Err(Outcome::Rejected(Rejection::OverQuota));
    }
    let mut pairs = Vec::new();
    for m in &originals {
        let new = NewMessage {
            blob: m.blob,
            body: None,
            size: m.size,
            internal_date: m.internal_date,
            flags: m.flags.clone(),
        };
        let uid = insert(tx, g, a, &mut target, new)?;
        pairs.push((m.uid, uid));
    }
    save_mailbox(tx, g, a, &target);
    if remove_source && !originals.is_empty() {
        // Re-read: when source and target are the same mailbox, it just changed.
        let Some(mut source) = mailbox_by_id(tx, g, a, from)? else {
            return Err(Rejection::NoSuchMailbox.into());
        };
        for m in &originals {
            remove(tx, g, a, &mut source, m)?;
        }
        source.highest_modseq += 1;
        save_mailbox(tx, g, a, &source);
        if source.id == target.id {
            target = source;
        }
    }
    Ok(Response::Copied {
        mailbox: target.id,
        uidvalidity: target.uidvalidity,
        uids: pairs,
    })
}

pub(super) fn expunge(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: MailboxId,
    only: Option<&[Uid]>,
) -> Applied {
    let Some(mut record) = mailbox_by_id(tx, g, a, mailbox)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    let mut removed = Vec::new();
    for m in list(tx, g, a, mailbox)? {
        let selected = only.is_none_or(|u| u.contains(&m.uid));
        if selected && m.flags.iter().any(|f| f == DELETED) {
            remove(tx, g, a, &mut record, &m)?;
            removed.push(m.uid);
        }
    }
    if !removed.is_empty() {
        record.highest_modseq += 1;
        save_mailbox(tx, g, a, &record);
    }
    Ok(Response::Expunged(removed))
}
