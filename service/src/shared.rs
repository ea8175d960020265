//! The state the server's tasks share: the service core behind a mutex, the send queue of every
//! connection, the timer wake-up and the server-level counters.
//!
//! Every call into the core takes the lock, feeds one input with the current time, drains the
//! core's outputs into the connections' bounded queues and re-arms the timer task; the lock is
//! never held across an `.await`. A connection whose queue is full (a consumer that does not
//! read) is disconnected at once, so memory stays bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Notify, Semaphore};

use crate::auth::TokenKeys;
use crate::config::ServiceConfig;
use crate::core::{CloseReason, ConnId, CoreStats, Output, ServiceCore};

/// What a connection task is asked to write.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// One encoded frame.
    Text(String),
    /// A close frame, then the end of the connection.
    Close(CloseReason),
}

/// The server's handle on one connection task.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) tx: mpsc::Sender<Outgoing>,
    pub(crate) kill: Arc<Notify>,
}

/// The core and the connections' queues, behind one lock.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) core: ServiceCore,
    pub(crate) conns: HashMap<ConnId, ConnHandle>,
    armed: Option<Instant>,
}

/// Counters kept by the server around the core.
#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    pub(crate) rest_auth_failures: AtomicU64,
    pub(crate) authorize_failures: AtomicU64,
    pub(crate) origin_rejections: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) rest_requests: AtomicU64,
    pub(crate) refused_connections: AtomicU64,
}

/// Everything the tasks of one running service share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServiceConfig,
    pub(crate) tokens: TokenKeys,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) counters: ServerCounters,
    pub(crate) timer_wake: Notify,
    pub(crate) shutting_down: AtomicBool,
    /// Signalled when the last connection of a shutting-down service has gone.
    pub(crate) drained: Notify,
    /// One permit per open connection (HTTP or WebSocket), `max_connections` in all.
    pub(crate) connections: Arc<Semaphore>,
    /// The connection cap in force (the configured one, lowered to the open-file limit).
    pub(crate) max_connections: usize,
    inner: Mutex<Inner>,
}

/// The current Unix time in seconds (the server layer may read the wall clock; the core never).
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Shared {
    pub(crate) fn new(
        config: ServiceConfig,
        tokens: TokenKeys,
        core: ServiceCore,
        host: String,
        port: u16,
        max_connections: usize,
    ) -> Self {
        Shared {
            config,
            tokens,
            host,
            port,
            counters: ServerCounters::default(),
            timer_wake: Notify::new(),
            shutting_down: AtomicBool::new(false),
            drained: Notify::new(),
            connections: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            max_connections: max_connections.min(Semaphore::MAX_PERMITS),
            inner: Mutex::new(Inner {
                core,
                conns: HashMap::new(),
                armed: None,
            }),
        }
    }

    /// `host:port` as this service names itself.
    pub(crate) fn direct(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
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
        self.dispatch(&mut inner, now);
        result
    }

    /// Reads the core without feeding it an input.
    pub(crate) fn read_core<R>(&self, f: impl FnOnce(&ServiceCore) -> R) -> R {
        let inner = self.lock();
        f(&inner.core)
    }

    /// Registers a connection's queue with the core's new connection id.
    pub(crate) fn register(&self, role: crate::core::Role, handle: ConnHandle) -> ConnId {
        let now = Instant::now();
        let mut inner = self.lock();
        let id = inner.core.open(now, role);
        inner.conns.insert(id, handle);
        self.dispatch(&mut inner, now);
        id
    }

    /// The connection's task has ended.
    pub(crate) fn unregister(&self, conn: ConnId) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.conns.remove(&conn);
        inner.core.handle_closed(now, conn);
        self.dispatch(&mut inner, now);
    }

    /// Open TCP connections, HTTP and WebSocket (permits taken).
    pub(crate) fn open_tcp_connections(&self) -> usize {
        self.max_connections
            .saturating_sub(self.connections.available_permits())
    }

    /// Open WebSocket connections (tasks still registered with the core).
    pub(crate) fn open_connections(&self) -> usize {
        self.lock().core.connection_count()
    }

    pub(crate) fn core_stats(&self) -> CoreStats {
        self.lock().core.stats()
    }

    fn dispatch(&self, inner: &mut Inner, now: Instant) {
        while let Some(output) = inner.core.poll_output() {
            match output {
                Output::Send { conn, frame } => {
                    let Some(handle) = inner.conns.get(&conn) else {
                        continue;
                    };
                    match handle.tx.try_send(Outgoing::Text(frame.encode())) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            self.counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(%conn, "send queue full: disconnecting a consumer that does not read");
                            if let Some(handle) = inner.conns.remove(&conn) {
                                handle.kill.notify_one();
                            }
                            inner.core.handle_closed(now, conn);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            inner.conns.remove(&conn);
                            inner.core.handle_closed(now, conn);
                        }
                    }
                }
                Output::Close { conn, reason } => {
                    if let Some(handle) = inner.conns.remove(&conn) {
                        if handle.tx.try_send(Outgoing::Close(reason)).is_err() {
                            handle.kill.notify_one();
                        }
                    }
                }
            }
        }
        let next = inner.core.poll_timeout();
        if next.is_some() && (inner.armed.is_none() || next < inner.armed) {
            inner.armed = next;
            self.timer_wake.notify_one();
        }
        if self.is_shutting_down() && inner.core.connection_count() == 0 {
            self.drained.notify_one();
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
        self.dispatch(&mut inner, now);
        let next = inner.core.poll_timeout();
        inner.armed = next;
        next
    }

    /// Starts the graceful shutdown: `serverclose` to every socket, then close.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
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
