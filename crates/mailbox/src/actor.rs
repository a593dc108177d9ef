//! The mailbox actor: one per open account on this node. It proposes every write of the
//! account in turn, so an account's writes reach Raft in the order its sessions made them, and
//! announces each committed change to the account's watchers.
//!
//! Reads do not pass through the actor: they take a linearizable reader of the partition
//! directly, which already observes every write the actor has completed.

use crate::MailboxError;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, rpc::CallResult};
use std::time::Duration;
use tern_core::GroupId;
use tern_raft::RaftNode;
use tern_store::{Command, Response};

/// How long a session waits for its write before answering "try again". The write may still
/// commit later, which a Raft error already allows for.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages the mailbox actor handles.
pub(crate) enum AccountMsg {
    /// Propose `command` to the account's partition and report the response.
    Write {
        /// A command about this account.
        command: Command,
        /// The committed response; `Rejected` is already turned into an error.
        reply: RpcReplyPort<Result<Response, MailboxError>>,
    },
}

/// The actor's state, fixed at spawn.
pub(crate) struct AccountState {
    /// Proposes the writes.
    pub raft: RaftNode,
    /// The account's partition.
    pub partition: GroupId,
}

/// The actor behaviour (stateless; everything lives in [`AccountState`]).
pub(crate) struct AccountActor;

#[ractor::async_trait]
impl Actor for AccountActor {
    type Msg = AccountMsg;
    type State = AccountState;
    type Arguments = AccountState;

    async fn pre_start(
        &self,
        _myself: ActorRef<AccountMsg>,
        state: AccountState,
    ) -> Result<AccountState, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<AccountMsg>,
        message: AccountMsg,
        state: &mut AccountState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AccountMsg::Write { command, reply } => {
                let result = write(state, command).await;
                // The session may have given up waiting; the write stands either way.
                let _ = reply.send(result);
            }
        }
        // Failures go back to the caller: returning an error would stop the actor and strand
        // the account's other sessions.
        Ok(())
    }
}

/// Proposes one write. What it changed is announced by the registry when this replica applies
/// it (on every node, whichever proposed it).
async fn write(state: &AccountState, command: Command) -> Result<Response, MailboxError> {
    let response = state.raft.propose(state.partition, command).await?;
    if let Response::Rejected(rejection) = response {
        return Err(MailboxError::Rejected(rejection));
    }
    Ok(response)
}

/// Sends `command` through `actor` and waits for the committed response.
pub(crate) async fn call_write(
    actor: &ActorRef<AccountMsg>,
    partition: GroupId,
    command: Command,
) -> Result<Response, MailboxError> {
    let sent = actor
        .call(
            |reply| AccountMsg::Write { command, reply },
            Some(WRITE_TIMEOUT),
        )
        .await;
    match sent {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout) => Err(MailboxError::unavailable(partition, "write timed out")),
        Ok(CallResult::SenderError) | Err(_) => Err(MailboxError::ActorGone),
    }
}
