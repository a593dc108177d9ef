//! The queue partition actor: one per data partition. It runs delivery passes when `accept`
//! queued something there and on a periodic tick, one pass at a time.

use crate::delivery::Courier;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often a partition's queue is scanned without being woken: it catches work left over
/// from a failed pass, a restart or a leadership change.
pub(crate) const SCAN_INTERVAL: Duration = Duration::from_secs(5);

/// Messages of the queue partition actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueMsg {
    /// Something was queued: run a pass now.
    Wake,
    /// The periodic timer: run a pass unless one finished recently.
    Tick,
}

/// The actor's state.
pub(crate) struct QueueState {
    /// Does the work.
    courier: Courier,
    /// Sends `Tick`s; stopped with the actor.
    ticker: Option<JoinHandle<()>>,
    /// When the last pass finished, so that ticks queued behind a slow pass do not pile up.
    last_pass: Option<Instant>,
}

/// The actor behaviour (stateless; everything lives in [`QueueState`]).
pub(crate) struct QueueActor;

#[ractor::async_trait]
impl Actor for QueueActor {
    type Msg = QueueMsg;
    type State = QueueState;
    type Arguments = Courier;

    async fn pre_start(
        &self,
        myself: ActorRef<QueueMsg>,
        courier: Courier,
    ) -> Result<QueueState, ActorProcessingErr> {
        let ticker = myself.send_interval(SCAN_INTERVAL, || QueueMsg::Tick);
        Ok(QueueState {
            courier,
            ticker: Some(ticker),
            last_pass: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<QueueMsg>,
        _state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        // Whatever a previous run of the node left queued is picked up at once.
        myself.cast(QueueMsg::Wake)?;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<QueueMsg>,
        state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(ticker) = state.ticker.take() {
            ticker.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<QueueMsg>,
        message: QueueMsg,
        state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        let recent = state
            .last_pass
            .is_some_and(|at| at.elapsed() < SCAN_INTERVAL / 2);
        if message == QueueMsg::Tick && recent {
            return Ok(());
        }
        let group = state.courier.group;
        match state.courier.pass().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(%group, delivered = n, "queue pass"),
            // Not leading the partition, no quorum, shutting down: the next pass retries.
            // The actor must not stop, so the error ends here.
            Err(e) => tracing::debug!(%group, "queue pass failed: {e}"),
        }
        state.last_pass = Some(Instant::now());
        Ok(())
    }
}
