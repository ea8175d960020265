//! Fuzz target: REST requests between the client library and the service. Query strings
//! (Glance's `&&`, escapes, first occurrence wins, client-built URLs read back as built),
//! bearer tokens (arbitrary text never verifies; issued tokens verify for their group until
//! expiry and not after any change), `Authorize` bodies (the client's body reads back and its
//! LoginKey verifies the way the service checks it) and signal bodies (the frame the service
//! would send for any body decodes back to itself). The checks live in
//! `glance_presence_testkit::fuzz::rest_requests` and replay on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = glance_presence_testkit::fuzz::rest_requests::check(data);
});
