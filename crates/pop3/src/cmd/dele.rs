//! DELE, RSET and NOOP (RFC 1939 §5): deletion marks, kept in the session until QUIT.

use crate::backend::{Backend, MailAccount};
use crate::maildrop::{DeleteError, Maildrop};
use crate::replies;
use crate::session::{Flow, Session};

/// DELE: marks a message deleted; it disappears from listings now and from the mailbox at QUIT.
pub fn dele<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &mut Maildrop<impl MailAccount>,
    msg: u32,
) -> Flow {
    let reply = match maildrop.delete(msg) {
        Ok(()) => replies::DELETED,
        Err(DeleteError::NoSuchMessage) => replies::NO_SUCH_MESSAGE,
        Err(DeleteError::AlreadyDeleted) => replies::ALREADY_DELETED,
    };
    s.send(&reply);
    Flow::Continue
}

/// RSET: unmarks every deleted message.
pub fn rset<B: Backend>(s: &mut Session<'_, B>, maildrop: &mut Maildrop<impl MailAccount>) -> Flow {
    maildrop.reset();
    let (count, octets) = maildrop.stat();
    s.send(&replies::maildrop(count, octets));
    Flow::Continue
}

/// NOOP: nothing, positively.
pub fn noop<B: Backend>(s: &mut Session<'_, B>) -> Flow {
    s.send(&replies::NOOP);
    Flow::Continue
}
