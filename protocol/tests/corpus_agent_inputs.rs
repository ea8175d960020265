//! Replays every file of the `agent_inputs` fuzz corpus on stable, with the fuzz target's
//! checks: no panic and no invariant violation.
//!
//! `AGENT_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_agent_inputs`
//! regenerates the seed files: deterministic random inputs, kept when they reach states the
//! corpus does not cover yet (connected, visitor left, requests resolved, reconnects, stops).

use glance_presence_testkit::support;

use std::path::PathBuf;

use support::agent::ops::run_bytes;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/agent_inputs")
}

#[test]
fn corpus_replays_without_violations() {
    let mut files = 0;
    let mut decoded = 0;
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let data = std::fs::read(&path).expect("corpus file");
        files += 1;
        if let Some(report) = run_bytes(&data) {
            decoded += 1;
            assert!(
                report.violations.is_empty(),
                "{}: {:?}",
                path.display(),
                report.violations
            );
        }
    }
    assert!(files >= 10, "the seed corpus has only {files} files");
    assert!(decoded >= 10, "only {decoded} corpus files decode");
}

#[test]
fn write_seed_corpus_when_asked() {
    if std::env::var_os("AGENT_CORPUS_WRITE").is_none() {
        return;
    }
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(proptest::prelude::any::<u8>(), 64..2048);
    let mut seen = std::collections::BTreeSet::new();
    let mut written = 0;
    for _ in 0..5_000 {
        let data = strategy.new_tree(&mut runner).expect("tree").current();
        let Some(report) = run_bytes(&data) else {
            continue;
        };
        let features = (
            report.connected.min(2),
            report.counts.left.min(1),
            report.counts.requests.min(3),
            (report.events / 20).min(3),
        );
        if seen.insert(features) {
            let name = format!(
                "seed_c{}_l{}_r{}_e{}",
                features.0, features.1, features.2, features.3
            );
            std::fs::write(corpus_dir().join(name), &data).expect("write seed");
            written += 1;
        }
    }
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
