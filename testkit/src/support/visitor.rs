//! Test support for the visitor tests: a scripted fake peer with a virtual clock and a
//! transcript recorder ([`Harness`]), which also checks the transport-level invariants on
//! every output, and arbitrary input sequences with their invariant checks ([`ops`]).
//!
//! The [`Harness`] owns a [`VisitorProtocol`], a virtual `now`, and a transcript: every
//! command, input, timer firing and output, each with its offset from the start. The test
//! plays the service: it answers HTTP requests (matched by URL path), opens and closes the
//! socket, and sends frames. Time moves only through [`Harness::advance`], which fires every
//! deadline on the way, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::presence::{PresenceData, TermsStatus, Visibility};
use glance_presence_protocol::rest::HttpRequest;
use glance_presence_protocol::visitor::{
    CommandError, VisitorConfig, VisitorConfigBuilder, VisitorEvent, VisitorProtocol,
};
use serde_json::Value;

/// The loopback presence server the default configuration points at.
pub const PRESENCE: &str = "http://127.0.0.1:8080";
/// A `uniquevisitor` answer as the reference service sends it.
pub const UNIQUE_ANSWER: &str = r#"{"visitorid":"UNQ-123456789","guesttoken":"gt-secret","uniqueid":"123456789","timeout":300}"#;
/// A `connected` frame with the reference service's keepalive.
pub const CONNECTED: &str = r#"{"type":"connected","keepalive":30}"#;

/// The default configuration: group 12345, visitor `v1`, the loopback presence server, seed 7.
pub fn base_config() -> VisitorConfigBuilder {
    VisitorConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .presence_server(PRESENCE)
        .rng_seed(7)
}

/// Presence data from a JSON object literal.
pub fn data(value: Value) -> PresenceData {
    match value {
        Value::Object(map) => PresenceData::from_map(map),
        other => panic!("presence data must be an object, not {other}"),
    }
}

fn opt_json(value: &Option<Value>) -> String {
    value.as_ref().map_or("None".to_owned(), Value::to_string)
}

/// A frame's type as the decoders read it: a non-empty `mtype` wins over `type`.
fn frame_type(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    field("mtype").or_else(|| field("type")).map(str::to_owned)
}

/// The core under test, its virtual clock, the transport's view and the transcript.
#[derive(Debug)]
pub struct Harness {
    pub v: VisitorProtocol,
    pub start: Instant,
    pub now: Instant,
    /// Sockets asked for and not closed (by the core or the peer).
    pub open_sockets: BTreeSet<SocketId>,
    /// Sockets whose handshake completed (and not closed).
    pub handshaken: BTreeSet<SocketId>,
    /// Sockets that were sent `connected` after their handshake (and not closed).
    pub connected: BTreeSet<SocketId>,
    /// Frames sent per socket.
    pub sent: BTreeMap<SocketId, Vec<String>>,
    /// The most recent socket asked for.
    pub last_socket: Option<SocketId>,
    /// HTTP requests asked for and not answered yet, oldest first.
    pub pending_http: Vec<(HttpRequestId, HttpRequest)>,
    /// Every HTTP request ever asked for.
    pub all_http: Vec<HttpRequestId>,
    /// Every event, in order.
    pub events: Vec<(Duration, VisitorEvent)>,
    /// Every output, in order.
    pub outputs: Vec<(Duration, Output<VisitorEvent>)>,
    /// Invariants broken, each tagged by its first word.
    pub violations: Vec<String>,
    /// Answer every ping with a pong during [`Harness::advance`] (as a live peer does).
    pub auto_pong: bool,
    pings: Vec<SocketId>,
    stopped: bool,
    transcript: String,
    record: bool,
}

impl Harness {
    /// A harness around [`base_config`] changed by `tweak`.
    pub fn new(tweak: impl FnOnce(VisitorConfigBuilder) -> VisitorConfigBuilder) -> Self {
        let config = tweak(base_config()).build().expect("valid test config");
        Self::with_config(config)
    }

    /// A harness around `config`.
    pub fn with_config(config: VisitorConfig) -> Self {
        let start = Instant::now();
        Harness {
            v: VisitorProtocol::new(config, start),
            start,
            now: start,
            open_sockets: BTreeSet::new(),
            handshaken: BTreeSet::new(),
            connected: BTreeSet::new(),
            sent: BTreeMap::new(),
            last_socket: None,
            pending_http: Vec::new(),
            all_http: Vec::new(),
            events: Vec::new(),
            outputs: Vec::new(),
            violations: Vec::new(),
            auto_pong: false,
            pings: Vec::new(),
            stopped: false,
            transcript: String::new(),
            record: true,
        }
    }

    /// Answers pings during [`Harness::advance`].
    pub fn with_auto_pong(mut self) -> Self {
        self.auto_pong = true;
        self
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

    fn result(&mut self, result: &Result<(), CommandError>) {
        let text = match result {
            Ok(()) => "= ok".to_owned(),
            Err(error) => format!("= error: {error}"),
        };
        self.line("   ", &text);
        self.drain();
    }

    pub fn connect(&mut self) -> Result<(), CommandError> {
        self.line("cmd", "connect()");
        let result = self.v.connect(self.now);
        self.result(&result);
        result
    }

    pub fn disconnect(&mut self) {
        self.line("cmd", "disconnect()");
        self.v.disconnect(self.now);
        self.drain();
    }

    pub fn presence(&mut self, value: Value) -> Result<(), CommandError> {
        self.line("cmd", &format!("presence({value})"));
        let result = self.v.presence(self.now, data(value));
        self.result(&result);
        result
    }

    pub fn visibility(&mut self, visibility: Visibility) -> Result<(), CommandError> {
        self.line("cmd", &format!("visibility({visibility:?})"));
        let result = self.v.visibility(self.now, visibility);
        self.result(&result);
        result
    }

    pub fn terms(&mut self, status: TermsStatus) -> Result<(), CommandError> {
        self.line("cmd", &format!("terms({status:?})"));
        let result = self.v.terms(self.now, status);
        self.result(&result);
        result
    }

    pub fn session_start(&mut self, data: Option<Value>) -> Result<(), CommandError> {
        self.line("cmd", &format!("session_start({})", opt_json(&data)));
        let result = self.v.session_start(self.now, data);
        self.result(&result);
        result
    }

    pub fn session_end(&mut self, data: Option<Value>) -> Result<(), CommandError> {
        self.line("cmd", &format!("session_end({})", opt_json(&data)));
        let result = self.v.session_end(self.now, data);
        self.result(&result);
        result
    }

    pub fn visitor_error(&mut self, data: Value) -> Result<(), CommandError> {
        self.line("cmd", &format!("visitor_error({data})"));
        let result = self.v.visitor_error(self.now, data);
        self.result(&result);
        result
    }

    pub fn fire(&mut self, kind: &str, data: Option<Value>) -> Result<(), CommandError> {
        self.line("cmd", &format!("fire({kind:?}, {})", opt_json(&data)));
        let result = self.v.fire(self.now, kind, data);
        self.result(&result);
        result
    }

    pub fn navigate(&mut self, url: &str) -> Result<(), CommandError> {
        self.line("cmd", &format!("navigate({url:?})"));
        let result = self.v.navigate(self.now, url);
        self.result(&result);
        result
    }

    pub fn focus(&mut self) -> Result<(), CommandError> {
        self.line("cmd", "focus()");
        let result = self.v.focus(self.now);
        self.result(&result);
        result
    }

    // ----- inputs -----

    /// Feeds one input (updating the transport's view) and drains.
    pub fn input(&mut self, input: TransportInput) {
        let text = describe_input(&input);
        self.line("<-", &text);
        match &input {
            TransportInput::SocketOpened { socket } if self.open_sockets.contains(socket) => {
                self.handshaken.insert(*socket);
            }
            TransportInput::Frame { socket, text }
                if self.handshaken.contains(socket)
                    && frame_type(text).as_deref() == Some("connected") =>
            {
                self.connected.insert(*socket);
            }
            TransportInput::SocketClosed { socket, .. } => self.forget_socket(*socket),
            TransportInput::HttpResponse { id, .. } | TransportInput::HttpFailed { id, .. } => {
                self.pending_http.retain(|(pending, _)| pending != id);
            }
            _ => {}
        }
        self.v.handle_input(self.now, input);
        self.drain();
    }

    fn forget_socket(&mut self, socket: SocketId) {
        self.open_sockets.remove(&socket);
        self.handshaken.remove(&socket);
        self.connected.remove(&socket);
    }

    /// Moves the clock forward by `by`, firing every deadline on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.v.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.line("..", "timeout");
            self.v.handle_timeout(self.now);
            self.drain();
            if self.auto_pong {
                for socket in std::mem::take(&mut self.pings) {
                    if self.handshaken.contains(&socket) {
                        self.input(TransportInput::Pong { socket });
                    }
                }
            }
        }
        self.now = target;
        self.check_deadline();
    }

    /// Calls `handle_timeout` at the current time whether or not anything is due.
    pub fn spurious_timeout(&mut self) {
        self.v.handle_timeout(self.now);
        self.drain();
    }

    /// `poll_timeout` must never name a time before `now` once due timers have fired.
    pub fn check_deadline(&mut self) {
        if let Some(deadline) = self.v.poll_timeout() {
            if deadline < self.now {
                let late = self.now - deadline;
                self.violations
                    .push(format!("deadline: poll_timeout is {late:?} in the past"));
            }
        }
    }

    /// Drains every output into the transcript and the transport's view, checking the
    /// transport-level invariants.
    pub fn drain(&mut self) {
        while let Some(output) = self.v.poll_output() {
            let text = describe_output(&output);
            self.line("->", &text);
            if self.stopped {
                self.violations
                    .push(format!("stopped: output after the Stopped event: {text}"));
            }
            match &output {
                Output::OpenSocket { socket, .. } => {
                    if !self.open_sockets.is_empty() {
                        self.violations.push(format!(
                            "sockets: {socket} asked for while {:?} open or opening",
                            self.open_sockets
                        ));
                    }
                    self.open_sockets.insert(*socket);
                    self.last_socket = Some(*socket);
                }
                Output::CloseSocket { socket } => self.forget_socket(*socket),
                Output::SendFrame { socket, text } => {
                    if !self.handshaken.contains(socket) {
                        self.violations.push(format!(
                            "frame: sent on {socket}, which is not open: {text}"
                        ));
                    }
                    let kind = frame_type(text);
                    let first = self.sent.get(socket).is_none_or(Vec::is_empty);
                    if first && kind.as_deref() != Some("connect") {
                        self.violations.push(format!(
                            "frame: the first frame on {socket} is not connect: {text}"
                        ));
                    }
                    if !first && kind.as_deref() == Some("connect") {
                        self.violations
                            .push(format!("frame: a second connect on {socket}"));
                    }
                    if kind.as_deref() == Some("connect") && text.contains("authorization") {
                        self.violations.push(format!(
                            "connect: a visitor connect frame with a token: {text}"
                        ));
                    }
                    if kind.as_deref() == Some("k") && !self.connected.contains(socket) {
                        self.violations
                            .push(format!("keepalive: k on {socket} before connected"));
                    }
                    self.sent.entry(*socket).or_default().push(text.clone());
                }
                Output::SendPing { socket } => {
                    self.pings.push(*socket);
                    if !self.connected.contains(socket) {
                        self.violations
                            .push(format!("keepalive: ping on {socket} before connected"));
                    }
                }
                Output::Http { id, request } => {
                    self.pending_http.push((*id, request.clone()));
                    self.all_http.push(*id);
                }
                Output::Event(event) => {
                    if matches!(event, VisitorEvent::Stopped { .. }) {
                        self.stopped = true;
                    }
                    self.events.push((self.elapsed(), event.clone()));
                }
            }
            self.outputs.push((self.elapsed(), output));
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

    pub fn socket(&self) -> SocketId {
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

    /// Opens the latest socket and sends `connected` (keepalive 30).
    pub fn accept(&mut self) {
        self.open_socket();
        self.frame(CONNECTED);
    }

    /// The events, without their times.
    pub fn event_list(&self) -> Vec<VisitorEvent> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// How many events match.
    pub fn count(&self, pred: impl Fn(&VisitorEvent) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| pred(e)).count()
    }

    /// Every frame sent, in order, with its socket.
    pub fn frames(&self) -> Vec<(SocketId, String)> {
        self.outputs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::SendFrame { socket, text } => Some((*socket, text.clone())),
                _ => None,
            })
            .collect()
    }

    /// The frames sent on one socket.
    pub fn frames_on(&self, socket: SocketId) -> Vec<String> {
        self.sent.get(&socket).cloned().unwrap_or_default()
    }

    /// Panics with the transcript when an invariant was broken.
    pub fn assert_clean(&self) {
        assert!(
            self.violations.is_empty(),
            "{:?}\n{}",
            self.violations,
            self.transcript
        );
    }
}

pub use super::describe::{describe_input, describe_output};

/// Arbitrary sequences of visitor inputs and the invariants every run must keep.
///
/// A run is a [`ops::Setup`] and a list of [`ops::Op`]s (application commands, virtual time
/// steps, socket events on the current and stale sockets, valid frames, frames of any `type`
/// with any JSON `data` and extra fields, arbitrary text and binary frames of up to 4 KiB and
/// now and then over the limit, HTTP answers with any status and canonical, changed, JSON or
/// arbitrary bodies, failures and stale answers), both `arbitrary::Arbitrary`, so random bytes
/// decode into a run. [`ops::run`] plays it, disconnects at the end, and returns every violation of:
/// - never more than one socket open or opening; frames only on open sockets, `connect`
///   first and once, never with a token (checked by the [`Harness`] on every output);
/// - keepalives and pings only on a socket that received `connected`;
/// - nothing after `Stopped`, `Stopped` last and once; commands refused after it;
/// - `poll_timeout` never in the past;
/// - reconnect delays within the policy's bounds;
/// - no `Invoke` event for a function outside `GLANCE.` / `GLANCE_COBROWSE.Custom.`.
pub mod ops {
    use super::super::gen;
    use super::*;
    use arbitrary::{Arbitrary, Unstructured};

    /// Any JSON value, nested at most `depth` deep.
    fn json_value(u: &mut Unstructured<'_>, depth: u8) -> arbitrary::Result<Value> {
        gen::json_value(u, depth, WORDS)
    }
    use glance_presence_protocol::backoff::ReconnectPolicy;
    use glance_presence_protocol::wire::invoke_func_allowed;

    /// Which configuration a run uses.
    #[derive(Debug, Clone, Arbitrary)]
    pub struct Setup {
        pub unique: bool,
        pub lookup: bool,
        pub glance_backoff: bool,
        /// 1 + this % 4: a small queue bound so "queue full" happens.
        pub queue_bound: u8,
        pub seed: u64,
    }

    /// One step of a run.
    #[derive(Debug, Clone, Arbitrary)]
    pub enum Op {
        Connect,
        /// Disconnects only when the byte is below 8, so runs go on long enough.
        Disconnect(u8),
        Presence(u8),
        Navigate(u8),
        Hide,
        Show,
        Focus,
        Terms(u8),
        SessionStart,
        SessionEnd,
        VisitorError,
        Fire(u8),
        /// < 128: that many × 50 ms; otherwise (n - 128) × 2 s.
        Advance(u8),
        SpuriousTimeout,
        /// Completes the handshake of the latest socket.
        OpenSocket,
        /// Completes the handshake of the latest socket and sends `connected` with this
        /// keepalive (% 40 s; 0: none) — the common path, so runs reach the connected state.
        Accept(u8),
        Frame(FrameChoice),
        /// Eight bytes as a text frame (lossy UTF-8) or a binary frame (fixed sizes keep the
        /// decoder from spending the rest of the input on one op).
        Garbage([u8; 8]),
        Binary([u8; 8]),
        /// A frame of any type and data, or a blob.
        Wide(Wide),
        /// A frame over the limit.
        Oversized,
        Pong,
        Close(CloseChoice),
        /// An input for an older socket.
        Stale {
            pick: u8,
            close: bool,
        },
        Respond {
            pick: u8,
            status: StatusChoice,
            body: u8,
        },
        FailHttp {
            pick: u8,
        },
        /// An answer for a request already answered.
        StaleHttp {
            pick: u8,
        },
    }

    #[derive(Debug, Clone, Copy, Arbitrary)]
    pub enum FrameChoice {
        Connected(Option<u8>),
        Signal,
        Invoke(u8),
        Blur,
        Redirect(u8),
        ScaleDown,
        /// `serverclose` only when the byte is below 16 (else `scaledown`).
        ServerClose(u8),
        Error,
        ForAgents(u8),
        Unknown,
    }

    #[derive(Debug, Clone, Copy, Arbitrary)]
    pub enum CloseChoice {
        Peer,
        Transport,
        Refused,
    }

    #[derive(Debug, Clone, Copy, Arbitrary)]
    pub enum StatusChoice {
        Ok,
        Ok2,
        Ok3,
        NotFound,
        ServerError,
        Unavailable,
    }

    impl StatusChoice {
        pub fn code(self) -> u16 {
            match self {
                StatusChoice::Ok | StatusChoice::Ok2 | StatusChoice::Ok3 => 200,
                StatusChoice::NotFound => 404,
                StatusChoice::ServerError => 500,
                StatusChoice::Unavailable => 503,
            }
        }
    }

    /// The frames beyond the templates (one variant of [`Op`], so they do not crowd out the
    /// steps that make a run reach connections and reconnects).
    #[derive(Debug, Clone, Arbitrary)]
    pub enum Wide {
        /// A frame of any `type` with any `data` and extra top-level fields.
        AnyFrame(AnyFrame),
        /// Up to 4 KiB (now and then 70,000 bytes) as a text frame (lossy UTF-8) or, when the
        /// flag is set, a binary frame.
        Blob(Blob, bool),
        /// An answer with any status (0 and 600+ included) and a changed, JSON or arbitrary
        /// body.
        Respond {
            pick: u8,
            status: u16,
            body: BodyChoice,
        },
    }

    /// An HTTP answer's body beyond the canonical ones.
    #[derive(Debug, Clone, Arbitrary)]
    pub enum BodyChoice {
        /// A canonical body with one top-level field set to any JSON value (or removed).
        Changed(u8, u8, Option<Json>),
        /// Any JSON value.
        Json(Json),
        /// Up to 4 KiB of arbitrary bytes (now and then more).
        Blob(Blob),
    }

    /// Any JSON value, at most four levels deep, with small containers.
    #[derive(Debug, Clone)]
    pub struct Json(pub Value);

    const WORDS: &[&str] = &[
        "type",
        "mtype",
        "data",
        "func",
        "args",
        "remote",
        "direct",
        "directserver",
        "httpsport",
        "visitorid",
        "uniqueid",
        "guesttoken",
        "keepalive",
        "GLANCE.Cobrowse.VisitorUI.showTerms",
        "GLANCE_COBROWSE.Custom.x",
        "127.0.0.1:8080",
        "",
    ];

    impl<'a> Arbitrary<'a> for Json {
        fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            Ok(Json(json_value(u, 4)?))
        }
    }

    const SERVER_TYPES: &[&str] = &[
        "connected",
        "signal",
        "invoke",
        "blur",
        "redirect",
        "scaledown",
        "serverclose",
        "error",
        "visitorsock",
        "visitorconn",
        "presence",
        "k",
    ];

    /// A frame of any `type` (a known one most of the time) with any `data` and extra fields.
    #[derive(Debug, Clone)]
    pub struct AnyFrame(pub String);

    impl<'a> Arbitrary<'a> for AnyFrame {
        fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
            Ok(AnyFrame(gen::any_frame(u, SERVER_TYPES, WORDS)?))
        }
    }

    pub use super::super::gen::Blob;

    /// A canonical body with one top-level field (picked by `pick`) set to `value`, or removed.
    fn changed(body: &str, pick: u8, value: Option<&Json>) -> String {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(mut map)) if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(usize::from(pick) % map.len())
                    .cloned()
                    .unwrap_or_default();
                match value {
                    Some(v) => {
                        map.insert(key, v.0.clone());
                    }
                    None => {
                        map.remove(&key);
                    }
                }
                Value::Object(map).to_string()
            }
            _ => value.map_or_else(String::new, |v| v.0.to_string()),
        }
    }

    const FUNCS: [&str; 6] = [
        "GLANCE.Cobrowse.VisitorUI.showTerms",
        "GLANCE_COBROWSE.Custom.hello",
        "alert",
        "GLANCE.",
        "window.GLANCE.x",
        "GLANCE_COBROWSE.other",
    ];

    impl FrameChoice {
        pub fn text(self) -> String {
            match self {
                FrameChoice::Connected(Some(k)) => {
                    format!(r#"{{"type":"connected","keepalive":{}}}"#, k % 40)
                }
                FrameChoice::Connected(None) => r#"{"type":"connected"}"#.to_owned(),
                FrameChoice::Signal => r#"{"type":"signal","data":{"hello":1}}"#.to_owned(),
                FrameChoice::Invoke(n) => format!(
                    r#"{{"type":"invoke","data":{{"func":"{}","args":{{"a":1}}}}}}"#,
                    FUNCS[n as usize % FUNCS.len()]
                ),
                FrameChoice::Blur => r#"{"type":"blur"}"#.to_owned(),
                FrameChoice::Redirect(n) => {
                    let target = [
                        "127.0.0.1:9090",
                        "127.0.0.1:8080",
                        "evil.example.com:80",
                        "bad host",
                    ][n as usize % 4];
                    format!(r#"{{"type":"redirect","data":{{"direct":"{target}"}}}}"#)
                }
                FrameChoice::ScaleDown => r#"{"type":"scaledown"}"#.to_owned(),
                FrameChoice::ServerClose(n) if n < 16 => r#"{"type":"serverclose"}"#.to_owned(),
                FrameChoice::ServerClose(_) => r#"{"type":"scaledown"}"#.to_owned(),
                FrameChoice::Error => {
                    r#"{"type":"error","data":{"error":"connfail","detail":"x"}}"#.to_owned()
                }
                FrameChoice::ForAgents(n) => [
                    r#"{"type":"visitorsock","data":{"connected":true}}"#,
                    r#"{"type":"presence","data":{"url":"u"}}"#,
                    r#"{"type":"terms","data":{"status":"accepted"}}"#,
                ][n as usize % 3]
                    .to_owned(),
                FrameChoice::Unknown => r#"{"mtype":"futurething","data":[1,2]}"#.to_owned(),
            }
        }
    }

    fn canonical(url: &str, n: u8) -> String {
        let table: &[&str] = if url.contains("/uniquevisitor") {
            &[
                UNIQUE_ANSWER,
                r#"{"uniqueid":"555"}"#,
                r#"{"visitorid":"v1"}"#,
                r#"{"uniqueid":"not valid!"}"#,
            ]
        } else if url.contains("/presence") {
            &[
                r#"{"direct":"127.0.0.1:8080","directserver":"127.0.0.1","httpsport":8080}"#,
                r#"{"directserver":"127.0.0.2","httpsport":9000}"#,
                "{}",
                r#"{"directserver":"evil.example.com"}"#,
            ]
        } else {
            &["{}"]
        };
        table[n as usize % table.len()].to_owned()
    }

    /// What a run found.
    #[derive(Debug, Default)]
    pub struct Report {
        pub violations: Vec<String>,
        pub events: usize,
        pub sockets: usize,
        pub connected: usize,
        pub keepalives: usize,
        pub steps: usize,
    }

    impl Report {
        /// Violations whose text starts with `tag`.
        pub fn of(&self, tag: &str) -> Vec<&String> {
            self.violations
                .iter()
                .filter(|v| v.starts_with(tag))
                .collect()
        }
    }

    /// Decodes a run from proptest / fuzzer bytes.
    pub fn decode(data: &[u8]) -> Option<(Setup, Vec<Op>)> {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).ok()?;
        // One op after another until the bytes run out (`arbitrary_take_rest_iter` would stop
        // at each step with probability 1/2, so most runs would be one op long).
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < 400 {
            match Op::arbitrary(&mut u) {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Some((setup, ops))
    }

    /// Decodes and runs; `None` when the bytes do not decode.
    pub fn run_bytes(data: &[u8]) -> Option<Report> {
        let (setup, ops) = decode(data)?;
        Some(run(&setup, &ops))
    }

    fn pick<T: Copy>(items: &[T], n: u8) -> Option<T> {
        if items.is_empty() {
            None
        } else {
            Some(items[n as usize % items.len()])
        }
    }

    /// Answers the outstanding request picked by `n` with `status` and the body made for its
    /// URL.
    fn respond(h: &mut Harness, n: u8, status: u16, body: impl FnOnce(&str) -> Vec<u8>) {
        let pending: Vec<HttpRequestId> = h.pending_http.iter().map(|(id, _)| *id).collect();
        if let Some(id) = pick(&pending, n) {
            let url = h
                .pending_http
                .iter()
                .find(|(p, _)| *p == id)
                .map(|(_, r)| r.url.clone())
                .unwrap_or_default();
            let body = body(&url);
            h.input(TransportInput::HttpResponse { id, status, body });
        }
    }

    /// Plays a run and checks every invariant.
    pub fn run(setup: &Setup, ops: &[Op]) -> Report {
        let policy = if setup.glance_backoff {
            ReconnectPolicy::glance()
        } else {
            ReconnectPolicy::default()
        };
        let mut builder = VisitorConfig::builder()
            .group_id(12345)
            .presence_server(PRESENCE)
            .reconnect_policy(policy)
            .direct_server_lookup(setup.lookup)
            .outgoing_queue_bound(1 + usize::from(setup.queue_bound % 4))
            .rng_seed(setup.seed);
        builder = if setup.unique {
            builder.unique()
        } else {
            builder.visitor_id("v1")
        };
        let mut h = Harness::with_config(builder.build().expect("valid config")).quiet();
        let mut report = Report::default();
        let mut disconnected = false;
        for op in ops {
            report.steps += 1;
            let now = h.now;
            let result = match op {
                Op::Connect => h.v.connect(now),
                Op::Disconnect(n) => {
                    if *n < 8 {
                        h.v.disconnect(now);
                        disconnected = true;
                    }
                    Ok(())
                }
                Op::Presence(n) => {
                    let mut d = PresenceData::new();
                    d.insert(format!("k{}", n % 4), u32::from(*n));
                    if n % 3 == 0 {
                        d.insert("url", format!("https://shop.example.com/p{n}"));
                    }
                    h.v.presence(now, d)
                }
                Op::Navigate(n) => h.v.navigate(now, format!("https://shop.example.com/n{n}")),
                Op::Hide => h.v.visibility(now, Visibility::Hidden),
                Op::Show => h.v.visibility(now, Visibility::Visible),
                Op::Focus => h.v.focus(now),
                Op::Terms(n) => {
                    let status = [
                        TermsStatus::Displayed,
                        TermsStatus::Accepted,
                        TermsStatus::Declined,
                    ][*n as usize % 3];
                    h.v.terms(now, status)
                }
                Op::SessionStart => h.v.session_start(now, None),
                Op::SessionEnd => h.v.session_end(now, Some(serde_json::json!({"x": 1}))),
                Op::VisitorError => {
                    h.v.visitor_error(now, serde_json::json!({"code": "conndrop"}))
                }
                Op::Fire(n) => {
                    let kind = ["custom", "presence", "", "blur", "cart"][*n as usize % 5];
                    h.v.fire(now, kind, Some(serde_json::json!(n)))
                }
                Op::Advance(n) => {
                    let step = if *n < 128 {
                        Duration::from_millis(50 * u64::from(*n))
                    } else {
                        Duration::from_secs(2 * u64::from(n - 128))
                    };
                    h.advance(step);
                    Ok(())
                }
                Op::SpuriousTimeout => {
                    h.spurious_timeout();
                    Ok(())
                }
                Op::OpenSocket => {
                    if let Some(socket) = h.last_socket {
                        h.input(TransportInput::SocketOpened { socket });
                    }
                    Ok(())
                }
                Op::Accept(k) => {
                    if let Some(socket) = h.last_socket {
                        h.input(TransportInput::SocketOpened { socket });
                        h.frame(&FrameChoice::Connected(Some(*k)).text());
                    }
                    Ok(())
                }
                Op::Frame(choice) => {
                    if h.last_socket.is_some() {
                        h.frame(&choice.text());
                    }
                    Ok(())
                }
                Op::Garbage(bytes) => {
                    if h.last_socket.is_some() {
                        h.frame(&String::from_utf8_lossy(bytes));
                    }
                    Ok(())
                }
                Op::Binary(bytes) => {
                    if let Some(socket) = h.last_socket {
                        h.input(TransportInput::BinaryFrame {
                            socket,
                            data: bytes.to_vec(),
                        });
                    }
                    Ok(())
                }
                Op::Wide(Wide::AnyFrame(frame)) => {
                    if h.last_socket.is_some() {
                        h.frame(&frame.0);
                    }
                    Ok(())
                }
                Op::Wide(Wide::Blob(blob, binary)) => {
                    if let Some(socket) = h.last_socket {
                        if *binary {
                            h.input(TransportInput::BinaryFrame {
                                socket,
                                data: blob.0.clone(),
                            });
                        } else {
                            h.frame(&String::from_utf8_lossy(&blob.0));
                        }
                    }
                    Ok(())
                }
                Op::Oversized => {
                    if h.last_socket.is_some() {
                        let text =
                            format!(r#"{{"type":"signal","data":"{}"}}"#, "x".repeat(70_000));
                        h.frame(&text);
                    }
                    Ok(())
                }
                Op::Pong => {
                    if h.last_socket.is_some() {
                        h.pong();
                    }
                    Ok(())
                }
                Op::Close(choice) => {
                    if h.last_socket.is_some() {
                        h.close_socket(match choice {
                            CloseChoice::Peer => CloseReason::ClosedByPeer {
                                code: Some(1001),
                                reason: "going away".into(),
                            },
                            CloseChoice::Transport => CloseReason::TransportError {
                                detail: "reset".into(),
                            },
                            CloseChoice::Refused => CloseReason::HandshakeRefused { status: 503 },
                        });
                    }
                    Ok(())
                }
                Op::Stale { pick: n, close } => {
                    if let Some(last) = h.last_socket {
                        let older: Vec<SocketId> =
                            h.sent.keys().copied().filter(|s| *s != last).collect();
                        if let Some(socket) = pick(&older, *n) {
                            if *close {
                                h.input(TransportInput::SocketClosed {
                                    socket,
                                    reason: CloseReason::ClosedLocally,
                                });
                            } else {
                                h.input(TransportInput::Frame {
                                    socket,
                                    text: FrameChoice::Blur.text(),
                                });
                            }
                        }
                    }
                    Ok(())
                }
                Op::Respond {
                    pick: n,
                    status,
                    body,
                } => {
                    respond(&mut h, *n, status.code(), |url| {
                        canonical(url, *body).into_bytes()
                    });
                    Ok(())
                }
                Op::Wide(Wide::Respond {
                    pick: n,
                    status,
                    body,
                }) => {
                    respond(&mut h, *n, *status, |url| match body {
                        BodyChoice::Changed(n, field, value) => {
                            changed(&canonical(url, *n), *field, value.as_ref()).into_bytes()
                        }
                        BodyChoice::Json(value) => value.0.to_string().into_bytes(),
                        BodyChoice::Blob(blob) => blob.0.clone(),
                    });
                    Ok(())
                }
                Op::FailHttp { pick: n } => {
                    let pending: Vec<HttpRequestId> =
                        h.pending_http.iter().map(|(id, _)| *id).collect();
                    if let Some(id) = pick(&pending, *n) {
                        h.input(TransportInput::HttpFailed {
                            id,
                            detail: "connection refused".into(),
                        });
                    }
                    Ok(())
                }
                Op::StaleHttp { pick: n } => {
                    let answered: Vec<HttpRequestId> = h
                        .all_http
                        .iter()
                        .copied()
                        .filter(|id| !h.pending_http.iter().any(|(p, _)| p == id))
                        .collect();
                    if let Some(id) = pick(&answered, *n) {
                        h.input(TransportInput::HttpResponse {
                            id,
                            status: 200,
                            body: b"{}".to_vec(),
                        });
                    }
                    Ok(())
                }
            };
            h.drain();
            h.check_deadline();
            if disconnected && result != Err(CommandError::Stopped) {
                let is_command = !matches!(
                    op,
                    Op::Disconnect(_)
                        | Op::Advance(_)
                        | Op::SpuriousTimeout
                        | Op::OpenSocket
                        | Op::Accept(_)
                        | Op::Frame(_)
                        | Op::Garbage(_)
                        | Op::Binary(_)
                        | Op::Wide(_)
                        | Op::Oversized
                        | Op::Pong
                        | Op::Close(_)
                        | Op::Stale { .. }
                        | Op::Respond { .. }
                        | Op::FailHttp { .. }
                        | Op::StaleHttp { .. }
                );
                if is_command {
                    h.violations.push(format!(
                        "stopped: {op:?} after disconnect returned {result:?}"
                    ));
                }
            }
            if let Err(CommandError::Stopped) = result {
                if !h.v.is_stopped() {
                    h.violations
                        .push("stopped: Stopped returned by a running visitor".to_owned());
                }
            }
        }
        h.disconnect();
        h.drain();
        // Stopped last and once.
        let stops = h.count(|e| matches!(e, VisitorEvent::Stopped { .. }));
        if stops != 1 {
            h.violations
                .push(format!("stopped: {stops} Stopped events"));
        }
        if !matches!(h.events.last(), Some((_, VisitorEvent::Stopped { .. }))) {
            h.violations
                .push("stopped: the last event is not Stopped".to_owned());
        }
        if h.v.poll_timeout().is_some() || h.v.poll_output().is_some() {
            h.violations
                .push("stopped: work left after Stopped".to_owned());
        }
        // Reconnect delays within the policy's bounds.
        for (_, event) in &h.events {
            match event {
                VisitorEvent::Reconnecting { attempt, delay_ms } => {
                    let (low, high) = policy.bounds(*attempt);
                    let delay = Duration::from_millis(*delay_ms);
                    if delay + Duration::from_millis(1) < low || delay > high {
                        h.violations.push(format!(
                            "backoff: attempt {attempt} waited {delay:?}, outside {low:?}..={high:?}"
                        ));
                    }
                }
                VisitorEvent::Invoke { func, args } => {
                    if !invoke_func_allowed(func) {
                        h.violations.push(format!("invoke: {func} was let through"));
                    }
                    if args.get("remote") != Some(&Value::Bool(true)) {
                        h.violations
                            .push(format!("invoke: args without remote: {args}"));
                    }
                }
                _ => {}
            }
        }
        report.events = h.events.len();
        report.sockets = h.sent.len();
        report.connected = h.count(|e| matches!(e, VisitorEvent::Connected { .. }));
        report.keepalives = h
            .frames()
            .iter()
            .filter(|(_, text)| text == r#"{"type":"k"}"#)
            .count();
        report.violations = h.violations;
        report
    }
}
