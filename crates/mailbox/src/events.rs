//! Turning committed writes into [`MailboxEvent`]s: which mailboxes a command touched, and
//! their HIGHESTMODSEQ once it is applied.

use crate::MailboxEvent;
use tern_core::{AccountId, MailboxId, ModSeq};
use tern_store::{Command, Reader, Response};
use tokio::sync::broadcast;

/// Something a committed command changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Touched {
    /// The messages of this mailbox.
    Mailbox(MailboxId),
    /// The messages of the mailbox with this name (when the command names no id).
    Named(String),
    /// The mailbox list.
    List,
}

/// The part of a command that decides which events it causes. It is taken before the
/// command (which may carry a whole message body) moves into the proposal, so nothing large is
/// copied just to announce the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// APPEND: the target mailbox comes back in the response.
    Append,
    /// STORE on one mailbox.
    Store(MailboxId),
    /// COPY, or MOVE when `remove_source`: the target comes back in the response.
    Copy {
        /// The source mailbox.
        from: MailboxId,
        /// MOVE rather than COPY.
        remove_source: bool,
    },
    /// EXPUNGE in one mailbox.
    Expunge(MailboxId),
    /// RENAME of INBOX, which also empties INBOX.
    RenameInbox,
    /// Any other change to the mailbox list.
    List,
    /// Commands that change nothing a session watches.
    Other,
}

impl Shape {
    /// The shape of `command`.
    pub(crate) fn of(command: &Command) -> Shape {
        match command {
            Command::Append { .. } => Shape::Append,
            Command::StoreFlags { mailbox, .. } => Shape::Store(*mailbox),
            Command::CopyMessages {
                from,
                remove_source,
                ..
            } => Shape::Copy {
                from: *from,
                remove_source: *remove_source,
            },
            Command::Expunge { mailbox, .. } => Shape::Expunge(*mailbox),
            Command::RenameMailbox { from, .. } if from.eq_ignore_ascii_case("INBOX") => {
                Shape::RenameInbox
            }
            Command::CreateMailbox { .. }
            | Command::DeleteMailbox { .. }
            | Command::RenameMailbox { .. }
            | Command::SetSubscribed { .. }
            | Command::InitAccount { .. } => Shape::List,
            _ => Shape::Other,
        }
    }
}

/// What a command of `shape` changed, given the `response` it got (a no-op changes nothing).
pub(crate) fn touched(shape: Shape, response: &Response) -> Vec<Touched> {
    match (shape, response) {
        (Shape::Append, Response::Appended { mailbox, .. }) => vec![Touched::Mailbox(*mailbox)],
        (Shape::Store(mailbox), Response::FlagsStored { changed, .. }) if !changed.is_empty() => {
            vec![Touched::Mailbox(mailbox)]
        }
        (
            Shape::Copy {
                from,
                remove_source,
            },
            Response::Copied { mailbox, uids, .. },
        ) if !uids.is_empty() => {
            let mut out = vec![Touched::Mailbox(*mailbox)];
            if remove_source {
                out.push(Touched::Mailbox(from));
            }
            out
        }
        (Shape::Expunge(mailbox), Response::Expunged(uids)) if !uids.is_empty() => {
            vec![Touched::Mailbox(mailbox)]
        }
        // Renaming INBOX moves its messages out and leaves INBOX empty (RFC 9051 §6.3.6), so
        // a session that has INBOX selected must hear about it too.
        (Shape::RenameInbox, Response::Ok) => {
            vec![Touched::List, Touched::Named("INBOX".into())]
        }
        (Shape::List, Response::Ok) => vec![Touched::List],
        _ => Vec::new(),
    }
}

/// Which accounts' mailboxes an applied command changed, and how. This is what every replica
/// computes for its own watchers, whichever node proposed the command.
pub(crate) fn changes(command: &Command, response: &Response) -> Vec<(AccountId, Touched)> {
    let account = match command {
        Command::Append { account, .. }
        | Command::StoreFlags { account, .. }
        | Command::CopyMessages { account, .. }
        | Command::Expunge { account, .. }
        | Command::CreateMailbox { account, .. }
        | Command::DeleteMailbox { account, .. }
        | Command::RenameMailbox { account, .. }
        | Command::SetSubscribed { account, .. }
        | Command::InitAccount { account, .. } => Some(*account),
        _ => None,
    };
    if let Some(account) = account {
        return touched(Shape::of(command), response)
            .into_iter()
            .map(|t| (account, t))
            .collect();
    }
    match response {
        Response::Accepted(outcomes) => outcomes
            .iter()
            .filter_map(|o| match o {
                tern_store::DeliveryOutcome::Delivered {
                    account, mailbox, ..
                } => Some((*account, Touched::Mailbox(*mailbox))),
                tern_store::DeliveryOutcome::OverQuota { .. } => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The event announcing `touched`, with the mailbox's MODSEQ as the replica now has it; `None`
/// when the mailbox no longer exists (a later command deleted it).
pub(crate) fn event_for(
    reader: &Reader,
    account: AccountId,
    touched: &Touched,
) -> Option<MailboxEvent> {
    let record = match touched {
        Touched::List => return Some(MailboxEvent::ListChanged),
        Touched::Mailbox(id) => reader.mailbox_by_id(account, *id),
        Touched::Named(name) => reader.mailbox(account, name),
    };
    match record {
        Ok(Some(m)) => Some(MailboxEvent::Changed {
            mailbox: m.id,
            modseq: ModSeq(m.highest_modseq),
        }),
        Ok(None) => None,
        Err(e) => {
            // The change is committed; a missed wake-up only delays a session until its next
            // command, so a read error here is logged, not returned.
            tracing::warn!(%account, "reading MODSEQ for a change event: {e}");
            None
        }
    }
}

/// Sends `event` to whoever watches; nobody watching is not an error.
pub(crate) fn publish(events: &broadcast::Sender<MailboxEvent>, event: MailboxEvent) {
    let _ = events.send(event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_core::{Uid, records::SpecialUse};
    use tern_store::FlagOp;

    const A: AccountId = AccountId(1);

    #[test]
    fn table() {
        let mb = MailboxId(3);
        let store = Command::StoreFlags {
            account: A,
            mailbox: mb,
            uids: vec![Uid(1)],
            op: FlagOp::Add,
            flags: vec![],
            unchanged_since: None,
        };
        let moved = Command::CopyMessages {
            account: A,
            from: MailboxId(1),
            uids: vec![Uid(1)],
            to: "Archive".into(),
            remove_source: true,
            quota: 0,
        };
        let copied = Response::Copied {
            mailbox: MailboxId(6),
            uidvalidity: 1,
            uids: vec![(Uid(1), Uid(1))],
        };
        let rename = |from: &str| Command::RenameMailbox {
            account: A,
            from: from.into(),
            to: "Old".into(),
            now: 0,
        };
        let create = Command::CreateMailbox {
            account: A,
            name: "x".into(),
            special_use: Some(SpecialUse::Archive),
            now: 0,
        };
        let nothing_stored = Response::FlagsStored {
            changed: vec![],
            modified: vec![Uid(1)],
        };
        let stored = Response::FlagsStored {
            changed: vec![(Uid(1), vec![], ModSeq(5))],
            modified: vec![],
        };
        let cases: Vec<(Command, Response, Vec<Touched>)> = vec![
            (store.clone(), stored, vec![Touched::Mailbox(mb)]),
            (store, nothing_stored, vec![]),
            (
                moved,
                copied,
                vec![
                    Touched::Mailbox(MailboxId(6)),
                    Touched::Mailbox(MailboxId(1)),
                ],
            ),
            (
                rename("inbox"),
                Response::Ok,
                vec![Touched::List, Touched::Named("INBOX".into())],
            ),
            (rename("Work"), Response::Ok, vec![Touched::List]),
            (create, Response::Ok, vec![Touched::List]),
        ];
        for (command, response, want) in cases {
            assert_eq!(touched(Shape::of(&command), &response), want, "{command:?}");
        }
    }
}
