//! A scripted fake peer with a virtual clock and a transcript recorder, generic over the sans-IO
//! core it drives ([`Harness`] over a [`Core`]).
//!
//! The harness owns the core, a virtual `now`, and a transcript: every command, input, timer
//! firing and output, each with its offset from the start, as readable text. The test plays the
//! service: it answers HTTP requests (matched by URL path), opens and closes the socket, and
//! sends frames. Time moves only through [`Harness::advance`], which fires every deadline on the
//! way, in order. The harness also tracks the transport's view (which sockets are open, opening
//! or handshaken, which HTTP requests are outstanding) so tests can check invariants.
//!
//! Not role-specific: the agent's and the visitor's configurations, commands and transport
//! checks live in their [`Core`] impls (`support::agent`, `support::visitor`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Display, Write as _};
use std::time::{Duration, Instant};

use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::rest::HttpRequest;
use serde::Serialize;
use serde_json::Value;

use super::describe::{describe_input, describe_output};

/// When the fake peer answers the core's pings (if [`Harness::auto_pong`] is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongTiming {
    /// At the end of every drain, on sockets still open or opening.
    WhileDraining,
    /// Only while [`Harness::advance`] fires timers, on handshaken sockets.
    WhileAdvancing,
}

/// A sans-IO core the [`Harness`] can drive: the shared `SansIo` surface plus what the harness
/// needs to know about the role.
pub trait Core: SansIo<Event: Clone + Debug + Serialize> + Debug + Sized {
    /// What the core's commands fail with.
    type Error: Display + Debug;
    /// When the fake peer answers pings.
    const PONG_TIMING: PongTiming;
    /// Whether the fake peer answers pings unless a test says otherwise.
    const AUTO_PONG: bool;

    /// Starts connecting.
    fn connect(&mut self, now: Instant) -> Result<(), Self::Error>;
    /// Stops for good.
    fn disconnect(&mut self, now: Instant);
    /// Whether `event` is the core's last event.
    fn is_stopped_event(event: &Self::Event) -> bool;
    /// The reconnect attempt `event` announces and its delay in ms, if it announces one.
    fn reconnect(event: &Self::Event) -> Option<(u32, u64)>;
    /// The transport-level invariants an output breaks, given the transport's view before it
    /// (`text` is its transcript line). None unless the core's side says otherwise.
    fn check_output(h: &Harness<Self>, output: &Output<Self::Event>, text: &str) -> Vec<String> {
        let _ = (h, output, text);
        Vec::new()
    }
}

/// How a command's successful result reads in the transcript.
pub trait CommandValue {
    /// The text after `= `.
    fn text(&self) -> String;
}

impl CommandValue for () {
    fn text(&self) -> String {
        "ok".to_owned()
    }
}

/// The core under test, its virtual clock, the transport's view and the transcript.
#[derive(Debug)]
pub struct Harness<C: Core> {
    pub core: C,
    pub start: Instant,
    pub now: Instant,
    /// Sockets the core asked to open and has not closed (nor seen closed).
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
    /// Every HTTP request ever asked for, in the order asked.
    pub all_http: Vec<HttpRequestId>,
    /// Every HTTP request answered (or failed), in the order answered.
    pub answered_http: Vec<HttpRequestId>,
    /// Every event, in order.
    pub events: Vec<(Duration, C::Event)>,
    /// Every output, in order.
    pub outputs: Vec<(Duration, Output<C::Event>)>,
    /// Most sockets open or opening at once.
    pub max_open_sockets: usize,
    /// Invariants broken, each tagged by its first word.
    pub violations: Vec<String>,
    /// Whether the fake peer answers pings (when: [`Core::PONG_TIMING`]).
    pub auto_pong: bool,
    pings: Vec<SocketId>,
    stopped: bool,
    transcript: String,
    record: bool,
}

impl<C: Core> Harness<C> {
    /// A harness around `core`, whose clock starts at `start`.
    pub fn around(core: C, start: Instant) -> Self {
        Harness {
            core,
            start,
            now: start,
            open_sockets: BTreeSet::new(),
            handshaken: BTreeSet::new(),
            connected: BTreeSet::new(),
            sent: BTreeMap::new(),
            last_socket: None,
            pending_http: Vec::new(),
            all_http: Vec::new(),
            answered_http: Vec::new(),
            events: Vec::new(),
            outputs: Vec::new(),
            max_open_sockets: 0,
            violations: Vec::new(),
            auto_pong: C::AUTO_PONG,
            pings: Vec::new(),
            stopped: false,
            transcript: String::new(),
            record: true,
        }
    }

    /// Answers pings (when: [`Core::PONG_TIMING`]).
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

    /// Whether the Stopped event was seen.
    pub fn has_stopped(&self) -> bool {
        self.stopped
    }

    // ----- commands -----

    /// Runs one command on the core, writing `call` and its result, then drains.
    pub fn command<T: CommandValue>(
        &mut self,
        call: &str,
        run: impl FnOnce(&mut C, Instant) -> Result<T, C::Error>,
    ) -> Result<T, C::Error> {
        self.line("cmd", call);
        let result = run(&mut self.core, self.now);
        let text = match &result {
            Ok(value) => format!("= {}", value.text()),
            Err(error) => format!("= error: {error}"),
        };
        self.line("   ", &text);
        self.drain();
        result
    }

    pub fn connect(&mut self) -> Result<(), C::Error> {
        self.command("connect()", C::connect)
    }

    pub fn disconnect(&mut self) {
        self.line("cmd", "disconnect()");
        self.core.disconnect(self.now);
        self.drain();
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
                if self.pending_http.iter().any(|(pending, _)| pending == id) {
                    self.answered_http.push(*id);
                }
                self.pending_http.retain(|(pending, _)| pending != id);
            }
            _ => {}
        }
        self.core.handle_input(self.now, input);
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
        while let Some(deadline) = self.core.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.line("..", "timeout");
            self.core.handle_timeout(self.now);
            self.drain();
            if C::PONG_TIMING == PongTiming::WhileAdvancing && self.auto_pong {
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
        self.core.handle_timeout(self.now);
        self.drain();
    }

    /// `poll_timeout` must never name a time before `now` once due timers have fired.
    pub fn check_deadline(&mut self) {
        if let Some(deadline) = self.core.poll_timeout() {
            if deadline < self.now {
                let late = self.now - deadline;
                self.violations
                    .push(format!("deadline: poll_timeout is {late:?} in the past"));
            }
        }
    }

    /// Drains every output into the transcript and the transport's view, checking the core's
    /// transport-level invariants (and answers pings, when [`PongTiming::WhileDraining`]).
    pub fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            let text = describe_output(&output);
            self.line("->", &text);
            let broken = C::check_output(self, &output, &text);
            self.violations.extend(broken);
            match &output {
                Output::OpenSocket { socket, .. } => {
                    self.open_sockets.insert(*socket);
                    self.last_socket = Some(*socket);
                    self.max_open_sockets = self.max_open_sockets.max(self.open_sockets.len());
                }
                Output::CloseSocket { socket } => self.forget_socket(*socket),
                Output::SendFrame { socket, text } => {
                    self.sent.entry(*socket).or_default().push(text.clone());
                }
                Output::SendPing { socket } => self.pings.push(*socket),
                Output::Http { id, request } => {
                    self.pending_http.push((*id, request.clone()));
                    self.all_http.push(*id);
                }
                Output::Event(event) => {
                    if C::is_stopped_event(event) {
                        self.stopped = true;
                    }
                    self.events.push((self.elapsed(), event.clone()));
                }
            }
            self.outputs.push((self.elapsed(), output));
        }
        if C::PONG_TIMING == PongTiming::WhileDraining {
            let pings = std::mem::take(&mut self.pings);
            if self.auto_pong {
                for socket in pings {
                    if self.open_sockets.contains(&socket) {
                        self.input(TransportInput::Pong { socket });
                    }
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
        self.answer(id, status, body.as_bytes().to_vec());
    }

    /// Fails the oldest outstanding request whose URL contains `path` at the transport level.
    pub fn fail_http(&mut self, path: &str, detail: &str) {
        let id = self
            .find_http(path)
            .unwrap_or_else(|| panic!("no outstanding request for {path}"));
        self.fail(id, detail);
    }

    /// Answers request `id` (outstanding or not).
    pub fn answer(&mut self, id: HttpRequestId, status: u16, body: Vec<u8>) {
        self.input(TransportInput::HttpResponse { id, status, body });
    }

    /// Fails request `id` (outstanding or not) at the transport level.
    pub fn fail(&mut self, id: HttpRequestId, detail: &str) {
        let detail = detail.to_owned();
        self.input(TransportInput::HttpFailed { id, detail });
    }

    /// The outstanding request picked by `n` (`n` modulo their count), if any.
    pub fn pick_pending(&self, n: u8) -> Option<(HttpRequestId, HttpRequest)> {
        pick(&self.pending_http, n)
    }

    /// The latest socket asked for.
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
        self.frame_on(self.socket(), text);
    }

    /// A text frame from the service on `socket`.
    pub fn frame_on(&mut self, socket: SocketId, text: &str) {
        let text = text.to_owned();
        self.input(TransportInput::Frame { socket, text });
    }

    /// A binary frame from the service on the latest socket.
    pub fn binary_frame(&mut self, data: &[u8]) {
        let socket = self.socket();
        let data = data.to_vec();
        self.input(TransportInput::BinaryFrame { socket, data });
    }

    /// A pong on the latest socket.
    pub fn pong(&mut self) {
        let socket = self.socket();
        self.input(TransportInput::Pong { socket });
    }

    /// The latest socket closes.
    pub fn close_socket(&mut self, reason: CloseReason) {
        self.close_socket_on(self.socket(), reason);
    }

    /// `socket` closes.
    pub fn close_socket_on(&mut self, socket: SocketId, reason: CloseReason) {
        self.input(TransportInput::SocketClosed { socket, reason });
    }

    // ----- what happened -----

    /// The events, without their times.
    pub fn event_list(&self) -> Vec<C::Event> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Events as JSON text (for `contains` checks).
    pub fn events_json(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|(_, e)| serde_json::to_string(e).expect("events serialize"))
            .collect()
    }

    /// How many events match.
    pub fn count(&self, pred: impl Fn(&C::Event) -> bool) -> usize {
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

    /// The URL of every socket asked for, in order.
    pub fn socket_urls(&self) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::OpenSocket { url, .. } => Some(url.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many pings the core sent.
    pub fn pings_sent(&self) -> usize {
        self.outputs
            .iter()
            .filter(|(_, o)| matches!(o, Output::SendPing { .. }))
            .count()
    }

    /// Every reconnect the core announced, in order: the attempt and its delay in ms.
    pub fn reconnects(&self) -> Vec<(u32, u64)> {
        self.events
            .iter()
            .filter_map(|(_, e)| C::reconnect(e))
            .collect()
    }

    /// The delay (ms) of every reconnect the core announced, in order.
    pub fn reconnect_delays(&self) -> Vec<u64> {
        self.reconnects().into_iter().map(|(_, ms)| ms).collect()
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

/// The item picked by `n` (`n` modulo their count), if any.
pub fn pick<T: Clone>(items: &[T], n: u8) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[usize::from(n) % items.len()].clone())
    }
}

/// A frame's type as the decoders read it: a non-empty `mtype` wins over `type`.
pub fn frame_type(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    field("mtype").or_else(|| field("type")).map(str::to_owned)
}
