//! The service core's timer table: one deadline per key, ordered by time.
//!
//! Setting a key replaces its previous deadline; cancelling removes it. The table never reads a
//! clock; the core asks it for the earliest deadline and for the keys due at a given instant.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use glance_presence_protocol::{GroupId, VisitorId};

use super::ConnId;

/// A visitor's identity in the core: its group and visitor id.
pub(crate) type VisitorKey = (GroupId, VisitorId);

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// A connection's inbound-silence check (lazy: re-armed from its last receive time).
    Idle(ConnId),
    /// The end of a socketless visitor's presence window.
    Absent(VisitorKey),
    /// The expiry of the oldest signal held for a visitor.
    Hold(VisitorKey),
    /// The `exp` of an agent socket's token.
    TokenExpiry(ConnId),
}

/// Deadlines keyed by [`TimerKey`].
#[derive(Debug, Default)]
pub(crate) struct Timers {
    by_deadline: BTreeSet<(Instant, TimerKey)>,
    by_key: HashMap<TimerKey, Instant>,
}

impl Timers {
    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn set(&mut self, key: TimerKey, at: Instant) {
        if let Some(old) = self.by_key.insert(key.clone(), at) {
            self.by_deadline.remove(&(old, key.clone()));
        }
        self.by_deadline.insert((at, key));
    }

    /// Removes the deadline of `key`, if any.
    pub(crate) fn cancel(&mut self, key: &TimerKey) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_deadline.remove(&(old, key.clone()));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Removes and returns one key whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let (at, _) = self.by_deadline.first()?;
        if *at > now {
            return None;
        }
        let (_, key) = self.by_deadline.pop_first()?;
        self.by_key.remove(&key);
        Some(key)
    }

    /// How many deadlines are set.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn set_move_cancel_pop() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(TimerKey::Idle(ConnId(1)), t0 + Duration::from_secs(3));
        t.set(TimerKey::Idle(ConnId(2)), t0 + Duration::from_secs(1));
        t.set(TimerKey::Idle(ConnId(1)), t0 + Duration::from_secs(2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(
            t.pop_due(t0 + Duration::from_secs(5)),
            Some(TimerKey::Idle(ConnId(2)))
        );
        t.cancel(&TimerKey::Idle(ConnId(1)));
        assert_eq!(t.next(), None);
        assert_eq!(t.len(), 0);
    }
}
