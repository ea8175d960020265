//! The visitor's side of the scripted [`Harness`]: its default configuration, its page,
//! visibility and session commands (each written to the transcript with its result), the
//! transport-level invariants it checks on every output, and the constants the visitor tests
//! share. The peer, the clock and the transcript are the generic
//! [`harness`]'s; the visitor's arbitrary runs are in [`ops`].
//!
//! The visitor's fake peer answers pings only while time advances (as a live peer does), and
//! only when asked to ([`Harness::with_auto_pong`]). Not the visitor's tests.

pub mod ops;

use std::time::Instant;

use glance_presence_protocol::io::Output;
use glance_presence_protocol::presence::{PresenceData, TermsStatus, Visibility};
use glance_presence_protocol::visitor::{
    CommandError, VisitorConfig, VisitorConfigBuilder, VisitorEvent, VisitorProtocol,
};
use serde_json::Value;

use super::harness::{self, frame_type, Core, PongTiming};

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

impl Core for VisitorProtocol {
    type Error = CommandError;
    const PONG_TIMING: PongTiming = PongTiming::WhileAdvancing;
    const AUTO_PONG: bool = false;

    fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        VisitorProtocol::connect(self, now)
    }

    fn disconnect(&mut self, now: Instant) {
        VisitorProtocol::disconnect(self, now);
    }

    fn is_stopped_event(event: &VisitorEvent) -> bool {
        matches!(event, VisitorEvent::Stopped { .. })
    }

    fn reconnect(event: &VisitorEvent) -> Option<(u32, u64)> {
        match event {
            VisitorEvent::Reconnecting { attempt, delay_ms } => Some((*attempt, *delay_ms)),
            _ => None,
        }
    }

    /// One socket at a time; frames only on handshaken sockets, `connect` first and once and
    /// never with a token; keepalives and pings only after `connected`; nothing after
    /// `Stopped`.
    fn check_output(h: &Harness, output: &Output<VisitorEvent>, text: &str) -> Vec<String> {
        let mut broken = Vec::new();
        if h.has_stopped() {
            broken.push(format!("stopped: output after the Stopped event: {text}"));
        }
        match output {
            Output::OpenSocket { socket, .. } if !h.open_sockets.is_empty() => {
                broken.push(format!(
                    "sockets: {socket} asked for while {:?} open or opening",
                    h.open_sockets
                ));
            }
            Output::SendFrame { socket, text } => {
                if !h.handshaken.contains(socket) {
                    broken.push(format!(
                        "frame: sent on {socket}, which is not open: {text}"
                    ));
                }
                let kind = frame_type(text);
                let first = h.sent.get(socket).is_none_or(Vec::is_empty);
                if first && kind.as_deref() != Some("connect") {
                    broken.push(format!(
                        "frame: the first frame on {socket} is not connect: {text}"
                    ));
                }
                if !first && kind.as_deref() == Some("connect") {
                    broken.push(format!("frame: a second connect on {socket}"));
                }
                if kind.as_deref() == Some("connect") && text.contains("authorization") {
                    broken.push(format!(
                        "connect: a visitor connect frame with a token: {text}"
                    ));
                }
                if kind.as_deref() == Some("k") && !h.connected.contains(socket) {
                    broken.push(format!("keepalive: k on {socket} before connected"));
                }
            }
            Output::SendPing { socket } if !h.connected.contains(socket) => {
                broken.push(format!("keepalive: ping on {socket} before connected"));
            }
            _ => {}
        }
        broken
    }
}

/// The harness around a [`VisitorProtocol`].
pub type Harness = harness::Harness<VisitorProtocol>;

impl Harness {
    /// A harness around [`base_config`] changed by `tweak`.
    pub fn new(tweak: impl FnOnce(VisitorConfigBuilder) -> VisitorConfigBuilder) -> Self {
        let config = tweak(base_config()).build().expect("valid test config");
        Self::with_config(config)
    }

    /// A harness around `config`.
    pub fn with_config(config: VisitorConfig) -> Self {
        let start = Instant::now();
        Self::around(VisitorProtocol::new(config, start), start)
    }

    pub fn presence(&mut self, value: Value) -> Result<(), CommandError> {
        self.command(&format!("presence({value})"), |v, now| {
            v.presence(now, data(value))
        })
    }

    pub fn visibility(&mut self, visibility: Visibility) -> Result<(), CommandError> {
        self.command(&format!("visibility({visibility:?})"), |v, now| {
            v.visibility(now, visibility)
        })
    }

    pub fn terms(&mut self, status: TermsStatus) -> Result<(), CommandError> {
        self.command(&format!("terms({status:?})"), |v, now| v.terms(now, status))
    }

    pub fn session_start(&mut self, data: Option<Value>) -> Result<(), CommandError> {
        let call = format!("session_start({})", opt_json(&data));
        self.command(&call, |v, now| v.session_start(now, data))
    }

    pub fn session_end(&mut self, data: Option<Value>) -> Result<(), CommandError> {
        let call = format!("session_end({})", opt_json(&data));
        self.command(&call, |v, now| v.session_end(now, data))
    }

    pub fn visitor_error(&mut self, data: Value) -> Result<(), CommandError> {
        self.command(&format!("visitor_error({data})"), |v, now| {
            v.visitor_error(now, data)
        })
    }

    pub fn fire(&mut self, kind: &str, data: Option<Value>) -> Result<(), CommandError> {
        let call = format!("fire({kind:?}, {})", opt_json(&data));
        self.command(&call, |v, now| v.fire(now, kind, data))
    }

    pub fn navigate(&mut self, url: &str) -> Result<(), CommandError> {
        self.command(&format!("navigate({url:?})"), |v, now| v.navigate(now, url))
    }

    pub fn focus(&mut self) -> Result<(), CommandError> {
        self.command("focus()", VisitorProtocol::focus)
    }

    /// Opens the latest socket and sends `connected` (keepalive 30).
    pub fn accept(&mut self) {
        self.open_socket();
        self.frame(CONNECTED);
    }
}
