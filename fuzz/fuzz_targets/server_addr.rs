//! Fuzz target: server addresses as the agent and visitor take them from the service
//! (`direct`, `directserver:httpsport`, `presenceUrl`) through `ServerAddr::with_authority`,
//! `ServerAddr::new` and `ServerAddr::parse`. Never a panic; an accepted address holds only
//! authority characters, its URLs parse back to the same address, host/port/loopback read back
//! as written; refusals do not depend on the scheme or base; every `advertise_host` the
//! service's configuration accepts gives answers its own client accepts. The checks live in
//! `glance_presence_testkit::fuzz::server_addr` and replay on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = glance_presence_testkit::fuzz::server_addr::check(data);
});
