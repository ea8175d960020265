//! The state the server's tasks share: the service core behind a mutex, the send queue of every
//! connection and the timer wake-up.
//!
//! Every call into the core takes the lock, feeds one input with the current time, carries the
//! core's outputs into the connections' bounded queues and re-arms the timer task; the lock is
//! never held across an `.await`. A frame that does not fit in a connection's queue is reported
//! to the core ([`ServiceCore::handle_send_queue_full`]), which decides what happens to the
//! connection. This module reads the clocks (monotonic and wall) for the core; it decides
//! nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Notify};

use crate::auth::TokenKeys;
use crate::config::ServiceConfig;
use crate::core::rest::Latencies;
use crate::core::{Admission, CloseCause, ConnId, CoreStats, Output, Role, ServiceCore};

/// What a connection task is asked to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// One encoded frame, with the time the visitor frame it relays was read (when the frame
    /// was sent while handling a visitor frame): the writer of an agent socket feeds the relay
    /// latency with it.
    Text(String, Option<Instant>),
    /// A close frame, then the end of the connection.
    Close(CloseCause),
}

/// The server's handle on one connection task.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) tx: mpsc::Sender<Outgoing>,
    pub(crate) kill: Arc<Notify>,
}

/// The core and the connections' queues, behind one lock.
#[derive(Debug)]
struct Inner {
    core: ServiceCore,
    conns: HashMap<ConnId, ConnHandle>,
    armed: Option<Instant>,
    /// While a visitor frame is handled: when it was read.
    relay_from: Option<Instant>,
}

/// Everything the tasks of one running service share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServiceConfig,
    pub(crate) tokens: TokenKeys,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The core's body limit: the most bytes of a request body the server reads.
    pub(crate) max_body_bytes: usize,
    pub(crate) timer_wake: Notify,
    /// Signalled when the last connection of a shutting-down service has gone.
    pub(crate) drained: Notify,
    /// The core's latency histograms, fed without taking the lock.
    pub(crate) latencies: Latencies,
    inner: Mutex<Inner>,
}

/// The current wall time, since the Unix epoch (the server layer reads the clocks; the core
/// never does).
pub(crate) fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

impl Shared {
    pub(crate) fn new(
        config: ServiceConfig,
        tokens: TokenKeys,
        core: ServiceCore,
        host: String,
        port: u16,
    ) -> Self {
        Shared {
            max_body_bytes: core.settings().max_body_bytes,
            latencies: core.latencies().clone(),
            config,
            tokens,
            host,
            port,
            timer_wake: Notify::new(),
            drained: Notify::new(),
            inner: Mutex::new(Inner {
                core,
                conns: HashMap::new(),
                armed: None,
                relay_from: None,
            }),
        }
    }

    /// `host:port` as this service names itself.
    pub(crate) fn direct(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the core half-updated in a way that
        // matters more than stopping the service would; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the core at the current time, then carries out the core's outputs.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut ServiceCore, Instant) -> R) -> R {
        let now = Instant::now();
        let mut inner = self.lock();
        let result = f(&mut inner.core, now);
        Self::dispatch(&self.timer_wake, &self.drained, &mut inner, now);
        result
    }

    /// Like [`Shared::with_core`] for a visitor frame read at `read_at`: the frames it sends
    /// carry that time, so that an agent socket's writer can tell how long the relay took.
    pub(crate) fn with_core_relaying<R>(
        &self,
        read_at: Instant,
        f: impl FnOnce(&mut ServiceCore, Instant) -> R,
    ) -> R {
        let now = Instant::now();
        let mut inner = self.lock();
        let result = f(&mut inner.core, now);
        inner.relay_from = Some(read_at);
        Self::dispatch(&self.timer_wake, &self.drained, &mut inner, now);
        inner.relay_from = None;
        result
    }

    /// Reads the core without feeding it an input.
    pub(crate) fn read_core<R>(&self, f: impl FnOnce(&ServiceCore) -> R) -> R {
        let inner = self.lock();
        f(&inner.core)
    }

    /// Asks the core whether a connection just accepted is served.
    pub(crate) fn admit(&self, refusals_under_way: usize) -> Admission {
        self.with_core(|core, _| core.admit_connection(refusals_under_way))
    }

    /// A connection admitted by [`Shared::admit`] has ended.
    pub(crate) fn connection_ended(&self) {
        self.with_core(|core, _| core.connection_ended());
    }

    /// Registers a connection's queue with the core's new connection id.
    pub(crate) fn register(&self, role: Role, handle: ConnHandle) -> ConnId {
        let now = Instant::now();
        let mut inner = self.lock();
        let id = inner.core.open(now, role);
        inner.conns.insert(id, handle);
        Self::dispatch(&self.timer_wake, &self.drained, &mut inner, now);
        id
    }

    /// The connection's task has ended.
    pub(crate) fn unregister(&self, conn: ConnId) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.conns.remove(&conn);
        inner.core.handle_closed(now, conn);
        Self::dispatch(&self.timer_wake, &self.drained, &mut inner, now);
    }

    /// Open TCP connections, HTTP and WebSocket.
    pub(crate) fn open_tcp_connections(&self) -> usize {
        usize::try_from(self.read_core(ServiceCore::open_connections)).unwrap_or(usize::MAX)
    }

    /// Open WebSocket connections (still registered with the core).
    pub(crate) fn open_connections(&self) -> usize {
        self.read_core(ServiceCore::connection_count)
    }

    pub(crate) fn core_stats(&self) -> CoreStats {
        self.read_core(ServiceCore::stats)
    }

    /// Carries the core's outputs into the connections' queues.
    fn dispatch(timer_wake: &Notify, drained: &Notify, inner: &mut Inner, now: Instant) {
        while let Some(output) = inner.core.poll_output() {
            let (conn, text) = match output {
                Output::Send { conn, frame } => {
                    (conn, Outgoing::Text(frame.encode(), inner.relay_from))
                }
                Output::SendText { conn, text } => (conn, Outgoing::Text(text, None)),
                Output::Close { conn, reason } => {
                    if let Some(handle) = inner.conns.remove(&conn) {
                        if handle.tx.try_send(Outgoing::Close(reason)).is_err() {
                            handle.kill.notify_one();
                        }
                    }
                    continue;
                }
            };
            let Some(handle) = inner.conns.get(&conn) else {
                continue;
            };
            match handle.tx.try_send(text) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    inner.core.handle_send_queue_full(now, conn);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    inner.conns.remove(&conn);
                    inner.core.handle_closed(now, conn);
                }
            }
        }
        let next = inner.core.poll_timeout();
        if next.is_some() && (inner.armed.is_none() || next < inner.armed) {
            inner.armed = next;
            timer_wake.notify_one();
        }
        if inner.core.is_shutting_down() && inner.core.connection_count() == 0 {
            drained.notify_one();
        }
    }

    /// The timer task's step: fires what is due and returns the next deadline.
    pub(crate) fn fire_timers(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.core.handle_timeout(now);
        // The timer task sleeps until this deadline next; dispatch wakes it only for an
        // earlier one.
        inner.armed = inner.core.poll_timeout();
        Self::dispatch(&self.timer_wake, &self.drained, &mut inner, now);
        let next = inner.core.poll_timeout();
        inner.armed = next;
        next
    }

    /// Starts the graceful shutdown: `serverclose` to every socket, then close.
    pub(crate) fn begin_shutdown(&self) {
        self.with_core(|core, now| core.shutdown(now));
    }
}

/// Runs the core's timers until the service shuts down.
pub(crate) async fn timer_task(shared: Arc<Shared>) {
    let mut next = shared.fire_timers();
    loop {
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                    _ = shared.timer_wake.notified() => {}
                }
            }
            None => shared.timer_wake.notified().await,
        }
        next = shared.fire_timers();
    }
}
