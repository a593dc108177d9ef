//! Per-account sending limits, counted in the account's partition so that every node enforces
//! the same numbers. Fixed windows (the UTC hour and the UTC day of the command's timestamp)
//! keep the state to four numbers per account; the price is that a burst straddling a window
//! boundary can reach twice the hourly limit, which is fine for abuse control.

use super::Applied;
use crate::command::{Rejection, Response, SendLimits};
use crate::schema;
use crate::tx::Tx;
use serde::{Deserialize, Serialize};
use tern_core::{AccountId, GroupId};

/// Messages an account sent in its current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCounter {
    /// The UTC hour (unix seconds / 3600) `hour_count` belongs to.
    pub hour: i64,
    /// Messages sent in that hour.
    pub hour_count: u32,
    /// The UTC day (unix seconds / 86400) `day_count` belongs to.
    pub day: i64,
    /// Messages sent on that day.
    pub day_count: u32,
}

impl SendCounter {
    /// The counter as seen at `at`: windows that have ended start again from zero. A
    /// timestamp older than the stored window (another node's clock lagging) counts in the
    /// stored window, so a clock step never resets a limit.
    pub fn at(mut self, at: i64) -> SendCounter {
        let (hour, day) = (at.div_euclid(3600), at.div_euclid(86_400));
        if hour > self.hour {
            self.hour = hour;
            self.hour_count = 0;
        }
        if day > self.day {
            self.day = day;
            self.day_count = 0;
        }
        self
    }
}

pub(super) fn charge(
    tx: &mut Tx<'_>,
    g: GroupId,
    account: AccountId,
    at: i64,
    limits: SendLimits,
) -> Applied {
    let key = schema::send_counter(g, account);
    let counter = tx.get::<SendCounter>(&key)?.unwrap_or_default().at(at);
    let over = |limit: u32, count: u32| limit > 0 && count >= limit;
    if over(limits.per_hour, counter.hour_count) || over(limits.per_day, counter.day_count) {
        return Err(Rejection::SendLimitExceeded.into());
    }
    let charged = SendCounter {
        hour_count: counter.hour_count.saturating_add(1),
        day_count: counter.day_count.saturating_add(1),
        ..counter
    };
    tx.put(key, &charged);
    Ok(Response::Ok)
}
