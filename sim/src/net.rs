//! The in-memory network: a queue of deliveries ordered by virtual time, and per-client links
//! with their own latency and jitter.
//!
//! Each client has one link to the service with a one-way latency and a jitter drawn from the
//! run's seed. Deliveries on one link and direction never overtake each other (TCP keeps order,
//! and the service's sockets and a client's requests share the link), so a jittered delivery
//! is pushed back behind the one before it. The queue breaks ties by insertion order, so a run
//! is a pure function of its seed. It is not a model of loss inside a connection: what the
//! faults drop, they drop by cutting sockets and failing requests (see the simulation).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

/// One client's link to the service.
#[derive(Debug, Clone)]
pub struct Link {
    /// One-way latency.
    pub latency: Duration,
    /// Extra delay drawn uniformly in `[0, jitter]` per delivery.
    pub jitter: Duration,
    /// The latest delivery time so far, client → service.
    up: Instant,
    /// The latest delivery time so far, service → client.
    down: Instant,
}

/// A direction on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to service.
    Up,
    /// Service to client.
    Down,
}

impl Link {
    /// A link with this latency and jitter, idle since `start`.
    pub fn new(latency: Duration, jitter: Duration, start: Instant) -> Self {
        Link {
            latency,
            jitter,
            up: start,
            down: start,
        }
    }

    fn jittered(&self, now: Instant, rng: &mut ChaCha8Rng) -> Instant {
        let jitter = if self.jitter.is_zero() {
            Duration::ZERO
        } else {
            let nanos = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
            Duration::from_nanos(rng.next_u64() % nanos.saturating_add(1))
        };
        now + self.latency + jitter
    }

    /// When something sent at `now` outside the link's order arrives (an answer that a fault
    /// holds back travels on a connection of its own and holds nothing else up).
    pub fn arrival_unordered(&self, now: Instant, rng: &mut ChaCha8Rng) -> Instant {
        self.jittered(now, rng)
    }

    /// When something sent at `now` in direction `dir` arrives.
    pub fn arrival(&mut self, now: Instant, dir: Dir, rng: &mut ChaCha8Rng) -> Instant {
        let at = self.jittered(now, rng);
        let last = match dir {
            Dir::Up => &mut self.up,
            Dir::Down => &mut self.down,
        };
        let at = at.max(*last);
        *last = at;
        at
    }
}

/// Deliveries and timers in virtual-time order; equal times in insertion order.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    items: std::collections::HashMap<u64, E>,
    next: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            items: std::collections::HashMap::new(),
            next: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Instant, event: E) {
        let seq = self.next;
        self.next += 1;
        self.heap.push(Reverse((at, seq)));
        self.items.insert(seq, event);
    }

    /// The time of the earliest event.
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the earliest event.
    pub fn pop(&mut self) -> Option<(Instant, E)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        let event = self.items.remove(&seq)?;
        Some((at, event))
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn a_link_keeps_order_and_the_queue_breaks_ties_by_insertion() {
        let t0 = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut link = Link::new(Duration::from_millis(10), Duration::from_millis(50), t0);
        let mut last = t0;
        for i in 0..100 {
            let at = link.arrival(t0 + Duration::from_millis(i), Dir::Up, &mut rng);
            assert!(at >= last);
            last = at;
        }
        let mut q = Queue::default();
        q.push(t0, 'b');
        q.push(t0, 'c');
        q.push(t0 - Duration::from_millis(1), 'a');
        let order: String = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, "abc");
    }
}
