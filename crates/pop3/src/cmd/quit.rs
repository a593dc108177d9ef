//! QUIT (RFC 1939 §6): sign off, and in TRANSACTION run the UPDATE state first.

use crate::backend::{Backend, MailAccount};
use crate::error::Pop3Error;
use crate::maildrop::Maildrop;
use crate::replies;
use crate::session::{Flow, Session};

/// QUIT in AUTHORIZATION: nothing to update.
pub fn quit<B: Backend>(s: &mut Session<'_, B>) -> Flow {
    s.send(&replies::goodbye(s.cfg.hostname));
    Flow::Close
}

/// QUIT in TRANSACTION: removes the messages marked deleted, then closes either way.
pub async fn quit_and_update<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &mut Maildrop<B::Account>,
) -> Flow {
    let updated = maildrop.update().await;
    maildrop.unlock().await;
    match updated {
        Ok(()) => {
            let (left, _) = maildrop.stat();
            s.send(&replies::goodbye_updated(s.cfg.hostname, left));
        }
        Err(source) => {
            let error = Pop3Error::Update {
                account: maildrop.account().info().id,
                mailbox: maildrop.mailbox(),
                source,
            };
            tracing::warn!(%error, "UPDATE failed");
            s.send(&replies::UPDATE_FAILED);
        }
    }
    Flow::Close
}
