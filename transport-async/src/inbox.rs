//! The merged event queue between driver tasks and one reader: events of many sources (the
//! visitors of a fleet, or one agent) in arrival order, each keyed by its source, with a
//! bound per source.
//!
//! # When the reader falls behind
//!
//! A source may have at most `per_source` events waiting. A source at its bound keeps its
//! further events in its own driver and **stops reading its socket** (the service's sends then
//! wait in TCP) until the reader takes one of its events; its timers, commands and HTTP
//! exchanges keep running, and other sources are not held up. No event is dropped or
//! reordered. When the reader is gone (its stream dropped), events are discarded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// A source's side of the queue: how many of its events wait, and how to wake its driver
/// when room comes.
pub(crate) trait Source: Send + Sync {
    /// Events of this source waiting in the queue.
    fn queued(&self) -> &AtomicUsize;
    /// Wakes the source's driver.
    fn wake(&self);
}

struct Entry<K, E> {
    key: K,
    event: E,
    source: Arc<dyn Source>,
}

struct State<K, E> {
    queue: VecDeque<Entry<K, E>>,
    /// Drivers still running.
    live: usize,
    /// No source will be added any more.
    closed: bool,
}

/// A merged, per-source-bounded event queue (see the module docs).
pub(crate) struct Inbox<K, E> {
    state: Mutex<State<K, E>>,
    reader: AtomicWaker,
    reader_gone: AtomicBool,
    per_source: usize,
}

impl<K, E> Inbox<K, E> {
    pub(crate) fn new(per_source: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                live: 0,
                closed: false,
            }),
            reader: AtomicWaker::new(),
            reader_gone: AtomicBool::new(false),
            per_source: per_source.max(1),
        }
    }

    /// Queues `event`, or hands it back when its source is at its bound (the caller keeps it
    /// and is woken through [`Source::wake`] when room comes).
    pub(crate) fn push(&self, key: K, event: E, source: &Arc<dyn Source>) -> Result<(), E> {
        if self.reader_gone.load(Ordering::Acquire) {
            return Ok(());
        }
        if source.queued().load(Ordering::Acquire) >= self.per_source {
            return Err(event);
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        source.queued().fetch_add(1, Ordering::AcqRel);
        state.queue.push_back(Entry {
            key,
            event,
            source: Arc::clone(source),
        });
        drop(state);
        self.reader.wake();
        Ok(())
    }

    /// A driver started.
    pub(crate) fn source_started(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.live += 1;
        }
    }

    /// A driver ended (its last event is queued).
    pub(crate) fn source_ended(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.live = state.live.saturating_sub(1);
        }
        self.reader.wake();
    }

    /// No source will be added: the stream ends once the running ones end.
    pub(crate) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.reader.wake();
    }

    /// The reader is gone: queued and future events are discarded, and their sources freed.
    pub(crate) fn reader_gone(&self) {
        self.reader_gone.store(true, Ordering::Release);
        let drained: Vec<Entry<K, E>> = match self.state.lock() {
            Ok(mut state) => state.queue.drain(..).collect(),
            Err(_) => return,
        };
        for entry in drained {
            entry.source.queued().fetch_sub(1, Ordering::AcqRel);
            entry.source.wake();
        }
    }

    /// Events waiting now.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().map(|s| s.queue.len()).unwrap_or(0)
    }

    /// The next event; `None` once closed and every driver has ended.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<(K, E)>> {
        for attempt in 0..2 {
            let Ok(mut state) = self.state.lock() else {
                return Poll::Ready(None);
            };
            if let Some(entry) = state.queue.pop_front() {
                drop(state);
                let before = entry.source.queued().fetch_sub(1, Ordering::AcqRel);
                if before >= self.per_source {
                    entry.source.wake();
                }
                return Poll::Ready(Some((entry.key, entry.event)));
            }
            if state.closed && state.live == 0 {
                return Poll::Ready(None);
            }
            drop(state);
            if attempt == 0 {
                self.reader.register(cx.waker());
            }
        }
        Poll::Pending
    }
}
