//! Replays every file of the `visitor_inputs` fuzz corpus on stable, with the fuzz target's
//! checks: no panic and no invariant violation.
//!
//! `VISITOR_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_visitor_inputs`
//! regenerates the seed files: deterministic random inputs, kept when they reach states the
//! corpus does not cover yet (sockets opened, connected, keepalives sent).

use glance_presence_testkit::support;

use support::runs;
use support::runs::props::seed_inputs;
use support::visitor::ops::run_bytes;

#[test]
fn corpus_replays_without_violations() {
    runs::replay_corpus("visitor_inputs", 10, run_bytes);
}

#[test]
fn write_seed_corpus_when_asked() {
    let written = runs::grow_corpus(
        "VISITOR_CORPUS_WRITE",
        "visitor_inputs",
        seed_inputs(),
        run_bytes,
    );
    println!("wrote {written} seed files");
}
