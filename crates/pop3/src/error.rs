//! The crate's error type. Errors carry the ids needed to find the problem in logs; they are
//! turned into POP3 replies only at the session edge, by [`Pop3Error::reply`], which keeps
//! temporary failures (`[SYS/TEMP]`, worth a retry) apart from permanent ones (`[SYS/PERM]`).

use crate::proto::Reply;
use crate::replies;
use std::io;
use tern_core::{AccountId, MailboxId, Uid};
use tern_directory::DirectoryError;
use tern_mailbox::MailboxError;
use thiserror::Error;

/// What can go wrong while serving a POP3 command.
#[derive(Debug, Error)]
pub enum Pop3Error {
    /// The socket failed or the peer vanished; nothing more can be sent.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The TLS handshake after STLS failed; the connection is unusable.
    #[error("STLS handshake: {0}")]
    Tls(io::Error),
    /// The directory could not check credentials for a reason other than wrong credentials.
    #[error("authenticating {user}: {source}")]
    Directory {
        /// The login name tried.
        user: String,
        /// The directory's error.
        source: DirectoryError,
    },
    /// Opening the account's INBOX (lock or snapshot) failed.
    #[error("opening the maildrop of {account}: {source}")]
    Open {
        /// The account.
        account: AccountId,
        /// The mailbox layer's error.
        source: MailboxError,
    },
    /// Reading a message body failed.
    #[error("reading message uid {} of {account}: {source}", uid.0)]
    Retrieve {
        /// The account.
        account: AccountId,
        /// The message.
        uid: Uid,
        /// The mailbox layer's error.
        source: MailboxError,
    },
    /// Flagging or expunging messages failed.
    #[error("updating mailbox {} of {account}: {source}", mailbox.0)]
    Update {
        /// The account.
        account: AccountId,
        /// The INBOX.
        mailbox: MailboxId,
        /// The mailbox layer's error.
        source: MailboxError,
    },
}

impl Pop3Error {
    /// The reply that tells the client about this error, or `None` when the connection is
    /// unusable and the session must end without another word.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            Pop3Error::Io(_) | Pop3Error::Tls(_) => None,
            Pop3Error::Directory { source, .. } => Some(match source {
                DirectoryError::AuthFailed
                | DirectoryError::InvalidAddress(_)
                | DirectoryError::Rejected(_) => replies::INVALID_CREDENTIALS,
                DirectoryError::Throttled => replies::THROTTLED,
                DirectoryError::Unavailable(_) | DirectoryError::Hash(_) => {
                    replies::TEMPORARY_FAILURE
                }
            }),
            Pop3Error::Open { source, .. }
            | Pop3Error::Retrieve { source, .. }
            | Pop3Error::Update { source, .. } => Some(mailbox_reply(source)),
        }
    }
}

fn mailbox_reply(error: &MailboxError) -> Reply {
    match error {
        MailboxError::InUse => replies::IN_USE,
        // A refusal by the state machine (no INBOX, say) will not change by retrying.
        MailboxError::Rejected(_) => replies::PERMANENT_FAILURE,
        // No leader, a timeout, a body not replicated here yet, an actor restarting: all of
        // these heal by themselves.
        // ... and so does a move of the account's partition under way.
        MailboxError::Unavailable(_)
        | MailboxError::MissingBlob(_)
        | MailboxError::ActorGone
        | MailboxError::Elsewhere(_) => replies::TEMPORARY_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::RespCode;
    use tern_core::ops::{Rejection, Unavailable};

    fn code(e: Pop3Error) -> Option<Option<RespCode>> {
        e.reply().map(|r| r.code)
    }

    #[test]
    fn errors_map_to_temporary_or_permanent_codes() {
        let account = AccountId(7);
        let unavailable = || Unavailable("group 3: no quorum".into());
        let open = |source| Pop3Error::Open { account, source };
        assert_eq!(code(open(MailboxError::InUse)), Some(Some(RespCode::InUse)));
        assert_eq!(
            code(open(MailboxError::Unavailable(unavailable()))),
            Some(Some(RespCode::SysTemp))
        );
        assert_eq!(
            code(open(MailboxError::Rejected(Rejection::NoSuchMailbox))),
            Some(Some(RespCode::SysPerm))
        );
        let dir = |source| Pop3Error::Directory {
            user: "u".into(),
            source,
        };
        assert_eq!(
            code(dir(DirectoryError::AuthFailed)),
            Some(Some(RespCode::Auth))
        );
        assert_eq!(
            code(dir(DirectoryError::Unavailable(unavailable()))),
            Some(Some(RespCode::SysTemp))
        );
        assert_eq!(code(Pop3Error::Io(io::ErrorKind::BrokenPipe.into())), None);
    }
}
