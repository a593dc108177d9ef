//! The durable queue: accepting SMTP transactions with one Raft commit, queue partition actors
//! that deliver to other partitions and relay to remote MX hosts, retries, and bounces.
//!
//! [`Queue::accept`] turns an [`Envelope`] into one `Accept` command on one partition: its
//! commit stores the body, delivers to every recipient living in that partition and queues the
//! rest. One actor per partition, working only while its node leads the partition, then
//! delivers the queued local recipients to their own partitions (`Deliver`, then `Dequeue`)
//! and hands due remote recipients to delivery tasks, which send them through the [`Relay`]
//! and commit the outcome: `Dequeue`, `Defer` (retry later, backoff), or a DSN to the sender
//! and `Dequeue`. Every step is idempotent, so a failover repeats at most the SMTP delivery
//! that was in flight. The queue does not filter or sign mail, and does not store mailboxes.
//!
//! - `service`: [`Queue`], accepting, listing, operator commands, sending limits, the actors.
//! - `accept`: committing a transaction (SMTP and DSNs alike).
//! - `plan`: which partition commits and which recipients it delivers or queues.
//! - `actor`: the queue partition actor, its timers and in-flight set.
//! - `delivery`: one pass over a partition's queue; local delivery.
//! - `outbound`: the remote half of a pass; committing delivery outcomes.
//! - `relay`: [`Relay`]: MX lookup, SMTP client, TLS, per-destination limits.
//! - `schedule`: the retry backoff and expiry.
//! - `bounce`: sending DSNs once, to the right place; `dsn`: building them (RFC 3464).
//! - `headers`: header facts (Received count for loop detection, Return-Path removal).
//! - `envelope`: [`Envelope`] and [`Accepted`].
//! - `error`: [`QueueError`].
//!
//! New delivery behaviour goes in `delivery` (local) or `outbound` (remote) and commits its
//! outcome through a tern-store command; new operator commands are methods on [`Queue`] in
//! `service`, reached from the server's admin API.
#![warn(missing_docs)]

mod accept;
mod actor;
mod bounce;
mod dedup;
mod delivery;
mod dsn;
mod envelope;
mod error;
mod headers;
mod outbound;
mod plan;
mod relay;
mod schedule;
mod service;

pub use dedup::{names_itself, transaction_id};
pub use envelope::{Accepted, Envelope};
pub use error::QueueError;
pub use relay::Relay;
pub use service::Queue;
pub use tern_store::SendLimits;
