//! Fuzz target: an arbitrary sequence of visitor inputs (commands, virtual time steps, socket
//! events, template frames, frames of any `type` with any JSON `data`, arbitrary text and
//! binary frames up to 4 KiB and now and then oversized, HTTP answers with any status and
//! canonical, changed, JSON or arbitrary bodies), decoded by the same code as the property
//! tests. The visitor must never panic and must keep every invariant: at most one socket open
//! or opening, `connect` first on every socket, nothing after `stopped`, no deadline in the
//! past, keepalives only after `connected`, backoff delays within bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;

use glance_presence_testkit::support;

fuzz_target!(|data: &[u8]| {
    if let Some(report) = support::visitor::ops::run_bytes(data) {
        assert!(report.violations.is_empty(), "{:?}", report.violations);
    }
});
