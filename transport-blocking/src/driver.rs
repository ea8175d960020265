//! The one blocking driver loop: it feeds a sans-IO core ([`SansIo`]) with what the socket and
//! the HTTP client bring, carries out the core's outputs, and queues the core's events for the
//! application. It decides nothing: reconnects, keepalives, timeouts and every other protocol
//! behaviour come from the core's outputs and `poll_timeout`.
//!
//! Nothing runs between calls: the driver advances only inside [`Driver::turn`] and the calls
//! built on it (`next_event`, `wait_for`). Applications that watch a visitor call `next_event`
//! in a loop; the read timeout of the socket is derived from the core's next deadline.
//!
//! HTTP exchanges run on one reused worker thread per driver (started on the first exchange),
//! each bounded by the deadline the core gives its requests: while one runs the loop keeps
//! reading the socket and firing the core's timers, and waits for whichever comes first (the
//! socket, the worker's result, the next deadline). The loop itself only moves bytes.

use std::collections::VecDeque;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::rest::HttpRequest;
use glance_presence_transport::{TlsContext, TransportConfig, TransportError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::http::{Done, HttpClient, HttpWorker};
use crate::socket::{self, Stream};
use crate::wait::{self, Wake};

/// What one [`Driver::turn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Something happened (an input, a timer, or events are queued).
    Progress,
    /// The wait ended at the caller's deadline with nothing new.
    DeadlineReached,
    /// Nothing can ever happen again: no socket, no timer, no queued event.
    Idle,
}

struct OpenSocket {
    id: SocketId,
    ws: WebSocket<Stream>,
}

/// Takes the events a caller inside the driver waits for (request outcomes, a token request
/// it answers) before they go to the application.
pub trait Route<P: SansIo> {
    /// `None` when the event was taken here; `Some` to deliver it to the application.
    fn route(&mut self, event: P::Event) -> Option<P::Event>;

    /// Called once the core's outputs are drained: an answer the router owes the core (a
    /// token it was asked for) goes in now. `true` when the core was fed (the driver then
    /// drains again).
    fn answer(&mut self, core: &mut P, now: Instant) -> bool {
        let _ = (core, now);
        false
    }
}

/// No waiters: every event goes to the application.
impl<P: SansIo> Route<P> for () {
    fn route(&mut self, event: P::Event) -> Option<P::Event> {
        Some(event)
    }
}

/// Drives one sans-IO core over a blocking WebSocket and a blocking HTTP client; events leave
/// through the router `R` (see [`Route`]).
pub struct Driver<P: SansIo, R = ()> {
    core: P,
    router: R,
    socket: Option<OpenSocket>,
    http: HttpClient,
    /// The HTTP worker and its wake-up, once the first exchange started it.
    worker: Option<(HttpWorker, Wake)>,
    /// Bound on one HTTP exchange, from the moment the core asks for it.
    http_bound: Duration,
    /// The WebSocket may hold frames already read off the descriptor (set after each message,
    /// cleared when a read finds nothing).
    maybe_buffered: bool,
    tls: TlsContext,
    config: TransportConfig,
    events: VecDeque<P::Event>,
}

impl<P: SansIo + std::fmt::Debug, R> std::fmt::Debug for Driver<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("core", &self.core)
            .field("socket", &self.socket.as_ref().map(|s| s.id))
            .field("queued_events", &self.events.len())
            .finish()
    }
}

impl<P: SansIo> Driver<P> {
    /// Wraps a core whose events all go to the application. Nothing is sent until a command
    /// on the core asks for it.
    pub fn new(core: P, config: TransportConfig) -> Result<Self, TransportError> {
        Driver::with_router(core, (), config)
    }
}

impl<P: SansIo, R: Route<P>> Driver<P, R> {
    /// Wraps a core whose events pass through `router` first.
    pub fn with_router(
        core: P,
        router: R,
        config: TransportConfig,
    ) -> Result<Self, TransportError> {
        let tls = TlsContext::new(config.tls_roots.clone())?;
        let http = HttpClient::new(&config.tls_roots, config.http_timeout);
        Ok(Driver {
            core,
            router,
            socket: None,
            http,
            worker: None,
            http_bound: config.http_timeout,
            maybe_buffered: false,
            tls,
            config,
            events: VecDeque::new(),
        })
    }

    /// Bounds every HTTP exchange by `bound` from the moment the core asks for it (at most
    /// the transport's `http_timeout`): drivers of a core with a request timeout pass it here,
    /// so that no exchange outlives the core's wait for it.
    pub fn bound_http_by(&mut self, bound: Duration) {
        self.http_bound = bound.min(self.config.http_timeout);
    }

    /// HTTP exchanges under way on the worker thread.
    pub fn http_in_flight(&self) -> usize {
        self.worker
            .as_ref()
            .map_or(0, |(worker, _)| worker.in_flight())
    }

    /// The core, for its getters.
    pub fn core(&self) -> &P {
        &self.core
    }

    /// The router, to register or collect what it waits for.
    pub fn router(&mut self) -> &mut R {
        &mut self.router
    }

    /// Runs an application command on the core at the current time, then carries out what
    /// it asked for (the drain rule).
    pub fn command<T>(&mut self, command: impl FnOnce(&mut P, Instant) -> T) -> T {
        self.command_routed(|core, _, now| command(core, now))
    }

    /// Like [`Driver::command`], with the router at hand before anything is drained (to
    /// register a waiter for the request the command starts, before its outcome can leave
    /// the core).
    pub fn command_routed<T>(&mut self, command: impl FnOnce(&mut P, &mut R, Instant) -> T) -> T {
        let result = command(&mut self.core, &mut self.router, Instant::now());
        self.drain();
        result
    }

    /// The next event, waiting at most `timeout` (`None`: until one comes or nothing can
    /// happen any more). `None` when the wait ended without one.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Option<P::Event> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            match self.turn(deadline) {
                Turn::Progress => {}
                Turn::DeadlineReached | Turn::Idle => return self.events.pop_front(),
            }
        }
    }

    /// Drives the core until an event for which `pick` returns `Some` arrives, and returns
    /// that; other events stay queued in order for [`Driver::next_event`]. `None` when the
    /// deadline passed or nothing can happen any more.
    pub fn wait_for<T>(
        &mut self,
        deadline: Option<Instant>,
        mut pick: impl FnMut(&P::Event) -> Option<T>,
    ) -> Option<T> {
        let mut seen = 0;
        loop {
            while seen < self.events.len() {
                if let Some(found) = self.events.get(seen).and_then(&mut pick) {
                    self.events.remove(seen);
                    return Some(found);
                }
                seen += 1;
            }
            match self.turn(deadline) {
                Turn::Progress => {}
                Turn::DeadlineReached | Turn::Idle => return None,
            }
        }
    }

    /// Events already received and not yet taken.
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// One step: carry out pending outputs, then wait for the socket, the core's next
    /// deadline or `deadline`, whichever comes first, and feed what happened to the core.
    /// Events it produces are queued (see [`Driver::next_event`]); queued events do not cut
    /// the wait short.
    pub fn turn(&mut self, deadline: Option<Instant>) -> Turn {
        self.drain();
        let now = Instant::now();
        let core_deadline = self.core.poll_timeout();
        if let Some(due) = core_deadline {
            if due <= now {
                self.core.handle_timeout(now);
                self.drain();
                return Turn::Progress;
            }
        }
        if let Some(limit) = deadline {
            if limit <= now {
                return Turn::DeadlineReached;
            }
        }
        let wake = match (core_deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = wake.map(|w| w.saturating_duration_since(now));
        if self.http_in_flight() > 0 {
            self.wait_with_http(wait);
        } else if self.socket.is_some() {
            self.read_socket(wait);
        } else {
            match wait {
                Some(wait) => std::thread::sleep(wait),
                None => return Turn::Idle,
            }
        }
        let now = Instant::now();
        if core_deadline.is_some_and(|due| due <= now) {
            self.core.handle_timeout(now);
        }
        self.drain();
        if deadline.is_some_and(|d| d <= now) {
            Turn::DeadlineReached
        } else {
            Turn::Progress
        }
    }

    /// Carries out every output the core has, and what the router answers (the drain rule).
    fn drain(&mut self) {
        loop {
            self.drain_outputs();
            if !self.router.answer(&mut self.core, Instant::now()) {
                return;
            }
        }
    }

    fn drain_outputs(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Event(event) => {
                    if let Some(event) = self.router.route(event) {
                        self.events.push_back(event);
                    }
                }
                Output::OpenSocket {
                    socket,
                    url,
                    headers,
                } => self.open_socket(socket, &url, &headers),
                Output::SendFrame { socket, text } => self.send(socket, Message::text(text)),
                Output::SendPing { socket } => self.send(socket, Message::Ping(Vec::new().into())),
                Output::CloseSocket { socket } => self.close_socket(socket),
                Output::Http { id, request } => self.start_http(id, request),
            }
        }
    }

    /// Hands an exchange to the worker (started on first use), bounded from now. With no
    /// socket open (one-shot REST commands, scripts that only look up and signal) the exchange
    /// runs here instead: there is no socket for it to hold up, it is bounded by the same
    /// deadline, and it saves the hand-off to the worker thread and back, which costs more than
    /// a loopback request itself.
    fn start_http(&mut self, id: HttpRequestId, request: HttpRequest) {
        let deadline = Instant::now() + self.http_bound;
        if self.socket.is_none() {
            let result = self.http.execute_until(&request, deadline);
            self.finish_http((id, result));
            return;
        }
        if self.worker.is_none() {
            let started = Wake::new().and_then(|wake| {
                HttpWorker::start(self.http.clone(), wake.notifier()).map(|w| (w, wake))
            });
            match started {
                Ok(worker) => self.worker = Some(worker),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the HTTP worker; exchanges run inline");
                }
            }
        }
        let submitted = match &mut self.worker {
            Some((worker, _)) => worker.submit(id, request.clone(), deadline),
            None => false,
        };
        if !submitted {
            // No worker thread: the exchange runs here, still bounded by its deadline.
            self.worker = None;
            let result = self.http.execute_until(&request, deadline);
            self.finish_http((id, result));
        }
    }

    fn finish_http(&mut self, (id, result): Done) {
        let input = match result {
            Ok((status, body)) => TransportInput::HttpResponse { id, status, body },
            Err(error) => TransportInput::HttpFailed {
                id,
                detail: error.to_string(),
            },
        };
        self.core.handle_input(Instant::now(), input);
    }

    /// Waits at most `wait` for a finished exchange or, when a socket is open, for whichever
    /// comes first: the socket or the exchange. Feeds the core what came.
    fn wait_with_http(&mut self, wait: Option<Duration>) {
        let Some((worker, _)) = &mut self.worker else {
            return;
        };
        if let Some(done) = worker.try_take() {
            return self.finish_http(done);
        }
        if self.socket.is_none() {
            if let Some(done) = worker.take_within(wait) {
                self.finish_http(done);
            }
            return;
        }
        // Frames already read into the WebSocket's buffers do not show on the descriptor:
        // take one without blocking first.
        if self.maybe_buffered && self.read_socket_now() {
            return;
        }
        let ready = match (&self.worker, &self.socket) {
            (Some((_, wake)), Some(open)) => wake.wait(open.ws.get_ref().tcp(), wait),
            _ => return,
        };
        let ready = match ready {
            Ok(ready) => ready,
            Err(e) => {
                return self.lose_socket(CloseReason::TransportError {
                    detail: e.to_string(),
                })
            }
        };
        if ready.http {
            if let Some((worker, wake)) = &mut self.worker {
                wake.clear();
                let done: Vec<Done> = std::iter::from_fn(|| worker.try_take()).collect();
                for done in done {
                    self.finish_http(done);
                }
            }
        }
        if ready.socket {
            let bound = self
                .worker
                .as_ref()
                .and_then(|(_, wake)| wake.read_bound(wait));
            self.read_socket(bound);
        }
    }

    /// Reads one message if one can be had without blocking; `true` when something was fed
    /// to the core (a message, or the loss of the socket).
    fn read_socket_now(&mut self) -> bool {
        let Some(open) = self.socket.as_mut() else {
            return false;
        };
        if let Err(e) = open.ws.get_ref().tcp().set_nonblocking(true) {
            self.lose_socket(CloseReason::TransportError {
                detail: e.to_string(),
            });
            return true;
        }
        let fed = self.read_socket_inner();
        if let Some(open) = self.socket.as_mut() {
            if let Err(e) = open.ws.get_ref().tcp().set_nonblocking(false) {
                self.lose_socket(CloseReason::TransportError {
                    detail: e.to_string(),
                });
                return true;
            }
        }
        fed
    }

    fn open_socket(&mut self, id: SocketId, url: &str, headers: &[(String, String)]) {
        if let Some(old) = self.socket.take() {
            shut(old);
        }
        tracing::debug!(%id, url, "opening WebSocket");
        let input = match socket::open(
            url,
            headers,
            &self.tls,
            self.config.connect_timeout,
            self.config.max_message_bytes,
        ) {
            Ok(ws) => {
                self.socket = Some(OpenSocket { id, ws });
                TransportInput::SocketOpened { socket: id }
            }
            Err(reason) => TransportInput::SocketClosed { socket: id, reason },
        };
        self.core.handle_input(Instant::now(), input);
    }

    fn send(&mut self, id: SocketId, message: Message) {
        let Some(open) = self.socket.as_mut().filter(|s| s.id == id) else {
            return; // a stale socket: the core no longer cares
        };
        if let Err(e) = open.ws.send(message) {
            self.lose_socket(CloseReason::TransportError {
                detail: e.to_string(),
            });
        }
    }

    fn close_socket(&mut self, id: SocketId) {
        if self.socket.as_ref().is_some_and(|s| s.id == id) {
            if let Some(open) = self.socket.take() {
                shut(open);
            }
        }
    }

    fn lose_socket(&mut self, reason: CloseReason) {
        if let Some(open) = self.socket.take() {
            let id = open.id;
            shut(open);
            self.core.handle_input(
                Instant::now(),
                TransportInput::SocketClosed { socket: id, reason },
            );
        }
    }

    fn read_socket(&mut self, wait: Option<Duration>) {
        let Some(open) = self.socket.as_mut() else {
            return;
        };
        if let Err(e) = open
            .ws
            .get_ref()
            .tcp()
            .set_read_timeout(wait::read_timeout(wait))
        {
            self.lose_socket(CloseReason::TransportError {
                detail: e.to_string(),
            });
            return;
        }
        self.read_socket_inner();
    }

    /// Reads one message with the socket's current blocking mode; `true` when something was
    /// fed to the core.
    fn read_socket_inner(&mut self) -> bool {
        let Some(open) = self.socket.as_mut() else {
            return false;
        };
        let id = open.id;
        let input = match open.ws.read() {
            Ok(Message::Text(text)) => TransportInput::Frame {
                socket: id,
                text: text.as_str().to_owned(),
            },
            Ok(Message::Binary(data)) => TransportInput::BinaryFrame {
                socket: id,
                data: data.to_vec(),
            },
            Ok(Message::Pong(_)) => TransportInput::Pong { socket: id },
            Ok(Message::Ping(_)) => TransportInput::Ping { socket: id },
            Ok(Message::Frame(_)) => return false,
            Ok(Message::Close(frame)) => {
                // What the peer sent, not the library's answer to it.
                let reason = open.ws.get_ref().peer_close().unwrap_or_else(|| {
                    let (code, reason) = match frame {
                        Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_owned()),
                        None => (None, String::new()),
                    };
                    CloseReason::ClosedByPeer { code, reason }
                });
                self.lose_socket(reason);
                return true;
            }
            // A timeout, no data yet, or a signal (Ctrl-C) interrupting the read: not a lost
            // link.
            Err(tungstenite::Error::Io(e)) if wait::nothing_yet(e.kind()) => {
                self.maybe_buffered = false;
                return false;
            }
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                let reason = open
                    .ws
                    .get_ref()
                    .peer_close()
                    .unwrap_or(CloseReason::ClosedByPeer {
                        code: None,
                        reason: String::new(),
                    });
                self.lose_socket(reason);
                return true;
            }
            Err(e) => {
                // A malformed close frame fails in the library: report the frame itself.
                let reason =
                    open.ws
                        .get_ref()
                        .peer_close()
                        .unwrap_or_else(|| CloseReason::TransportError {
                            detail: e.to_string(),
                        });
                self.lose_socket(reason);
                return true;
            }
        };
        self.maybe_buffered = true;
        self.core.handle_input(Instant::now(), input);
        true
    }
}

impl<P: SansIo, R> Drop for Driver<P, R> {
    fn drop(&mut self) {
        if let Some(open) = self.socket.take() {
            shut(open);
        }
    }
}

/// Closes a socket without waiting for the peer: a normal close frame (1000) if it can be
/// written at once, then the TCP shutdown.
fn shut(mut open: OpenSocket) {
    let tcp = open.ws.get_ref().tcp();
    let _ = tcp.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = open.ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    let _ = open.ws.flush();
    let _ = open.ws.get_ref().tcp().shutdown(Shutdown::Both);
}
