//! The simulation itself: agents, visitors and the service wired through the in-memory network
//! in virtual time, playing a [`Scenario`].
//!
//! Time jumps from one deadline to the next: the earliest of the network's deliveries, the
//! scenario's acts and every core's `poll_timeout`. After every input a core's outputs are
//! drained and carried out: a socket to open, a frame or ping to send, a socket to close, an
//! HTTP request, an event (given to the [`Checker`]). Nothing reads a clock but the one
//! `Instant` the run is anchored to (only differences from it are used), there are no
//! threads and no sockets: a run is a pure function of its seed. It is not the checker (see
//! [`crate::check`]) and does not choose what happens (see [`crate::scenario`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{AgentConfig, AgentProtocol};
use glance_presence_protocol::io::{CloseReason, Output, SansIo, SocketId, TransportInput};
use glance_presence_protocol::link::AfterServerClose;
use glance_presence_protocol::rest::HttpRequest;
use glance_presence_protocol::visitor::{VisitorConfig, VisitorProtocol};
use glance_presence_protocol::{GroupId, PartnerUserId, PresenceData, ServerFrame, Visibility};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::core::Output as ServiceOutput;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use crate::check::{Checker, Invariant};
use crate::net::{Dir, Link, Queue};
use crate::scenario::{Act, AgentAuth, Scenario, GRACE, MAX_ONE_WAY};
use crate::service::{Node, Service, API_KEY, GROUP, SECRET, SERVER};

/// A message on its way to the service.
#[derive(Debug)]
enum Up {
    Open {
        socket: SocketId,
        path: String,
    },
    Frame {
        socket: SocketId,
        text: String,
    },
    Ping {
        socket: SocketId,
    },
    Close {
        socket: SocketId,
    },
    Http {
        id: glance_presence_protocol::io::HttpRequestId,
        request: HttpRequest,
    },
}

/// A client's output other than an event.
#[derive(Debug)]
enum Io {
    Open {
        socket: SocketId,
        url: String,
    },
    Frame {
        socket: SocketId,
        text: String,
    },
    Ping {
        socket: SocketId,
    },
    Close {
        socket: SocketId,
    },
    Http {
        id: glance_presence_protocol::io::HttpRequestId,
        request: HttpRequest,
    },
}

impl Io {
    fn from_output<E>(output: Output<E>) -> Option<Io> {
        Some(match output {
            Output::OpenSocket { socket, url, .. } => Io::Open { socket, url },
            Output::SendFrame { socket, text } => Io::Frame { socket, text },
            Output::SendPing { socket } => Io::Ping { socket },
            Output::CloseSocket { socket } => Io::Close { socket },
            Output::Http { id, request } => Io::Http { id, request },
            Output::Event(_) => return None,
        })
    }
}

/// Something that happens at a virtual time.
#[derive(Debug)]
enum Ev {
    Up(Node, Up),
    Down(Node, TransportInput),
    Act(Act),
    ServiceUp,
    ServiceDown,
    FaultsEnd,
    CheckConverged,
    CheckLeft(usize),
}

/// A timer owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Client(Node),
    Service,
}

/// What one run gives back.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario played.
    pub scenario: Scenario,
    /// The broken promises (empty when every invariant held).
    pub violations: Vec<crate::check::Violation>,
    /// Whether invariant 7's after-restart count was checked in this run.
    pub storm_checked: bool,
    /// Socket opens at the service in the busiest second after the last restart.
    pub peak_opens_per_second: u32,
    /// Events processed.
    pub steps: u64,
    /// The transcript, when asked for.
    pub transcript: Option<String>,
}

/// A run in progress.
pub struct World {
    t0: Instant,
    now: Instant,
    rng: ChaCha8Rng,
    queue: Queue<Ev>,
    timers: BinaryHeap<Reverse<(Instant, Owner)>>,
    links: HashMap<Node, Link>,
    agents: Vec<AgentProtocol>,
    watches: Vec<usize>,
    visitors: Vec<VisitorProtocol>,
    service: Service,
    checker: Checker,
    /// Sockets the client closed, or a fault cut: what arrives for them is lost.
    dead: HashSet<(Node, SocketId)>,
    /// Each client's open sockets.
    open: HashMap<Node, SocketId>,
    /// Visitor connections attached at the service (to detach the truth on close).
    attached: HashMap<glance_presence_service::core::ConnId, usize>,
    signal_seq: Vec<u64>,
    faulty: bool,
    scenario: Scenario,
    log: Option<String>,
    steps: u64,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.scenario.seed)
            .field("now", &(self.now - self.t0))
            .finish_non_exhaustive()
    }
}

fn stamp(d: Duration) -> String {
    format!("{:>9.3}s", d.as_secs_f64())
}

impl World {
    /// A run of `scenario`; with `transcript`, every input and output is logged.
    pub fn new(scenario: Scenario, transcript: bool) -> Self {
        let t0 = Instant::now();
        let seed = scenario.seed;
        let group = GroupId::new(GROUP).unwrap_or_else(|_| unreachable!("a valid group"));
        let keys = TokenKeys::new(SECRET);
        let visitors: Vec<VisitorProtocol> = (0..scenario.leavers.len())
            .map(|v| {
                let config = VisitorConfig::builder()
                    .group_id(GROUP)
                    .visitor_id(format!("v{v}"))
                    .presence_server(SERVER)
                    .reconnect_policy(scenario.policy)
                    .after_server_close(AfterServerClose::Reconnect)
                    .rng_seed(seed.wrapping_mul(31).wrapping_add(v as u64))
                    .build();
                match config {
                    Ok(config) => VisitorProtocol::new(config, t0),
                    Err(err) => unreachable!("the simulated visitor's configuration: {err}"),
                }
            })
            .collect();
        let unix = Duration::from_secs(crate::service::EPOCH_UNIX);
        let agents: Vec<AgentProtocol> = scenario
            .agents
            .iter()
            .enumerate()
            .map(|(a, plan)| {
                let builder = AgentConfig::builder()
                    .group_id(GROUP)
                    .visitor_id(format!("v{}", plan.visitor))
                    .presence_server(SERVER)
                    .web_server(SERVER)
                    .reconnect_policy(scenario.policy)
                    .after_server_close(AfterServerClose::Reconnect)
                    .rng_seed(seed.wrapping_mul(17).wrapping_add(1000 + a as u64));
                let user = format!("agent{a}");
                let builder = match plan.auth {
                    AgentAuth::Credentials { minutes } => builder
                        .credentials(user, API_KEY)
                        .authorize_duration_minutes(minutes),
                    AgentAuth::Token { lifetime } => {
                        let user = PartnerUserId::new(user)
                            .unwrap_or_else(|_| unreachable!("a valid user"));
                        let token = keys
                            .issue_agent(group, &user, unix.as_secs(), lifetime.as_secs())
                            .map(|(t, _)| t.expose_secret().to_owned())
                            .unwrap_or_default();
                        builder.token(token)
                    }
                };
                match builder.build() {
                    Ok(config) => AgentProtocol::new(config, t0, unix),
                    Err(err) => unreachable!("the simulated agent's configuration: {err}"),
                }
            })
            .collect();
        let mut links = HashMap::new();
        for (i, (latency, jitter)) in scenario.links.iter().enumerate() {
            let node = if i < visitors.len() {
                Node::Visitor(i)
            } else {
                Node::Agent(i - visitors.len())
            };
            links.insert(node, Link::new(*latency, *jitter, t0));
        }
        let mut queue = Queue::default();
        for (at, act) in &scenario.acts {
            queue.push(t0 + *at, Ev::Act(act.clone()));
        }
        queue.push(t0 + scenario.faults_end, Ev::FaultsEnd);
        queue.push(t0 + scenario.converged_at, Ev::CheckConverged);
        queue.push(t0 + scenario.end, Ev::CheckConverged);
        for (v, leaves) in scenario.leavers.iter().enumerate() {
            if *leaves {
                let at = scenario.converged_at
                    + Duration::from_millis(1)
                    + GRACE
                    + MAX_ONE_WAY * 2
                    + Duration::from_millis(1);
                queue.push(t0 + at, Ev::CheckLeft(v));
            }
        }
        let checker = Checker::new(t0, visitors.len(), agents.len(), scenario.policy);
        let watches = scenario.agents.iter().map(|p| p.visitor).collect();
        World {
            t0,
            now: t0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5EED),
            queue,
            timers: BinaryHeap::new(),
            links,
            signal_seq: vec![0; agents.len()],
            agents,
            watches,
            visitors,
            service: Service::new(seed, t0),
            checker,
            dead: HashSet::new(),
            open: HashMap::new(),
            attached: HashMap::new(),
            faulty: true,
            scenario,
            log: transcript.then(String::new),
            steps: 0,
        }
    }

    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            let _ = writeln!(log, "{} {}", stamp(self.now - self.t0), line());
        }
    }

    /// Plays the scenario to its end and checks the end-of-run promises.
    pub fn run(mut self) -> Outcome {
        for v in 0..self.visitors.len() {
            let _ = self.visitors[v].connect(self.now);
            self.drain(Node::Visitor(v));
        }
        for a in 0..self.agents.len() {
            let _ = self.agents[a].connect(self.now);
            self.drain(Node::Agent(a));
        }
        self.arm(Owner::Service);
        let end = self.t0 + self.scenario.end;
        loop {
            let next_event = self.queue.peek_time();
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let next = match (next_event, next_timer) {
                (Some(e), Some(t)) => e.min(t),
                (Some(e), None) => e,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if next > end + Duration::from_millis(1) {
                break;
            }
            self.now = self.now.max(next);
            self.steps += 1;
            if next_event == Some(next) {
                if let Some((_, ev)) = self.queue.pop() {
                    self.handle(ev);
                }
            } else if let Some(Reverse((_, owner))) = self.timers.pop() {
                self.fire(owner);
            }
        }
        self.now = end;
        let storm = self.storm_checkable();
        self.checker.finish(self.now, storm);
        Outcome {
            storm_checked: self.checker.storm_checked,
            peak_opens_per_second: self.checker.peak_opens_per_second(),
            violations: self.checker.violations().to_vec(),
            steps: self.steps,
            transcript: self.log.take(),
            scenario: self.scenario,
        }
    }

    /// Whether the last restart had no other fault after it.
    fn storm_checkable(&self) -> bool {
        if self.scenario.http_fail > 0.0 || self.scenario.http_503 > 0.0 {
            return false;
        }
        if self.scenario.http_late > 0.0 {
            return false;
        }
        let last_restart = self
            .scenario
            .acts
            .iter()
            .rev()
            .find(|(_, a)| matches!(a, Act::Crash(_) | Act::Restart(_)))
            .map(|(t, _)| *t);
        let Some(restart) = last_restart else {
            return false;
        };
        !self.scenario.acts.iter().any(|(t, a)| {
            *t > restart && matches!(a, Act::DropAgentSocket(_) | Act::DropVisitorSocket(_))
        })
    }

    // ------------------------------------------------------------------ timers

    fn arm(&mut self, owner: Owner) {
        let next = match owner {
            Owner::Client(Node::Agent(a)) => self.agents[a].poll_timeout(),
            Owner::Client(Node::Visitor(v)) => self.visitors[v].poll_timeout(),
            Owner::Service => self.service.core().and_then(|c| c.poll_timeout()),
        };
        if let Some(at) = next {
            self.timers.push(Reverse((at.max(self.now), owner)));
        }
    }

    fn fire(&mut self, owner: Owner) {
        let now = self.now;
        match owner {
            Owner::Client(node) => {
                let due = match node {
                    Node::Agent(a) => self.agents[a].poll_timeout(),
                    Node::Visitor(v) => self.visitors[v].poll_timeout(),
                };
                if due.is_some_and(|at| at <= now) {
                    match node {
                        Node::Agent(a) => self.agents[a].handle_timeout(now),
                        Node::Visitor(v) => self.visitors[v].handle_timeout(now),
                    }
                    self.drain(node);
                } else {
                    self.arm(owner);
                }
            }
            Owner::Service => {
                let due = self.service.core().and_then(|c| c.poll_timeout());
                if due.is_some_and(|at| at <= now) {
                    if let Some(core) = self.service.core_mut() {
                        core.handle_timeout(now);
                    }
                    self.drain_service();
                } else {
                    self.arm(owner);
                }
            }
        }
    }

    // ------------------------------------------------------------------ clients

    fn send_up(&mut self, node: Node, up: Up) {
        let at = match self.links.get_mut(&node) {
            Some(link) => link.arrival(self.now, Dir::Up, &mut self.rng),
            None => self.now,
        };
        self.queue.push(at, Ev::Up(node, up));
    }

    fn send_down(&mut self, node: Node, input: TransportInput) {
        self.send_down_after(node, input, Duration::ZERO);
    }

    fn send_down_after(&mut self, node: Node, input: TransportInput, extra: Duration) {
        let at = match self.links.get_mut(&node) {
            Some(link) if extra.is_zero() => link.arrival(self.now, Dir::Down, &mut self.rng),
            Some(link) => link.arrival_unordered(self.now + extra, &mut self.rng),
            None => self.now,
        };
        self.queue.push(at, Ev::Down(node, input));
    }

    /// Carries out a client's outputs.
    fn drain(&mut self, node: Node) {
        loop {
            let io = match node {
                Node::Agent(a) => match self.agents[a].poll_output() {
                    None => break,
                    Some(Output::Event(event)) => {
                        let v = self.watches[a];
                        self.checker.agent_event(self.now, a, v, &event);
                        if self.log.is_some() {
                            let line = serde_json::to_string(&event).unwrap_or_default();
                            self.note(|| format!("agent a{a} event {line}"));
                        }
                        continue;
                    }
                    Some(other) => Io::from_output(other),
                },
                Node::Visitor(v) => match self.visitors[v].poll_output() {
                    None => break,
                    Some(Output::Event(event)) => {
                        self.checker.visitor_event(self.now, v, &event);
                        if self.log.is_some() {
                            let line = serde_json::to_string(&event).unwrap_or_default();
                            self.note(|| format!("visitor v{v} event {line}"));
                        }
                        continue;
                    }
                    Some(other) => Io::from_output(other),
                },
            };
            self.checker.output(self.now, node, "an output");
            if let Some(io) = io {
                self.carry_out(node, io);
            }
        }
        self.arm(Owner::Client(node));
    }

    fn carry_out(&mut self, node: Node, io: Io) {
        match io {
            Io::Open { socket, url } => {
                let path = url
                    .split_once("://")
                    .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
                    .unwrap_or_default();
                self.note(|| format!("{node:?} opens {url}"));
                self.send_up(node, Up::Open { socket, path });
            }
            Io::Frame { socket, text } => {
                self.note(|| format!("{node:?} -> {}", redact(&text)));
                self.send_up(node, Up::Frame { socket, text });
            }
            Io::Ping { socket } => self.send_up(node, Up::Ping { socket }),
            Io::Close { socket } => {
                self.note(|| format!("{node:?} closes its socket"));
                self.dead.insert((node, socket));
                if self.open.get(&node) == Some(&socket) {
                    self.open.remove(&node);
                }
                self.send_up(node, Up::Close { socket });
            }
            Io::Http { id, request } => {
                self.note(|| format!("{node:?} {}", request.request_line()));
                self.send_up(node, Up::Http { id, request });
            }
        }
    }

    fn input(&mut self, node: Node, input: TransportInput) {
        match node {
            Node::Agent(a) => self.agents[a].handle_input(self.now, input),
            Node::Visitor(v) => self.visitors[v].handle_input(self.now, input),
        }
        self.drain(node);
    }

    // ------------------------------------------------------------------ events

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Up(node, up) => self.at_service(node, up),
            Ev::Down(node, input) => self.at_client(node, input),
            Ev::Act(act) => self.act(act),
            Ev::ServiceUp => {
                self.service.start(self.now);
                self.checker.restarted(self.now);
                self.note(|| "the service is up again (its state is new)".to_owned());
                self.arm(Owner::Service);
            }
            Ev::ServiceDown => self.crash(),
            Ev::FaultsEnd => self.faulty = false,
            Ev::CheckConverged => self.check_converged(),
            Ev::CheckLeft(v) => self.check_left(v),
        }
    }

    fn at_client(&mut self, node: Node, input: TransportInput) {
        let socket = match &input {
            TransportInput::Frame { socket, .. }
            | TransportInput::Pong { socket }
            | TransportInput::SocketOpened { socket } => Some(*socket),
            _ => None,
        };
        if let Some(socket) = socket {
            if self.dead.contains(&(node, socket)) {
                if let (Node::Visitor(v), TransportInput::Frame { text, .. }) = (node, &input) {
                    if let Some(key) = signal_key(text) {
                        self.checker.signal_lost(v, key);
                    }
                }
                return;
            }
        }
        match &input {
            TransportInput::SocketOpened { socket } => {
                self.open.insert(node, *socket);
            }
            TransportInput::SocketClosed { socket, reason } => {
                self.dead.insert((node, *socket));
                if self.open.get(&node) == Some(socket) {
                    self.open.remove(&node);
                }
                self.note(|| format!("{node:?} socket closed: {reason}"));
            }
            TransportInput::Frame { text, .. } => {
                self.note(|| format!("{node:?} <- {text}"));
            }
            TransportInput::HttpResponse { status, body, .. } => {
                let body = redact(&String::from_utf8_lossy(body));
                self.note(|| format!("{node:?} <- HTTP {status} {body}"));
            }
            TransportInput::HttpFailed { detail, .. } => {
                self.note(|| format!("{node:?} <- HTTP failed: {detail}"));
            }
            _ => {}
        }
        self.input(node, input);
    }

    fn at_service(&mut self, node: Node, up: Up) {
        let now = self.now;
        match up {
            Up::Open { socket, path } => {
                if !self.service.is_up() {
                    let reason = CloseReason::TransportError {
                        detail: "connection refused".to_owned(),
                    };
                    self.send_down(node, TransportInput::SocketClosed { socket, reason });
                    return;
                }
                self.checker.socket_opened(now);
                match self.service.open(now, node, socket, &path) {
                    Ok(_) => self.send_down(node, TransportInput::SocketOpened { socket }),
                    Err(status) => {
                        let reason = CloseReason::HandshakeRefused { status };
                        self.send_down(node, TransportInput::SocketClosed { socket, reason });
                    }
                }
                self.arm(Owner::Service);
            }
            Up::Frame { socket, text } => {
                let Some(conn) = self.service.conn_of(node, socket) else {
                    return;
                };
                if let Some(core) = self.service.core_mut() {
                    core.handle_text(now, conn, &text);
                }
                self.drain_service();
            }
            Up::Ping { socket } => {
                let Some(conn) = self.service.conn_of(node, socket) else {
                    return;
                };
                if let Some(core) = self.service.core_mut() {
                    core.handle_activity(now, conn);
                }
                self.send_down(node, TransportInput::Pong { socket });
            }
            Up::Close { socket } => {
                let Some(conn) = self.service.conn_of(node, socket) else {
                    return;
                };
                self.service_closed(conn);
            }
            Up::Http { id, request } => self.http(node, id, request),
        }
    }

    fn http(
        &mut self,
        node: Node,
        id: glance_presence_protocol::io::HttpRequestId,
        request: HttpRequest,
    ) {
        let roll = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let s = &self.scenario;
        let (fail, unavailable, late) = if self.faulty {
            (
                s.http_fail,
                s.http_fail + s.http_503,
                s.http_fail + s.http_503 + s.http_late,
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        if roll < fail || !self.service.is_up() {
            let detail = "connection reset".to_owned();
            self.send_down(node, TransportInput::HttpFailed { id, detail });
            return;
        }
        if roll < unavailable {
            let body = br#"{"err":"serviceunavailable","msg":"injected"}"#.to_vec();
            self.send_down(
                node,
                TransportInput::HttpResponse {
                    id,
                    status: 503,
                    body,
                },
            );
            return;
        }
        let Some(answer) = self.service.http(self.now, &request) else {
            let detail = "connection refused".to_owned();
            self.send_down(node, TransportInput::HttpFailed { id, detail });
            return;
        };
        if answer.status == 200 && answer.body.contains("\"held\":true") {
            if let (Node::Agent(_), Some(body)) = (node, request.body.as_deref()) {
                if let Some(key) = signal_key(body) {
                    let v = visitor_of(&request.url);
                    let incarnation = self.service.incarnation;
                    self.checker.held(self.now, v, key, incarnation);
                }
            }
        }
        self.drain_service();
        let extra = if roll < late {
            Duration::from_secs(12)
        } else {
            Duration::ZERO
        };
        let input = TransportInput::HttpResponse {
            id,
            status: answer.status,
            body: answer.body.into_bytes(),
        };
        self.send_down_after(node, input, extra);
    }

    /// The service's side of a connection ends.
    fn service_closed(&mut self, conn: glance_presence_service::core::ConnId) {
        if let Some(core) = self.service.core_mut() {
            core.handle_closed(self.now, conn);
        }
        self.service.forget(conn);
        if let Some(v) = self.attached.remove(&conn) {
            self.checker.detached(self.now, v);
        }
        self.drain_service();
    }

    fn drain_service(&mut self) {
        let mut attached_now = Vec::new();
        loop {
            let Some(output) = self.service.core_mut().and_then(|c| c.poll_output()) else {
                break;
            };
            match output {
                ServiceOutput::Send { conn, frame } => {
                    let Some((node, socket)) = self.service.socket_of(conn) else {
                        continue;
                    };
                    if let (Node::Visitor(v), ServerFrame::Connected { .. }) = (node, &frame) {
                        self.attached.insert(conn, v);
                        self.checker.attached(self.now, v);
                        attached_now.push(v);
                    }
                    let text = frame.encode();
                    if let (Node::Visitor(v), ServerFrame::Signal(_)) = (node, &frame) {
                        if let Some(key) = signal_key(&text) {
                            self.checker.signal_sent(v, key, socket.get());
                        }
                    }
                    self.send_down(node, TransportInput::Frame { socket, text });
                }
                // Only the test controls send raw text; the simulation does not use them.
                ServiceOutput::SendText { conn, text } => {
                    let Some((node, socket)) = self.service.socket_of(conn) else {
                        continue;
                    };
                    self.send_down(node, TransportInput::Frame { socket, text });
                }
                ServiceOutput::Close { conn, reason } => {
                    let Some((node, socket)) = self.service.socket_of(conn) else {
                        continue;
                    };
                    let reason = CloseReason::ClosedByPeer {
                        code: Some(reason.code()),
                        reason: reason.text().to_owned(),
                    };
                    self.send_down(node, TransportInput::SocketClosed { socket, reason });
                    // The close handshake ends the connection on the service's side too.
                    if let Some(core) = self.service.core_mut() {
                        core.handle_closed(self.now, conn);
                    }
                    self.service.forget(conn);
                    if let Some(v) = self.attached.remove(&conn) {
                        self.checker.detached(self.now, v);
                    }
                }
            }
        }
        let window = self
            .service
            .core()
            .map_or(GRACE, |c| c.settings().hold_window);
        for v in attached_now {
            let incarnation = self.service.incarnation;
            self.checker.after_attach(self.now, v, incarnation, window);
        }
        self.arm(Owner::Service);
    }

    /// The service's process dies: every socket is reset, its state is gone.
    fn crash(&mut self) {
        if !self.service.is_up() {
            return;
        }
        self.note(|| "the service stops (its state is lost)".to_owned());
        let mut open: Vec<(Node, SocketId)> = Vec::new();
        let conns: Vec<_> = self.attached.keys().copied().collect();
        for conn in conns {
            if let Some(v) = self.attached.remove(&conn) {
                self.checker.detached(self.now, v);
            }
        }
        for (node, socket) in &self.open {
            open.push((*node, *socket));
        }
        open.sort();
        self.service.crash();
        self.checker.crashed();
        for (node, socket) in open {
            let reason = CloseReason::TransportError {
                detail: "connection reset".to_owned(),
            };
            self.send_down(node, TransportInput::SocketClosed { socket, reason });
        }
    }

    fn act(&mut self, act: Act) {
        let now = self.now;
        self.note(|| format!("act: {act:?}"));
        match act {
            Act::Navigate(v) => {
                let n = self.rng.next_u64() % 100;
                let _ = self.visitors[v].navigate(now, format!("https://shop.example/p{n}"));
                self.drain(Node::Visitor(v));
            }
            Act::Hide(v) => {
                let _ = self.visitors[v].visibility(now, Visibility::Hidden);
                self.drain(Node::Visitor(v));
            }
            Act::Show(v) => {
                let _ = self.visitors[v].visibility(now, Visibility::Visible);
                self.drain(Node::Visitor(v));
            }
            Act::Presence(v) => {
                let n = self.rng.next_u64() % 10;
                let data = PresenceData::from_map(match json!({"cart": n}) {
                    Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                });
                let _ = self.visitors[v].presence(now, data);
                self.drain(Node::Visitor(v));
            }
            Act::Leave(v) => {
                self.visitors[v].disconnect(now);
                self.drain(Node::Visitor(v));
            }
            Act::Signal(a) => {
                self.signal_seq[a] += 1;
                let data = json!({"a": a, "n": self.signal_seq[a]});
                if let Ok(id) = self.agents[a].signal(now, data) {
                    self.checker.issued(a, id);
                }
                self.drain(Node::Agent(a));
            }
            Act::Lookup(a) => {
                if let Ok(id) = self.agents[a].lookup(now) {
                    self.checker.issued(a, id);
                }
                self.drain(Node::Agent(a));
            }
            Act::Query(a) => {
                if let Ok(id) = self.agents[a].query(now) {
                    self.checker.issued(a, id);
                }
                self.drain(Node::Agent(a));
            }
            Act::DropVisitorSocket(v) => self.cut(Node::Visitor(v)),
            Act::DropAgentSocket(a) => self.cut(Node::Agent(a)),
            Act::Crash(down) => {
                self.crash();
                self.queue.push(now + down, Ev::ServiceUp);
            }
            Act::Restart(down) => {
                if let Some(core) = self.service.core_mut() {
                    core.shutdown(now);
                }
                self.drain_service();
                self.queue
                    .push(now + Duration::from_millis(100), Ev::ServiceDown);
                self.queue
                    .push(now + Duration::from_millis(100) + down, Ev::ServiceUp);
            }
        }
    }

    /// A fault cuts a client's socket: both ends see the connection go.
    fn cut(&mut self, node: Node) {
        let Some(socket) = self.open.remove(&node) else {
            return;
        };
        self.dead.insert((node, socket));
        if let Some(conn) = self.service.conn_of(node, socket) {
            self.service_closed(conn);
        }
        let reason = CloseReason::TransportError {
            detail: "connection reset".to_owned(),
        };
        self.send_down(node, TransportInput::SocketClosed { socket, reason });
    }

    fn truth(&self, v: usize) -> bool {
        let group = GroupId::new(GROUP).unwrap_or_else(|_| unreachable!("a valid group"));
        let id = format!("v{v}").parse().ok();
        match (self.service.core(), id) {
            (Some(core), Some(id)) => core.is_present(group, &id),
            _ => false,
        }
    }

    fn check_converged(&mut self) {
        use glance_presence_protocol::agent::VisitorPresence;
        for a in 0..self.agents.len() {
            if self.agents[a].is_stopped() {
                continue;
            }
            let v = self.watches[a];
            let want = if self.truth(v) {
                VisitorPresence::Present
            } else {
                VisitorPresence::Absent
            };
            let seen = self.agents[a].visitor_presence();
            if seen != want {
                let detail = format!(
                    "agent {a} sees visitor {v} as {seen:?}; the service holds {want:?} (agent link {:?})",
                    self.agents[a].connection_state()
                );
                self.checker.fail(Invariant::Convergence, self.now, detail);
            }
        }
    }

    fn check_left(&mut self, v: usize) {
        use glance_presence_protocol::agent::VisitorPresence;
        for a in 0..self.agents.len() {
            if self.watches[a] != v || self.agents[a].is_stopped() {
                continue;
            }
            // An agent whose link was not up throughout learns the leave from the service's
            // answers after it reconnects: the end-of-run convergence check holds it to that.
            let left_at = self.t0 + self.scenario.converged_at + Duration::from_millis(1);
            if !self.checker.up_throughout(Node::Agent(a), left_at) {
                continue;
            }
            let seen = self.agents[a].visitor_presence();
            if seen != VisitorPresence::Absent {
                let detail = format!(
                    "agent {a} still sees visitor {v} as {seen:?} a grace plus two latencies after it left"
                );
                self.checker
                    .fail(Invariant::LeaveReported, self.now, detail);
            }
        }
    }
}

/// The `(agent, n)` of a signal body or frame this simulation sent.
fn signal_key(text: &str) -> Option<(u64, u64)> {
    let value: Value = serde_json::from_str(text).ok()?;
    let data = value.get("data")?;
    Some((data.get("a")?.as_u64()?, data.get("n")?.as_u64()?))
}

/// The visitor index of a REST URL (`visitorid=v<i>`).
fn visitor_of(url: &str) -> usize {
    url.split(['?', '&'])
        .find_map(|part| part.strip_prefix("visitorid=v"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Hides tokens (JWTs) in transcript lines.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('"').enumerate() {
        if i > 0 {
            out.push('"');
        }
        if part.starts_with("eyJ") || part.starts_with("$1$") {
            out.push_str("<redacted>");
        } else {
            out.push_str(part);
        }
    }
    out
}
