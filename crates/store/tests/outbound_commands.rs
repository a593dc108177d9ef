//! The queue's retry commands and the sending-limit counter, applied to a real RocksDB.

use tern_core::records::QueuedRecipient;
use tern_core::{AccountId, DeliveryId, GroupId};
use tern_store::{Command, Reader, Rejection, Response, SendLimits};

mod common;
use common::Replica;

const G: GroupId = GroupId(1);

/// A replica of partition `G`.
struct Partition(Replica);

impl Partition {
    fn new() -> Partition {
        Partition(Replica::new())
    }

    fn apply(&self, command: &Command) -> Response {
        self.0.apply(G, command)
    }

    fn reader(&self) -> Reader {
        self.0.reader(G)
    }

    /// Queues one message for two remote recipients.
    fn queue_remote(&self, id: DeliveryId) {
        let accept = Command::Accept {
            id,
            sender: "a@here.example".into(),
            body: b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            received_at: 1_000,
            local: vec![],
            other_partitions: vec![],
            remote: vec!["x@far.example".into(), "y@far.example".into()],
        };
        assert!(matches!(self.apply(&accept), Response::Accepted(_)));
    }

    fn remote(&self, id: DeliveryId, who: &str) -> (u32, i64, Option<String>) {
        let entry = self.reader().queued(id).unwrap().expect("queued");
        entry
            .recipients
            .into_iter()
            .find_map(|r| match r {
                QueuedRecipient::Remote {
                    address,
                    attempts,
                    next_attempt,
                    last_error,
                } if address == who => Some((attempts, next_attempt, last_error)),
                _ => None,
            })
            .expect("recipient queued")
    }
}

fn defer(id: DeliveryId, attempts: u32, next_attempt: i64) -> Command {
    Command::Defer {
        id,
        recipient: "x@far.example".into(),
        attempts,
        next_attempt,
        error: format!("451 4.3.0 try {attempts}"),
    }
}

#[test]
fn defer_records_attempts_and_ignores_stale_and_replayed_proposals() {
    let r = Partition::new();
    let id = DeliveryId(42);
    r.queue_remote(id);
    assert_eq!(r.remote(id, "x@far.example"), (0, 1_000, None));
    assert!(r.reader().accepted(id).unwrap());

    assert_eq!(r.apply(&defer(id, 1, 1_300)), Response::Ok);
    let digest = r.reader().digest().unwrap();
    assert_eq!(r.apply(&defer(id, 1, 1_300)), Response::Ok);
    assert_eq!(
        r.reader().digest().unwrap(),
        digest,
        "a replay changed state"
    );
    assert_eq!(r.apply(&defer(id, 2, 1_900)), Response::Ok);
    // An older leader's late report does not roll the state back.
    assert_eq!(r.apply(&defer(id, 1, 1_300)), Response::Ok);
    let (attempts, next, error) = r.remote(id, "x@far.example");
    assert_eq!((attempts, next), (2, 1_900));
    assert_eq!(error.as_deref(), Some("451 4.3.0 try 2"));
    // The other recipient is untouched.
    assert_eq!(r.remote(id, "y@far.example"), (0, 1_000, None));

    let unknown = Command::Defer {
        id,
        recipient: "nobody@far.example".into(),
        attempts: 1,
        next_attempt: 0,
        error: String::new(),
    };
    assert_eq!(r.apply(&unknown), Response::Rejected(Rejection::NotQueued));
    assert_eq!(
        r.apply(&defer(DeliveryId(7), 1, 0)),
        Response::Rejected(Rejection::NotQueued)
    );
}

#[test]
fn retry_makes_remote_recipients_due_now() {
    let r = Partition::new();
    let (a, b) = (DeliveryId(1), DeliveryId(2));
    r.queue_remote(a);
    r.queue_remote(b);
    r.apply(&defer(a, 3, 9_000));
    r.apply(&defer(b, 3, 9_000));
    let retry_a = Command::RetryQueued {
        id: Some(a),
        now: 2_000,
    };
    assert_eq!(r.apply(&retry_a), Response::Ok);
    assert_eq!(r.remote(a, "x@far.example").1, 2_000);
    assert_eq!(r.remote(b, "x@far.example").1, 9_000);
    // Already due recipients keep their time; attempts are not reset.
    assert_eq!(r.remote(a, "y@far.example").1, 1_000);
    assert_eq!(r.remote(a, "x@far.example").0, 3);

    let flush = Command::RetryQueued {
        id: None,
        now: 2_500,
    };
    assert_eq!(r.apply(&flush), Response::Ok);
    assert_eq!(r.remote(b, "x@far.example").1, 2_500);
    let missing = Command::RetryQueued {
        id: Some(DeliveryId(3)),
        now: 0,
    };
    assert_eq!(r.apply(&missing), Response::Rejected(Rejection::NotQueued));
}

#[test]
fn send_limits_count_per_hour_and_day_and_roll_over() {
    let r = Partition::new();
    let account = AccountId(9);
    let limits = SendLimits {
        per_hour: 2,
        per_day: 3,
    };
    let charge = |at: i64| Command::ChargeSend {
        account,
        at,
        limits,
    };
    let day = 86_400 * 20_000;
    assert_eq!(r.apply(&charge(day + 10)), Response::Ok);
    assert_eq!(r.apply(&charge(day + 20)), Response::Ok);
    let over = Response::Rejected(Rejection::SendLimitExceeded);
    assert_eq!(r.apply(&charge(day + 30)), over, "third in one hour");
    // A refusal is not counted; a clock behind the stored window counts in that window.
    assert_eq!(r.apply(&charge(day - 5)), over);
    // The next hour starts again, but the day allows only one more.
    assert_eq!(r.apply(&charge(day + 3_600)), Response::Ok);
    assert_eq!(r.apply(&charge(day + 3_601)), over, "fourth in one day");
    assert_eq!(r.apply(&charge(day + 86_400)), Response::Ok, "a new day");
    let counter = r.reader().send_counter(account).unwrap();
    assert_eq!((counter.hour_count, counter.day_count), (1, 1));

    // Two replicas applying the same commands agree byte for byte.
    let other = Partition::new();
    for at in [
        day + 10,
        day + 20,
        day + 30,
        day - 5,
        day + 3_600,
        day + 3_601,
        day + 86_400,
    ] {
        other.apply(&charge(at));
    }
    assert_eq!(
        other.reader().digest().unwrap(),
        r.reader().digest().unwrap()
    );
    // Without limits nothing is refused.
    let unlimited = Command::ChargeSend {
        account,
        at: day + 86_401,
        limits: SendLimits::default(),
    };
    assert_eq!(r.apply(&unlimited), Response::Ok);
}

#[test]
fn the_maildrop_lease_admits_one_holder_until_it_ends_or_is_released() {
    let r = Partition::new();
    let account = AccountId(4);
    let take = |holder: u128, now: i64| Command::LeaseMaildrop {
        account,
        holder,
        now,
        until: now + 60,
    };
    let in_use = Response::Rejected(Rejection::MaildropInUse);
    assert_eq!(r.apply(&take(1, 1_000)), Response::Ok);
    assert_eq!(r.apply(&take(2, 1_030)), in_use, "held by session 1");
    assert_eq!(r.apply(&take(1, 1_040)), Response::Ok, "its holder renews");
    assert_eq!(r.apply(&take(2, 1_100)), in_use, "renewed until 1100");
    // Another account's maildrop is separate.
    let other_account = Command::LeaseMaildrop {
        account: AccountId(5),
        holder: 2,
        now: 1_100,
        until: 1_160,
    };
    assert_eq!(r.apply(&other_account), Response::Ok);
    // A lease nobody renewed (its node died) ends; then anyone may take it.
    assert_eq!(r.apply(&take(2, 1_101)), Response::Ok, "ran out at 1100");
    assert_eq!(r.apply(&take(1, 1_102)), in_use, "session 1 lost it");
    // Only the holder's release ends the lease.
    let release = |holder: u128| Command::ReleaseMaildrop { account, holder };
    assert_eq!(r.apply(&release(1)), Response::Ok);
    assert_eq!(r.apply(&take(1, 1_103)), in_use);
    assert_eq!(r.apply(&release(2)), Response::Ok);
    assert_eq!(r.apply(&take(1, 1_104)), Response::Ok, "released");
}
