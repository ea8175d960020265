//! Fuzz target: an arbitrary sequence of agent inputs (commands, virtual time steps, socket
//! events, template frames, frames of any `type` with any JSON `data`, arbitrary text and
//! binary frames up to 4 KiB and now and then oversized, HTTP answers with any status and
//! canonical, changed, JSON or arbitrary bodies, stale ids), decoded with `arbitrary` by the
//! same code as the property tests. The agent must never panic and must keep every invariant:
//! requests resolve exactly once, no deadline in the past, nothing after `stopped`, no visitor
//! leaving before the grace period, at most one socket, backoff delays within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

use glance_presence_testkit::support;

fuzz_target!(|data: &[u8]| {
    if let Some(report) = support::agent::ops::run_bytes(data) {
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }
});
