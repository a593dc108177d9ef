//! Mailboxes of one account: default set, create (with parents), delete, rename (children and
//! the special INBOX case), subscriptions, and purging an account.

use super::Applied;
use super::messages;
use crate::command::{Rejection, Response};
use crate::schema::{self, CF_STATE};
use crate::tx::Tx;
use crate::{StoreError, codec};
use serde::{Deserialize, Serialize};
use tern_core::records::{DEFAULT_MAILBOXES, MailboxRecord, MessageRecord, SpecialUse};
use tern_core::{AccountId, GroupId, MailboxId, Uid};

/// Per-account counters kept in the account's partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct AccountState {
    /// Bytes of all messages in all mailboxes.
    pub usage: u64,
    /// The id the next mailbox gets.
    pub next_mailbox: u32,
    /// The last UIDVALIDITY handed out (a re-created name must get a larger one).
    pub last_uidvalidity: u32,
}

pub(crate) fn account_state(
    tx: &Tx<'_>,
    g: GroupId,
    a: AccountId,
) -> Result<AccountState, StoreError> {
    Ok(tx.get(&schema::account_state(g, a))?.unwrap_or_default())
}

/// Adds `delta` bytes to the partition's total usage (see `schema::table::GROUP_USAGE`); the
/// caller changes the account's own usage by as much.
pub(crate) fn charge_group(tx: &mut Tx<'_>, g: GroupId, delta: i64) -> Result<(), StoreError> {
    let key = schema::group_usage(g);
    let total: u64 = tx.get(&key)?.unwrap_or(0);
    tx.put(key, &total.saturating_add_signed(delta));
    Ok(())
}

/// `INBOX` in any case is INBOX; other names are kept as given.
pub fn normalize_name(name: &str) -> String {
    match name.split_once('/') {
        Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
        None if name.eq_ignore_ascii_case("INBOX") => "INBOX".to_string(),
        _ => name.to_string(),
    }
}

fn validate_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.split('/').any(str::is_empty)
        && !name.chars().any(|c| c.is_control() || c == '*' || c == '%');
    if ok {
        Ok(())
    } else {
        Err(Rejection::InvalidName)
    }
}

pub(crate) fn mailbox_by_name(
    tx: &Tx<'_>,
    g: GroupId,
    a: AccountId,
    name: &str,
) -> Result<Option<MailboxRecord>, StoreError> {
    let name = normalize_name(name);
    let Some(id) = tx.get::<MailboxId>(&schema::mailbox_name(g, a, &name))? else {
        return Ok(None);
    };
    tx.get(&schema::mailbox(g, a, id))
}

pub(crate) fn mailbox_by_id(
    tx: &Tx<'_>,
    g: GroupId,
    a: AccountId,
    id: MailboxId,
) -> Result<Option<MailboxRecord>, StoreError> {
    tx.get(&schema::mailbox(g, a, id))
}

pub(crate) fn save_mailbox(tx: &mut Tx<'_>, g: GroupId, a: AccountId, m: &MailboxRecord) {
    tx.put(schema::mailbox(g, a, m.id), m);
}

/// Every mailbox of the account, read from the database (not pending writes).
fn all_mailboxes(tx: &Tx<'_>, g: GroupId, a: AccountId) -> Result<Vec<MailboxRecord>, StoreError> {
    let rows = tx.db().scan(CF_STATE, &schema::mailboxes_of(g, a))?;
    rows.iter().map(|(k, v)| codec::decode(k, v)).collect()
}

/// Creates `name` and any missing parents; the new mailbox's id.
pub(crate) fn create(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    now: i64,
) -> Result<MailboxId, super::Outcome> {
    let name = normalize_name(name.trim_end_matches('/'));
    validate_name(&name)?;
    if mailbox_by_name(tx, g, a, &name)?.is_some() {
        return Err(Rejection::MailboxExists.into());
    }
    let mut path = String::new();
    let levels: Vec<&str> = name.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            path.push('/');
        }
        path.push_str(level);
        if i + 1 < levels.len() && mailbox_by_name(tx, g, a, &path)?.is_some() {
            continue;
        }
        let use_here = if i + 1 == levels.len() {
            special_use
        } else {
            None
        };
        let id = insert_mailbox(tx, g, a, &path, use_here, false, now)?;
        if i + 1 == levels.len() {
            return Ok(id);
        }
    }
    Err(Rejection::InvalidName.into())
}

fn insert_mailbox(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    subscribe: bool,
    now: i64,
) -> Result<MailboxId, StoreError> {
    // A new mailbox is subscribed when asked, or when its name was (RFC 9051 §6.3.7).
    let orphan = schema::subscription(g, a, name);
    let subscribed = subscribe || tx.exists(&orphan)?;
    tx.delete(orphan);
    let mut state = account_state(tx, g, a)?;
    let id = MailboxId(state.next_mailbox.max(1));
    state.next_mailbox = id.0 + 1;
    let seed = u32::try_from(now.max(1)).unwrap_or(u32::MAX);
    let uidvalidity = seed.max(state.last_uidvalidity.saturating_add(1));
    state.last_uidvalidity = uidvalidity;
    tx.put(schema::account_state(g, a), &state);
    tx.put(schema::mailbox_name(g, a, name), &id);
    let record = MailboxRecord {
        id,
        name: name.to_string(),
        uidvalidity,
        uidnext: 1,
        highest_modseq: 1,
        special_use,
        subscribed,
        messages: 0,
        unseen: 0,
        size: 0,
    };
    save_mailbox(tx, g, a, &record);
    Ok(id)
}

pub(crate) fn init_account(tx: &mut Tx<'_>, g: GroupId, a: AccountId, now: i64) -> Applied {
    for (name, special_use) in DEFAULT_MAILBOXES {
        if mailbox_by_name(tx, g, a, name)?.is_none() {
            insert_mailbox(tx, g, a, name, special_use, true, now)?;
        }
    }
    Ok(Response::Ok)
}

pub(super) fn purge_account(tx: &mut Tx<'_>, g: GroupId, a: AccountId) -> Applied {
    let messages = tx.db().scan(CF_STATE, &schema::messages_of_account(g, a))?;
    for (k, v) in messages {
        let m: MessageRecord = codec::decode(&k, &v)?;
        messages::release_blob(tx, g, &m.blob)?;
        tx.delete(k);
    }
    let usage = account_state(tx, g, a)?.usage;
    charge_group(tx, g, -i64::try_from(usage).unwrap_or(i64::MAX))?;
    for prefix in [
        schema::mailboxes_of(g, a),
        schema::mailbox_names_of(g, a),
        schema::recent_of(g, a),
        schema::subscriptions_of(g, a),
    ] {
        for (k, _) in tx.db().scan(CF_STATE, &prefix)? {
            tx.delete(k);
        }
    }
    tx.delete(schema::account_state(g, a));
    Ok(Response::Ok)
}

pub(super) fn delete(tx: &mut Tx<'_>, g: GroupId, a: AccountId, name: &str) -> Applied {
    let name = normalize_name(name);
    if name == "INBOX" {
        return Err(Rejection::CannotDeleteInbox.into());
    }
    let Some(mailbox) = mailbox_by_name(tx, g, a, &name)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    let child_prefix = format!("{name}/");
    if all_mailboxes(tx, g, a)?
        .iter()
        .any(|m| m.name.starts_with(&child_prefix))
    {
        return Err(Rejection::HasChildren.into());
    }
    let mut state = account_state(tx, g, a)?;
    let before = state.usage;
    for (k, v) in tx
        .db()
        .scan(CF_STATE, &schema::messages_of(g, a, mailbox.id))?
    {
        let m: MessageRecord = codec::decode(&k, &v)?;
        messages::release_blob(tx, g, &m.blob)?;
        state.usage = state.usage.saturating_sub(m.size);
        tx.delete(k);
    }
    charge_group(
        tx,
        g,
        -i64::try_from(before - state.usage).unwrap_or(i64::MAX),
    )?;
    tx.put(schema::account_state(g, a), &state);
    tx.delete(schema::mailbox(g, a, mailbox.id));
    tx.delete(schema::mailbox_name(g, a, &name));
    tx.delete(schema::recent(g, a, mailbox.id));
    // The subscription outlives the mailbox (RFC 9051 §6.3.4).
    if mailbox.subscribed {
        tx.put(schema::subscription(g, a, &name), &());
    }
    Ok(Response::Ok)
}

pub(super) fn rename(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    from: &str,
    to: &str,
    now: i64,
) -> Applied {
    let from = normalize_name(from);
    let to = normalize_name(to.trim_end_matches('/'));
    validate_name(&to)?;
    let Some(source) = mailbox_by_name(tx, g, a, &from)? else {
        return Err(Rejection::NoSuchMailbox.into());
    };
    if mailbox_by_name(tx, g, a, &to)?.is_some() {
        return Err(Rejection::MailboxExists.into());
    }
    if from == "INBOX" {
        // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox; INBOX stays.
        let target = create(tx, g, a, &to, None, now)?;
        let uids: Vec<_> = messages::list(tx, g, a, source.id)?
            .iter()
            .map(|m| m.uid)
            .collect();
        messages::copy(tx, g, a, source.id, &uids, &to, true, 0)?;
        let _ = target;
        return Ok(Response::Ok);
    }
    let child_prefix = format!("{from}/");
    let moving: Vec<MailboxRecord> = all_mailboxes(tx, g, a)?
        .into_iter()
        .filter(|m| m.name == from || m.name.starts_with(&child_prefix))
        .collect();
    for mut m in moving {
        let new_name = format!("{to}{}", &m.name[from.len()..]);
        if mailbox_by_name(tx, g, a, &new_name)?.is_some() {
            return Err(Rejection::MailboxExists.into());
        }
        tx.delete(schema::mailbox_name(g, a, &m.name));
        tx.put(schema::mailbox_name(g, a, &new_name), &m.id);
        m.name = new_name;
        save_mailbox(tx, g, a, &m);
    }
    // Create missing parents of the new name.
    if let Some((parent, _)) = to.rsplit_once('/')
        && mailbox_by_name(tx, g, a, parent)?.is_none()
    {
        create(tx, g, a, parent, None, now)?;
    }
    Ok(Response::Ok)
}

pub(super) fn subscribe(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    name: &str,
    subscribed: bool,
) -> Applied {
    let name = normalize_name(name);
    match mailbox_by_name(tx, g, a, &name)? {
        Some(mut m) => {
            m.subscribed = subscribed;
            save_mailbox(tx, g, a, &m);
        }
        None if subscribed => {
            validate_name(&name)?;
            tx.put(schema::subscription(g, a, &name), &());
        }
        None => tx.delete(schema::subscription(g, a, &name)),
    }
    Ok(Response::Ok)
}

/// Claims the messages of `mailbox` up to `up_to` no session was shown yet (`\Recent`).
pub(super) fn claim_recent(
    tx: &mut Tx<'_>,
    g: GroupId,
    a: AccountId,
    mailbox: MailboxId,
    up_to: Uid,
) -> Applied {
    if mailbox_by_id(tx, g, a, mailbox)?.is_none() {
        return Err(Rejection::NoSuchMailbox.into());
    }
    let key = schema::recent(g, a, mailbox);
    let first = tx.get::<u32>(&key)?.unwrap_or(1);
    if up_to.0 >= first {
        tx.put(key, &up_to.0.saturating_add(1));
    }
    Ok(Response::RecentClaimed(Uid(first)))
}
