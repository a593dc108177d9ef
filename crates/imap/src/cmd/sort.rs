//! SORT and ESORT (RFC 5256, RFC 5957, RFC 5267) and THREAD (RFC 5256).

use crate::esearch::{self, Hit};
use crate::proto::search::{SearchKey, SearchReturn};
use crate::proto::sort::{SortCriterion, ThreadAlgorithm};
use crate::session::{Session, no_for};
use crate::sort::{self, Value};
use crate::thread::{self, Item};
use tern_mailbox::Account;

impl Session {
    /// SORT: the matching messages in the criteria's order, as `* SORT` or (with RETURN)
    /// `* ESEARCH`.
    pub(crate) async fn sort(
        &mut self,
        tag: &str,
        account: &Account,
        uid: bool,
        criteria: &[SortCriterion],
        key: &SearchKey,
        ret: Option<SearchReturn>,
    ) {
        let need = sort::needs_message(criteria);
        let found = match self
            .matching(account, key, need, |r, m| sort::values(criteria, r, m))
            .await
        {
            Ok(f) => f,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let mut items: Vec<(u32, Vec<Value>, Hit)> = found
            .into_iter()
            .map(|m| {
                let hit = Hit {
                    number: if uid { m.record.uid.0 } else { m.seq },
                    uid: m.record.uid.0,
                    modseq: m.record.modseq.0,
                };
                (m.seq, m.data, hit)
            })
            .collect();
        sort::order(criteria, &mut items);
        let hits: Vec<Hit> = items.into_iter().map(|(_, _, h)| h).collect();
        match ret {
            Some(ret) => {
                if ret.save {
                    self.save_result(esearch::saved(&hits, &ret));
                }
                if ret.responds() {
                    let line = esearch::response(tag, uid, &hits, &ret, key.has_modseq());
                    self.untagged(&line);
                }
            }
            None => {
                let mut line = String::from("* SORT");
                for h in &hits {
                    line.push_str(&format!(" {}", h.number));
                }
                self.untagged(&line);
            }
        }
        self.refresh(uid, uid).await;
        self.tagged(tag, "OK SORT completed");
    }

    /// THREAD: the matching messages as threads.
    pub(crate) async fn thread(
        &mut self,
        tag: &str,
        account: &Account,
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: &SearchKey,
    ) {
        let take = |r: &tern_core::records::MessageRecord,
                    m: Option<&crate::search::Message<'_>>| {
            let (subject, reply) = sort::base_subject(&sort::subject(m));
            let field = |name: &str| m.and_then(|m| m.field(name));
            Item {
                number: r.uid.0,
                sent: sort::sent_time(m, r),
                subject: subject.to_uppercase(),
                reply,
                message_id: thread::message_id(field("Message-ID")),
                references: thread::reference_ids(field("References"), field("In-Reply-To")),
            }
        };
        let found = match self.matching(account, key, true, take).await {
            Ok(f) => f,
            Err(e) => return self.tagged(tag, &no_for(&e)),
        };
        let items: Vec<Item> = found
            .into_iter()
            .map(|m| Item {
                number: if uid { m.record.uid.0 } else { m.seq },
                ..m.data
            })
            .collect();
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&items),
            ThreadAlgorithm::References => thread::references(&items),
        };
        let line = format!("* THREAD {}", thread::format(&items, &threads));
        self.untagged(line.trim_end());
        self.refresh(uid, uid).await;
        self.tagged(tag, "OK THREAD completed");
    }
}
