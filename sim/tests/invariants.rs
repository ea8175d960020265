//! The system's promises over many seeds (see the crate's `check` module for the invariants
//! and their bounds).
//!
//! * `cargo test -p glance-presence-sim --test invariants` plays 10,000 seeds (set
//!   `SIM_SEEDS` to play another count, `SIM_FIRST_SEED` to start elsewhere).
//! * `SIM_SEED=<n> cargo test -p glance-presence-sim --test invariants replay -- --nocapture`
//!   replays one seed and prints its scenario and whole transcript.
//! * The long run: `cargo test --release -p glance-presence-sim --test invariants long_run --
//!   --ignored --nocapture` plays 1,000,000 seeds from `SIM_FIRST_SEED` (or `SIM_SEEDS` of
//!   them); the `sim-seeds` binary does the same from the command line.

use std::time::Instant;

use glance_presence_sim::check::Invariant;
use glance_presence_sim::{replay_command, run_seed, Scenario, World};

/// Seeds of 0..10,000 that once broke "signals once and in order": signals posted straight to
/// the visitor's last known server, a POST that failed was retried through `findvisitor` after
/// a later signal had already been delivered. The agent core now sends REST signals one at a
/// time and retries only on the service's own "not present"; these seeds keep it so.
const SIGNAL_ORDER_REGRESSIONS: &[u64] = &[
    74, 509, 1077, 1130, 1685, 1952, 2345, 3262, 3565, 3578, 3591, 4003, 4192, 4617, 4644, 5593,
    5702, 6776, 6870, 6932, 6970, 7336, 7936, 9517,
];

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Plays `count` seeds from `first`; panics with every failing seed and its replay command.
fn play(first: u64, count: u64) {
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut storm_checked = 0;
    for seed in first..first + count {
        let outcome = run_seed(seed);
        storm_checked += u64::from(outcome.storm_checked);
        if let Some(v) = outcome.violations.first() {
            failures.push(format!(
                "seed {seed}: {:?} at {:?}: {}\n    replay: {}",
                v.invariant,
                v.at,
                v.detail,
                replay_command(seed)
            ));
        }
    }
    println!(
        "{count} seeds from {first} in {:.1} s: every invariant checked on every seed ({:?}); \
         the after-restart reconnect count on the {storm_checked} seeds whose last restart \
         has no fault after it",
        started.elapsed().as_secs_f64(),
        Invariant::ALL
    );
    assert!(
        failures.is_empty(),
        "{} of {count} seeds broke a promise:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ten_thousand_seeds_keep_every_promise() {
    play(
        env("SIM_FIRST_SEED").unwrap_or(0),
        env("SIM_SEEDS").unwrap_or(10_000),
    );
}

#[test]
#[ignore = "the long run: about a minute per 100,000 seeds in a release build"]
fn long_run() {
    play(
        env("SIM_FIRST_SEED").unwrap_or(1_000_000),
        env("SIM_SEEDS").unwrap_or(1_000_000),
    );
}

#[test]
fn signals_keep_their_order_when_a_post_to_the_known_server_fails() {
    for &seed in SIGNAL_ORDER_REGRESSIONS {
        let outcome = run_seed(seed);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}\n    replay: {}",
            outcome.violations,
            replay_command(seed)
        );
    }
}

#[test]
fn replay() {
    let Some(seed) = env("SIM_SEED") else {
        return;
    };
    let scenario = Scenario::from_seed(seed);
    println!("{scenario:#?}");
    let outcome = World::new(scenario, true).run();
    println!("{}", outcome.transcript.unwrap_or_default());
    for v in &outcome.violations {
        println!("{:?} at {:?}: {}", v.invariant, v.at, v.detail);
    }
    assert!(outcome.violations.is_empty(), "seed {seed} broke a promise");
}

#[test]
fn a_run_is_a_pure_function_of_its_seed() {
    for seed in [3, 42, 977] {
        let a = World::new(Scenario::from_seed(seed), true).run();
        let b = World::new(Scenario::from_seed(seed), true).run();
        assert_eq!(a.transcript, b.transcript, "seed {seed}");
        assert_eq!(a.steps, b.steps);
    }
}
