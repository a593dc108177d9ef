//! Apply observers: code above the Raft layer (mailbox change events, queue wake-ups) learns of
//! every committed command as this replica applies it — on every node that holds the group, not
//! only on the node that proposed it.

use std::sync::{Arc, RwLock};
use tern_core::GroupId;
use tern_store::{Command, Response};

/// Called with each applied command and its response. It runs inside the apply loop, so it
/// must be quick and must not block: hand work to a channel.
pub type Observer = Arc<dyn Fn(GroupId, &Command, &Response) + Send + Sync>;

/// The node's observers, shared with every group's state machine.
#[derive(Clone, Default)]
pub struct Observers {
    list: Arc<RwLock<Vec<Observer>>>,
}

impl Observers {
    /// Adds `observer` for every command applied from now on.
    pub fn add(&self, observer: Observer) {
        tern_core::sync::write(&self.list).push(observer);
    }

    /// Tells every observer about one applied command.
    pub(crate) fn applied(&self, group: GroupId, command: &Command, response: &Response) {
        let list = tern_core::sync::read(&self.list);
        for observer in list.iter() {
            observer(group, command, response);
        }
    }
}
