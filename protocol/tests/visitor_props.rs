//! Property tests of the visitor over random input sequences: commands, virtual time steps of
//! every size, socket events (current and stale), valid frames, garbage frames, HTTP answers
//! (canonical, garbage statuses, failures, stale ids). The sequences are decoded from random
//! bytes with `arbitrary`. Each property runs 1,000 cases.

use glance_presence_testkit::support;

use proptest::prelude::*;
use support::runs::props::{bytes, cases, sample_reports};
use support::visitor::ops::{run_bytes, Report};

fn run(data: &[u8]) -> Report {
    run_bytes(data).unwrap_or_default()
}

// One line a property where one tag says it: the run's violations with that tag must be none.
proptest! {
    #![proptest_config(cases())]

    #[test]
    fn never_more_than_one_socket_open_or_opening(data in bytes()) {
        let report = run(&data);
        report.none_of("sockets")?;
        report.none_of("frame")?;
    }

    #[test] fn no_output_after_stopped(data in bytes()) { run(&data).none_of("stopped")?; }
    #[test] fn deadlines_never_in_the_past(data in bytes()) { run(&data).none_of("deadline")?; }
    #[test] fn keepalives_only_after_connected(data in bytes()) { run(&data).none_of("keepalive")?; }

    /// The rest: no panic, no token in a visitor's connect frame, invokes outside `GLANCE.` /
    /// `GLANCE_COBROWSE.Custom.` never let through (and `remote: true` on those that are),
    /// reconnect delays within the policy's bounds. Every violation of any kind fails it.
    #[test]
    fn no_invariant_is_broken(data in bytes()) {
        let report = run(&data);
        prop_assert!(report.violations.is_empty(), "{:?}", report.violations);
    }
}

/// The generator reaches the interesting states: sockets, `connected`, keepalives and many
/// events happen in a good share of runs (so the properties above are not vacuous).
#[test]
fn the_generator_reaches_interesting_states() {
    let (mut with_sockets, mut with_connected, mut with_keepalives, mut with_events) = (0, 0, 0, 0);
    for report in sample_reports(300, run_bytes) {
        with_sockets += usize::from(report.counts.sockets > 1);
        with_connected += usize::from(report.connected > 0);
        with_keepalives += usize::from(report.counts.keepalives > 0);
        with_events += usize::from(report.events > 5);
    }
    assert!(
        with_sockets > 50,
        "only {with_sockets} of 300 runs used two sockets"
    );
    assert!(
        with_connected > 50,
        "only {with_connected} of 300 runs got connected"
    );
    assert!(
        with_keepalives > 10,
        "only {with_keepalives} of 300 runs sent a keepalive"
    );
    assert!(
        with_events > 100,
        "only {with_events} of 300 runs had events"
    );
}

/// The checks themselves can fail: a transport view that disagrees with the core is caught.
#[test]
fn the_checks_catch_a_broken_invariant() {
    use glance_presence_protocol::TermsStatus;
    use support::visitor::Harness;
    let mut h = Harness::new(|b| b);
    h.connect().unwrap();
    h.open_socket();
    h.assert_clean();
    // Make the harness believe the socket never opened: the next frame breaks "frames only
    // on open sockets".
    h.handshaken.clear();
    h.core.terms(h.now, TermsStatus::Accepted).unwrap();
    h.drain();
    assert!(
        h.violations.iter().any(|v| v.starts_with("frame")),
        "{:?}",
        h.violations
    );
}
