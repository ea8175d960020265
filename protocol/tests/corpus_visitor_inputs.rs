//! Replays every file of the `visitor_inputs` fuzz corpus on stable, with the fuzz target's
//! checks: no panic and no invariant violation.
//!
//! `VISITOR_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_visitor_inputs`
//! regenerates the seed files: deterministic random inputs, kept when they reach states the
//! corpus does not cover yet (sockets opened, connected, keepalives sent).

use glance_presence_testkit::support;

use proptest::collection::vec;
use proptest::prelude::any;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use support::runs;
use support::visitor::ops::run_bytes;

#[test]
fn corpus_replays_without_violations() {
    runs::replay_corpus("visitor_inputs", 10, run_bytes);
}

#[test]
fn write_seed_corpus_when_asked() {
    let mut runner = TestRunner::deterministic();
    let strategy = vec(any::<u8>(), 64..2048);
    let next_input = || strategy.new_tree(&mut runner).expect("tree").current();
    let written = runs::grow_corpus(
        "VISITOR_CORPUS_WRITE",
        "visitor_inputs",
        next_input,
        run_bytes,
    );
    println!("wrote {written} seed files");
}
