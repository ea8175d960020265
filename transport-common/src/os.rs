//! What the drivers take from the operating system and hand to the cores, which read
//! neither: a seed for a core's reconnect jitter (so that two clients — two agents of one
//! visitor, an agent and its visitor, two processes — never reconnect in lockstep; an
//! application that chose a seed keeps it), and the wall time.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall time since the Unix epoch (a clock set before 1970 reads as 0).
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// 64 random bits from the operating system. Should that source fail, the process's own
/// randomly keyed hasher (also seeded by the operating system, once per process) mixed with
/// a per-call counter stands in, so the value still differs from call to call.
pub fn entropy_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        use std::sync::atomic::{AtomicU64, Ordering};
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_from_call_to_call() {
        let seeds: std::collections::HashSet<u64> = (0..64).map(|_| entropy_seed()).collect();
        assert_eq!(seeds.len(), 64);
    }
}
