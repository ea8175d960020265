//! # glance-presence-sim
//!
//! A deterministic simulation of the whole Glance Presence system: any number of
//! `AgentProtocol`s and `VisitorProtocol`s and one reference `ServiceCore`, wired through a
//! seeded in-memory network in virtual time, with faults (per-link latency and jitter, dropped
//! sockets, service crashes that lose its state and graceful restarts, failed, refused and late
//! HTTP requests, token expiry and renewal, visitor navigation, hidden tabs and leaving, many
//! agents per visitor). A run is a pure function of its seed: no threads, no sockets, no clock
//! read but the one `Instant` it is anchored to.
//!
//! What it is for: checking the system's promises ([`check`]) over thousands of fault
//! schedules, planning scale ([`scale`]), and whole-system transcripts. It is not a transport
//! and is not published.
//!
//! ```
//! use glance_presence_sim::{run_seed, Scenario};
//!
//! let outcome = run_seed(7);
//! assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
//! # let _ = Scenario::from_seed(7);
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod check;
pub mod net;
pub mod scale;
pub mod scenario;
pub mod service;
pub mod world;

pub use check::{Invariant, Violation};
pub use scenario::Scenario;
pub use world::{Outcome, World};

/// Plays the scenario of `seed` and checks every invariant.
pub fn run_seed(seed: u64) -> Outcome {
    World::new(Scenario::from_seed(seed), false).run()
}

/// The command that replays one seed, printed with every failure.
pub fn replay_command(seed: u64) -> String {
    format!(
        "SIM_SEED={seed} cargo test -p glance-presence-sim --test invariants replay -- --nocapture"
    )
}
