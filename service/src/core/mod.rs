//! The sans-IO service core: every decision of the reference presence service, with no
//! sockets, no clock and no threads. Submodules: [`rest`] (every HTTP request, in and out),
//! `admission` (the connection cap and slow consumers), `record` (presence record sizes),
//! `timers` (the timer table).
//!
//! The core tracks connections (agent and visitor sockets, by [`ConnId`]), visitors per
//! (group, visitor id), their presence window, merged presence data, visibility, terms and
//! in-session flag, the signal hold queue and its own timer table. The server around it (or a
//! test) feeds it inputs with the current time and carries out what it asks for.
//!
//! # Driving the core
//!
//! * Inputs: [`ServiceCore::open`], [`ServiceCore::handle_frame`] /
//!   [`ServiceCore::handle_text`] / [`ServiceCore::handle_malformed`],
//!   [`ServiceCore::handle_closed`], [`ServiceCore::handle_timeout`], [`ServiceCore::shutdown`],
//!   HTTP requests ([`ServiceCore::handle_http`], with the wall time as an argument), and the
//!   admission inputs ([`ServiceCore::admit_connection`], [`ServiceCore::connection_ended`],
//!   [`ServiceCore::handle_send_queue_full`]). The REST operations underneath
//!   ([`ServiceCore::lookup`], [`ServiceCore::is_present`], [`ServiceCore::signal`],
//!   [`ServiceCore::unique_visitor`]) are public too, for tests and simulations. Every input
//!   takes `now: Instant`; the core never reads a clock. On sockets, wall-clock values (token
//!   expiry, the `since`/`timestamp` fields) are derived from the `(Instant, Unix time)` pair
//!   given to [`ServiceCore::new`]; REST requests carry their own wall time.
//! * Outputs: after any input, call [`ServiceCore::poll_output`] until it returns `None`, carry
//!   each [`Output`] out (send the frame on that connection, or close it), then wait until
//!   [`ServiceCore::poll_timeout`] (or the next input) and call
//!   [`ServiceCore::handle_timeout`]. A spurious timeout call does nothing.
//!
//! # Behaviour (the service's answers are listed in PROTOCOL.md)
//!
//! * The first frame of every socket must be `connect`. Agents must carry a valid token for the
//!   group; a bad or expired token gets `{"type":"error","data":{"error":"connfail",
//!   "detail":"authorization"}}` and the socket is closed. An agent socket is sent the same
//!   frame and closed when its token's `exp` passes while it is open. A visitor's guest token
//!   must be for its group and id and must not have expired. Both roles get
//!   `{"type":"connected","keepalive":30}`.
//! * A visitor is present while it has a socket and for the presence window (6 s by default)
//!   after its last socket closed. Agents of that visitor get `visitorsock {connected}` on every change of
//!   "has a socket", `visitorconn {connected:true}` when it becomes present and
//!   `visitorconn {connected:false}` when it stops being present, so page navigation produces
//!   `visitorsock` frames only. An agent that connects while its visitor is present is told so
//!   at once (`visitorsock {connected:true}` if the visitor has a socket, then
//!   `visitorconn {connected:true}`).
//! * Visitor frames (`presence`, `visibility`, `terms`, `visitorsessionstart/end`,
//!   `visitorerror`, custom types) are forwarded to every agent socket of that visitor with
//!   `type` and `data` kept; presence data is merged into the visitor's record.
//! * The merged presence record is bounded in bytes (its entries as compact JSON) and keys. A
//!   `presence` frame that would make it exceed either bound is refused whole: nothing of it is
//!   merged or forwarded, the visitor gets `{"type":"error","data":{"error":"presencetoolarge",
//!   "detail":…}}` (its socket stays open), [`CoreStats::presence_refused`] counts it and a
//!   warning naming the visitor is logged through `tracing` (a log facade: the core still does
//!   no IO of its own). The record's bytes are released when its presence period ends.
//! * Signals go to the visitor's newest socket; an older socket with the same id is sent
//!   `blur` when a newer one connects. A present visitor without a socket has its signals held
//!   (FIFO, bounded) and delivered exactly once, in order, on its next connect; each held
//!   signal is dropped and counted when the hold window (by default the presence window)
//!   passes.
//! * Malformed frames get `{"type":"error","data":{"error":"badframe","detail":…}}` and the
//!   socket is closed. A socket silent for the idle timeout (3 × keepalive) is closed.

mod admission;
pub mod controls;
mod record;
pub mod rest;
mod timers;

pub use admission::Admission;
pub use controls::{AdminToken, Breakage, Controls, PingAnswer, CONTROL_PREFIX};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use glance_presence_protocol::rest::Delivery;
use glance_presence_protocol::wire::ConnectFrame;
use glance_presence_protocol::{
    ApiKey, ClientFrame, DecodeError, GroupId, PresenceData, ServerFrame, TermsStatus, UniqueId,
    Visibility, VisitorId,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::auth::TokenKeys;
use crate::config::ServiceConfig;
use timers::{TimerKey, Timers, VisitorKey};

/// A connection's id, assigned by [`ServiceCore::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Which endpoint a socket was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `/agent`.
    Agent,
    /// `/visitorws`.
    Visitor,
}

impl Role {
    /// The endpoint: `/agent` or `/visitorws`.
    pub fn path(self) -> &'static str {
        match self {
            Role::Agent => "/agent",
            Role::Visitor => "/visitorws",
        }
    }

    /// `"agent"` or `"visitor"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Visitor => "visitor",
        }
    }
}

/// Why the core closes a connection; maps to a WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// A malformed frame, or a frame out of order.
    ProtocolError,
    /// A frame over the size limit.
    TooLarge,
    /// A bad or expired token, a wrong group or a bad guest token.
    Unauthorized,
    /// No inbound frame for the idle timeout.
    IdleTimeout,
    /// The service is shutting down (after `serverclose`).
    Shutdown,
    /// The socket's send queue was full: a consumer that does not read. The driver drops the
    /// connection (a close frame would not fit in the queue either).
    SlowConsumer,
    /// A test control dropped the socket: the driver drops the connection without a close
    /// frame (the code and text are never sent).
    Dropped,
}

impl CloseCause {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseCause::ProtocolError => 1002,
            CloseCause::TooLarge => 1009,
            CloseCause::Unauthorized | CloseCause::SlowConsumer => 1008,
            CloseCause::IdleTimeout | CloseCause::Shutdown => 1001,
            CloseCause::Dropped => 1006,
        }
    }

    /// The close reason text.
    pub fn text(self) -> &'static str {
        match self {
            CloseCause::ProtocolError => "protocol error",
            CloseCause::TooLarge => "frame too large",
            CloseCause::Unauthorized => "authorization",
            CloseCause::IdleTimeout => "idle timeout",
            CloseCause::Shutdown => "server shutting down",
            CloseCause::SlowConsumer => "send queue full",
            CloseCause::Dropped => "dropped by a test control",
        }
    }
}

/// What the core asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this frame on the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: ServerFrame,
    },
    /// Send this text as one text message, as it is (the test control `/control/send` with
    /// `"text"`: what no frame encodes, such as text that is not JSON).
    SendText {
        /// The connection.
        conn: ConnId,
        /// The text.
        text: String,
    },
    /// Close the connection (after the frames queued before this output).
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseCause,
    },
}

/// Why the service did not take a signal (REST `signalvisitor` or the agent socket route).
/// A signal it takes is a [`Delivery`]: `Delivered` (sent to the visitor's newest socket) or
/// `Held` (the visitor is present without a socket: held for its next connect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalRefused {
    /// The visitor is not present.
    NotPresent,
    /// The visitor's hold queue is full.
    HoldQueueFull,
    /// The frame the visitor would get is larger than the frame limit (a body within the REST
    /// limit can grow when written as a frame), so the visitor could not read it.
    TooLarge {
        /// The frame's length in bytes.
        len: usize,
        /// The frame limit.
        limit: usize,
    },
}

/// A present visitor's state, as `lookupvisitor` and `query` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorSnapshot {
    /// The group.
    pub group: GroupId,
    /// The visitor.
    pub visitor: VisitorId,
    /// Open visitor sockets.
    pub sockets: usize,
    /// When the visitor became present (Unix seconds).
    pub since_unix: f64,
    /// When the visitor last connected or sent presence data (Unix seconds).
    pub updated_unix: f64,
    /// The merged presence data.
    pub presence: PresenceData,
    /// The last visibility reported.
    pub visibility: Option<Visibility>,
    /// The last terms status reported.
    pub terms: Option<TermsStatus>,
    /// Between `visitorsessionstart` and `visitorsessionend`.
    pub in_session: bool,
}

/// An id handed out by `/uniquevisitor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueAssignment {
    /// The unique id (nine digits).
    pub unique: UniqueId,
    /// `UNQ-<unique>`.
    pub visitor: VisitorId,
    /// The guest token the visitor sends in its `connect` frame.
    pub guest_token: String,
    /// Announced lifetime in seconds.
    pub timeout_secs: u64,
}

/// Counters and gauges of the core (the service adds REST counters for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Open agent sockets (including those that have not sent `connect` yet).
    pub agent_sockets: u64,
    /// Open visitor sockets (including those that have not sent `connect` yet).
    pub visitor_sockets: u64,
    /// Visitors present now.
    pub visitors_present: u64,
    /// Visitor records held (present visitors, and absent ones with agents or held signals).
    pub visitors_tracked: u64,
    /// Signals sent to a visitor socket (at once or from the hold queue).
    pub signals_delivered: u64,
    /// Signals put in a hold queue.
    pub signals_held: u64,
    /// Of `signals_delivered`, those delivered from a hold queue on the visitor's next connect.
    pub held_delivered: u64,
    /// Held signals dropped when the hold window passed.
    pub signals_dropped: u64,
    /// Signals refused because the visitor was not present.
    pub signals_not_present: u64,
    /// Signals refused because the hold queue was full.
    pub signals_queue_full: u64,
    /// Sockets refused for a bad, expired or wrong-group token (or guest token).
    pub auth_failures: u64,
    /// Frames received (well-formed).
    pub frames_received: u64,
    /// Visitor frames forwarded to agent sockets (one per agent socket).
    pub frames_forwarded: u64,
    /// Malformed or out-of-order frames.
    pub malformed_frames: u64,
    /// Sockets closed for inbound silence.
    pub idle_timeouts: u64,
    /// `blur` frames sent.
    pub blurs: u64,
    /// Sockets opened since start.
    pub connections_total: u64,
    /// `presence` frames refused because the visitor's record would exceed its bounds.
    pub presence_refused: u64,
    /// Bytes of merged presence data held over all visitor records (see
    /// [`CoreSettings::max_presence_bytes`] for how they are counted).
    pub presence_bytes: u64,
    /// Agent sockets closed because their token expired while they were open.
    pub tokens_expired: u64,
    /// HTTP requests answered other than WebSocket upgrades.
    pub rest_requests: u64,
    /// REST calls refused for their bearer token.
    pub rest_auth_failures: u64,
    /// `Authorize` calls refused.
    pub authorize_failures: u64,
    /// Agent requests and sockets refused for their `Origin`.
    pub origin_rejections: u64,
    /// Sockets dropped because their send queue was full (a consumer that does not read).
    pub slow_consumers: u64,
    /// Connections refused because the connection cap was reached.
    pub refused_connections: u64,
    /// Open connections (HTTP and WebSocket) admitted and not yet ended.
    pub open_connections: u64,
}

/// The core's settings (a subset of [`ServiceConfig`]).
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// Keepalive announced in `connected` (seconds).
    pub keepalive_secs: u64,
    /// Presence window after the last socket closed.
    pub presence_window: Duration,
    /// How long a held signal waits.
    pub hold_window: Duration,
    /// Inbound silence after which a socket is closed.
    pub idle_timeout: Duration,
    /// Hold queue bound per visitor.
    pub held_signals_per_visitor: usize,
    /// Frame size limit for [`ServiceCore::handle_text`].
    pub max_frame_bytes: usize,
    /// Bound of a visitor's merged presence record, in bytes: each entry counted as
    /// `"key":value,` in compact JSON.
    pub max_presence_bytes: usize,
    /// Bound of the number of keys in a visitor's merged presence record.
    pub max_presence_keys: usize,
    /// Lifetime announced for unique ids (seconds).
    pub unique_timeout_secs: u64,
    /// The groups the service serves, each with its API keys (LoginKeys are checked against
    /// them).
    pub groups: BTreeMap<GroupId, Vec<ApiKey>>,
    /// Seed of the unique-id generator.
    pub seed: u64,
    /// Allowed agent origins; `"*"` allows every origin.
    pub allowed_origins: Vec<String>,
    /// `isPresenceLoadBalanced` in `GetVisitorSettings3` answers.
    pub load_balanced: bool,
    /// The host this service names itself by in `direct`, `directserver`, `ds` and
    /// `presenceUrl`.
    pub advertised_host: String,
    /// The port it names itself by (`httpsport`, `direct`).
    pub advertised_port: u16,
    /// Largest REST request body (bytes).
    pub max_body_bytes: usize,
    /// Open connections (HTTP and WebSocket together) at most.
    pub max_connections: usize,
    /// Connections refused with a 503 at the same time at most; beyond it a connection over
    /// the cap is closed at once.
    pub refusals_at_once: usize,
}

impl CoreSettings {
    /// The core's part of a service configuration.
    pub fn from_config(config: &ServiceConfig, seed: u64) -> Self {
        CoreSettings {
            keepalive_secs: config.keepalive_secs(),
            presence_window: config.presence_window(),
            hold_window: config.hold_window(),
            idle_timeout: config.idle_timeout(),
            held_signals_per_visitor: config.limits().held_signals_per_visitor,
            max_frame_bytes: config.limits().max_frame_bytes,
            max_presence_bytes: config.limits().max_presence_bytes,
            max_presence_keys: config.limits().max_presence_keys,
            unique_timeout_secs: config.unique_timeout_secs(),
            groups: config.groups().clone(),
            seed,
            allowed_origins: config.allowed_origins().to_vec(),
            load_balanced: config.load_balanced(),
            advertised_host: config
                .advertise_host()
                .map_or_else(|| "127.0.0.1".to_owned(), str::to_owned),
            advertised_port: config.listen().port(),
            max_body_bytes: config.limits().max_body_bytes,
            max_connections: config.limits().max_connections,
            refusals_at_once: DEFAULT_REFUSALS_AT_ONCE,
        }
    }

    /// Whether a request to `path` from `origin` (an `Origin` header value) is accepted (see
    /// [`rest::origins::origin_accepted`]).
    pub fn origin_accepted(&self, path: &str, origin: &str) -> bool {
        rest::origins::origin_accepted(&self.allowed_origins, path, origin)
    }

    /// `host:port` as the service names itself.
    pub fn direct(&self) -> String {
        format!("{}:{}", self.advertised_host, self.advertised_port)
    }
}

/// Connections refused with a 503 at the same time, by default.
pub const DEFAULT_REFUSALS_AT_ONCE: usize = 64;

#[derive(Debug)]
enum ConnState {
    AwaitingConnect,
    Attached(VisitorKey),
    Closing,
}

#[derive(Debug)]
struct Conn {
    role: Role,
    state: ConnState,
    last_rx: Instant,
}

#[derive(Debug)]
struct Held {
    deadline: Instant,
    frame: ServerFrame,
}

#[derive(Debug, Default)]
struct Visitor {
    /// Visitor sockets, oldest first; the last one has focus and gets the signals.
    sockets: Vec<ConnId>,
    agents: Vec<ConnId>,
    present: bool,
    since_unix: f64,
    updated_unix: f64,
    presence: PresenceData,
    /// The size of `presence` as [`record::record_bytes`] counts it.
    presence_bytes: usize,
    visibility: Option<Visibility>,
    terms: Option<TermsStatus>,
    in_session: bool,
    held: VecDeque<Held>,
}

impl Visitor {
    /// Starts empty state (dropping the presence map, so its memory is released); returns the
    /// presence bytes released.
    fn reset_state(&mut self) -> usize {
        self.presence = PresenceData::new();
        self.visibility = None;
        self.terms = None;
        self.in_session = false;
        std::mem::take(&mut self.presence_bytes)
    }
}

/// The sans-IO reference presence service (see the module docs for the driving contract).
pub struct ServiceCore {
    settings: CoreSettings,
    tokens: TokenKeys,
    epoch: Instant,
    epoch_unix: f64,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    visitors: HashMap<VisitorKey, Visitor>,
    timers: Timers,
    outputs: VecDeque<Output>,
    stats: CoreStats,
    rng: ChaCha8Rng,
    shutting_down: bool,
    /// The sum of every visitor's `presence_bytes`.
    presence_bytes: usize,
    /// The test controls (off unless [`ServiceCore::enable_controls`] was called).
    controls: Controls,
    /// The latency histograms the driver feeds.
    latencies: rest::Latencies,
}

impl fmt::Debug for ServiceCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceCore")
            .field("conns", &self.conns.len())
            .field("visitors", &self.visitors.len())
            .field("timers", &self.timers.len())
            .field("outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

fn connfail(detail: &str) -> ServerFrame {
    ServerFrame::Error {
        error: "connfail".to_owned(),
        detail: Some(detail.to_owned()),
    }
}

fn presence_too_large(detail: String) -> ServerFrame {
    ServerFrame::Error {
        error: "presencetoolarge".to_owned(),
        detail: Some(detail),
    }
}

/// Shrinks a map that has become much smaller than its allocation, so that a burst of
/// connections or visitors does not keep its memory for ever.
fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

fn badframe(detail: String) -> ServerFrame {
    ServerFrame::Error {
        error: "badframe".to_owned(),
        detail: Some(detail),
    }
}

impl ServiceCore {
    /// A core with no connections. `epoch` and `epoch_unix` pair a monotonic instant with the
    /// Unix time (seconds) at that instant; the core derives wall-clock values from them.
    pub fn new(settings: CoreSettings, tokens: TokenKeys, epoch: Instant, epoch_unix: f64) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(settings.seed);
        ServiceCore {
            settings,
            tokens,
            epoch,
            epoch_unix,
            conns: HashMap::new(),
            next_conn: 1,
            visitors: HashMap::new(),
            timers: Timers::default(),
            outputs: VecDeque::new(),
            stats: CoreStats::default(),
            rng,
            shutting_down: false,
            presence_bytes: 0,
            controls: Controls::default(),
            latencies: rest::Latencies::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CoreSettings {
        &self.settings
    }

    /// Unix time (seconds) at `now`.
    pub fn unix_time(&self, now: Instant) -> f64 {
        self.epoch_unix + now.saturating_duration_since(self.epoch).as_secs_f64()
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        // Truncation to whole seconds is intended; negative values cannot occur for a sane epoch.
        self.unix_time(now).max(0.0) as u64
    }

    /// Whether the service serves this group.
    pub fn has_group(&self, group: GroupId) -> bool {
        self.settings.groups.contains_key(&group)
    }

    /// Counters and gauges.
    pub fn stats(&self) -> CoreStats {
        let mut stats = self.stats.clone();
        stats.visitors_tracked = self.visitors.len() as u64;
        stats.presence_bytes = self.presence_bytes as u64;
        stats
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    // ---------------------------------------------------------------- outputs and timers

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            match key {
                TimerKey::Idle(conn) => self.on_idle_timer(now, conn),
                TimerKey::Absent(key) => self.on_absent_timer(key),
                TimerKey::Hold(key) => self.expire_held(now, &key),
                TimerKey::TokenExpiry(conn) => self.on_token_expiry(now, conn),
            }
        }
    }

    fn send(&mut self, conn: ConnId, frame: ServerFrame) {
        if self.controls.enabled() && (self.is_paused_conn(conn) || self.controls.is_silenced(conn))
        {
            return;
        }
        self.outputs.push_back(Output::Send { conn, frame });
    }

    /// Whether a test control paused the visitor of this visitor socket.
    fn is_paused_conn(&self, conn: ConnId) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            c.role == Role::Visitor
                && matches!(&c.state, ConnState::Attached(key) if self.controls.is_paused(key))
        })
    }

    fn send_to_agents(&mut self, agents: &[ConnId], frame: &ServerFrame) {
        for &agent in agents {
            self.send(agent, frame.clone());
        }
    }

    // ---------------------------------------------------------------- connections

    /// Registers a new socket on the `role` endpoint and returns its id. The socket must send
    /// `connect` within the idle timeout.
    pub fn open(&mut self, now: Instant, role: Role) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                role,
                state: ConnState::AwaitingConnect,
                last_rx: now,
            },
        );
        match role {
            Role::Agent => self.stats.agent_sockets += 1,
            Role::Visitor => self.stats.visitor_sockets += 1,
        }
        self.stats.connections_total += 1;
        self.timers
            .set(TimerKey::Idle(id), now + self.settings.idle_timeout);
        id
    }

    /// Decodes a text frame (with the configured size limit) and handles it; a frame that does
    /// not decode gets the error frame and the socket is closed.
    pub fn handle_text(&mut self, now: Instant, conn: ConnId, text: &str) {
        match ClientFrame::decode(text, self.settings.max_frame_bytes) {
            Ok(frame) => self.handle_frame(now, conn, frame),
            Err(err) => self.handle_malformed(now, conn, &err),
        }
    }

    /// A frame that did not decode: the error frame, then close.
    pub fn handle_malformed(&mut self, now: Instant, conn: ConnId, err: &DecodeError) {
        let reason = match err {
            DecodeError::TooLarge { .. } => CloseCause::TooLarge,
            _ => CloseCause::ProtocolError,
        };
        self.protocol_error(now, conn, badframe(err.to_string()), reason);
    }

    fn protocol_error(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: ServerFrame,
        reason: CloseCause,
    ) {
        if !self.is_open(conn) {
            return;
        }
        self.stats.malformed_frames += 1;
        self.send(conn, frame);
        self.close(now, conn, reason);
    }

    fn is_open(&self, conn: ConnId) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| !matches!(c.state, ConnState::Closing))
    }

    /// Detaches the connection at once and asks the driver to close it.
    fn close(&mut self, now: Instant, conn: ConnId, reason: CloseCause) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let state = std::mem::replace(&mut c.state, ConnState::Closing);
        let role = c.role;
        if let ConnState::Closing = state {
            return;
        }
        // A silenced socket is not even sent a close frame.
        let reason = if self.controls.is_silenced(conn) {
            CloseCause::Dropped
        } else {
            reason
        };
        self.outputs.push_back(Output::Close { conn, reason });
        if let ConnState::Attached(key) = state {
            self.detach(now, conn, role, key);
        }
    }

    /// The transport closed (either side closed, or the driver dropped the socket).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        shrink(&mut self.conns);
        self.timers.cancel(&TimerKey::Idle(conn));
        self.timers.cancel(&TimerKey::TokenExpiry(conn));
        self.controls.forget_conn(conn);
        match c.role {
            Role::Agent => self.stats.agent_sockets = self.stats.agent_sockets.saturating_sub(1),
            Role::Visitor => {
                self.stats.visitor_sockets = self.stats.visitor_sockets.saturating_sub(1)
            }
        }
        if let ConnState::Attached(key) = c.state {
            self.detach(now, conn, c.role, key);
        }
    }

    /// Inbound activity that is not a frame (a WebSocket ping or pong): keeps the socket from
    /// the idle timeout.
    pub fn handle_activity(&mut self, now: Instant, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_rx = now;
        }
    }

    /// A WebSocket ping: inbound activity, logged for an agent socket while the test controls
    /// are on. The answer says whether the WebSocket layer may answer it with a pong.
    pub fn handle_ping(&mut self, now: Instant, conn: ConnId) -> PingAnswer {
        self.handle_activity(now, conn);
        if !self.controls.enabled() {
            return PingAnswer::Pong;
        }
        if let Some(Conn {
            role: Role::Agent,
            state: ConnState::Attached(key),
            ..
        }) = self.conns.get(&conn)
        {
            let key = key.clone();
            self.observe_agent(now, "ping", conn, &key, None);
        }
        if self.controls.is_silenced(conn) {
            PingAnswer::Withhold
        } else {
            PingAnswer::Pong
        }
    }

    /// Handles one decoded frame from a connection.
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: ClientFrame) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_rx = now;
        let role = c.role;
        let key = match &c.state {
            ConnState::Closing => return,
            ConnState::AwaitingConnect => None,
            ConnState::Attached(key) => Some(key.clone()),
        };
        self.stats.frames_received += 1;
        match (key, frame) {
            (None, ClientFrame::Connect(connect)) => self.on_connect(now, conn, role, connect),
            (None, other) => self.protocol_error(
                now,
                conn,
                badframe(format!(
                    "the first frame must be connect, not {}",
                    other.kind()
                )),
                CloseCause::ProtocolError,
            ),
            (Some(_), ClientFrame::Connect(_)) => self.protocol_error(
                now,
                conn,
                badframe("connect was already received on this socket".to_owned()),
                CloseCause::ProtocolError,
            ),
            (Some(key), ClientFrame::Keepalive) => {
                if role == Role::Agent {
                    self.observe_agent(now, "keepalive", conn, &key, None);
                }
            }
            (Some(key), frame) => match role {
                Role::Agent => self.on_agent_frame(now, key, frame),
                Role::Visitor => self.on_visitor_frame(now, conn, key, frame),
            },
        }
    }

    fn on_connect(&mut self, now: Instant, conn: ConnId, role: Role, connect: ConnectFrame) {
        if self.shutting_down {
            self.send(conn, ServerFrame::ServerClose);
            self.close(now, conn, CloseCause::Shutdown);
            return;
        }
        let group = connect.group;
        if !self.has_group(group) {
            self.stats.auth_failures += 1;
            self.send(conn, connfail("group"));
            self.close(now, conn, CloseCause::Unauthorized);
            return;
        }
        let now_unix = self.unix_secs(now);
        let (authorized, token_exp) = match role {
            Role::Agent => {
                let claims = connect.authorization.as_ref().and_then(|token| {
                    self.tokens
                        .verify_agent(token.expose_secret(), Some(group), now_unix)
                        .ok()
                });
                (claims.is_some(), claims.map(|c| c.exp))
            }
            Role::Visitor => {
                let ok = connect.guest_token.as_deref().is_none_or(|token| {
                    self.tokens
                        .verify_guest(token, group, &connect.visitor, now_unix)
                        .is_ok()
                });
                (ok, None)
            }
        };
        if !authorized {
            self.stats.auth_failures += 1;
            let detail = match role {
                Role::Agent => "authorization",
                Role::Visitor => "guesttoken",
            };
            self.send(conn, connfail(detail));
            self.close(now, conn, CloseCause::Unauthorized);
            return;
        }
        let key: VisitorKey = (group, connect.visitor);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.state = ConnState::Attached(key.clone());
        }
        self.send(
            conn,
            ServerFrame::Connected {
                keepalive: Some(self.settings.keepalive_secs),
                data: None,
            },
        );
        if let Some(at) = token_exp.and_then(|exp| self.instant_at_unix(now, exp)) {
            self.timers.set(TimerKey::TokenExpiry(conn), at);
        }
        match role {
            Role::Agent => {
                self.observe_agent(now, "open", conn, &key, token_exp);
                self.attach_agent(conn, key)
            }
            Role::Visitor => self.attach_visitor(now, conn, key),
        }
    }

    /// The instant at which the Unix time reaches `unix` (`now` if it already has), or `None`
    /// when it is too far away to represent.
    fn instant_at_unix(&self, now: Instant, unix: u64) -> Option<Instant> {
        let remaining = (unix as f64 - self.unix_time(now)).max(0.0);
        now.checked_add(Duration::try_from_secs_f64(remaining).ok()?)
    }

    /// An agent socket's token has expired: the same error as a refused token, then close.
    fn on_token_expiry(&mut self, now: Instant, conn: ConnId) {
        let attached = self
            .conns
            .get(&conn)
            .is_some_and(|c| matches!(c.state, ConnState::Attached(_)));
        if !attached {
            return;
        }
        self.stats.tokens_expired += 1;
        self.send(conn, connfail("authorization"));
        self.close(now, conn, CloseCause::Unauthorized);
    }

    fn attach_agent(&mut self, conn: ConnId, key: VisitorKey) {
        let v = self.visitors.entry(key).or_default();
        v.agents.push(conn);
        let (present, has_socket) = (v.present, !v.sockets.is_empty());
        if present {
            if has_socket {
                self.send(conn, ServerFrame::VisitorSock { connected: true });
            }
            self.send(conn, ServerFrame::VisitorConn { connected: true });
        }
    }

    fn attach_visitor(&mut self, now: Instant, conn: ConnId, key: VisitorKey) {
        let unix = self.unix_time(now);
        self.timers.cancel(&TimerKey::Absent(key.clone()));
        self.timers.cancel(&TimerKey::Hold(key.clone()));
        let v = self.visitors.entry(key).or_default();
        let blurred = v.sockets.last().copied();
        v.sockets.push(conn);
        let first_socket = blurred.is_none();
        let became_present = !v.present;
        let mut released = 0;
        if became_present {
            v.present = true;
            v.since_unix = unix;
            released = v.reset_state();
        }
        v.updated_unix = unix;
        let agents = v.agents.clone();
        let held: Vec<Held> = v.held.drain(..).collect();
        self.presence_bytes = self.presence_bytes.saturating_sub(released);
        if became_present {
            self.stats.visitors_present += 1;
        }
        if let Some(older) = blurred {
            self.stats.blurs += 1;
            self.send(older, ServerFrame::Blur);
        }
        if first_socket {
            self.send_to_agents(&agents, &ServerFrame::VisitorSock { connected: true });
        }
        if became_present {
            self.send_to_agents(&agents, &ServerFrame::VisitorConn { connected: true });
        }
        for h in held {
            if h.deadline > now {
                self.stats.signals_delivered += 1;
                self.stats.held_delivered += 1;
                self.send(conn, h.frame);
            } else {
                self.stats.signals_dropped += 1;
            }
        }
    }

    fn detach(&mut self, now: Instant, conn: ConnId, role: Role, key: VisitorKey) {
        let Some(v) = self.visitors.get_mut(&key) else {
            return;
        };
        match role {
            Role::Agent => {
                v.agents.retain(|c| *c != conn);
                self.observe_agent(now, "close", conn, &key, None);
            }
            Role::Visitor => {
                let before = v.sockets.len();
                v.sockets.retain(|c| *c != conn);
                if before > 0 && v.sockets.is_empty() {
                    let agents = v.agents.clone();
                    self.send_to_agents(&agents, &ServerFrame::VisitorSock { connected: false });
                    self.timers.set(
                        TimerKey::Absent(key.clone()),
                        now + self.settings.presence_window,
                    );
                }
            }
        }
        self.collect(&key);
    }

    /// Forgets a visitor record nobody needs any more.
    fn collect(&mut self, key: &VisitorKey) {
        let unused = self.visitors.get(key).is_some_and(|v| {
            v.sockets.is_empty() && v.agents.is_empty() && !v.present && v.held.is_empty()
        });
        if unused {
            if let Some(v) = self.visitors.remove(key) {
                self.presence_bytes = self.presence_bytes.saturating_sub(v.presence_bytes);
            }
            shrink(&mut self.visitors);
            self.timers.cancel(&TimerKey::Absent(key.clone()));
            self.timers.cancel(&TimerKey::Hold(key.clone()));
        }
    }

    fn on_idle_timer(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if matches!(c.state, ConnState::Closing) {
            return;
        }
        let due = c.last_rx + self.settings.idle_timeout;
        if due > now {
            self.timers.set(TimerKey::Idle(conn), due);
            return;
        }
        self.stats.idle_timeouts += 1;
        self.close(now, conn, CloseCause::IdleTimeout);
    }

    fn on_absent_timer(&mut self, key: VisitorKey) {
        let Some(v) = self.visitors.get_mut(&key) else {
            return;
        };
        if !v.present || !v.sockets.is_empty() {
            return;
        }
        v.present = false;
        let released = v.reset_state();
        let agents = v.agents.clone();
        self.presence_bytes = self.presence_bytes.saturating_sub(released);
        self.stats.visitors_present = self.stats.visitors_present.saturating_sub(1);
        self.send_to_agents(&agents, &ServerFrame::VisitorConn { connected: false });
        self.collect(&key);
    }

    fn expire_held(&mut self, now: Instant, key: &VisitorKey) {
        let Some(v) = self.visitors.get_mut(key) else {
            return;
        };
        let mut dropped = 0;
        while v.held.front().is_some_and(|h| h.deadline <= now) {
            v.held.pop_front();
            dropped += 1;
        }
        let next = v.held.front().map(|h| h.deadline);
        self.stats.signals_dropped += dropped;
        match next {
            Some(at) => self.timers.set(TimerKey::Hold(key.clone()), at),
            None => self.collect(key),
        }
    }

    fn on_visitor_frame(
        &mut self,
        now: Instant,
        conn: ConnId,
        key: VisitorKey,
        frame: ClientFrame,
    ) {
        let unix = self.unix_time(now);
        let (max_bytes, max_keys) = (
            self.settings.max_presence_bytes,
            self.settings.max_presence_keys,
        );
        let Some(v) = self.visitors.get_mut(&key) else {
            return;
        };
        match &frame {
            ClientFrame::Presence(data) => {
                let (bytes, keys) = record::merged_size(&v.presence, v.presence_bytes, data);
                if bytes > max_bytes || keys > max_keys {
                    self.refuse_presence(conn, &key, bytes, keys);
                    return;
                }
                v.presence.merge(data);
                self.presence_bytes = self
                    .presence_bytes
                    .saturating_sub(v.presence_bytes)
                    .saturating_add(bytes);
                v.presence_bytes = bytes;
                v.updated_unix = unix;
            }
            ClientFrame::Visibility(visibility) => v.visibility = Some(*visibility),
            ClientFrame::Terms(status) => v.terms = Some(*status),
            ClientFrame::VisitorSessionStart(_) => v.in_session = true,
            ClientFrame::VisitorSessionEnd(_) => v.in_session = false,
            _ => {}
        }
        let agents = v.agents.clone();
        if let Some(forwarded) = frame.into_forwarded() {
            self.stats.frames_forwarded += agents.len() as u64;
            if let Some((last, rest)) = agents.split_last() {
                self.send_to_agents(rest, &forwarded);
                self.send(*last, forwarded);
            }
        }
    }

    /// A `presence` frame that would make the record exceed a bound: nothing of it is kept or
    /// forwarded; the visitor is told, the refusal counted and logged.
    fn refuse_presence(&mut self, conn: ConnId, key: &VisitorKey, bytes: usize, keys: usize) {
        let (max_bytes, max_keys) = (
            self.settings.max_presence_bytes,
            self.settings.max_presence_keys,
        );
        self.stats.presence_refused += 1;
        tracing::warn!(
            group = %key.0,
            visitor = %key.1,
            %conn,
            bytes,
            keys,
            max_bytes,
            max_keys,
            "presence frame refused: the visitor's presence record would exceed its bounds"
        );
        self.send(
            conn,
            presence_too_large(format!(
                "the presence record would hold {bytes} bytes in {keys} keys; the limits are \
                 {max_bytes} bytes and {max_keys} keys; nothing of this frame was kept"
            )),
        );
    }

    fn on_agent_frame(&mut self, now: Instant, key: VisitorKey, frame: ClientFrame) {
        // The socket route of load-balanced mode: no acknowledgement is sent.
        let signal = match frame {
            ClientFrame::Signal(data) => ServerFrame::Signal(data),
            ClientFrame::Invoke(request) => ServerFrame::Invoke(request),
            _ => return,
        };
        let _ = self.route_signal(now, &key, signal);
    }

    // ---------------------------------------------------------------- REST operations

    /// Whether the visitor is present (`findvisitor`).
    pub fn is_present(&self, group: GroupId, visitor: &VisitorId) -> bool {
        self.visitors
            .get(&(group, visitor.clone()))
            .is_some_and(|v| v.present)
    }

    /// The visitor's state, or `None` when it is not present (`lookupvisitor`, `query`).
    pub fn lookup(&self, group: GroupId, visitor: &VisitorId) -> Option<VisitorSnapshot> {
        let v = self.visitors.get(&(group, visitor.clone()))?;
        if !v.present {
            return None;
        }
        Some(VisitorSnapshot {
            group,
            visitor: visitor.clone(),
            sockets: v.sockets.len(),
            since_unix: v.since_unix,
            updated_unix: v.updated_unix,
            presence: v.presence.clone(),
            visibility: v.visibility,
            terms: v.terms,
            in_session: v.in_session,
        })
    }

    /// Sends `frame` (a `signal`, `invoke` or custom frame) to the visitor (`signalvisitor`).
    pub fn signal(
        &mut self,
        now: Instant,
        group: GroupId,
        visitor: &VisitorId,
        frame: ServerFrame,
    ) -> Result<Delivery, SignalRefused> {
        self.route_signal(now, &(group, visitor.clone()), frame)
    }

    fn route_signal(
        &mut self,
        now: Instant,
        key: &VisitorKey,
        frame: ServerFrame,
    ) -> Result<Delivery, SignalRefused> {
        let len = frame.encode().len();
        if len > self.settings.max_frame_bytes {
            return Err(SignalRefused::TooLarge {
                len,
                limit: self.settings.max_frame_bytes,
            });
        }
        let limit = self.settings.held_signals_per_visitor;
        let hold_until = now + self.settings.hold_window;
        let Some(v) = self.visitors.get_mut(key).filter(|v| v.present) else {
            self.stats.signals_not_present += 1;
            return Err(SignalRefused::NotPresent);
        };
        if let Some(&newest) = v.sockets.last() {
            self.stats.signals_delivered += 1;
            self.send(newest, frame);
            return Ok(Delivery::Delivered);
        }
        if self.controls.breakage().no_signal_hold {
            self.stats.signals_not_present += 1;
            return Err(SignalRefused::NotPresent);
        }
        if v.held.len() >= limit {
            self.stats.signals_queue_full += 1;
            return Err(SignalRefused::HoldQueueFull);
        }
        v.held.push_back(Held {
            deadline: hold_until,
            frame,
        });
        if v.held.len() == 1 {
            self.timers.set(TimerKey::Hold(key.clone()), hold_until);
        }
        self.stats.signals_held += 1;
        Ok(Delivery::Held)
    }

    /// Hands out a unique visitor id (`uniquevisitor`). A request naming an existing `UNQ-`
    /// visitor id keeps it; anything else (`undefined`, nothing, another id) gets a new one.
    pub fn unique_visitor(
        &mut self,
        now: Instant,
        group: GroupId,
        requested: Option<&VisitorId>,
    ) -> UniqueAssignment {
        let unique = match requested.and_then(VisitorId::unique_id) {
            Some(unique) => unique,
            None => self.fresh_unique_id(group),
        };
        let visitor = VisitorId::from_unique(&unique);
        let timeout_secs = self.settings.unique_timeout_secs;
        let guest_token = self
            .tokens
            .issue_guest(group, &visitor, self.unix_secs(now), timeout_secs)
            .unwrap_or_default();
        UniqueAssignment {
            unique,
            visitor,
            guest_token,
            timeout_secs,
        }
    }

    fn fresh_unique_id(&mut self, group: GroupId) -> UniqueId {
        let mut digits = String::new();
        for _ in 0..16 {
            let n = 100_000_000 + self.rng.next_u64() % 900_000_000;
            digits = n.to_string();
            let in_use = UniqueId::new(digits.clone()).is_ok_and(|u| {
                self.visitors
                    .contains_key(&(group, VisitorId::from_unique(&u)))
            });
            if !in_use {
                break;
            }
        }
        match UniqueId::new(digits) {
            Ok(unique) => unique,
            // Nine digits always form a valid unique id.
            Err(_) => unreachable!("nine digits are a valid unique id"),
        }
    }

    // ---------------------------------------------------------------- shutdown

    /// Sends `serverclose` to every socket and closes it; later `connect` frames get the same.
    pub fn shutdown(&mut self, now: Instant) {
        self.shutting_down = true;
        // Agents first: each is sent `serverclose` and detached before any visitor socket
        // closes, so no agent sees a visitor state change that the stop itself causes.
        let mut open: Vec<(bool, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| !matches!(c.state, ConnState::Closing))
            .map(|(id, c)| (c.role != Role::Agent, *id))
            .collect();
        open.sort();
        for (_, conn) in open {
            self.send(conn, ServerFrame::ServerClose);
            self.close(now, conn, CloseCause::Shutdown);
        }
    }

    /// Open connections (including those being closed).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
}

#[cfg(test)]
mod tests;
