//! The sans-IO agent: [`AgentProtocol`] watches one visitor through the Presence service.
//!
//! It consumes application commands ([`AgentProtocol::connect`], [`AgentProtocol::lookup`],
//! ...), transport inputs ([`TransportInput`](crate::io::TransportInput)) and timer ticks, and emits outputs
//! ([`Output`](crate::io::Output)): sockets to open, frames to send, pings, HTTP requests, and [`AgentEvent`]s. It
//! performs no IO, reads no clock (wall time is passed to [`AgentProtocol::new`], used only
//! for LoginKeys, token expiry and event dates) and draws randomness only from its seeded RNG.
//!
//! Module map: [`config`] (the validated configuration), [`event`] (what the application is
//! told), `error` (command errors), `link` (authorize → discover → findvisitor → socket →
//! `connected`, reconnects, dead-link detection), `inbound` (frames from the service),
//! `requests` (lookup / query / signal / invoke and their HTTP answers), [`outcomes`] (matching
//! request outcomes to whoever waits for them, for drivers), `visitor` (presence and the leave
//! grace), `token` (JWT expiry).

pub mod config;
mod error;
pub mod event;
mod inbound;
mod link;
pub mod outcomes;
mod requests;
mod timers;
mod token;
mod visitor;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::io::HttpRequestId;
use crate::link::{Link, LinkCore, SocketLink};
use crate::presence::PresenceData;
use crate::rest::{ServerAddr, SignalBody};
use crate::secret::AuthToken;
use crate::wire::{invoke_func_allowed, InvokeRequest};

pub use config::{
    AgentAuth, AgentConfig, AgentConfigBuilder, AgentTimers, AnchoredClock, ConfigError,
    SignalRoute,
};
pub use error::CommandError;
pub use event::{
    AgentEvent, ConnectionState, Delivery, DisconnectReason, PresenceSource, RequestFailure,
    RequestId, RequestKind, RequestValue, StopReason, VisitorPresence, VisitorSnapshot,
    VisitorState,
};
pub use outcomes::{Outcome, Outcomes, Routed};

use requests::{HttpPending, Request, RequestOp};
pub(crate) use timers::AgentTimer;
use visitor::VisitorTracker;

/// The request for a new token under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenFetch {
    /// `Authorize`, with credentials.
    Authorize(HttpRequestId),
    /// `TokenNeeded` to the application, with a token provider.
    Provider,
}

/// The presence data of the lookup made after `connected`, while it is in flight.
#[derive(Debug, Clone)]
pub(crate) struct PendingSnapshot {
    http: HttpRequestId,
    /// Live presence frames that arrived before the snapshot, merged in order.
    live: PresenceData,
}

/// The sans-IO Presence agent for one visitor.
///
/// # Driving it
///
/// The method kinds follow quinn-proto: getters (`&self`), commands (`connect`, `disconnect`,
/// `lookup`, `query`, `signal`, `invoke`), inputs ([`SansIo::handle_input`](crate::io::SansIo::handle_input),
/// [`SansIo::handle_timeout`](crate::io::SansIo::handle_timeout)) and polls ([`SansIo::poll_output`](crate::io::SansIo::poll_output), [`SansIo::poll_timeout`](crate::io::SansIo::poll_timeout)).
///
/// **Drain contract**: after every command or input, call `poll_output` until it returns
/// `None`, carrying out each output in order (open the socket, send the frame, perform the
/// HTTP request, hand the event to the application); then wait for the next input or for the
/// instant `poll_timeout` returns, whichever comes first, and call `handle_timeout` then. Every
/// call takes the current monotonic time; the core never reads a clock. Inputs about sockets or
/// requests the core has given up on are ignored, so a driver never needs to filter them.
///
/// **Guarantees**: every request returns a [`RequestId`] that resolves exactly once with an
/// [`AgentEvent::RequestOutcome`]; at most one socket is open or opening; bad frames become
/// [`AgentEvent::ProtocolViolation`] events, never panics; [`AgentEvent::Stopped`] is the last
/// event, after which `poll_output` returns `None` for good and commands return
/// [`CommandError::Stopped`].
///
/// # Example
///
/// A complete driving loop, here against a scripted in-memory peer (a real driver performs
/// the outputs over tungstenite/HTTP and feeds back what happened):
///
/// ```
/// use std::time::{Duration, Instant};
/// use glance_presence_protocol::agent::{AgentConfig, AgentEvent, AgentProtocol};
/// use glance_presence_protocol::io::{Output, SansIo, TransportInput};
///
/// let start = Instant::now();
/// let config = AgentConfig::builder()
///     .group_id(12345)
///     .visitor_id("v1")
///     .token("a-token")
///     .presence_server("http://127.0.0.1:8080")
///     .build()?;
/// // The wall time at `start` comes from the driver (here a fixed date); the core reads no clock.
/// let mut agent = AgentProtocol::new(config, start, Duration::from_secs(1_700_000_000));
/// agent.connect(start)?;
///
/// let mut now = start;
/// let mut inbox: Vec<TransportInput> = Vec::new(); // what the "network" answers
/// let mut events = Vec::new();
/// for _ in 0..20 {
///     // 1. Drain every output and carry it out.
///     while let Some(output) = agent.poll_output() {
///         match output {
///             Output::Http { id, request } => {
///                 let body: &[u8] = if request.url.contains("/findvisitor") {
///                     br#"{"visitorfound":true,"directserver":"127.0.0.1","httpsport":8080}"#
///                 } else {
///                     br#"{}"# // lookupvisitor: the visitor is absent
///                 };
///                 inbox.push(TransportInput::HttpResponse { id, status: 200, body: body.to_vec() });
///             }
///             Output::OpenSocket { socket, .. } => {
///                 inbox.push(TransportInput::SocketOpened { socket });
///             }
///             Output::SendFrame { socket, text } if text.contains(r#""type":"connect""#) => {
///                 let text = r#"{"type":"connected","keepalive":30}"#.to_owned();
///                 inbox.push(TransportInput::Frame { socket, text });
///             }
///             Output::Event(event) => events.push(event),
///             _ => {} // keepalives, pings, closes
///         }
///     }
///     // 2. Feed the next input, or sleep until the next deadline and fire it.
///     if let Some(input) = inbox.pop() {
///         agent.handle_input(now, input);
///     } else if let Some(deadline) = agent.poll_timeout() {
///         now = now.max(deadline);
///         agent.handle_timeout(now);
///     }
/// }
/// assert!(events.iter().any(|e| matches!(e, AgentEvent::Connected { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AgentProtocol {
    config: AgentConfig,
    /// The wall time, anchored at creation.
    wall: AnchoredClock,
    link: SocketLink<AgentTimer, AgentEvent>,
    next_request: u64,
    /// The token in use (`None` while one is being obtained).
    token: Option<AuthToken>,
    /// The `Authorize` request in flight.
    token_fetch: Option<TokenFetch>,
    /// Token refusals since the link was last stable (each renews the token; past
    /// `MAX_TOKEN_REFUSALS` the agent stops).
    token_refusals: u32,
    /// Whether the presence server is known (always, unless discovery is on).
    settings_known: bool,
    settings_fetch: Option<HttpRequestId>,
    presence_server: ServerAddr,
    load_balanced: bool,
    /// The server for the socket, once found (findvisitor or redirect).
    direct: Option<ServerAddr>,
    /// The server the visitor was last seen on (findvisitor, a lookup): REST signals are
    /// posted there without asking `findvisitor` first, unless configured otherwise.
    visitor_server: Option<ServerAddr>,
    find_fetch: Option<HttpRequestId>,
    http: Vec<HttpPending>,
    requests: Vec<Request>,
    visitor: VisitorTracker,
    presence: PresenceData,
    snapshot: Option<PendingSnapshot>,
}

impl AgentProtocol {
    /// A new agent, idle until [`AgentProtocol::connect`] (REST commands work before it).
    ///
    /// `unix_now` is the wall time (since the Unix epoch) at `now`, read by the driver; the
    /// core derives later wall times from the monotonic `now` of each call.
    pub fn new(config: AgentConfig, now: Instant, unix_now: Duration) -> Self {
        let token = match config.auth() {
            AgentAuth::Token(token) => Some(token.clone()),
            AgentAuth::Credentials { .. } | AgentAuth::Provider => None,
        };
        AgentProtocol {
            link: SocketLink::new(&config, now),
            presence_server: config.presence_server.clone(),
            settings_known: !config.role.discovery,
            config,
            wall: AnchoredClock::new(now, unix_now),
            next_request: 0,
            token,
            token_fetch: None,
            token_refusals: 0,
            settings_fetch: None,
            load_balanced: false,
            direct: None,
            visitor_server: None,
            find_fetch: None,
            http: Vec::new(),
            requests: Vec::new(),
            visitor: VisitorTracker::new(),
            presence: PresenceData::new(),
            snapshot: None,
        }
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
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
            // The agent never pauses.
            Link::Backoff | Link::Paused => ConnectionState::Reconnecting {
                attempt: self.link.backoff.attempt(),
            },
            Link::Stopped => ConnectionState::Stopped,
        }
    }

    /// Whether the agent has stopped for good.
    pub fn is_stopped(&self) -> bool {
        self.link.state == Link::Stopped
    }

    /// Whether the visitor is present, absent, or unknown (agent offline).
    pub fn visitor_presence(&self) -> VisitorPresence {
        self.visitor.state
    }

    /// When the visitor's presence was last confirmed (present or absent).
    pub fn visitor_presence_since(&self) -> Option<Instant> {
        self.visitor.since
    }

    /// The visitor's presence data: the snapshot merged with every live update since, in one
    /// ordered view (kept while offline).
    pub fn presence_data(&self) -> &PresenceData {
        &self.presence
    }

    /// The server the socket is (or is being) connected to.
    pub fn server(&self) -> Option<&ServerAddr> {
        self.link.socket_server.as_ref()
    }

    /// Requests not resolved yet.
    pub fn pending_requests(&self) -> usize {
        self.requests.len()
    }

    // ----- commands -----

    /// Starts connecting (authorize → discover → findvisitor → socket → `connected`), and keeps
    /// reconnecting until [`AgentProtocol::disconnect`]. Calling it again while connecting or
    /// connected does nothing.
    pub fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        self.link.tick(now);
        if self.link.state == Link::Stopped {
            return Err(CommandError::Stopped);
        }
        if self.link.state == Link::Idle {
            if self.bare_token_expired() {
                self.fatal_authorization();
                return Ok(());
            }
            self.begin_attempt();
            self.after_input();
        }
        Ok(())
    }

    /// Stops for good: closes the socket, fails every pending request as cancelled, and emits
    /// [`AgentEvent::Stopped`], the last event. Does nothing when already stopped.
    pub fn disconnect(&mut self, now: Instant) {
        self.link.tick(now);
        self.stop(StopReason::Requested);
    }

    /// Answers [`AgentEvent::TokenNeeded`] (token-provider configurations): the token, or why
    /// the application could not get one (a failure is retried after the backoff, like a
    /// failed `Authorize`). An answer when no token was asked for (a late one, after the
    /// request timeout) is ignored.
    pub fn provide_token(
        &mut self,
        now: Instant,
        token: Result<AuthToken, String>,
    ) -> Result<(), CommandError> {
        self.link.tick(now);
        if self.link.state == Link::Stopped {
            return Err(CommandError::Stopped);
        }
        self.on_provided_token(token);
        self.after_input();
        Ok(())
    }

    /// Looks the visitor up (`lookupvisitor`).
    pub fn lookup(&mut self, now: Instant) -> Result<RequestId, CommandError> {
        self.link.tick(now);
        self.command(RequestKind::Lookup, RequestOp::Lookup)
    }

    /// Asks the visitor's current state (`query`).
    pub fn query(&mut self, now: Instant) -> Result<RequestId, CommandError> {
        self.link.tick(now);
        self.command(RequestKind::Query, RequestOp::Query)
    }

    /// Finds the server the visitor is connected to (`findvisitor`).
    pub fn find(&mut self, now: Instant) -> Result<RequestId, CommandError> {
        self.link.tick(now);
        self.command(RequestKind::Find, RequestOp::Find)
    }

    /// Sends the visitor a message for its `onsignal`.
    pub fn signal(&mut self, now: Instant, data: Value) -> Result<RequestId, CommandError> {
        self.link.tick(now);
        self.command(
            RequestKind::Signal,
            RequestOp::Signal(SignalBody::Signal(data)),
        )
    }

    /// Runs `func(args)` on the visitor's page. `func` must start with `GLANCE.` or
    /// `GLANCE_COBROWSE.Custom.`; anything else is refused before anything is sent.
    pub fn invoke(
        &mut self,
        now: Instant,
        func: impl Into<String>,
        args: Value,
    ) -> Result<RequestId, CommandError> {
        self.link.tick(now);
        let func = func.into();
        if !invoke_func_allowed(&func) {
            return Err(CommandError::InvokeNotAllowed { func });
        }
        self.command(
            RequestKind::Invoke,
            RequestOp::Signal(SignalBody::Invoke(InvokeRequest { func, args })),
        )
    }

    // ----- internals shared by the submodules -----

    fn unix_ms(&self) -> u64 {
        u64::try_from(self.wall.unix_time(self.link.now).as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_protocol_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<AgentProtocol>();
    }
}
