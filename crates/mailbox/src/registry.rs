//! [`Mailboxes`]: the registry of mailbox actors on this node, and of each account's shared
//! event channel and maildrop lock.

use crate::actor::{AccountActor, AccountMsg, AccountState};
use crate::events::{changes, event_for, publish};
use crate::{Account, MailboxError, MailboxEvent};
use ractor::{Actor, ActorRef, ActorStatus};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tern_core::AccountId;
use tern_directory::AccountInfo;
use tern_raft::RaftNode;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How many events a slow watcher may fall behind before it is told it lagged (it then
/// resyncs from the mailbox instead of replaying events).
const EVENT_BACKLOG: usize = 256;

/// Per-account state every handle shares, kept for the life of the process so that watchers
/// and the maildrop lock outlive any one actor.
pub(crate) struct Shared {
    /// Change events for the account's watchers.
    pub events: broadcast::Sender<MailboxEvent>,
    /// The POP3 maildrop lock (RFC 1939: one session per maildrop).
    pub maildrop: Arc<tokio::sync::Mutex<()>>,
    /// Whether the default mailboxes were checked since this process started.
    pub initialised: AtomicBool,
}

/// A running mailbox actor and the task that runs it.
struct Running {
    actor: ActorRef<AccountMsg>,
    task: JoinHandle<()>,
}

struct Inner {
    raft: RaftNode,
    /// A std mutex: `notify` is synchronous and nothing awaits while holding it.
    shared: Mutex<HashMap<AccountId, Arc<Shared>>>,
    /// An async mutex: spawning an actor awaits, and two sessions opening the same account
    /// at once must end up with one actor.
    actors: tokio::sync::Mutex<HashMap<AccountId, Running>>,
    /// Set by `shutdown`: no new actors after that.
    closed: AtomicBool,
}

/// The registry of mailbox actors on this node. Cheap to clone.
#[derive(Clone)]
pub struct Mailboxes {
    inner: Arc<Inner>,
}

impl Mailboxes {
    /// A registry proposing through `raft`. Watchers on this node hear of every change this
    /// replica applies, whichever node made it.
    pub fn new(raft: RaftNode) -> Mailboxes {
        let mailboxes = Mailboxes {
            inner: Arc::new(Inner {
                raft: raft.clone(),
                shared: Mutex::new(HashMap::new()),
                actors: tokio::sync::Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
            }),
        };
        // Events are published from the apply loop itself, in apply order and before the
        // proposer hears back, so a watcher sees a mailbox's MODSEQ only grow. Only accounts
        // watched on this node cost anything: a point read for the new MODSEQ.
        let weak = Arc::downgrade(&mailboxes.inner);
        raft.observe(Arc::new(move |_group, command, response| {
            let Some(inner) = weak.upgrade() else { return };
            let registry = Mailboxes { inner };
            for (account, touched) in changes(command, response) {
                if !registry.lock_shared().contains_key(&account) {
                    continue;
                }
                let reader = registry
                    .inner
                    .raft
                    .local_reader(registry.inner.raft.partition_of(account));
                if let Some(event) = event_for(&reader, account, &touched) {
                    registry.notify(account, event);
                }
            }
        }));
        mailboxes
    }

    /// The handle of `account`'s mailbox actor, starting it if needed (and creating the
    /// default mailboxes if the account has none yet).
    /// On a node without a replica of the account's partition, that is
    /// [`MailboxError::Elsewhere`]: the session is relayed to a node with one.
    pub async fn open(&self, account: &AccountInfo) -> Result<Account, MailboxError> {
        let partition = self.inner.raft.partition_of(account.id);
        if !self.inner.raft.serves_here(partition) {
            return Err(MailboxError::Elsewhere(partition));
        }
        let shared = self.shared(account.id);
        let actor = self.actor(account.id).await?;
        let handle = Account::new(
            account.clone(),
            partition,
            self.inner.raft.clone(),
            actor,
            Arc::clone(&shared),
        );
        if !shared.initialised.load(Ordering::Acquire) {
            handle.ensure_defaults().await?;
            shared.initialised.store(true, Ordering::Release);
        }
        Ok(handle)
    }

    /// The Raft node the mailboxes live on.
    pub(crate) fn raft(&self) -> &RaftNode {
        &self.inner.raft
    }

    /// Tells watchers of `account` that `mailbox` changed (called after a delivery commits).
    pub fn notify(&self, account: AccountId, event: MailboxEvent) {
        let sender = self.lock_shared().get(&account).map(|s| s.events.clone());
        // Nobody opened the account on this node: there is nobody to wake.
        if let Some(sender) = sender {
            publish(&sender, event);
        }
    }

    /// Stops every mailbox actor.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let running: Vec<Running> = {
            let mut actors = self.inner.actors.lock().await;
            actors.drain().map(|(_, r)| r).collect()
        };
        for r in &running {
            // Stopping lets the current write finish; queued ones get `ActorGone`.
            r.actor.stop(Some("shutdown".into()));
        }
        for r in running {
            if let Err(e) = r.task.await {
                tracing::warn!("mailbox actor ended badly: {e}");
            }
        }
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Arc<Shared>>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts),
        // so a poisoned lock is still usable.
        tern_core::sync::lock(&self.inner.shared)
    }

    fn shared(&self, account: AccountId) -> Arc<Shared> {
        let mut map = self.lock_shared();
        let entry = map.entry(account).or_insert_with(|| {
            Arc::new(Shared {
                events: broadcast::channel(EVENT_BACKLOG).0,
                maildrop: Arc::new(tokio::sync::Mutex::new(())),
                initialised: AtomicBool::new(false),
            })
        });
        Arc::clone(entry)
    }

    /// The account's running actor, spawning one if there is none (or it died).
    async fn actor(&self, account: AccountId) -> Result<ActorRef<AccountMsg>, MailboxError> {
        let mut actors = self.inner.actors.lock().await;
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(MailboxError::ActorGone);
        }
        if let Some(r) = actors.get(&account)
            && r.actor.get_status() == ActorStatus::Running
        {
            return Ok(r.actor.clone());
        }
        let state = AccountState {
            raft: self.inner.raft.clone(),
            partition: self.inner.raft.partition_of(account),
        };
        let (actor, task) = Actor::spawn(None, AccountActor, state).await.map_err(|e| {
            tracing::error!(%account, "cannot start mailbox actor: {e}");
            MailboxError::ActorGone
        })?;
        actors.insert(
            account,
            Running {
                actor: actor.clone(),
                task,
            },
        );
        Ok(actor)
    }
}
