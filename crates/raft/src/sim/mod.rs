//! Deterministic simulation (feature `sim`): 3-5 real nodes — real openraft, real RocksDB, the
//! real state machine — in one process, on a current-thread tokio runtime with a paused clock,
//! linked by a seeded simulated network instead of TLS. A seed fixes the fault schedule
//! (message loss, delay and reordering, partitions, crashes with restart from disk, a disk
//! wipe), the workload and every choice of the network.
//!
//! - [`rng`]: the seeded generator.
//! - [`net`]: the simulated network, [`SimNet`], and its [`crate::link::Transport`].
//! - [`cluster`]: machines: start, crash, restart, wipe.
//! - [`faults`]: the fault schedule, planned from the seed, played against simulated time.
//! - [`workload`]: clients (accepts with retries by transaction id, appends, flags,
//!   expunges) and a linearizable reader.
//! - [`history`]: what clients saw, and the checks made as answers arrive.
//! - [`check`]: convergence after healing, and the final state checks.
//! - [`run`]: one run from a seed ([`run::run`]).

pub mod check;
pub mod cluster;
pub mod faults;
pub mod history;
pub mod net;
pub mod rng;
pub mod run;
pub mod workload;

pub use net::SimNet;
pub use run::{SimConfig, SimReport, run};
