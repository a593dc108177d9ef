//! STAT, LIST and UIDL (RFC 1939 §5, §7): sizes and unique ids of the messages not marked
//! deleted.

use crate::backend::{Backend, MailAccount};
use crate::maildrop::Maildrop;
use crate::replies;
use crate::session::{Flow, Session};
use std::io;

/// STAT: count and total size.
pub fn stat<B: Backend>(s: &mut Session<'_, B>, maildrop: &Maildrop<impl MailAccount>) -> Flow {
    let (count, octets) = maildrop.stat();
    s.send(&replies::stat(count, octets));
    Flow::Continue
}

/// LIST: the size of one message, or of every message.
pub async fn list<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &Maildrop<impl MailAccount>,
    msg: Option<u32>,
) -> io::Result<Flow> {
    match msg {
        Some(msg) => match maildrop.get(msg) {
            Some(message) => s.send(&replies::one_listing(msg, &message.size.to_string())),
            None => s.send(&replies::NO_SUCH_MESSAGE),
        },
        None => {
            let (count, octets) = maildrop.stat();
            let lines = maildrop.live().map(|(n, m)| format!("{n} {}", m.size));
            s.send_multiline(&replies::list_all(count, octets), lines)
                .await?;
        }
    }
    Ok(Flow::Continue)
}

/// UIDL: the unique id of one message, or of every message.
pub async fn uidl<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &Maildrop<impl MailAccount>,
    msg: Option<u32>,
) -> io::Result<Flow> {
    match msg {
        Some(msg) => match maildrop.get(msg) {
            Some(message) => s.send(&replies::one_listing(msg, &maildrop.unique_id(message))),
            None => s.send(&replies::NO_SUCH_MESSAGE),
        },
        None => {
            let lines = maildrop
                .live()
                .map(|(n, m)| format!("{n} {}", maildrop.unique_id(m)));
            s.send_multiline(&replies::UIDL_ALL, lines).await?;
        }
    }
    Ok(Flow::Continue)
}
