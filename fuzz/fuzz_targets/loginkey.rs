//! Fuzz target: LoginKeys. Parsing arbitrary key text never panics and what parses formats
//! back to the same values; `generate` accepts exactly the expiries inside its one-day window;
//! a generated key parses to its expiry, verifies for its group, user and API key until it
//! expires, and never for another API key or another group/user (unless the signed text is
//! the same); no change to its text verifies unless it reads as the same expiry and signature.
//! The checks live in `glance_presence_testkit::fuzz::loginkey` and replay on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = glance_presence_testkit::fuzz::loginkey::check(data);
});
