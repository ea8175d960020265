//! The socket link both cores share: one WebSocket to the Presence service at a time, its
//! state machine, keepalives, dead-link detection, redirects, scale-down hops and reconnects
//! with backoff.
//!
//! `SocketLink` is the one link type of both cores: the agent and the visitor each keep one as a
//! field, and it holds the core's clock, [`TimerTable`] and single output queue as well as the
//! link's own state. Its methods push the wire outputs (`OpenSocket`, `SendFrame`, `SendPing`,
//! `CloseSocket`) and the link events (`LinkEvent`, turned into the core's own event type) and
//! return what happened, so each core decides what follows (the agent's visitor tracking and
//! snapshot, the visitor's queue and pauses). What comes before the socket (authorize,
//! findvisitor, uniquevisitor, ...) is not here. A core says what it adds through
//! `LinkCore`, and the crate's one `SansIo` implementation drives it.
//!
//! [`DisconnectReason`] is the one reason type of both cores; [`Config`] and
//! [`ConfigBuilder`] are the configuration they share (generic over the core's role, whose
//! part is in the core's `config` module) and `settings` holds its checks.

mod config;
mod core;
pub mod reason;
pub(crate) mod settings;

pub(crate) use self::core::LinkCore;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::io::{CloseReason, HttpRequestId, Output, SocketId, TransportInput};
use crate::rest::ServerAddr;
use crate::timer::{TimerKey, TimerTable};
use crate::wire::{ClientFrame, DecodeError, ServerFrame};

pub(crate) use config::{CheckedLink, LinkTimerFields, Role};
pub use config::{Config, ConfigBuilder};
pub use reason::DisconnectReason;

/// Redirects / scale-downs followed at once before the backoff applies (counted since the
/// link was last stable).
const MAX_IMMEDIATE_HOPS: u32 = 3;
/// Longest keepalive interval honoured (a day).
const MAX_KEEPALIVE_SECS: u64 = 86_400;

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// `connect` not called.
    Idle,
    /// Steps before the socket (the core's requests), or about to open it.
    Preparing,
    /// `OpenSocket` sent, waiting for `SocketOpened`.
    Opening(SocketId),
    /// Socket open, `connect` sent, waiting for `connected`.
    Handshaking(SocketId),
    /// `connected` received.
    Up(SocketId),
    /// Waiting for the backoff delay.
    Backoff,
    /// No socket on purpose (the visitor only: hidden and/or blurred).
    Paused,
    /// Stopped for good.
    Stopped,
}

impl Link {
    /// The socket of this state, if it has one.
    pub(crate) fn socket(self) -> Option<SocketId> {
        match self {
            Link::Opening(s) | Link::Handshaking(s) | Link::Up(s) => Some(s),
            _ => None,
        }
    }

    /// A connect attempt is under way, or the link is up.
    pub(crate) fn in_attempt(self) -> bool {
        matches!(
            self,
            Link::Preparing | Link::Opening(_) | Link::Handshaking(_) | Link::Up(_)
        )
    }
}

/// What a client does when the service sends `serverclose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AfterServerClose {
    /// Stop for good (`Stopped { server_close }`), as Glance's own clients do. The default.
    #[default]
    Stop,
    /// Report the disconnect and come back after the reconnect policy's next (jittered)
    /// delay, so that the clients of a restarted service do not return in lockstep.
    Reconnect,
}

/// What to do once the link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Open a new socket at once (redirect, scale-down, token renewal, page load).
    Now,
    /// Wait for the backoff delay.
    Backoff,
    /// Stay down until the core resumes (the visitor only: hidden or blurred).
    Pause,
}

/// The link's own timers; each core maps them onto keys of its timer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkTimer {
    /// Nothing inbound after the idle ping: the link is dead.
    PongDeadline,
    /// A connect step took too long.
    ConnectTimeout,
    /// The backoff delay is over: try again.
    Reconnect,
    /// Send `{"type":"k"}`.
    Keepalive,
    /// Inbound silence: send a ping.
    IdlePing,
    /// The link has stayed up for [`LinkTimings::stable_after`]: the backoff and the hop
    /// count start over.
    Stable,
}

/// What the link tells the application, in the core's own event type (whose variants of the
/// same names and fields each core's `From<LinkEvent>` maps these onto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    /// A connect attempt starts.
    Connecting { attempt: u32 },
    /// `connected` arrived.
    Connected { server: String, keepalive_secs: u64 },
    /// The link is down.
    Disconnected { why: DisconnectReason },
    /// The next attempt waits this long.
    Reconnecting { attempt: u32, delay_ms: u64 },
    /// The service moved the link to another server.
    Redirected { server: String },
    /// The service sent something unusable.
    ProtocolViolation { detail: String },
}

/// The link's timings, taken from the core's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkTimings {
    /// Opening the socket up to `connected` (and, for the visitor, each request before it).
    pub(crate) connect_timeout: Duration,
    /// Inbound silence before a ping.
    pub(crate) idle_ping_after: Duration,
    /// Silence after the ping before the link is dead.
    pub(crate) pong_timeout: Duration,
    /// Keepalive interval when `connected` names none.
    pub(crate) default_keepalive: Duration,
    /// How long the link must stay up after `connected` before the backoff resets (a server
    /// that accepts and drops, or redirects in a loop, does not get a fresh short delay each
    /// time).
    pub(crate) stable_after: Duration,
}

/// A transport input, sorted by the link.
#[derive(Debug)]
pub(crate) enum LinkInput {
    /// The socket opened.
    Opened(SocketId),
    /// A frame on the current socket, decoded.
    Frame(Result<ServerFrame, DecodeError>),
    /// A pong or a ping on the current socket: inbound activity.
    Activity,
    /// A socket closed.
    Closed(SocketId, CloseReason),
    /// An HTTP answer (status and body) or failure.
    Http(HttpRequestId, Result<(u16, Vec<u8>), String>),
    /// Something about a socket the link has given up on.
    Stale,
}

/// One WebSocket link and the core's IO around it: state, socket ids, the server, keepalive,
/// hops and backoff, plus the core's clock, timer table (keys `K`) and single output queue
/// (events `E`), which the link and the core it belongs to both use.
#[derive(Debug, Clone)]
pub(crate) struct SocketLink<K: TimerKey, E> {
    /// The core's clock: the latest `now` it was given.
    pub(crate) now: Instant,
    /// The core's timers.
    pub(crate) timers: TimerTable<K>,
    /// The core's output queue.
    pub(crate) out: VecDeque<Output<E>>,
    /// Where the link is.
    pub(crate) state: Link,
    /// The reconnect schedule.
    pub(crate) backoff: Backoff,
    timings: LinkTimings,
    /// Largest frame accepted from the service.
    pub(crate) max_frame_bytes: usize,
    next_socket: u64,
    next_http: u64,
    /// The server the current socket goes to.
    pub(crate) socket_server: Option<ServerAddr>,
    /// The keepalive interval in use.
    keepalive: Option<Duration>,
    /// Redirects and scale-downs since the link was last stable.
    hops: u32,
}

impl<K, E> SocketLink<K, E>
where
    K: TimerKey + From<LinkTimer>,
    E: From<LinkEvent>,
{
    /// An idle link at `now`, with the timings, reconnect policy and seed of `config`.
    pub(crate) fn new<R: Role>(config: &Config<R>, now: Instant) -> Self {
        SocketLink {
            now,
            timers: TimerTable::new(),
            out: VecDeque::new(),
            state: Link::Idle,
            backoff: Backoff::new(config.reconnect, config.rng_seed.value),
            timings: config.link_timings(),
            max_frame_bytes: config.max_frame_bytes,
            next_socket: 0,
            next_http: 0,
            socket_server: None,
            keepalive: None,
            hops: 0,
        }
    }

    /// Moves the clock forward (never back).
    pub(crate) fn tick(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn set(&mut self, timer: LinkTimer, after: Duration) {
        self.timers.set(K::from(timer), self.now + after);
    }

    fn stop(&mut self, timer: LinkTimer) {
        self.timers.stop(K::from(timer));
    }

    /// Pushes an event (the link's own or the core's) unless stopped.
    pub(crate) fn emit(&mut self, event: impl Into<E>) {
        if self.state != Link::Stopped {
            self.out.push_back(Output::Event(event.into()));
        }
    }

    /// A fresh id for an HTTP request of the core.
    pub(crate) fn new_http_id(&mut self) -> HttpRequestId {
        self.next_http += 1;
        HttpRequestId(self.next_http)
    }

    /// Closes the current socket, if there is one (the state is left to the caller).
    pub(crate) fn close_socket(&mut self) {
        if let Some(socket) = self.state.socket() {
            self.out.push_back(Output::CloseSocket { socket });
        }
    }

    /// Frames from `socket` are read (its `connect` is sent).
    pub(crate) fn accepts_frames_from(&self, socket: SocketId) -> bool {
        matches!(self.state, Link::Handshaking(s) | Link::Up(s) if s == socket)
    }

    /// Sorts a transport input: frames are decoded (up to the frame limit) only when they
    /// come from the current socket; frames and pongs from another socket are stale.
    pub(crate) fn sort_input(&self, input: TransportInput) -> LinkInput {
        let max_frame_bytes = self.max_frame_bytes;
        match input {
            TransportInput::SocketOpened { socket } => LinkInput::Opened(socket),
            TransportInput::Frame { socket, text } if self.accepts_frames_from(socket) => {
                LinkInput::Frame(ServerFrame::decode(&text, max_frame_bytes))
            }
            TransportInput::BinaryFrame { socket, data } if self.accepts_frames_from(socket) => {
                LinkInput::Frame(ServerFrame::decode_bytes(&data, max_frame_bytes))
            }
            TransportInput::Pong { socket } | TransportInput::Ping { socket }
                if self.accepts_frames_from(socket) =>
            {
                LinkInput::Activity
            }
            TransportInput::Frame { .. }
            | TransportInput::BinaryFrame { .. }
            | TransportInput::Pong { .. }
            | TransportInput::Ping { .. } => LinkInput::Stale,
            TransportInput::SocketClosed { socket, reason } => LinkInput::Closed(socket, reason),
            TransportInput::HttpResponse { id, status, body } => {
                LinkInput::Http(id, Ok((status, body)))
            }
            TransportInput::HttpFailed { id, detail } => LinkInput::Http(id, Err(detail)),
        }
    }

    /// Starts a connect attempt: `Preparing`, with a `Connecting` event.
    pub(crate) fn begin_attempt(&mut self) {
        self.state = Link::Preparing;
        let attempt = self.backoff.attempt();
        self.emit(LinkEvent::Connecting { attempt });
    }

    /// Opens a socket to `server` at `path` (with an `Origin` header when given) and arms the
    /// connect timeout.
    pub(crate) fn open(&mut self, server: ServerAddr, path: &str, origin: Option<&str>) {
        self.next_socket += 1;
        let socket = SocketId(self.next_socket);
        let mut headers = Vec::new();
        if let Some(origin) = origin {
            headers.push(("Origin".to_owned(), origin.to_owned()));
        }
        self.out.push_back(Output::OpenSocket {
            socket,
            url: server.ws_url(path),
            headers,
        });
        self.socket_server = Some(server);
        self.state = Link::Opening(socket);
        self.set(LinkTimer::ConnectTimeout, self.timings.connect_timeout);
    }

    /// The socket opened: `Handshaking`. False when it is not the socket being opened.
    pub(crate) fn opened(&mut self, socket: SocketId) -> bool {
        if self.state != Link::Opening(socket) {
            return false;
        }
        self.state = Link::Handshaking(socket);
        true
    }

    /// The current socket closed (so there is nothing to close): `Preparing`. False when it
    /// is not the current socket.
    pub(crate) fn closed(&mut self, socket: SocketId) -> bool {
        if self.state.socket() != Some(socket) {
            return false;
        }
        self.state = Link::Preparing;
        true
    }

    /// Something came in on the current socket: the link is alive.
    pub(crate) fn on_inbound(&mut self) {
        self.stop(LinkTimer::PongDeadline);
        if matches!(self.state, Link::Up(_)) {
            self.set(LinkTimer::IdlePing, self.timings.idle_ping_after);
        }
    }

    /// `connected` arrived: `Up`, keepalives start (`keepalive` seconds, 0 for none, absent
    /// for the default), the stability timer starts (the backoff resets only when it fires),
    /// `Connected` is told. False when not handshaking.
    pub(crate) fn connected(&mut self, keepalive: Option<u64>) -> bool {
        let Link::Handshaking(socket) = self.state else {
            return false;
        };
        self.state = Link::Up(socket);
        self.stop(LinkTimer::ConnectTimeout);
        self.set(LinkTimer::Stable, self.timings.stable_after);
        let keepalive = match keepalive {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs.min(MAX_KEEPALIVE_SECS))),
            None => Some(self.timings.default_keepalive),
        };
        self.keepalive = keepalive;
        if let Some(interval) = keepalive {
            self.set(LinkTimer::Keepalive, interval);
        }
        self.on_inbound();
        let server = self
            .socket_server
            .as_ref()
            .map(|s| s.host_port().to_owned())
            .unwrap_or_default();
        self.emit(LinkEvent::Connected {
            server,
            keepalive_secs: keepalive.map_or(0, |k| k.as_secs()),
        });
        true
    }

    /// `redirect {direct}`, resolved against `base`: the new server, after `Redirected`, and
    /// how soon to reconnect (see [`SocketLink::hop`]). `None` (after a `ProtocolViolation`
    /// for an unusable server) when the redirect is ignored, also when it names the server of
    /// the current socket.
    pub(crate) fn redirect(
        &mut self,
        base: &ServerAddr,
        direct: &str,
    ) -> Option<(ServerAddr, DisconnectReason, Retry)> {
        let target = match base.with_authority(direct) {
            Ok(server) if settings::check_plain_text("redirect", &server).is_ok() => server,
            _ => {
                self.emit(LinkEvent::ProtocolViolation {
                    detail: format!("redirect to an unusable server {direct:?} ignored"),
                });
                return None;
            }
        };
        if self.socket_server.as_ref() == Some(&target) {
            return None;
        }
        let server = target.host_port().to_owned();
        self.emit(LinkEvent::Redirected {
            server: server.clone(),
        });
        let retry = self.hop();
        Some((target, DisconnectReason::Redirect { server }, retry))
    }

    /// Counts a redirect or scale-down: at once for the first few, then after the backoff.
    pub(crate) fn hop(&mut self) -> Retry {
        self.hops = self.hops.saturating_add(1);
        if self.hops <= MAX_IMMEDIATE_HOPS {
            Retry::Now
        } else {
            Retry::Backoff
        }
    }

    /// Takes the link down: closes the socket if there is one, stops the link's timers,
    /// forgets the server and keepalive, `Preparing`, and tells `Disconnected` when `tell`.
    /// The core follows with its own clean-up and [`SocketLink::retry`].
    pub(crate) fn down(&mut self, why: DisconnectReason, tell: bool) {
        self.close_socket();
        for timer in [
            LinkTimer::ConnectTimeout,
            LinkTimer::Keepalive,
            LinkTimer::IdlePing,
            LinkTimer::PongDeadline,
            LinkTimer::Reconnect,
            LinkTimer::Stable,
        ] {
            self.stop(timer);
        }
        self.socket_server = None;
        self.keepalive = None;
        self.state = Link::Preparing;
        if tell {
            self.emit(LinkEvent::Disconnected { why });
        }
    }

    /// After [`SocketLink::down`]: a new attempt at once, the backoff wait (with
    /// `Reconnecting`), or a pause.
    pub(crate) fn retry(&mut self, retry: Retry) {
        match retry {
            Retry::Now => self.begin_attempt(),
            Retry::Backoff => {
                let (attempt, delay) = self.backoff.next_delay();
                self.state = Link::Backoff;
                self.set(LinkTimer::Reconnect, delay);
                self.emit(LinkEvent::Reconnecting {
                    attempt,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Retry::Pause => self.state = Link::Paused,
        }
    }

    /// A link timer fired. Returns why the link must go down (to retry after the backoff)
    /// when the link is dead or a connect step timed out.
    pub(crate) fn on_timer(&mut self, timer: LinkTimer) -> Option<DisconnectReason> {
        match timer {
            LinkTimer::PongDeadline => {
                if matches!(self.state, Link::Up(_)) {
                    return Some(DisconnectReason::DeadLink);
                }
            }
            LinkTimer::ConnectTimeout => {
                if matches!(
                    self.state,
                    Link::Preparing | Link::Opening(_) | Link::Handshaking(_)
                ) {
                    return Some(DisconnectReason::ConnectTimeout);
                }
            }
            LinkTimer::Reconnect => {
                if self.state == Link::Backoff {
                    self.begin_attempt();
                }
            }
            LinkTimer::Keepalive => {
                if let (Link::Up(socket), Some(interval)) = (self.state, self.keepalive) {
                    self.out.push_back(Output::SendFrame {
                        socket,
                        text: ClientFrame::Keepalive.encode(),
                    });
                    self.set(LinkTimer::Keepalive, interval);
                }
            }
            LinkTimer::IdlePing => {
                if let Link::Up(socket) = self.state {
                    self.out.push_back(Output::SendPing { socket });
                    self.set(LinkTimer::PongDeadline, self.timings.pong_timeout);
                }
            }
            LinkTimer::Stable => {
                if matches!(self.state, Link::Up(_)) {
                    self.backoff.reset();
                    self.hops = 0;
                }
            }
        }
        None
    }
}
