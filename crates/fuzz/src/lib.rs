//! Tern's fuzz targets as plain functions of the input bytes. Each one drives a reader or
//! parser that takes bytes from the network (or a peer node) and checks what it can cheaply
//! check: no panic, no hang, output within bounds, and where a second implementation or an
//! inverse exists, that both agree.
//!
//! The same functions run in two places: `cargo test -p tern-fuzz` replays the checked-in
//! corpus (`fuzz/corpus/<target>/`), the regressions (`fuzz/regressions/<target>/`) and a short
//! seeded mutation run in the normal build; `make fuzz` hands them to libFuzzer through the
//! cargo-fuzz project in `fuzz/` (nightly, instrumented, outside the workspace).
//! This crate does not fuzz anything by itself and is never linked into the server.
//!
//! - [`exec`]: an in-memory peer and a poll loop, so the async readers run without sockets.
//! - [`smtp`]: the command line reader and `proto::parse`; the DATA reader.
//! - [`imap`]: command assembly with literals, `proto::parse`, quoting, modified UTF-7.
//! - [`pop3`]: `parse_command`, `DotStuffer`, `top`.
//! - [`proxy`]: PROXY v1/v2 `examine`, byte by byte as the listener reads.
//! - [`link`]: node-link frames of `Request`, `Answer`, `Hello`, `Welcome`.
//! - [`mime`]: ENVELOPE, BODYSTRUCTURE and BODY[section] of arbitrary bytes.
//! - [`mutate`]: the small seeded mutator of the bounded run in `cargo test`.

pub mod exec;
pub mod imap;
pub mod link;
pub mod mime;
pub mod mutate;
pub mod pop3;
pub mod proxy;
pub mod smtp;

pub use imap::imap_command;
pub use link::link_frame;
pub use mime::mime;
pub use pop3::pop3;
pub use proxy::proxy;
pub use smtp::{smtp_command, smtp_data};

/// A fuzz target: takes any bytes, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also its directory under `fuzz/corpus/` and
/// `fuzz/regressions/`, and its binary in `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_command", smtp_command),
    ("smtp_data", smtp_data),
    ("imap_command", imap_command),
    ("pop3", pop3),
    ("proxy", proxy),
    ("link_frame", link_frame),
    ("mime", mime),
];
