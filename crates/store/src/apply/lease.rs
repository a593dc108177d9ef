//! The POP3 maildrop lease: one session per maildrop across the cluster (RFC 1939 §8). The
//! lease lives in the account's partition, so every node that serves the account sees the same
//! holder; it ends at a time the holder renews, so a session on a node that died stops holding
//! it once that time has passed. Times come from the proposer's clock, so the promise assumes
//! the nodes' clocks agree to well within a lease (NTP does).

use super::Applied;
use crate::command::{Rejection, Response};
use crate::schema;
use crate::tx::Tx;
use serde::{Deserialize, Serialize};
use tern_core::{AccountId, GroupId};

/// Who holds an account's maildrop, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaildropLease {
    /// The holding session's id.
    pub holder: u128,
    /// Unix seconds when the lease ends unless renewed.
    pub until: i64,
}

pub(super) fn take(
    tx: &mut Tx<'_>,
    g: GroupId,
    account: AccountId,
    holder: u128,
    now: i64,
    until: i64,
) -> Applied {
    let key = schema::maildrop_lease(g, account);
    if let Some(held) = tx.get::<MaildropLease>(&key)?
        && held.holder != holder
        && held.until >= now
    {
        return Err(Rejection::MaildropInUse.into());
    }
    tx.put(key, &MaildropLease { holder, until });
    Ok(Response::Ok)
}

pub(super) fn release(tx: &mut Tx<'_>, g: GroupId, account: AccountId, holder: u128) -> Applied {
    let key = schema::maildrop_lease(g, account);
    if tx
        .get::<MaildropLease>(&key)?
        .is_some_and(|held| held.holder == holder)
    {
        tx.delete(key);
    }
    Ok(Response::Ok)
}
