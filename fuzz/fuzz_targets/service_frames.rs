//! Fuzz target: the service core (`ServiceCore`) under arbitrary sequences of socket opens,
//! frames (templates, any `type` and `data`, arbitrary text, oversized frames), closes,
//! activity, REST signals, unique ids, virtual time and shutdown. Asserts no output to a
//! closed or unknown connection, `connected` first and once, frames within the core's own
//! limit that decode back to themselves, `visitorconn`/`visitorsock` alternating per agent,
//! `serverclose` first at shutdown, connection count and gauges matching opens and closes,
//! counters that never go down, `visitors_present` matching `is_present`, signals delivered
//! or held only for present visitors, no deadline in the past. The checks live in
//! `glance_presence_testkit::fuzz::service_frames` and replay on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = glance_presence_testkit::fuzz::service_frames::check(data);
});
