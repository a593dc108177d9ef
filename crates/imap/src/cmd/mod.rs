//! Command handlers, one family per module; each is an `impl Session` block.
//!
//! - [`folders`]: LIST, LSUB, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS, SELECT,
//!   EXAMINE, CLOSE, UNSELECT, APPEND.
//! - [`messages`]: FETCH, STORE, COPY/MOVE, SEARCH, EXPUNGE.
//! - [`idle`]: the IDLE command.
//! - [`quota`]: GETQUOTA, GETQUOTAROOT, SETQUOTA.
//! - [`sort`]: SORT and THREAD; [`matching`]: the messages search keys select.

pub mod folders;
pub mod idle;
pub mod matching;
pub mod messages;
pub mod quota;
pub mod sort;

use crate::proto::search::CHARSETS;
use crate::proto::{Command, SeqSet};
use crate::session::Session;

impl Session {
    /// Runs a command that needs an authenticated session (the gate has checked the state).
    /// An error is the connection's: the client stopped reading or went away mid-response.
    pub(crate) async fn mailbox_command(
        &mut self,
        tag: &str,
        command: Command,
    ) -> std::io::Result<()> {
        use Command::*;
        let Some(account) = self.account() else {
            self.tagged(tag, "BAD Not authenticated");
            return Ok(());
        };
        let command = self.resolve_saved(command);
        if let Search { key, .. } | Sort { key, .. } | Thread { key, .. } = &command {
            self.enable_condstore(key.has_modseq());
        }
        match command {
            List(args) => self.list(tag, &account, args).await,
            Lsub { reference, pattern } => self.lsub(tag, &account, &reference, &pattern).await,
            Create { name } => self.simple(tag, "CREATE", account.create(&name, None).await),
            Delete { name } => self.simple(tag, "DELETE", account.delete(&name).await),
            Rename { from, to } => self.simple(tag, "RENAME", account.rename(&from, &to).await),
            Subscribe { name } => {
                self.simple(tag, "SUBSCRIBE", account.subscribe(&name, true).await)
            }
            Unsubscribe { name } => {
                self.simple(tag, "UNSUBSCRIBE", account.subscribe(&name, false).await)
            }
            Status { name, items } => self.status(tag, &account, &name, &items).await,
            Select {
                name,
                read_only,
                condstore,
                qresync,
            } => {
                self.select(tag, &account, &name, read_only, condstore, qresync)
                    .await
            }
            Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                self.append(tag, &account, &mailbox, flags, date, message)
                    .await
            }
            Close => self.close(tag, &account, true).await,
            Unselect => self.close(tag, &account, false).await,
            Fetch {
                set,
                uid,
                items,
                changed_since,
                vanished,
            } => {
                let enables =
                    changed_since.is_some() || items.contains(&crate::proto::FetchItem::ModSeq);
                self.enable_condstore(enables);
                if vanished && !self.qresync {
                    self.tagged(tag, "BAD QRESYNC is not enabled");
                    return Ok(());
                }
                if vanished && let Some(view) = self.selected.as_ref() {
                    // RFC 7162 §3.2.6: the UIDs of the set that are gone, before the FETCH data.
                    let gone = view.missing_uids(&set, view.last_uid().0);
                    if !gone.is_empty() {
                        let line = format!("* VANISHED (EARLIER) {}", SeqSet::ranges_text(&gone));
                        self.untagged(&line);
                    }
                }
                let mut items = items;
                if self.qresync && !items.contains(&crate::proto::FetchItem::Uid) {
                    items.insert(0, crate::proto::FetchItem::Uid);
                }
                return self
                    .fetch(tag, &account, &set, uid, &items, changed_since)
                    .await;
            }
            Store {
                set,
                uid,
                op,
                silent,
                flags,
                unchanged_since,
            } => {
                self.store(tag, &account, &set, uid, op, silent, flags, unchanged_since)
                    .await
            }
            Copy {
                set,
                uid,
                mailbox,
                remove_source,
            } => {
                self.copy(tag, &account, &set, uid, &mailbox, remove_source)
                    .await
            }
            Search {
                bad_charset: Some(_),
                ..
            }
            | Sort {
                bad_charset: Some(_),
                ..
            }
            | Thread {
                bad_charset: Some(_),
                ..
            } => self.tagged(
                tag,
                &format!("NO [BADCHARSET ({CHARSETS})] Unsupported charset"),
            ),
            Search {
                uid,
                key,
                ret,
                bad_charset: None,
            } => self.search(tag, &account, uid, &key, ret).await,
            Sort {
                uid,
                criteria,
                key,
                ret,
                bad_charset: None,
            } => self.sort(tag, &account, uid, &criteria, &key, ret).await,
            Thread {
                uid,
                algorithm,
                key,
                bad_charset: None,
            } => self.thread(tag, &account, uid, algorithm, &key).await,
            Expunge { uids } => self.expunge(tag, &account, uids.as_ref()).await,
            GetQuota { root } => self.get_quota(tag, &account, &root).await,
            GetQuotaRoot { name } => self.get_quota_root(tag, &account, &name).await,
            SetQuota => self.tagged(tag, "NO [NOPERM] Quotas are set by the administrator"),
            _ => self.tagged(tag, "BAD Unexpected command"),
        }
        Ok(())
    }

    /// A CONDSTORE-enabling command (RFC 7162 §3.1: FETCH with MODSEQ or CHANGEDSINCE, SEARCH
    /// with MODSEQ) turns CONDSTORE on; the first one announces the HIGHESTMODSEQ.
    fn enable_condstore(&mut self, enables: bool) {
        if !enables || self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(view) = self.selected.as_mut() {
            view.show_modseq = true;
            let highest = view.messages.iter().map(|m| m.modseq.0).max().unwrap_or(0);
            self.untagged(&format!("* OK [HIGHESTMODSEQ {highest}] Highest"));
        }
    }

    /// Keeps the UIDs `$` will name (RFC 5182), until the next SAVE or SELECT.
    pub(crate) fn save_result(&mut self, uids: Vec<u32>) {
        if let Some(view) = self.selected.as_mut() {
            view.saved = uids;
        }
    }

    /// Replaces `$` in a command by the saved result: in a UID command or a search key by
    /// the saved UIDs, in other commands by those messages' sequence numbers (RFC 5182 §2.1).
    fn resolve_saved(&self, mut command: Command) -> Command {
        use Command::*;
        let Some(view) = self.selected.as_ref() else {
            return command;
        };
        let saved = &view.saved;
        match &mut command {
            Fetch { set, uid, .. } | Store { set, uid, .. } | Copy { set, uid, .. }
                if set.is_saved() =>
            {
                *set = if *uid {
                    SeqSet::of(saved)
                } else {
                    let seqs: Vec<u32> = saved
                        .iter()
                        .filter_map(|&u| view.seq_of(tern_core::Uid(u)))
                        .collect();
                    SeqSet::of(&seqs)
                };
                // An empty result names no message, which no sequence set can say.
                if set.is_saved() {
                    *set = SeqSet(vec![(Some(u32::MAX), Some(u32::MAX))]);
                }
            }
            Expunge { uids: Some(set) } if set.is_saved() => {
                *set = SeqSet::of(saved);
                if set.is_saved() {
                    *set = SeqSet(vec![(Some(u32::MAX), Some(u32::MAX))]);
                }
            }
            Search { key, .. } | Sort { key, .. } | Thread { key, .. } if key.uses_saved() => {
                key.resolve_saved(saved)
            }
            _ => {}
        }
        command
    }

    /// Completes a command whose only result is success or a mailbox error.
    fn simple<T>(&mut self, tag: &str, name: &str, result: Result<T, tern_mailbox::MailboxError>) {
        match result {
            Ok(_) => self.tagged(tag, &format!("OK {name} completed")),
            Err(e) => {
                let no = crate::session::no_for(&e);
                self.tagged(tag, &no);
            }
        }
    }
}
