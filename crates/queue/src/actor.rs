//! The queue partition actor: one per data partition. It runs delivery passes when `accept`
//! queued something there, when an operator asked for a retry, when a remote delivery task
//! finished, at the next due retry, and on a periodic tick — one pass at a time. Remote
//! deliveries run in tasks beside the actor; the actor remembers which recipients they hold.

use crate::delivery::Courier;
use crate::outbound::Key;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often a partition's queue is scanned without being woken: it catches work left over
/// from a failed pass, a restart or a leadership change.
pub(crate) const SCAN_INTERVAL: Duration = Duration::from_secs(5);
/// How often the leader forgets expired de-duplication records of its partition (sooner when
/// a sweep hit its limit).
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Messages of the queue partition actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueueMsg {
    /// Something was queued or became due: run a pass now.
    Wake,
    /// The periodic timer: run a pass unless one finished recently.
    Tick,
    /// A delivery task ended: its recipients may be worked on again.
    Released(Vec<Key>),
}

/// The actor's state.
pub(crate) struct QueueState {
    /// Does the work.
    courier: Courier,
    /// Sends `Tick`s; stopped with the actor.
    ticker: Option<JoinHandle<()>>,
    /// When the last pass finished, so that ticks queued behind a slow pass do not pile up.
    last_pass: Option<Instant>,
    /// Remote recipients a delivery task is working on.
    in_flight: HashSet<Key>,
    /// The delivery tasks, aborted when the actor stops.
    tasks: Vec<JoinHandle<()>>,
    /// A pending wake-up for the next due retry, and when it fires.
    alarm: Option<(Instant, Alarm)>,
    /// When expired de-duplication records were last swept.
    last_sweep: Option<Instant>,
}

/// A timer task that sends the actor a wake-up.
type Alarm = JoinHandle<Result<(), MessagingErr<QueueMsg>>>;

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
            in_flight: HashSet::new(),
            tasks: Vec::new(),
            alarm: None,
            last_sweep: None,
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
        if let Some((_, alarm)) = state.alarm.take() {
            alarm.abort();
        }
        // A delivery cut short is tried again by whichever node leads next; at worst the
        // remote sees that message twice (the SMTP window between its 250 and our Dequeue).
        for task in state.tasks.drain(..) {
            task.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<QueueMsg>,
        message: QueueMsg,
        state: &mut QueueState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            QueueMsg::Released(keys) => {
                for key in &keys {
                    state.in_flight.remove(key);
                }
                // A deferred recipient may be due again soon: the pass sets the alarm.
            }
            QueueMsg::Tick => {
                let recent = state
                    .last_pass
                    .is_some_and(|at| at.elapsed() < SCAN_INTERVAL / 2);
                if recent {
                    return Ok(());
                }
            }
            QueueMsg::Wake => {}
        }
        state.tasks.retain(|t| !t.is_finished());
        let group = state.courier.group;
        let running = state.tasks.len();
        match state
            .courier
            .pass(&mut state.in_flight, running, &myself)
            .await
        {
            Ok(pass) => {
                if pass.delivered > 0 || !pass.tasks.is_empty() {
                    tracing::debug!(%group, delivered = pass.delivered,
                        relaying = pass.tasks.len(), "queue pass");
                }
                state.tasks.extend(pass.tasks);
                if let Some(due) = pass.next_due {
                    set_alarm(&myself, state, due);
                }
            }
            // Not leading the partition, no quorum, shutting down: the next pass retries.
            // The actor must not stop, so the error ends here.
            Err(e) => tracing::debug!(%group, "queue pass failed: {e}"),
        }
        state.last_pass = Some(Instant::now());
        if state
            .last_sweep
            .is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL)
        {
            state.last_sweep = Some(Instant::now());
            match state.courier.expire_dedup().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(%group, records = n, "expired de-duplication records");
                    if n >= crate::delivery::EXPIRE_LIMIT {
                        state.last_sweep = None;
                    }
                }
                Err(e) => tracing::debug!(%group, "de-duplication sweep failed: {e}"),
            }
        }
        Ok(())
    }
}

/// Wakes the actor at unix second `due` when that is before the next tick would (short retry
/// intervals); keeps only the earliest alarm.
fn set_alarm(myself: &ActorRef<QueueMsg>, state: &mut QueueState, due: i64) {
    let now = chrono::Utc::now().timestamp();
    let wait = Duration::from_secs(u64::try_from(due.saturating_sub(now)).unwrap_or(0));
    if wait >= SCAN_INTERVAL {
        return;
    }
    let at = Instant::now() + wait;
    if let Some((pending, alarm)) = &state.alarm {
        if *pending <= at && !alarm.is_finished() {
            return;
        }
        alarm.abort();
    }
    // A moment after `due`, so the recipient is surely due when the pass looks.
    let handle = myself.send_after(wait + Duration::from_millis(200), || QueueMsg::Wake);
    state.alarm = Some((at, handle));
}
