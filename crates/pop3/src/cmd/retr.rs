//! RETR and TOP (RFC 1939 §5, §7): a message, or its headers and first lines, byte-stuffed.

use crate::backend::{Backend, MailAccount};
use crate::error::Pop3Error;
use crate::maildrop::Maildrop;
use crate::proto::{self, DotStuffer};
use crate::replies;
use crate::session::{Flow, Session};
use std::sync::Arc;

/// Bodies go out in pieces of this size, so a large message is never held twice in memory.
const CHUNK: usize = 64 * 1024;

/// RETR: the whole message; it gets `\Seen` when the session ends.
pub async fn retr<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &mut Maildrop<B::Account>,
    msg: u32,
) -> Result<Flow, Pop3Error> {
    let Some((size, body)) = fetch(s, maildrop, msg).await? else {
        return Ok(Flow::Continue);
    };
    s.send(&replies::retr(size));
    send_body(s, &body).await?;
    maildrop.mark_retrieved(msg);
    Ok(Flow::Continue)
}

/// TOP: the headers and `lines` lines of the body; the message stays unread.
pub async fn top<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &mut Maildrop<B::Account>,
    msg: u32,
    lines: u32,
) -> Result<Flow, Pop3Error> {
    let Some((_, body)) = fetch(s, maildrop, msg).await? else {
        return Ok(Flow::Continue);
    };
    s.send(&replies::TOP);
    send_body(s, proto::top(&body, lines)).await?;
    Ok(Flow::Continue)
}

/// Reads message `msg`'s size and body, or answers "no such message" and returns `None`.
async fn fetch<B: Backend>(
    s: &mut Session<'_, B>,
    maildrop: &Maildrop<B::Account>,
    msg: u32,
) -> Result<Option<(u64, Arc<Vec<u8>>)>, Pop3Error> {
    let Some(message) = maildrop.get(msg) else {
        s.send(&replies::NO_SUCH_MESSAGE);
        return Ok(None);
    };
    let body = maildrop
        .account()
        .read_blob(message.blob)
        .await
        .map_err(|source| Pop3Error::Retrieve {
            account: maildrop.account().info().id,
            uid: message.uid,
            source,
        })?;
    Ok(Some((message.size, body)))
}

/// Writes `body` byte-stuffed and terminated, flushing every [`CHUNK`].
async fn send_body<B: Backend>(s: &mut Session<'_, B>, body: &[u8]) -> std::io::Result<()> {
    let mut stuffer = DotStuffer::new();
    let mut out = Vec::with_capacity(CHUNK + CHUNK / 8);
    for chunk in body.chunks(CHUNK) {
        stuffer.push(chunk, &mut out);
        s.conn.write(&out);
        out.clear();
        s.conn.flush().await?;
    }
    // The terminator stays queued: with pipelining, the next reply may share its packet.
    stuffer.finish(&mut out);
    s.conn.write(&out);
    Ok(())
}
