//! A small timer table keyed by an enum, in the style of quinn-proto.
//!
//! Each protocol declares its timers as a fieldless enum implementing [`TimerKey`] and keeps a
//! [`TimerTable`] of deadlines, one slot per key. `poll_timeout` is the earliest armed deadline
//! ([`TimerTable::next_timeout`]); `handle_timeout(now)` takes out every expired key
//! ([`TimerTable::take_expired`]) and acts on each. A key that is not armed, or whose deadline
//! has not come, is never returned, so a spurious `handle_timeout` does nothing.
//!
//! This module holds deadlines only: it never reads a clock and allocates nothing.

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

/// A fieldless enum that names the timers of one protocol.
///
/// `ALL` lists every key once, in the order expired timers are handed out when several fall
/// due at the same call; `index` is the position of the key in `ALL`.
pub trait TimerKey: Copy + Eq + fmt::Debug + 'static {
    /// Every key, in firing order.
    const ALL: &'static [Self];
    /// The table's storage: `[Option<Instant>; n]` with `n` at least `ALL.len()` (at most 32).
    type Slots: AsRef<[Option<Instant>]> + AsMut<[Option<Instant>]> + Copy + Default + 'static;
    /// The slot of this key: its position in [`TimerKey::ALL`].
    fn index(self) -> usize;
}

/// One optional deadline per timer key, stored inline in `K::Slots`.
pub struct TimerTable<K: TimerKey> {
    slots: K::Slots,
    _key: PhantomData<K>,
}

impl<K: TimerKey> TimerTable<K> {
    /// A table with no timer armed.
    pub fn new() -> Self {
        let slots = K::Slots::default();
        debug_assert!(
            K::ALL.len() <= slots.as_ref().len() && slots.as_ref().len() <= 64,
            "timer table too small"
        );
        TimerTable {
            slots,
            _key: PhantomData,
        }
    }

    /// Arms `key` to fire at `deadline`, replacing any earlier deadline.
    pub fn set(&mut self, key: K, deadline: Instant) {
        if let Some(slot) = self.slots.as_mut().get_mut(key.index()) {
            *slot = Some(deadline);
        }
    }

    /// The deadline of `key`, if armed.
    pub fn get(&self, key: K) -> Option<Instant> {
        self.slots.as_ref().get(key.index()).copied().flatten()
    }

    /// Whether `key` is armed.
    pub fn is_set(&self, key: K) -> bool {
        self.get(key).is_some()
    }

    /// Disarms `key`.
    pub fn stop(&mut self, key: K) {
        if let Some(slot) = self.slots.as_mut().get_mut(key.index()) {
            *slot = None;
        }
    }

    /// Disarms every key.
    pub fn stop_all(&mut self) {
        self.slots = K::Slots::default();
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.slots.as_ref().iter().flatten().min().copied()
    }

    /// Whether `key` is armed with a deadline at or before `now`.
    pub fn is_expired(&self, key: K, now: Instant) -> bool {
        self.get(key).is_some_and(|deadline| deadline <= now)
    }

    /// Disarms every key whose deadline is at or before `now` and returns them, in
    /// [`TimerKey::ALL`] order. Keys re-armed while the iterator is used are not returned by it.
    pub fn take_expired(&mut self, now: Instant) -> Expired<K> {
        let mut mask = 0u64;
        for key in K::ALL {
            let index = key.index();
            if let Some(slot) = self.slots.as_mut().get_mut(index) {
                if slot.is_some_and(|deadline| deadline <= now) {
                    *slot = None;
                    mask |= 1 << index;
                }
            }
        }
        Expired {
            mask,
            position: 0,
            _key: PhantomData,
        }
    }
}

impl<K: TimerKey> Default for TimerTable<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: TimerKey> Clone for TimerTable<K> {
    fn clone(&self) -> Self {
        TimerTable {
            slots: self.slots,
            _key: PhantomData,
        }
    }
}

impl<K: TimerKey> fmt::Debug for TimerTable<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for key in K::ALL {
            if let Some(deadline) = self.get(*key) {
                map.entry(key, &deadline);
            }
        }
        map.finish()
    }
}

/// The keys taken out by [`TimerTable::take_expired`].
#[derive(Debug, Clone)]
pub struct Expired<K: TimerKey> {
    mask: u64,
    position: usize,
    _key: PhantomData<K>,
}

impl<K: TimerKey> Iterator for Expired<K> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        while let Some(key) = K::ALL.get(self.position) {
            self.position += 1;
            if self.mask & (1 << key.index()) != 0 {
                return Some(*key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum T {
        A,
        B,
        C,
    }

    impl TimerKey for T {
        const ALL: &'static [Self] = &[T::A, T::B, T::C];
        type Slots = [Option<Instant>; 3];
        fn index(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn next_timeout_is_the_minimum_and_expiry_takes_out_due_keys_in_order() {
        let t0 = Instant::now();
        let mut table: TimerTable<T> = TimerTable::new();
        assert_eq!(table.next_timeout(), None);
        table.set(T::C, t0 + Duration::from_secs(1));
        table.set(T::A, t0 + Duration::from_secs(1));
        table.set(T::B, t0 + Duration::from_secs(5));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(1)));
        // spurious: nothing due yet
        assert_eq!(table.take_expired(t0).count(), 0);
        let fired: Vec<T> = table.take_expired(t0 + Duration::from_secs(2)).collect();
        assert_eq!(fired, vec![T::A, T::C]);
        assert!(!table.is_set(T::A));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(5)));
        table.stop(T::B);
        assert_eq!(table.next_timeout(), None);
    }

    #[test]
    fn rearming_during_iteration_is_not_returned_again() {
        let t0 = Instant::now();
        let mut table: TimerTable<T> = TimerTable::new();
        table.set(T::A, t0);
        let expired = table.take_expired(t0);
        table.set(T::A, t0);
        assert_eq!(expired.collect::<Vec<_>>(), vec![T::A]);
        assert!(table.is_expired(T::A, t0));
    }
}
