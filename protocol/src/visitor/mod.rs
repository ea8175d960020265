//! The sans-IO visitor: [`VisitorProtocol`] plays one website visitor against the Presence
//! service, as Glance's visitor script (6.33.0) does on the wire.
//!
//! It consumes application commands ([`VisitorProtocol::connect`],
//! [`VisitorProtocol::presence`], [`VisitorProtocol::visibility`], ...), transport inputs
//! ([`TransportInput`](crate::io::TransportInput)) and timer ticks, and emits outputs ([`Output`](crate::io::Output)): sockets to open,
//! frames to send, pings, HTTP requests, and [`VisitorEvent`]s. It performs no IO, reads no
//! clock and draws randomness only from its seeded RNG (reconnect jitter). It implements
//! [`SansIo`](crate::io::SansIo), so the transports drive it with the same loop as the agent.
//!
//! It serves tests and demos of the service and anyone writing a visitor simulator; it is not
//! a browser: it reports the page's url, visibility and focus only when the application tells
//! it to.
//!
//! Module map: [`config`] (the validated configuration), [`event`] (what the application is
//! told), `error` (command errors), `link` (uniquevisitor / presence → socket → `connect` →
//! `connected`, keepalives, dead-link detection, reconnects, pauses, stopping), `outbox`
//! (sending and the bounded queue), `inbound` (frames from the service).

pub mod config;
mod error;
pub mod event;
mod inbound;
mod link;
mod outbox;
mod timers;

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use serde_json::Value;

use crate::ids::{UniqueId, VisitorId};
use crate::io::HttpRequestId;
use crate::link::{Link, LinkCore, Retry, SocketLink};
use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::rest::ServerAddr;
use crate::wire::{ClientFrame, ServerFrame};

pub use config::{
    ConfigError, VisitorConfig, VisitorConfigBuilder, VisitorIdentity, VisitorTimers,
    DEFAULT_OUTGOING_QUEUE_BOUND, DEFAULT_VISITOR_VERSION,
};
pub use error::CommandError;
pub use event::{ConnectionState, DisconnectReason, StopReason, VisitorEvent};

use outbox::Queued;
pub(crate) use timers::VisitorTimer;

/// Longest type accepted by [`VisitorProtocol::fire`], in bytes.
pub const MAX_CUSTOM_KIND_LEN: usize = 64;

/// The request before the socket in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// `GET /uniquevisitor`.
    Unique,
    /// `POST /presence`.
    Assignment,
}

/// What `uniquevisitor` granted.
#[derive(Clone)]
pub(crate) struct UniqueGrant {
    unique: UniqueId,
    guest_token: Option<String>,
    /// When the code (and its guest token) lapses: the grant is renewed before a connect
    /// after this (less a margin).
    expires: Instant,
}

impl fmt::Debug for UniqueGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqueGrant")
            .field("unique", &self.unique)
            .field(
                "guest_token",
                &self.guest_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The sans-IO Presence visitor.
///
/// # Driving it
///
/// The method kinds follow quinn-proto: getters (`&self`), commands (`connect`, `presence`,
/// `visibility`, `navigate`, ...), inputs ([`SansIo::handle_input`](crate::io::SansIo::handle_input),
/// [`SansIo::handle_timeout`](crate::io::SansIo::handle_timeout)) and polls ([`SansIo::poll_output`](crate::io::SansIo::poll_output), [`SansIo::poll_timeout`](crate::io::SansIo::poll_timeout)).
///
/// **Drain contract**: after every command or input, call `poll_output` until it returns
/// `None`, carrying out each output in order; then wait for the next input or for the instant
/// `poll_timeout` returns, whichever comes first, and call `handle_timeout` then. Every call
/// takes the current monotonic time; the core never reads a clock. Inputs about sockets or
/// requests the core has given up on are ignored.
///
/// # What it does on the wire
///
/// - The first frame of every socket is `connect` without an `authorization` key, `groupid`
///   as a number, and `guesttoken` in unique mode:
///   `{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}`.
/// - Messages issued while no socket is open wait in a bounded queue and are sent right after
///   the `connect` frame, without waiting for `connected`. A full queue refuses the message
///   at once ([`CommandError::QueueFull`]).
/// - Presence merges: the core keeps the merged presence, sends the data given, and after a
///   reconnect (and after `navigate`, `visibility(Visible)` and `focus`) sends the whole
///   merged presence again; queued partial presence frames are then dropped as covered.
/// - `{"type":"k"}` every `keepalive` seconds counted from `connected` (none before it);
///   a WebSocket ping after 15 s of inbound silence and a new socket when nothing comes
///   10 s later; reconnects with backoff, reset by `connected`.
/// - `visibility(Hidden)` sends `visibility hidden` then closes the socket and stays closed;
///   `visibility(Visible)` reconnects and sends `visibility visible` and the whole presence.
///   A `blur` frame closes the socket in the same way until [`VisitorProtocol::focus`].
///
/// **Guarantees**: at most one socket is open or opening; bad frames become
/// [`VisitorEvent::ProtocolViolation`] events, never panics; invokes outside `GLANCE.` /
/// `GLANCE_COBROWSE.Custom.` become [`VisitorEvent::InvokeRefused`]; [`VisitorEvent::Stopped`]
/// is the last event, after which `poll_output` returns `None` for good and commands return
/// [`CommandError::Stopped`].
///
/// # Example
///
/// ```
/// use std::time::Instant;
/// use glance_presence_protocol::io::{Output, SansIo, TransportInput};
/// use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent, VisitorProtocol};
/// use glance_presence_protocol::PresenceData;
///
/// let now = Instant::now();
/// let config = VisitorConfig::builder().group_id(12345)
///     .visitor_id("v1")
///     .presence_server("http://127.0.0.1:8080")
///     .build()?;
/// let mut visitor = VisitorProtocol::new(config, now);
/// let mut data = PresenceData::new();
/// data.insert("url", "https://shop.example.com/");
/// visitor.presence(now, data)?; // queued: no socket yet
/// visitor.connect(now)?;
///
/// let mut sent = Vec::new();
/// let mut events = Vec::new();
/// let mut inbox: Vec<TransportInput> = Vec::new(); // what the "network" answers
/// loop {
///     while let Some(output) = visitor.poll_output() {
///         match output {
///             Output::OpenSocket { socket, url, .. } => {
///                 assert_eq!(url, "ws://127.0.0.1:8080/visitorws");
///                 inbox.push(TransportInput::SocketOpened { socket });
///             }
///             Output::SendFrame { socket, text } => {
///                 if text.contains(r#""type":"connect""#) {
///                     let text = r#"{"type":"connected","keepalive":30}"#.to_owned();
///                     inbox.push(TransportInput::Frame { socket, text });
///                 }
///                 sent.push(text);
///             }
///             Output::Event(event) => events.push(event),
///             _ => {}
///         }
///     }
///     match inbox.pop() {
///         Some(input) => visitor.handle_input(now, input),
///         None => break,
///     }
/// }
/// assert_eq!(sent[0], r#"{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}"#);
/// assert_eq!(sent[1], r#"{"type":"presence","data":{"url":"https://shop.example.com/"}}"#);
/// assert!(events.iter().any(|e| matches!(e, VisitorEvent::Connected { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VisitorProtocol {
    config: VisitorConfig,
    link: SocketLink<VisitorTimer, VisitorEvent>,
    /// The visitor id in use: configured, or granted by `uniquevisitor`.
    visitor: Option<VisitorId>,
    unique: Option<UniqueGrant>,
    /// The request before the socket in flight.
    fetch: Option<(HttpRequestId, Fetch)>,
    /// The server for the next socket (from `presence` or `redirect`); else the presence
    /// server.
    direct: Option<ServerAddr>,
    /// The application reported the page hidden.
    hidden: bool,
    /// The service sent `blur` and the application has not called `focus` since.
    blurred: bool,
    /// Send `visibility visible` after the next `connect` frame.
    announce_visible: bool,
    /// Presence has reached a socket (or a page load was reported), so every new socket gets
    /// the whole merged presence.
    resend_presence: bool,
    presence: PresenceData,
    queue: VecDeque<Queued>,
}

impl VisitorProtocol {
    /// A new visitor, idle until [`VisitorProtocol::connect`]. Messages issued before it are
    /// queued.
    pub fn new(config: VisitorConfig, now: Instant) -> Self {
        let visitor = match &config.role.identity {
            VisitorIdentity::Visitor(id) => Some(id.clone()),
            VisitorIdentity::Unique => None,
        };
        VisitorProtocol {
            link: SocketLink::new(&config, now),
            config,
            visitor,
            unique: None,
            fetch: None,
            direct: None,
            hidden: false,
            blurred: false,
            announce_visible: false,
            resend_presence: false,
            presence: PresenceData::new(),
            queue: VecDeque::new(),
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &VisitorConfig {
        &self.config
    }

    /// The link's state.
    pub fn connection_state(&self) -> ConnectionState {
        match self.link.state {
            Link::Idle => ConnectionState::Idle,
            Link::Preparing | Link::Opening(_) | Link::Handshaking(_) => {
                if self.link.backoff.attempt() == 0 {
                    ConnectionState::Connecting
                } else {
                    ConnectionState::Reconnecting {
                        attempt: self.link.backoff.attempt(),
                    }
                }
            }
            Link::Up(_) => ConnectionState::Connected,
            Link::Backoff => ConnectionState::Reconnecting {
                attempt: self.link.backoff.attempt(),
            },
            Link::Paused => ConnectionState::Paused {
                hidden: self.hidden,
                blurred: self.blurred,
            },
            Link::Stopped => ConnectionState::Stopped,
        }
    }

    /// Whether the visitor has stopped for good.
    pub fn is_stopped(&self) -> bool {
        self.link.state == Link::Stopped
    }

    /// The visitor id in use: the configured one, or `UNQ-<uniqueid>` once `uniquevisitor`
    /// answered (`None` before that).
    pub fn visitor_id(&self) -> Option<&VisitorId> {
        self.visitor.as_ref()
    }

    /// Unique mode: the one-time id granted by `uniquevisitor`, once it answered.
    pub fn unique_id(&self) -> Option<&UniqueId> {
        self.unique.as_ref().map(|grant| &grant.unique)
    }

    /// The merged presence: every `presence` and `navigate` so far, in one ordered object.
    pub fn presence_data(&self) -> &PresenceData {
        &self.presence
    }

    /// The page's visibility as last reported by the application.
    pub fn visibility_state(&self) -> Visibility {
        if self.hidden {
            Visibility::Hidden
        } else {
            Visibility::Visible
        }
    }

    /// Whether the service blurred this visitor and `focus` has not been called since.
    pub fn is_blurred(&self) -> bool {
        self.blurred
    }

    /// The server the socket is (or is being) connected to.
    pub fn server(&self) -> Option<&ServerAddr> {
        self.link.socket_server.as_ref()
    }

    /// Messages waiting for a socket.
    pub fn queued_messages(&self) -> usize {
        self.queue.len()
    }

    // ----- commands -----

    /// Starts connecting (`uniquevisitor` in unique mode, `presence` with a direct-server
    /// lookup, then the socket) and keeps the link up until [`VisitorProtocol::disconnect`].
    /// While the page is hidden the socket waits for `visibility(Visible)`. Calling it again
    /// does nothing.
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        if self.link.state == Link::Idle {
            if self.hidden {
                self.link.state = Link::Paused;
            } else {
                self.begin_attempt();
            }
            self.after_input();
        }
        Ok(())
    }

    /// Stops for good: closes the socket (a normal close, 1000, with no goodbye frame), drops
    /// the queue, and emits [`VisitorEvent::Stopped`], the last event. Does nothing when
    /// already stopped.
    pub fn disconnect(&mut self, now: Instant) {
        self.link.tick(now);
        self.stop(StopReason::Requested);
    }

    /// Reports presence data (`{"type":"presence","data":{...}}`): merged into the kept
    /// presence (later values win, new keys appended) and sent as given, or queued. While no
    /// socket is open and the service has had presence before, nothing is queued: the whole
    /// merged presence goes out on the next socket.
    pub fn presence(&mut self, now: Instant, data: PresenceData) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        let mut merged = self.presence.clone();
        merged.merge(&data);
        self.check_len(ClientFrame::Presence(merged.clone()).encode().len())?;
        if self.sending_socket().is_none() && self.resend_presence {
            self.presence = merged;
            return Ok(());
        }
        self.send_or_queue(ClientFrame::Presence(data))?;
        self.presence = merged;
        Ok(())
    }

    /// Reports the page's visibility. `Hidden` sends `{"type":"visibility","data":
    /// {"visibility":"hidden"}}` when a socket is open, then closes it, and no socket opens
    /// again until `Visible`, which reconnects and sends `visibility visible` and the whole
    /// presence. Reporting the current state again does nothing.
    pub fn visibility(&mut self, now: Instant, visibility: Visibility) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        match visibility {
            Visibility::Hidden => {
                if self.hidden {
                    return Ok(());
                }
                self.hidden = true;
                self.announce_visible = false;
                if let Some(socket) = self.sending_socket() {
                    self.send_now(socket, ClientFrame::Visibility(Visibility::Hidden).encode());
                }
                self.pause(DisconnectReason::Hidden);
            }
            Visibility::Visible => {
                if !self.hidden {
                    return Ok(());
                }
                self.hidden = false;
                if self.link.state != Link::Idle {
                    self.announce_visible = true;
                }
                self.resume();
            }
        }
        self.after_input();
        Ok(())
    }

    /// The page's terms dialog: `{"type":"terms","data":{"status":"accepted"}}`.
    pub fn terms(&mut self, now: Instant, status: TermsStatus) -> Result<(), CommandError> {
        self.message(now, ClientFrame::Terms(status))
    }

    /// A cobrowse session started: `{"type":"visitorsessionstart"}` (+ `data`).
    pub fn session_start(&mut self, now: Instant, data: Option<Value>) -> Result<(), CommandError> {
        self.message(now, ClientFrame::VisitorSessionStart(data))
    }

    /// A cobrowse session ended: `{"type":"visitorsessionend"}` (+ `data`).
    pub fn session_end(&mut self, now: Instant, data: Option<Value>) -> Result<(), CommandError> {
        self.message(now, ClientFrame::VisitorSessionEnd(data))
    }

    /// A visitor-side error for the agents, e.g. `{"code":"conndrop","msg":"Connect failed"}`:
    /// `{"type":"visitorerror","data":{...}}`.
    pub fn visitor_error(&mut self, now: Instant, data: Value) -> Result<(), CommandError> {
        self.message(now, ClientFrame::VisitorError(data))
    }

    /// A custom message (Glance's `fire(type, data)`): `{"type":<kind>,"data":<data>}`, which
    /// the service forwards to the agents. `kind` must be 1–64 bytes and not one of the
    /// protocol's own types (use the matching command for `presence`, `terms`, ...).
    pub fn fire(
        &mut self,
        now: Instant,
        kind: impl Into<String>,
        data: Option<Value>,
    ) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        let kind = kind.into();
        let reason = if kind.is_empty() {
            Some("it is empty")
        } else if kind.len() > MAX_CUSTOM_KIND_LEN {
            Some("it is longer than 64 bytes")
        } else if ClientFrame::is_known_kind(&kind) {
            Some("it is a type of the protocol; use the matching command")
        } else if ServerFrame::is_known_kind(&kind) {
            Some("it is a type the service sends; it would not be forwarded")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(CommandError::InvalidKind { kind, reason });
        }
        self.send_or_queue(ClientFrame::Other { kind, data })
    }

    /// A page load at `url`: the url is merged into the presence, the socket (if one is open)
    /// closes and a new one opens at once, and it gets `connect` and the whole presence with
    /// the new url. A page load also clears `blur`. While hidden, the url is kept for when the
    /// page is shown; before `connect`, for the first socket.
    pub fn navigate(&mut self, now: Instant, url: impl Into<String>) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        let mut update = PresenceData::new();
        update.insert("url", url.into());
        let mut merged = self.presence.clone();
        merged.merge(&update);
        self.check_len(ClientFrame::Presence(merged.clone()).encode().len())?;
        self.presence = merged;
        self.resend_presence = true;
        self.queue.retain(|queued| !queued.presence);
        self.blurred = false;
        match self.link.state {
            Link::Handshaking(_) | Link::Up(_) => {
                self.link_down(DisconnectReason::Navigation, Retry::Now)
            }
            Link::Backoff => {
                self.link.timers.stop(VisitorTimer::Reconnect);
                self.begin_attempt();
            }
            Link::Paused => self.resume(),
            Link::Idle | Link::Preparing | Link::Opening(_) | Link::Stopped => {}
        }
        self.after_input();
        Ok(())
    }

    /// The window has focus again. After a `blur`, this reconnects and re-sends the whole
    /// presence; otherwise, on an open socket, it re-sends the whole presence (as Glance's
    /// script does on window focus).
    pub fn focus(&mut self, now: Instant) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        if self.blurred {
            self.blurred = false;
            self.resume();
        } else if let Some(socket) = self.sending_socket() {
            if !self.presence.is_empty() {
                let text = ClientFrame::Presence(self.presence.clone()).encode();
                self.send_now(socket, text);
                self.resend_presence = true;
            }
        }
        self.after_input();
        Ok(())
    }

    // ----- internals shared by the submodules -----

    fn check_running(&self) -> Result<(), CommandError> {
        if self.link.state == Link::Stopped {
            Err(CommandError::Stopped)
        } else {
            Ok(())
        }
    }

    fn check_len(&self, len: usize) -> Result<(), CommandError> {
        if len > self.config.max_frame_bytes {
            Err(CommandError::TooLarge {
                len,
                limit: self.config.max_frame_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// A plain message command: checked, then sent or queued.
    fn message(&mut self, now: Instant, frame: ClientFrame) -> Result<(), CommandError> {
        self.link.tick(now);
        self.check_running()?;
        self.send_or_queue(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_protocol_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<VisitorProtocol>();
    }
}
