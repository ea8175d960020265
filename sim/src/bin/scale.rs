//! The scale table: N visitors and N agents through a service crash and restart under each
//! reconnect policy (recovery curve, peak connection attempts per second at the service, the
//! service core's memory).
//!
//! `cargo run --release -p glance-presence-sim --bin scale -- [visitors] [downtime seconds]`
//! (defaults: 100,000 and 5).

use std::alloc::System;
use std::time::Duration;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn net_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64 + s.bytes_reallocated as i64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let visitors: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let down: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    print!(
        "{}",
        glance_presence_sim::scale::table(visitors, Duration::from_secs(down), net_bytes)
    );
}
