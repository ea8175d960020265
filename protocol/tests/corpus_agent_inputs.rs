//! Replays every file of the `agent_inputs` fuzz corpus on stable, with the fuzz target's
//! checks: no panic and no invariant violation.
//!
//! `AGENT_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_agent_inputs`
//! regenerates the seed files: deterministic random inputs, kept when they reach states the
//! corpus does not cover yet (connected, visitor left, requests resolved, reconnects, stops).

use glance_presence_testkit::support;

use support::agent::ops::run_bytes;
use support::runs;
use support::runs::props::seed_inputs;

#[test]
fn corpus_replays_without_violations() {
    runs::replay_corpus("agent_inputs", 10, run_bytes);
}

#[test]
fn write_seed_corpus_when_asked() {
    let written = runs::grow_corpus(
        "AGENT_CORPUS_WRITE",
        "agent_inputs",
        seed_inputs(),
        run_bytes,
    );
    println!("wrote {written} seed files");
}

/// Issue 8, row 9 (found by this target): the socket opens, the service sends
/// `visitorconn {connected:true}` before `connected`, then the lookup answers `{}`. The agent
/// must not report the visitor absent before the leave grace has passed.
#[test]
fn visitorconn_before_connected_then_empty_lookup_keeps_the_grace() {
    use support::agent::ops::{run, BodyChoice, FrameChoice, Op, Setup, StatusChoice};
    let setup = Setup {
        credentials: false,
        socket_route: false,
        glance_backoff: false,
        discovery: false,
        auto_pong: true,
        queue_bound: 3,
        seed: 7,
    };
    let ops = [
        Op::Connect,
        // findvisitor: the visitor is on this server.
        Op::Respond {
            pick: 0,
            status: StatusChoice::Ok,
            body: BodyChoice::Canonical(0),
        },
        Op::OpenSocket,
        Op::VisitorConn(true),
        Op::Frame(FrameChoice::Connected(Some(30))),
        // lookupvisitor: `{}`.
        Op::Respond {
            pick: 0,
            status: StatusChoice::Ok,
            body: BodyChoice::Canonical(0),
        },
    ];
    let report = run(&setup, &ops);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}
