//! The durable queue: accepting SMTP transactions with one Raft commit, and queue partition
//! actors that deliver to other partitions (and, later, to remote MX hosts).
//!
//! [`Queue::accept`] turns an [`Envelope`] into one `Accept` command on one partition: its
//! commit stores the body, delivers to every recipient living in that partition and queues the
//! rest. One actor per partition then delivers the queued local recipients to their own
//! partitions (`Deliver`, then `Dequeue`). Remote recipients stay queued until the outbound
//! relay exists; bounces (DSN) are not produced yet.
//!
//! - `service`: [`Queue`], accepting, listing and owning the actors.
//! - `plan`: which partition commits and which recipients it delivers or queues.
//! - `actor`: the queue partition actor and its timer.
//! - `delivery`: one delivery pass over a partition's queue.
//! - `envelope`: [`Envelope`] and [`Accepted`].
//! - `error`: [`QueueError`].
#![warn(missing_docs)]

mod actor;
mod delivery;
mod envelope;
mod error;
mod plan;
mod service;

pub use envelope::{Accepted, Envelope};
pub use error::QueueError;
pub use service::Queue;
