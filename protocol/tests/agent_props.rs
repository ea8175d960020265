//! Property tests of the agent over random input sequences: commands, virtual time steps of
//! every size, socket events (current and stale), valid frames, garbage frames, HTTP answers
//! (canonical, garbage, failures, stale ids). The sequences are decoded from random bytes by
//! the same `arbitrary` decoder as the fuzz target. Each property runs 1,000 cases.

use glance_presence_testkit::support;

use proptest::prelude::*;
use support::agent::ops::run_bytes;
use support::runs::props::{bytes, cases, sample_reports};

fn run(data: &[u8]) -> support::agent::ops::Report {
    run_bytes(data).unwrap_or_default()
}

// One line a property: the run's violations with that tag must be none.
proptest! {
    #![proptest_config(cases())]
    #[test] fn every_request_resolves_exactly_once(data in bytes()) { run(&data).none_of("resolve")?; }
    #[test] fn no_deadline_in_the_past(data in bytes()) { run(&data).none_of("deadline")?; }
    #[test] fn no_event_after_stopped(data in bytes()) { run(&data).none_of("stopped")?; }
    #[test] fn no_visitor_left_before_the_grace_period(data in bytes()) { run(&data).none_of("grace")?; }
    #[test] fn never_more_than_one_socket(data in bytes()) { run(&data).none_of("sockets")?; }
    #[test] fn reconnect_delays_within_the_policy_bounds(data in bytes()) { run(&data).none_of("backoff")?; }
    #[test] fn bad_invokes_are_always_refused(data in bytes()) { run(&data).none_of("invoke")?; }
}

/// The generator reaches the interesting states: requests, reconnects and presence changes
/// happen in a good share of runs (so the properties above are not vacuous).
#[test]
fn the_generator_reaches_interesting_states() {
    let (mut with_requests, mut with_events, mut connected, mut left) = (0, 0, 0, 0);
    for report in sample_reports(300, run_bytes) {
        if report.counts.requests > 0 {
            with_requests += 1;
        }
        if report.events > 3 {
            with_events += 1;
        }
        connected += usize::from(report.connected > 0);
        left += usize::from(report.counts.left > 0);
    }
    assert!(
        with_requests > 100,
        "only {with_requests} of 300 runs made a request"
    );
    assert!(
        with_events > 100,
        "only {with_events} of 300 runs had events"
    );
    println!("of 300 runs: {with_requests} made requests, {connected} connected, {left} saw the visitor leave");
    assert!(connected > 100, "only {connected} of 300 runs connected");
    assert!(left > 10, "only {left} of 300 runs saw the visitor leave");
}
