//! The one blocking driver loop: it feeds a sans-IO core ([`SansIo`]) with what the socket and
//! the HTTP client bring, carries out the core's outputs, and queues the core's events for the
//! application. It decides nothing: reconnects, keepalives, timeouts and every other protocol
//! behaviour come from the core's outputs and `poll_timeout`.
//!
//! Nothing runs between calls: the driver advances only inside [`Driver::turn`] and the calls
//! built on it (`next_event`, `wait_for`). Applications that watch a visitor call `next_event`
//! in a loop; the read timeout of the socket is derived from the core's next deadline.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glance_presence_protocol::io::{CloseReason, Output, SansIo, SocketId, TransportInput};
use rustls::ClientConfig;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

use crate::http::HttpClient;
use crate::socket::{self, Stream, DEFAULT_MAX_MESSAGE_BYTES};
use crate::tls::TlsRoots;

/// How the blocking transport connects.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Bound on TCP connect + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// Bound on one HTTP exchange (the core has its own request timeout on top).
    pub http_timeout: Duration,
    /// Hard ceiling on one WebSocket message (or frame) from the peer, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`], 1 MiB). A message over it drops the link with a
    /// transport error. Keep it above the core's own `max_frame_bytes` (64 KiB by default):
    /// frames between the two reach the core, which reports them as a `protocol_violation`
    /// and keeps the link, as PROTOCOL.md says. This ceiling only bounds memory.
    pub max_message_bytes: usize,
    /// Which TLS roots to trust for `wss://` and `https://`.
    pub tls_roots: TlsRoots,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tls_roots: TlsRoots::webpki(),
        }
    }
}

/// The transport could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TLS configuration was refused by rustls.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

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

/// Takes the events a caller inside the driver waits for (request outcomes) before they go
/// to the application.
pub trait Route<E> {
    /// `None` when the event was handed to a waiter; `Some` to deliver it to the application.
    fn route(&mut self, event: E) -> Option<E>;
}

/// No waiters: every event goes to the application.
impl<E> Route<E> for () {
    fn route(&mut self, event: E) -> Option<E> {
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
    tls: Arc<ClientConfig>,
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

impl<P: SansIo, R: Route<P::Event>> Driver<P, R> {
    /// Wraps a core whose events pass through `router` first.
    pub fn with_router(
        core: P,
        router: R,
        config: TransportConfig,
    ) -> Result<Self, TransportError> {
        let tls = config.tls_roots.client_config()?;
        let http = HttpClient::new(&config.tls_roots, config.http_timeout);
        Ok(Driver {
            core,
            router,
            socket: None,
            http,
            tls,
            config,
            events: VecDeque::new(),
        })
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
        if self.socket.is_some() {
            self.read_socket(wake.map(|w| w.saturating_duration_since(now)));
        } else {
            match wake {
                Some(w) => std::thread::sleep(w.saturating_duration_since(now)),
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

    /// Carries out every output the core has.
    fn drain(&mut self) {
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
                Output::Http { id, request } => {
                    let input = match self.http.execute(&request) {
                        Ok((status, body)) => TransportInput::HttpResponse { id, status, body },
                        Err(detail) => TransportInput::HttpFailed { id, detail },
                    };
                    self.core.handle_input(Instant::now(), input);
                }
            }
        }
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
        // A zero timeout means "block forever" to the OS; wait at least a millisecond.
        let timeout = wait.map(|w| w.max(Duration::from_millis(1)));
        if let Err(e) = open.ws.get_ref().tcp().set_read_timeout(timeout) {
            self.lose_socket(CloseReason::TransportError {
                detail: e.to_string(),
            });
            return;
        }
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
            Ok(Message::Frame(_)) => return,
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
                return;
            }
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    // A timeout, or a signal (Ctrl-C) interrupting the read: not a lost link.
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return;
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
                return;
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
                return;
            }
        };
        self.core.handle_input(Instant::now(), input);
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
