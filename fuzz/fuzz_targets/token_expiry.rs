//! Fuzz target: the agent's JWT expiry reader, through the smallest public path (an agent with
//! a bare token connecting at a given wall-clock time stops with an authorization error
//! exactly when the token's `exp` is not after that time). Built tokens (every kind of `exp`,
//! padding, extra segments) must be read as their claims say; raw text must give an answer
//! that is monotonic in time. The checks live in `glance_presence_testkit::fuzz::token_expiry` and
//! replay on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = glance_presence_testkit::fuzz::token_expiry::check(data);
});
