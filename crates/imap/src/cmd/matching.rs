//! Which messages of the selected mailbox match SEARCH keys, shared by SEARCH, SORT and
//! THREAD. Keys on the record decide first; a message is read only when a key or the
//! caller needs its bytes, one at a time, so memory stays near one message.

use crate::proto::search::SearchKey;
use crate::search::{self, Candidate, Message};
use crate::session::Session;
use tern_core::records::MessageRecord;
use tern_mailbox::{Account, MailboxError};

/// A message that matched, with what the caller took from it.
pub(crate) struct Match<T> {
    /// Sequence number.
    pub seq: u32,
    /// The record.
    pub record: MessageRecord,
    /// What `take` returned for it.
    pub data: T,
}

impl Session {
    /// The messages that match `key`, in sequence order, each with `take(record, message)`;
    /// `message` is the message's bytes when `need` is set (or a key needed them).
    pub(crate) async fn matching<T>(
        &self,
        account: &Account,
        key: &SearchKey,
        need: bool,
        take: impl Fn(&MessageRecord, Option<&Message<'_>>) -> T,
    ) -> Result<Vec<Match<T>>, MailboxError> {
        let Some(view) = self.selected.as_ref() else {
            return Ok(Vec::new());
        };
        let largest = (
            view.messages.len() as u32,
            view.messages.last().map(|m| m.uid.0).unwrap_or(0),
        );
        let messages: Vec<(u32, MessageRecord, bool)> = view
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u32 + 1, m.clone(), view.is_recent(m.uid)))
            .collect();
        let mut found = Vec::new();
        for (seq, record, recent) in messages {
            let candidate = Candidate {
                seq,
                record: &record,
                message: None,
                largest,
                recent,
            };
            let decided = search::eval(key, &candidate);
            if decided == Some(false) {
                continue;
            }
            let data = if decided.is_none() || need {
                let blob = account.read_blob(record.blob).await?;
                let message = Message::new(&blob);
                let candidate = Candidate {
                    message: Some(&message),
                    ..candidate
                };
                if !search::eval(key, &candidate).unwrap_or(false) {
                    continue;
                }
                take(&record, Some(&message))
            } else {
                take(&record, None)
            };
            found.push(Match { seq, record, data });
        }
        Ok(found)
    }
}
