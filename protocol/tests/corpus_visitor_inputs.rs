//! Replays every file of the `visitor_inputs` fuzz corpus on stable, with the fuzz target's
//! checks: no panic and no invariant violation.
//!
//! `VISITOR_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_visitor_inputs`
//! regenerates the seed files: deterministic random inputs, kept when they reach states the
//! corpus does not cover yet (sockets opened, connected, keepalives sent).

use glance_presence_testkit::support;

use std::path::PathBuf;

use support::visitor::ops::run_bytes;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/visitor_inputs")
}

#[test]
fn corpus_replays_without_violations() {
    let mut entries: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    let mut decoded = 0;
    for path in &entries {
        let data = std::fs::read(path).expect("corpus file");
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
    assert!(
        entries.len() >= 10,
        "the seed corpus has only {} files",
        entries.len()
    );
    assert!(decoded >= 10, "only {decoded} corpus files decode");
}

#[test]
fn write_seed_corpus_when_asked() {
    if std::env::var_os("VISITOR_CORPUS_WRITE").is_none() {
        return;
    }
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(proptest::prelude::any::<u8>(), 64..2048);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5_000 {
        let data = strategy.new_tree(&mut runner).expect("tree").current();
        let Some(report) = run_bytes(&data) else {
            continue;
        };
        let features = (
            report.counts.sockets.min(3),
            report.connected.min(2),
            report.counts.keepalives.min(2),
            (report.events / 8).min(4),
        );
        if seen.insert(features) {
            let name = format!(
                "seed_s{}_c{}_k{}_e{}",
                features.0, features.1, features.2, features.3
            );
            std::fs::write(corpus_dir().join(name), &data).expect("write seed");
        }
    }
}
