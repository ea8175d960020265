//! Reconnect delays: the policy (what delays are allowed) and a seeded [`Backoff`] that draws
//! them.
//!
//! The default policy is exponential backoff with full jitter: attempt `n` (from 1) waits a
//! uniformly drawn delay in `[0, min(cap, base × 2^(n-1))]`, 1 s base, 60 s cap. The
//! [`ReconnectPolicy::glance`] preset reproduces Glance's own clients: 5 s for the first three
//! attempts, then 60 s, without jitter. The attempt counter is reset by the caller once the
//! link has stayed up for a stable time after `connected` (not on `connected` itself: a server
//! that accepts and then drops the socket must meet a growing delay).
//!
//! Randomness comes from a ChaCha8 generator seeded from the configuration: the same seed gives
//! the same delays. No global RNG, no clock.

use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which reconnect delays are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectPolicy {
    /// Exponential backoff with full jitter: attempt `n` waits a uniform delay in
    /// `[0, min(cap, base × 2^(n-1))]`.
    FullJitter {
        /// Ceiling of the first attempt's delay.
        base: Duration,
        /// Largest delay ever drawn.
        cap: Duration,
    },
    /// A fixed schedule: `early` for the first `early_attempts` attempts, then `later`.
    Steps {
        /// Delay of the first attempts.
        early: Duration,
        /// How many attempts wait `early`.
        early_attempts: u32,
        /// Delay of every later attempt.
        later: Duration,
    },
}

impl ReconnectPolicy {
    /// Default base of [`ReconnectPolicy::FullJitter`]: 1 s.
    pub const DEFAULT_BASE: Duration = Duration::from_secs(1);
    /// Default cap of [`ReconnectPolicy::FullJitter`]: 60 s.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(60);

    /// Exponential backoff with full jitter.
    pub const fn full_jitter(base: Duration, cap: Duration) -> Self {
        ReconnectPolicy::FullJitter { base, cap }
    }

    /// The schedule of Glance's own clients: 5 s three times, then 60 s.
    pub const fn glance() -> Self {
        ReconnectPolicy::Steps {
            early: Duration::from_secs(5),
            early_attempts: 3,
            later: Duration::from_secs(60),
        }
    }

    /// The smallest and largest delay attempt `attempt` (counted from 1; 0 is taken as 1) may
    /// wait, both inclusive.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let attempt = attempt.max(1);
        match *self {
            ReconnectPolicy::FullJitter { base, cap } => {
                let exponent = attempt - 1;
                let ceiling = if exponent >= 32 {
                    cap
                } else {
                    base.saturating_mul(1u32 << exponent).min(cap)
                };
                (Duration::ZERO, ceiling)
            }
            ReconnectPolicy::Steps {
                early,
                early_attempts,
                later,
            } => {
                let delay = if attempt <= early_attempts {
                    early
                } else {
                    later
                };
                (delay, delay)
            }
        }
    }

    /// Draws the delay of attempt `attempt` from `rng`; always within [`Self::bounds`].
    pub fn delay(&self, attempt: u32, rng: &mut impl RngCore) -> Duration {
        let (low, high) = self.bounds(attempt);
        if high <= low {
            return low;
        }
        let span = (high - low).as_nanos();
        // Multiply-shift: a uniform value in 0..=span without modulo bias worth mentioning.
        let draw = (u128::from(rng.next_u64()) * (span + 1)) >> 64;
        let nanos = u64::try_from(draw).unwrap_or(u64::MAX);
        low + Duration::from_nanos(nanos)
    }

    /// Checks the policy's own numbers: a non-zero base not above the cap, or a non-zero
    /// schedule. Returns what is wrong.
    pub fn validate(&self) -> Result<(), &'static str> {
        match *self {
            ReconnectPolicy::FullJitter { base, cap } => {
                if base.is_zero() {
                    Err("the base delay must be more than zero")
                } else if cap < base {
                    Err("the cap must not be below the base delay")
                } else {
                    Ok(())
                }
            }
            ReconnectPolicy::Steps { early, later, .. } => {
                if early.is_zero() && later.is_zero() {
                    Err("a schedule of zero delays would reconnect in a tight loop")
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl Default for ReconnectPolicy {
    /// Full jitter, 1 s base, 60 s cap.
    fn default() -> Self {
        ReconnectPolicy::full_jitter(Self::DEFAULT_BASE, Self::DEFAULT_CAP)
    }
}

/// A reconnect schedule in progress: the policy, its seeded RNG, and the attempt counter.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: ReconnectPolicy,
    rng: ChaCha8Rng,
    attempt: u32,
}

impl Backoff {
    /// A fresh schedule (no attempt made yet) drawing from an RNG seeded with `seed`.
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        Backoff {
            policy,
            rng: ChaCha8Rng::seed_from_u64(seed),
            attempt: 0,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Counts one more attempt and draws its delay: `(attempt, delay)`, attempt from 1.
    pub fn next_delay(&mut self) -> (u32, Duration) {
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.policy.delay(self.attempt, &mut self.rng);
        (self.attempt, delay)
    }

    /// Attempts counted since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Starts over (the link is confirmed up).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_bounds_double_until_the_cap() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.bounds(1), (Duration::ZERO, Duration::from_secs(1)));
        assert_eq!(p.bounds(2), (Duration::ZERO, Duration::from_secs(2)));
        assert_eq!(p.bounds(6), (Duration::ZERO, Duration::from_secs(32)));
        assert_eq!(p.bounds(7), (Duration::ZERO, Duration::from_secs(60)));
        assert_eq!(
            p.bounds(u32::MAX),
            (Duration::ZERO, Duration::from_secs(60))
        );
    }

    #[test]
    fn glance_preset_is_three_times_five_seconds_then_a_minute() {
        let mut b = Backoff::new(ReconnectPolicy::glance(), 7);
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().1.as_secs()).collect();
        assert_eq!(delays, vec![5, 5, 5, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay(), (1, Duration::from_secs(5)));
    }

    #[test]
    fn same_seed_same_delays_and_all_within_bounds() {
        let mut a = Backoff::new(ReconnectPolicy::default(), 42);
        let mut b = Backoff::new(ReconnectPolicy::default(), 42);
        for _ in 0..100 {
            let (n, d) = a.next_delay();
            assert_eq!((n, d), b.next_delay());
            let (lo, hi) = a.policy().bounds(n);
            assert!(d >= lo && d <= hi, "{d:?} outside {lo:?}..={hi:?}");
        }
        let mut c = Backoff::new(ReconnectPolicy::default(), 43);
        let mut a = Backoff::new(ReconnectPolicy::default(), 42);
        let draws_a: Vec<_> = (0..8).map(|_| a.next_delay()).collect();
        let draws_c: Vec<_> = (0..8).map(|_| c.next_delay()).collect();
        assert_ne!(draws_a, draws_c);
    }

    #[test]
    fn validate_names_the_problem() {
        assert!(
            ReconnectPolicy::full_jitter(Duration::ZERO, Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(
            ReconnectPolicy::full_jitter(Duration::from_secs(2), Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(ReconnectPolicy::glance().validate().is_ok());
    }
}
