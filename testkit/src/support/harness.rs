//! A scripted fake peer with a virtual clock and a transcript recorder, for driving a sans-IO
//! core without sockets.
//!
//! The [`Harness`] owns an [`AgentProtocol`], a virtual `now`, and a transcript: every command,
//! input, timer firing and output, each with its offset from the start, as readable text. The
//! test plays the service: it answers HTTP requests (matched by URL path), opens and closes the
//! socket, and sends frames. Time moves only through [`Harness::advance`], which fires every
//! deadline on the way in order. The harness also tracks the transport's view (which sockets
//! are open or opening, which HTTP requests are outstanding) so tests can check invariants.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{
    AgentConfig, AgentConfigBuilder, AgentEvent, AgentProtocol, CommandError, RequestId,
};
use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::rest::HttpRequest;

/// Wall-clock time at the harness's start: 2023-11-14T22:13:20Z.
pub const UNIX_START: u64 = 1_700_000_000;
/// The loopback presence server the default configuration points at.
pub const PRESENCE: &str = "http://127.0.0.1:8080";
/// The answer of `findvisitor` for a visitor on the presence server itself.
pub const FIND_FOUND: &str = r#"{"visitorfound":true,"direct":"127.0.0.1:8080","directserver":"127.0.0.1","httpsport":8080}"#;

/// A default configuration builder: group 12345, visitor `v1`, a bare token, the loopback
/// presence server, seed 7 (the harness starts the wall clock at [`UNIX_START`]).
pub fn base_config() -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token("test-token")
        .presence_server(PRESENCE)
        .web_server("http://127.0.0.1:8081")
        .rng_seed(7)
}

/// Like [`base_config`] but authenticating with credentials (partner user `agent1`, API key
/// `api-key`) instead of a token.
pub fn credentials_config() -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .credentials("agent1", "api-key")
        .presence_server(PRESENCE)
        .web_server("http://127.0.0.1:8081")
        .rng_seed(7)
}

/// The core under test, its virtual clock, the transport's view and the transcript.
#[derive(Debug)]
pub struct Harness {
    pub agent: AgentProtocol,
    pub start: Instant,
    pub now: Instant,
    /// Sockets the core asked to open and has not closed (nor seen closed).
    pub open_sockets: BTreeSet<SocketId>,
    /// The most recent socket asked for.
    pub last_socket: Option<SocketId>,
    /// HTTP requests asked for and not answered yet, oldest first.
    pub pending_http: Vec<(HttpRequestId, HttpRequest)>,
    /// Every event, in order.
    pub events: Vec<(Duration, AgentEvent)>,
    /// Every output, in order.
    pub outputs: Vec<(Duration, Output<AgentEvent>)>,
    /// Most sockets open or opening at once.
    pub max_open_sockets: usize,
    /// Whether the fake peer answers every ping with a pong at once (default on).
    pub auto_pong: bool,
    transcript: String,
    record: bool,
}

impl Harness {
    /// A harness around a configuration made from [`base_config`] and `tweak`.
    pub fn new(tweak: impl FnOnce(AgentConfigBuilder) -> AgentConfigBuilder) -> Self {
        let start = Instant::now();
        let config = tweak(base_config()).build().expect("valid test config");
        Self::with_config(config, start)
    }

    /// A harness around a configuration made from [`credentials_config`] and `tweak`.
    pub fn with_credentials(tweak: impl FnOnce(AgentConfigBuilder) -> AgentConfigBuilder) -> Self {
        let start = Instant::now();
        let config = tweak(credentials_config())
            .build()
            .expect("valid test config");
        Self::with_config(config, start)
    }

    /// A harness around `config`, whose clock (if anchored) must be anchored at `start`.
    pub fn with_config(config: AgentConfig, start: Instant) -> Self {
        let agent = AgentProtocol::new(config, start, Duration::from_secs(UNIX_START));
        Harness {
            agent,
            start,
            now: start,
            open_sockets: BTreeSet::new(),
            last_socket: None,
            pending_http: Vec::new(),
            events: Vec::new(),
            outputs: Vec::new(),
            max_open_sockets: 0,
            auto_pong: true,
            transcript: String::new(),
            record: true,
        }
    }

    /// Stops writing the transcript (property tests: only the checks matter).
    pub fn quiet(mut self) -> Self {
        self.record = false;
        self
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn line(&mut self, arrow: &str, text: &str) {
        if !self.record {
            return;
        }
        let t = self.elapsed();
        let _ = writeln!(
            self.transcript,
            "{:>4}.{:03}s {arrow} {text}",
            t.as_secs(),
            t.subsec_millis()
        );
    }

    /// A free-form note in the transcript.
    pub fn note(&mut self, text: &str) {
        self.line("##", text);
    }

    /// The transcript so far.
    pub fn transcript(&self) -> String {
        self.transcript.clone()
    }

    // ----- commands -----

    pub fn connect(&mut self) -> Result<(), CommandError> {
        self.line("cmd", "connect()");
        let result = self.agent.connect(self.now);
        self.result_line(&result.as_ref().map(|_| "ok".to_owned()));
        self.drain();
        result
    }

    pub fn disconnect(&mut self) {
        self.line("cmd", "disconnect()");
        self.agent.disconnect(self.now);
        self.drain();
    }

    pub fn lookup(&mut self) -> Result<RequestId, CommandError> {
        self.line("cmd", "lookup()");
        let result = self.agent.lookup(self.now);
        self.request_result(&result);
        result
    }

    pub fn query(&mut self) -> Result<RequestId, CommandError> {
        self.line("cmd", "query()");
        let result = self.agent.query(self.now);
        self.request_result(&result);
        result
    }

    pub fn signal(&mut self, data: serde_json::Value) -> Result<RequestId, CommandError> {
        self.line("cmd", &format!("signal({data})"));
        let result = self.agent.signal(self.now, data);
        self.request_result(&result);
        result
    }

    pub fn invoke(
        &mut self,
        func: &str,
        args: serde_json::Value,
    ) -> Result<RequestId, CommandError> {
        self.line("cmd", &format!("invoke({func:?}, {args})"));
        let result = self.agent.invoke(self.now, func, args);
        self.request_result(&result);
        result
    }

    fn request_result(&mut self, result: &Result<RequestId, CommandError>) {
        self.result_line(&result.as_ref().map(|id| id.to_string()));
        self.drain();
    }

    fn result_line(&mut self, result: &Result<String, &CommandError>) {
        let text = match result {
            Ok(text) => format!("= {text}"),
            Err(error) => format!("= error: {error}"),
        };
        self.line("   ", &text);
    }

    // ----- inputs -----

    /// Feeds one input and drains.
    pub fn input(&mut self, input: TransportInput) {
        let text = describe_input(&input);
        self.line("<-", &text);
        match &input {
            TransportInput::SocketClosed { socket, .. } => {
                self.open_sockets.remove(socket);
            }
            TransportInput::HttpResponse { id, .. } | TransportInput::HttpFailed { id, .. } => {
                self.pending_http.retain(|(pending, _)| pending != id);
            }
            _ => {}
        }
        self.agent.handle_input(self.now, input);
        self.drain();
    }

    /// Moves the clock forward by `by`, firing every deadline on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.agent.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.line("..", "timeout");
            self.agent.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Calls `handle_timeout` at the current time whether or not anything is due.
    pub fn spurious_timeout(&mut self) {
        self.agent.handle_timeout(self.now);
        self.drain();
    }

    /// Drains every output into the transcript and the transport's view (and answers pings
    /// when `auto_pong` is on).
    pub fn drain(&mut self) {
        let mut pings = Vec::new();
        while let Some(output) = self.agent.poll_output() {
            if let Output::SendPing { socket } = &output {
                pings.push(*socket);
            }
            let text = describe_output(&output);
            self.line("->", &text);
            match &output {
                Output::OpenSocket { socket, .. } => {
                    self.open_sockets.insert(*socket);
                    self.last_socket = Some(*socket);
                    self.max_open_sockets = self.max_open_sockets.max(self.open_sockets.len());
                }
                Output::CloseSocket { socket } => {
                    self.open_sockets.remove(socket);
                }
                Output::Http { id, request } => self.pending_http.push((*id, request.clone())),
                Output::Event(event) => self.events.push((self.elapsed(), event.clone())),
                _ => {}
            }
            self.outputs.push((self.elapsed(), output));
        }
        if self.auto_pong {
            for socket in pings {
                if self.open_sockets.contains(&socket) {
                    self.input(TransportInput::Pong { socket });
                }
            }
        }
    }

    // ----- the fake peer -----

    /// The oldest outstanding request whose URL contains `path`.
    pub fn find_http(&self, path: &str) -> Option<HttpRequestId> {
        self.pending_http
            .iter()
            .find(|(_, request)| request.url.contains(path))
            .map(|(id, _)| *id)
    }

    /// Answers the oldest outstanding request whose URL contains `path`.
    pub fn respond(&mut self, path: &str, status: u16, body: &str) {
        let id = self.find_http(path).unwrap_or_else(|| {
            panic!(
                "no outstanding request for {path}; transcript:\n{}",
                self.transcript
            )
        });
        self.input(TransportInput::HttpResponse {
            id,
            status,
            body: body.as_bytes().to_vec(),
        });
    }

    /// Fails the oldest outstanding request whose URL contains `path` at the transport level.
    pub fn fail_http(&mut self, path: &str, detail: &str) {
        let id = self
            .find_http(path)
            .unwrap_or_else(|| panic!("no outstanding request for {path}"));
        self.input(TransportInput::HttpFailed {
            id,
            detail: detail.to_owned(),
        });
    }

    fn socket(&self) -> SocketId {
        self.last_socket.expect("a socket was asked for")
    }

    /// Completes the WebSocket handshake of the latest socket.
    pub fn open_socket(&mut self) {
        let socket = self.socket();
        self.input(TransportInput::SocketOpened { socket });
    }

    /// A text frame from the service on the latest socket.
    pub fn frame(&mut self, text: &str) {
        let socket = self.socket();
        self.input(TransportInput::Frame {
            socket,
            text: text.to_owned(),
        });
    }

    /// A pong on the latest socket.
    pub fn pong(&mut self) {
        let socket = self.socket();
        self.input(TransportInput::Pong { socket });
    }

    /// The latest socket closes.
    pub fn close_socket(&mut self, reason: CloseReason) {
        let socket = self.socket();
        self.input(TransportInput::SocketClosed { socket, reason });
    }

    /// The usual way up with a bare token: findvisitor (found), socket, `connect`,
    /// `connected` (keepalive 30), then the snapshot lookup answered with `lookup_body`.
    pub fn connect_happy(&mut self, lookup_body: &str) {
        self.connect().expect("connect");
        self.respond("/findvisitor", 200, FIND_FOUND);
        self.open_socket();
        self.frame(r#"{"type":"connected","keepalive":30}"#);
        self.respond("/lookupvisitor", 200, lookup_body);
    }

    /// The events, without their times.
    pub fn event_list(&self) -> Vec<AgentEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Events as JSON text (for `contains` checks).
    pub fn events_json(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|(_, e)| serde_json::to_string(e).expect("events serialize"))
            .collect()
    }
}

pub use super::describe::{describe_input, describe_output};
