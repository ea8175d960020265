//! Runs a range of seeds and prints every broken invariant with the command that replays it.
//!
//! `cargo run --release -p glance-presence-sim --bin sim-seeds -- <first seed> <count>`
//! (defaults: 0 and 100,000); `-- show <seed>` prints one run's scenario and transcript.

use std::time::Instant;

use glance_presence_sim::{check::Invariant, replay_command, run_seed};

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("show") {
        let seed: u64 = args.nth(1).and_then(|a| a.parse().ok()).unwrap_or(0);
        let scenario = glance_presence_sim::Scenario::from_seed(seed);
        println!("{scenario:#?}");
        let outcome = glance_presence_sim::World::new(scenario, true).run();
        println!("{}", outcome.transcript.unwrap_or_default());
        for v in &outcome.violations {
            println!("VIOLATION {:?} at {:?}: {}", v.invariant, v.at, v.detail);
        }
        return;
    }
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let started = Instant::now();
    let mut failed = 0u64;
    let mut storm_checked = 0u64;
    let mut steps = 0u64;
    let mut per_invariant = [0u64; Invariant::ALL.len()];
    for seed in first..first.saturating_add(count) {
        let outcome = run_seed(seed);
        steps += outcome.steps;
        storm_checked += u64::from(outcome.storm_checked);
        if !outcome.violations.is_empty() {
            failed += 1;
            for v in &outcome.violations {
                if let Some(i) = Invariant::ALL.iter().position(|x| *x == v.invariant) {
                    per_invariant[i] += 1;
                }
            }
            let first = &outcome.violations[0];
            println!(
                "seed {seed}: {:?} at {:?}: {}\n  replay: {}",
                first.invariant,
                first.at,
                first.detail,
                replay_command(seed)
            );
        }
    }
    println!(
        "{count} seeds from {first}: {failed} failed, {steps} steps, after-restart bound checked in {storm_checked}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (i, invariant) in Invariant::ALL.iter().enumerate() {
        println!("  {invariant:?}: {} violations", per_invariant[i]);
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
