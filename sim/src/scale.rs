//! Scale by simulation: N visitors and N agents connected to one service core, a crash that
//! loses its state, a restart, and how they come back under each reconnect policy.
//!
//! At this size the clients are modelled by their reconnect schedule, not run as whole cores:
//! each client notices the crash after its link's latency, then attempts at the delays its
//! policy draws ([`ReconnectPolicy::delay`] for the protocol crate's full jitter and Glance's
//! preset; decorrelated jitter, which the protocol crate does not offer, is modelled here). An
//! attempt while the service is down fails after a round trip and the next delay is drawn. An
//! attempt once it is up reaches the real [`ServiceCore`]: an agent's `findvisitor` with its
//! bearer token, its socket with `connect`, its `lookupvisitor`; a visitor's socket with
//! `connect`. So the service's decisions and memory are real, and the clients' timing is the
//! policy's. The cores' full behaviour is checked on small scenarios (see [`crate::check`]).
//! The service's memory is what the core holds, counted by the caller's allocator hook (the
//! `scale` binary installs a counting allocator) around every call into the core.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::{GroupId, PartnerUserId};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::core::rest::{HttpAnswer, HttpMethod, RestRequest};
use glance_presence_service::core::{Role, ServiceCore};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::service::{settings, GROUP, SECRET};

/// A reconnect policy of the scale table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Policy {
    /// The protocol crate's policy (full jitter, or Glance's preset).
    Core(ReconnectPolicy),
    /// Decorrelated jitter (modelled here): `min(cap, uniform(base, 3 × previous))`.
    Decorrelated {
        /// Smallest delay.
        base: Duration,
        /// Largest delay.
        cap: Duration,
    },
}

impl Policy {
    /// The three policies of the table, with their names.
    pub fn all() -> [(&'static str, Policy); 3] {
        [
            (
                "full jitter (default)",
                Policy::Core(ReconnectPolicy::default()),
            ),
            (
                "Glance 5 s x3, 60 s",
                Policy::Core(ReconnectPolicy::glance()),
            ),
            (
                "decorrelated jitter",
                Policy::Decorrelated {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(60),
                },
            ),
        ]
    }

    fn delay(&self, attempt: u32, previous: Duration, rng: &mut ChaCha8Rng) -> Duration {
        match self {
            Policy::Core(policy) => policy.delay(attempt, rng),
            Policy::Decorrelated { base, cap } => {
                let high = (previous * 3).max(*base);
                let span = (high - *base).as_nanos() as u64;
                let draw = if span == 0 { 0 } else { rng.next_u64() % span };
                (*base + Duration::from_nanos(draw)).min(*cap)
            }
        }
    }
}

/// What one scale run found.
#[derive(Debug, Clone)]
pub struct ScaleReport {
    /// Clients (visitors plus agents).
    pub clients: usize,
    /// Time from the restart until 50, 90, 99 and 100 % of the clients are back.
    pub recovery: [Duration; 4],
    /// The most connection attempts that reached the service in one second after the
    /// restart.
    pub peak_attempts_per_second: u64,
    /// Attempts made while the service was down (failed).
    pub failed_attempts: u64,
    /// Bytes the service core held with everyone connected, before the crash.
    pub core_bytes: i64,
    /// The same after recovery.
    pub core_bytes_after: i64,
}

/// The allocator hook: net bytes allocated so far (allocated minus freed).
pub type NetBytes = fn() -> i64;

/// Runs `visitors` visitors and as many agents through a crash `down` long under `policy`.
pub fn run(
    visitors: usize,
    policy: Policy,
    down: Duration,
    seed: u64,
    net_bytes: NetBytes,
) -> ScaleReport {
    let t0 = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let group = GroupId::new(GROUP).unwrap_or_else(|_| unreachable!("a valid group"));
    let keys = TokenKeys::new(SECRET);
    let user = PartnerUserId::new("scale").unwrap_or_else(|_| unreachable!("a valid user"));
    let epoch = crate::service::EPOCH_UNIX;
    let token = keys
        .issue_agent(group, &user, epoch, 24 * 3600)
        .map(|(t, _)| format!("Bearer {}", t.expose_secret()))
        .unwrap_or_default();
    let clients = visitors * 2;
    let new_core = |now: Instant| {
        let mut s = settings(seed);
        s.max_connections = usize::MAX;
        let wall = epoch as f64 + now.saturating_duration_since(t0).as_secs_f64();
        ServiceCore::new(s, TokenKeys::new(SECRET), now, wall)
    };
    let mut core_bytes = 0i64;
    let mut core = {
        let before = net_bytes();
        let core = new_core(t0);
        core_bytes += net_bytes() - before;
        core
    };
    // Everyone connects, spread over the first ten seconds.
    let latency: Vec<Duration> = (0..clients)
        .map(|_| Duration::from_millis(1 + rng.next_u64() % 150))
        .collect();
    let connect = |core: &mut ServiceCore, now: Instant, i: usize, bytes: &mut i64| {
        let before = net_bytes();
        let visitor = format!("v{}", i % visitors);
        let wall = Duration::from_secs(epoch) + now.saturating_duration_since(t0);
        let query = format!("groupid={GROUP}&visitorid={visitor}&&ver=6.25.0");
        let rest = |path: &'static str| RestRequest {
            method: HttpMethod::Get,
            path,
            query: Some(&query),
            authorization: Some(&token),
            origin: None,
            body: Some(b""),
        };
        let agent = i >= visitors;
        if agent {
            let _ = core.handle_http(now, wall, &rest("/findvisitor"));
        }
        let role = if agent { Role::Agent } else { Role::Visitor };
        let path = if agent { "/agent" } else { "/visitorws" };
        if let HttpAnswer::Upgrade(_) = core.handle_http(now, wall, &rest(path)) {
            let conn = core.open(now, role);
            let frame = if agent {
                let bare = token.trim_start_matches("Bearer ");
                format!(
                    r#"{{"type":"connect","authorization":"{bare}","groupid":"{GROUP}","visitorid":"{visitor}","version":"6.25.0"}}"#
                )
            } else {
                format!(
                    r#"{{"type":"connect","groupid":{GROUP},"visitorid":"{visitor}","version":"6.33.0"}}"#
                )
            };
            core.handle_text(now, conn, &frame);
        }
        if agent {
            let _ = core.handle_http(now, wall, &rest("/lookupvisitor"));
        }
        while core.poll_output().is_some() {}
        *bytes += net_bytes() - before;
    };
    for i in 0..clients {
        let now = t0 + Duration::from_micros((i as u64 * 10_000_000) / clients as u64);
        connect(&mut core, now, i, &mut core_bytes);
    }
    // The crash: the core and all it holds are gone.
    let crash = t0 + Duration::from_secs(30);
    let restart = crash + down;
    drop(core);
    let mut core = new_core(restart);
    let mut core_bytes_after = {
        let before = net_bytes();
        let c = new_core(restart);
        let b = net_bytes() - before;
        drop(c);
        b
    };
    let mut attempts: BinaryHeap<Reverse<(Instant, usize, u32, Duration)>> = BinaryHeap::new();
    for (i, lat) in latency.iter().enumerate() {
        let noticed = crash + *lat;
        let delay = policy.delay(1, Duration::from_secs(1), &mut rng);
        attempts.push(Reverse((noticed + delay, i, 1, delay)));
    }
    let mut back: Vec<Duration> = Vec::with_capacity(clients);
    let mut per_second: Vec<u64> = Vec::new();
    let mut failed = 0;
    while let Some(Reverse((at, i, attempt, previous))) = attempts.pop() {
        let arrives = at + latency[i];
        if arrives < restart {
            failed += 1;
            let delay = policy.delay(attempt + 1, previous, &mut rng);
            attempts.push(Reverse((
                arrives + latency[i] + delay,
                i,
                attempt + 1,
                delay,
            )));
            continue;
        }
        let second = arrives.duration_since(restart).as_secs() as usize;
        if per_second.len() <= second {
            per_second.resize(second + 1, 0);
        }
        per_second[second] += 1;
        connect(&mut core, arrives, i, &mut core_bytes_after);
        back.push(arrives.duration_since(restart));
    }
    back.sort();
    let at = |share: f64| {
        let index = ((back.len() as f64 * share).ceil() as usize).clamp(1, back.len().max(1)) - 1;
        back.get(index).copied().unwrap_or_default()
    };
    drop(core);
    ScaleReport {
        clients,
        recovery: [at(0.5), at(0.9), at(0.99), at(1.0)],
        peak_attempts_per_second: per_second.iter().copied().max().unwrap_or(0),
        failed_attempts: failed,
        core_bytes,
        core_bytes_after,
    }
}

/// The table the `scale` binary prints.
pub fn table(visitors: usize, down: Duration, net_bytes: NetBytes) -> String {
    let mut out = format!(
        "{visitors} visitors + {visitors} agents, service crash, restart after {down:?}\n\
         {:<24} {:>8} {:>8} {:>8} {:>8} {:>12} {:>10} {:>14} {:>14}\n",
        "policy", "50%", "90%", "99%", "100%", "peak att/s", "failed", "core bytes", "bytes/client"
    );
    for (name, policy) in Policy::all() {
        let r = run(visitors, policy, down, 7, net_bytes);
        out.push_str(&format!(
            "{name:<24} {:>7.1}s {:>7.1}s {:>7.1}s {:>7.1}s {:>12} {:>10} {:>14} {:>14}\n",
            r.recovery[0].as_secs_f64(),
            r.recovery[1].as_secs_f64(),
            r.recovery[2].as_secs_f64(),
            r.recovery[3].as_secs_f64(),
            r.peak_attempts_per_second,
            r.failed_attempts,
            r.core_bytes,
            r.core_bytes / r.clients.max(1) as i64,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_scale_run_brings_everyone_back() {
        for (_, policy) in Policy::all() {
            let r = run(50, policy, Duration::from_secs(5), 1, || 0);
            assert_eq!(r.clients, 100);
            assert!(
                r.recovery[3] <= Duration::from_secs(130),
                "{policy:?}: {r:?}"
            );
            assert!(r.peak_attempts_per_second <= 100);
        }
    }
}
