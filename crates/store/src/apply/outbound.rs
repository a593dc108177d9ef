//! The retry state of remote recipients: `Defer` records a failed attempt and the next one,
//! `RetryQueued` makes recipients due now (operator retry and flush). Delivery itself happens
//! outside the state machine, in the queue actor; success is an ordinary `Dequeue`.

use super::Applied;
use super::directory_decode_all as decode_all;
use crate::command::{Rejection, Response};
use crate::schema::{self, CF_STATE, Key, table};
use crate::tx::Tx;
use tern_core::records::{QueueRecord, QueuedRecipient};
use tern_core::{DeliveryId, GroupId};

pub(super) fn defer(
    tx: &mut Tx<'_>,
    g: GroupId,
    id: DeliveryId,
    recipient: &str,
    attempts: u32,
    next_attempt: i64,
    error: &str,
) -> Applied {
    let key = schema::queue(g, id);
    let Some(mut entry) = tx.get::<QueueRecord>(&key)? else {
        return Err(Rejection::NotQueued.into());
    };
    let found = entry.recipients.iter_mut().find_map(|r| match r {
        QueuedRecipient::Remote {
            address,
            attempts,
            next_attempt,
            last_error,
        } if address == recipient => Some((attempts, next_attempt, last_error)),
        _ => None,
    });
    let Some((was_attempts, was_next, was_error)) = found else {
        return Err(Rejection::NotQueued.into());
    };
    // A leader that lost its lease may still report an older attempt: the newer record wins.
    if attempts < *was_attempts {
        return Ok(Response::Ok);
    }
    *was_attempts = attempts;
    *was_next = next_attempt;
    *was_error = Some(error.to_string());
    tx.put(key, &entry);
    Ok(Response::Ok)
}

pub(super) fn retry(tx: &mut Tx<'_>, g: GroupId, id: Option<DeliveryId>, now: i64) -> Applied {
    let entries: Vec<QueueRecord> = match id {
        Some(id) => match tx.get::<QueueRecord>(&schema::queue(g, id))? {
            Some(entry) => vec![entry],
            None => return Err(Rejection::NotQueued.into()),
        },
        None => decode_all(tx.db().scan(CF_STATE, &Key::new(g, table::QUEUE).build())?)?,
    };
    for mut entry in entries {
        let mut changed = false;
        for r in &mut entry.recipients {
            if let QueuedRecipient::Remote { next_attempt, .. } = r
                && *next_attempt > now
            {
                *next_attempt = now;
                changed = true;
            }
        }
        if changed {
            tx.put(schema::queue(g, entry.id), &entry);
        }
    }
    Ok(Response::Ok)
}
