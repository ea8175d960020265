//! Arbitrary sequences of agent inputs and the invariants every run must keep.
//!
//! A run is a [`Setup`] (which configuration) and a list of [`Op`]s: application commands,
//! virtual time steps, socket events (current and stale sockets), frames from a table of valid
//! shapes, frames of any `type` with any JSON `data` and extra fields, arbitrary text and binary
//! frames of up to 4 KiB (now and then over the frame limit), and HTTP answers (canonical
//! bodies per endpoint, canonical bodies with a field changed, any JSON, arbitrary bytes, any
//! status; transport failures, stale ids). Both are `arbitrary::Arbitrary`, so the fuzz target, the
//! corpus replay and the property tests decode the same bytes into the same run.
//!
//! [`run`] plays the ops through a [`Harness`], disconnects at the end, and returns a
//! [`Report`] listing every invariant violation:
//! - every request resolves exactly once (no outcome twice, none for an unknown id, none
//!   missing after the final disconnect);
//! - no deadline in the past (`poll_timeout() >= now` after every step);
//! - no event after `stopped`, and `stopped` at most once;
//! - no visitor-left (present → absent) before the grace period has passed since the last
//!   "visitor up" frame (any frame on the open socket that decodes as `visitorsock` or
//!   `visitorconn` with `connected: true`, whichever op sent it);
//! - never more than one socket open or opening;
//! - every reconnect delay within the policy's bounds.
//!
//! Not the fake peer itself (the generic harness) nor the fuzz target (it calls [`run_bytes`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use glance_presence_protocol::agent::{
    AgentEvent, CommandError, RequestId, SignalRoute, VisitorPresence,
};
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::io::{CloseReason, SansIo, SocketId};
use glance_presence_protocol::wire::{ServerFrame, DEFAULT_MAX_FRAME_BYTES};

use super::super::harness;
use super::super::{gen, runs};
use super::{Harness, FIND_FOUND, UNIX_START};

/// Which configuration a run uses.
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    pub credentials: bool,
    pub socket_route: bool,
    pub glance_backoff: bool,
    pub discovery: bool,
    /// Whether the fake peer answers pings.
    pub auto_pong: bool,
    /// 1 + this % 4: a small queue bound so "queue full" happens.
    pub queue_bound: u8,
    pub seed: u64,
}

runs::run_ops! {
    /// One step of a run.
    #[derive(Debug, Clone, Arbitrary)]
    pub enum Op {
        Connect,
        /// Stops the agent when the byte is below 16 (so runs do not end too soon); otherwise a
        /// spurious timeout.
        Disconnect(u8),
        Lookup,
        Query,
        Signal(u8),
        Invoke {
            allowed: bool,
        },
        /// < 128: that many × 50 ms; otherwise (n - 128) × 2 s.
        Advance(u8),
        SpuriousTimeout,
        /// Completes the handshake of the latest socket.
        OpenSocket,
        /// The cooperative peer: connects if needed, answers every outstanding HTTP request with
        /// its first canonical 200 body, opens the socket and sends `connected`.
        Establish,
        Frame(FrameChoice),
        /// `visitorsock` (frequent on purpose: presence changes are what the agent is for).
        VisitorSock(bool),
        /// `visitorconn`.
        VisitorConn(bool),
        Garbage(SmallText),
        Binary(SmallBytes),
        /// A frame of any type and data, or a blob.
        Wide(Wide),
    }
    respond_body: BodyChoice
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum FrameChoice {
    Connected(Option<u8>),
    VisitorSock(bool),
    VisitorConn(bool),
    Presence(u8),
    Terms(u8),
    Visibility(bool),
    SessionStart,
    SessionEnd,
    VisitorError,
    Redirect(u8),
    ServerClose,
    ScaleDown,
    Blur,
    ErrorAuth,
    ErrorOther,
    Signal,
    Invoke,
    Unknown,
}

/// The frames beyond the templates (one variant of [`Op`], so they do not crowd out the steps
/// that make a run reach presence changes).
#[derive(Debug, Clone, Arbitrary)]
pub enum Wide {
    /// A frame of any `type` with any `data` and extra top-level fields.
    AnyFrame(AnyFrame),
    /// Up to 4 KiB (now and then over the frame limit) as a text frame (lossy UTF-8) or, when
    /// the flag is set, a binary frame.
    Blob(Blob, bool),
}

/// A frame of any `type` (an agent's frame type most of the time) with any `data` and extra
/// fields.
pub type AnyFrame = gen::AnyFrame<AgentWords>;

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum CloseChoice {
    Peer,
    Transport,
    Refused401,
    Refused500,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum StatusChoice {
    Ok,
    Ok2,
    Ok3,
    Unauthorized,
    Forbidden,
    NotFound,
    ServerError,
    Unavailable,
    /// Any status, 0 and 600+ included.
    Any(u16),
}

#[derive(Debug, Clone, Arbitrary)]
pub enum BodyChoice {
    Canonical(u8),
    Empty,
    Garbage(SmallText),
    Wide(WideBody),
}

/// What the agent's arbitrary frames and bodies draw from: words that mean something to the
/// agent (strings and keys now and then) and every server frame type it knows.
#[derive(Debug, Clone, Arbitrary)]
pub struct AgentWords;

#[rustfmt::skip]
impl gen::Vocabulary for AgentWords {
    const WORDS: &'static [&'static str] = &[
        "type", "mtype", "data", "connected", "keepalive", "direct", "visitorfound",
        "visitorpresent", "present", "presence", "url", "error", "detail", "authorization",
        "connfail", "127.0.0.1:8080", "1699999990.0", "",
    ];
    const FRAME_TYPES: &'static [&'static str] = &[
        "connected", "visitorsock", "visitorconn", "presence", "visibility", "terms",
        "visitorsessionstart", "visitorsessionend", "visitorerror", "redirect", "serverclose",
        "scaledown", "blur", "error", "signal", "invoke", "k",
    ];
}

/// The bodies beyond the canonical ones (one variant of [`BodyChoice`], so canonical answers
/// stay frequent).
pub type WideBody = gen::WideBody<AgentWords>;

pub use gen::Blob;

/// Up to 255 bytes, read as (lossy) UTF-8 text, so one op never swallows the whole input.
#[derive(Debug, Clone)]
pub struct SmallText(pub String);

/// Up to 255 raw bytes.
#[derive(Debug, Clone)]
pub struct SmallBytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for SmallBytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u8::arbitrary(u)?);
        let len = len.min(u.len());
        Ok(SmallBytes(u.bytes(len)?.to_vec()))
    }
}

impl<'a> Arbitrary<'a> for SmallText {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let SmallBytes(bytes) = SmallBytes::arbitrary(u)?;
        Ok(SmallText(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

impl FrameChoice {
    pub fn text(self) -> String {
        match self {
            FrameChoice::Connected(Some(k)) => format!(r#"{{"type":"connected","keepalive":{k}}}"#),
            FrameChoice::Connected(None) => r#"{"type":"connected"}"#.to_owned(),
            FrameChoice::VisitorSock(c) => {
                format!(r#"{{"type":"visitorsock","data":{{"connected":{c}}}}}"#)
            }
            FrameChoice::VisitorConn(c) => {
                format!(r#"{{"type":"visitorconn","data":{{"connected":{c}}}}}"#)
            }
            FrameChoice::Presence(n) => format!(
                r#"{{"type":"presence","data":{{"url":"https://shop.example.com/p{}","browser":"chrome","k{}":{n}}}}}"#,
                n % 5,
                n % 3
            ),
            FrameChoice::Terms(n) => {
                let status =
                    ["displayed", "accepted", "declined", "ACCEPTED", "bogus"][n as usize % 5];
                format!(r#"{{"type":"terms","data":{{"status":"{status}"}}}}"#)
            }
            FrameChoice::Visibility(hidden) => format!(
                r#"{{"type":"visibility","data":{{"visibility":"{}"}}}}"#,
                if hidden { "hidden" } else { "visible" }
            ),
            FrameChoice::SessionStart => r#"{"type":"visitorsessionstart"}"#.to_owned(),
            FrameChoice::SessionEnd => r#"{"type":"visitorsessionend","data":{"x":1}}"#.to_owned(),
            FrameChoice::VisitorError => {
                r#"{"type":"visitorerror","data":{"code":"conndrop","msg":"Connect failed"}}"#
                    .to_owned()
            }
            FrameChoice::Redirect(n) => gen::redirect_frame(n),
            FrameChoice::ServerClose => r#"{"type":"serverclose"}"#.to_owned(),
            FrameChoice::ScaleDown => r#"{"type":"scaledown"}"#.to_owned(),
            FrameChoice::Blur => r#"{"type":"blur"}"#.to_owned(),
            FrameChoice::ErrorAuth => {
                r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#
                    .to_owned()
            }
            FrameChoice::ErrorOther => {
                r#"{"type":"error","data":{"error":"connfail","detail":"other"}}"#.to_owned()
            }
            FrameChoice::Signal => r#"{"type":"signal","data":{"hello":1}}"#.to_owned(),
            FrameChoice::Invoke => {
                r#"{"type":"invoke","data":{"func":"GLANCE.x","args":{}}}"#.to_owned()
            }
            FrameChoice::Unknown => r#"{"mtype":"futurething","data":[1,2]}"#.to_owned(),
        }
    }
}

impl StatusChoice {
    pub fn code(self) -> u16 {
        match self {
            StatusChoice::Ok | StatusChoice::Ok2 | StatusChoice::Ok3 => 200,
            StatusChoice::Unauthorized => 401,
            StatusChoice::Forbidden => 403,
            StatusChoice::NotFound => 404,
            StatusChoice::ServerError => 500,
            StatusChoice::Unavailable => 503,
            StatusChoice::Any(code) => code,
        }
    }
}

/// Whether a frame, as the agent would decode it, says the visitor is up.
fn is_up_signal(text: &str) -> bool {
    matches!(
        ServerFrame::decode(text, DEFAULT_MAX_FRAME_BYTES),
        Ok(ServerFrame::VisitorSock { connected: true }
            | ServerFrame::VisitorConn { connected: true })
    )
}

/// A JWT whose payload is `{"exp":<exp>}` (signature not checked by the agent).
pub fn jwt_with_exp(exp: u64) -> String {
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl",
        base64url(format!(r#"{{"exp":{exp}}}"#).as_bytes())
    )
}

/// Base64url without padding (enough for test tokens).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Canonical bodies per endpoint.
fn canonical(url: &str, n: u8) -> String {
    let table: Vec<String> = if url.contains("/findvisitor") {
        vec![
            FIND_FOUND.to_owned(),
            r#"{"visitorfound":false}"#.to_owned(),
            r#"{"visitorfound":false,"directserver":"127.0.0.1","httpsport":8080}"#.to_owned(),
            r#"{"visitorfound":true,"directserver":"127.0.0.2","httpsport":9000}"#.to_owned(),
        ]
    } else if url.contains("/lookupvisitor") {
        vec![
            "{}".to_owned(),
            r#"{"direct":"127.0.0.1:8080","visitorpresent":"1699999990.0","visitorid":"v1","groupid":"12345","url":"https://shop.example.com/","browser":"firefox"}"#.to_owned(),
        ]
    } else if url.contains("/query") {
        vec![
            "{}".to_owned(),
            r#"{"present":true,"sockets":1,"since":"1699999990.0","presence":{"url":"u"},"visibility":"visible","terms":"accepted","insession":false}"#.to_owned(),
        ]
    } else if url.contains("/signalvisitor") {
        vec![
            r#"{"delivered":true}"#.to_owned(),
            r#"{"held":true}"#.to_owned(),
            r#"{"err":"visitornotpresent","msg":"visitor not present"}"#.to_owned(),
        ]
    } else if url.contains("Authorize") {
        vec![
            r#""tok-opaque""#.to_owned(),
            format!(r#""{}""#, jwt_with_exp(UNIX_START + 3600)),
            format!(r#"{{"authToken":"{}","authTokeExp":"x"}}"#, jwt_with_exp(1)),
        ]
    } else if url.contains("GetVisitorSettings3") {
        vec![
            r#"{"presenceUrl":"127.0.0.1:8080","isPresenceLoadBalanced":false}"#.to_owned(),
            r#"{"presenceUrl":"127.0.0.1:8080","isPresenceLoadBalanced":true}"#.to_owned(),
            r#"{"presenceUrl":"","isPresenceLoadBalanced":false}"#.to_owned(),
        ]
    } else {
        vec!["{}".to_owned()]
    };
    table[n as usize % table.len()].clone()
}

/// What a run found.
pub type Report = runs::Report<AgentCounts>;

/// What only the agent's runs count.
#[derive(Debug, Default)]
pub struct AgentCounts {
    /// Requests issued.
    pub requests: usize,
    /// Present → absent transitions seen.
    pub left: usize,
}

/// Plays a run and checks every invariant.
pub fn run(setup: &Setup, ops: &[Op]) -> Report {
    let policy = if setup.glance_backoff {
        ReconnectPolicy::glance()
    } else {
        ReconnectPolicy::default()
    };
    let grace = Duration::from_secs(5);
    let tweak = |b: glance_presence_protocol::agent::AgentConfigBuilder| {
        b.signal_route(if setup.socket_route {
            SignalRoute::Socket
        } else {
            SignalRoute::Rest
        })
        .reconnect_policy(policy)
        .discovery(setup.discovery)
        .command_queue_bound(1 + usize::from(setup.queue_bound % 4))
        .visitor_leave_grace(grace)
        .rng_seed(setup.seed)
    };
    let mut h = if setup.credentials {
        Harness::with_credentials(|b| tweak(b.authorize_duration_minutes(2)))
    } else {
        Harness::new(tweak)
    }
    .quiet();
    h.auto_pong = setup.auto_pong;

    let mut report = Report::default();
    let mut issued: BTreeMap<RequestId, usize> = BTreeMap::new();
    let mut seen_sockets: Vec<SocketId> = Vec::new();
    let mut opened: Vec<SocketId> = Vec::new();
    let mut last_up: Option<Instant> = None;
    let mut checked_events = 0;
    let mut stopped = false;
    let mut last_presence = VisitorPresence::Unknown;

    for op in ops {
        report.steps += 1;
        match op {
            Op::Connect => {
                let _ = h.connect();
            }
            Op::Disconnect(n) if *n < 16 => h.disconnect(),
            Op::Disconnect(_) => h.spurious_timeout(),
            Op::Lookup => {
                let r = h.lookup();
                track(&mut issued, &mut report, r);
            }
            Op::Query => {
                let r = h.query();
                track(&mut issued, &mut report, r);
            }
            Op::Signal(n) => {
                let r = h.signal(serde_json::json!({ "n": n }));
                track(&mut issued, &mut report, r);
            }
            Op::Invoke { allowed } => {
                let func = if *allowed {
                    "GLANCE.Cobrowse.VisitorUI.showTerms"
                } else {
                    "alert"
                };
                let r = h.invoke(func, serde_json::json!({}));
                if !*allowed && r.is_ok() {
                    report
                        .violations
                        .push("invoke: a bad func was accepted".to_owned());
                }
                track(&mut issued, &mut report, r);
            }
            Op::Advance(n) => h.advance(runs::advance_step(*n)),
            Op::SpuriousTimeout => h.spurious_timeout(),
            Op::Establish => {
                let _ = h.connect();
                for _ in 0..6 {
                    while let Some((id, request)) = h.pending_http.first().cloned() {
                        h.answer(id, 200, canonical(&request.url, 0).into_bytes());
                    }
                    if let Some(socket) = h.last_socket {
                        if h.open_sockets.contains(&socket) && !opened.contains(&socket) {
                            opened.push(socket);
                            h.open_socket();
                            h.frame(r#"{"type":"connected","keepalive":30}"#);
                        }
                    }
                }
            }
            Op::OpenSocket => {
                if let Some(socket) = h.last_socket {
                    if h.open_sockets.contains(&socket) && !opened.contains(&socket) {
                        opened.push(socket);
                        h.open_socket();
                    }
                }
            }
            Op::VisitorSock(up) | Op::VisitorConn(up) => {
                let choice = match op {
                    Op::VisitorSock(_) => FrameChoice::VisitorSock(*up),
                    _ => FrameChoice::VisitorConn(*up),
                };
                send_frame(&mut h, &opened, &mut last_up, &choice.text());
            }
            Op::Frame(choice) => send_frame(&mut h, &opened, &mut last_up, &choice.text()),
            Op::Garbage(text) => send_frame(&mut h, &opened, &mut last_up, &text.0),
            Op::Wide(Wide::AnyFrame(frame)) => send_frame(&mut h, &opened, &mut last_up, &frame.0),
            Op::Wide(Wide::Blob(blob, binary)) => {
                if *binary && h.last_socket.is_some() {
                    h.binary_frame(&blob.0);
                } else if !*binary {
                    let text = String::from_utf8_lossy(&blob.0).into_owned();
                    send_frame(&mut h, &opened, &mut last_up, &text);
                }
            }
            Op::Binary(data) if h.last_socket.is_some() => h.binary_frame(&data.0),
            Op::Binary(_) => {}
            Op::Pong => {
                if h.last_socket.is_some() {
                    h.pong();
                }
            }
            Op::Close(choice) => {
                if let Some(socket) = h.last_socket {
                    if h.open_sockets.contains(&socket) {
                        let reason = match choice {
                            CloseChoice::Peer => CloseReason::ClosedByPeer {
                                code: Some(1000),
                                reason: "bye".to_owned(),
                            },
                            CloseChoice::Transport => CloseReason::TransportError {
                                detail: "reset".to_owned(),
                            },
                            CloseChoice::Refused401 => {
                                CloseReason::HandshakeRefused { status: 401 }
                            }
                            CloseChoice::Refused500 => {
                                CloseReason::HandshakeRefused { status: 500 }
                            }
                        };
                        h.close_socket(reason);
                    }
                }
            }
            Op::Stale { pick, close } => {
                let older: Vec<SocketId> = seen_sockets
                    .iter()
                    .copied()
                    .filter(|s| Some(*s) != h.last_socket)
                    .collect();
                if !older.is_empty() {
                    let socket = older[*pick as usize % older.len()];
                    if *close {
                        let reason = CloseReason::ClosedByPeer {
                            code: None,
                            reason: String::new(),
                        };
                        h.close_socket_on(socket, reason);
                    } else {
                        h.frame_on(socket, &FrameChoice::VisitorSock(false).text());
                    }
                }
            }
            Op::Respond { pick, status, body } => {
                if let Some((id, request)) = h.pick_pending(*pick) {
                    let bytes = match body {
                        BodyChoice::Canonical(n) => canonical(&request.url, *n).into_bytes(),
                        BodyChoice::Empty => Vec::new(),
                        BodyChoice::Garbage(g) => g.0.clone().into_bytes(),
                        BodyChoice::Wide(wide) => wide.bytes(|n| canonical(&request.url, n)),
                    };
                    let status = if request.url.contains("/signalvisitor")
                        && matches!(body, BodyChoice::Canonical(_))
                        && bytes.windows(17).any(|w| w == b"visitornotpresent")
                    {
                        404
                    } else {
                        status.code()
                    };
                    h.answer(id, status, bytes);
                }
            }
            Op::FailHttp { pick } => {
                if let Some((id, _)) = h.pick_pending(*pick) {
                    h.fail(id, "connection refused");
                }
            }
            Op::StaleHttp { pick } => {
                if let Some(id) = harness::pick(&h.answered_http, *pick) {
                    h.answer(id, 200, b"{}".to_vec());
                }
            }
        }
        if let Some(socket) = h.last_socket {
            if !seen_sockets.contains(&socket) {
                seen_sockets.push(socket);
            }
        }
        check_step(
            &h,
            &mut report,
            &mut issued,
            &mut checked_events,
            &mut stopped,
            &mut last_presence,
            last_up,
            grace,
            &policy,
        );
    }
    // The end: stop, and everything must be resolved.
    h.disconnect();
    check_step(
        &h,
        &mut report,
        &mut issued,
        &mut checked_events,
        &mut stopped,
        &mut last_presence,
        last_up,
        grace,
        &policy,
    );
    for (id, count) in &issued {
        if *count != 1 {
            report
                .violations
                .push(format!("resolve: {id} resolved {count} times"));
        }
    }
    if h.core.poll_timeout().is_some() {
        report
            .violations
            .push("stopped: a deadline remains after stopping".to_owned());
    }
    report.counts.requests = issued.len();
    report.events = h.events.len();
    report
}

/// Connected events, visitors leaving, requests issued and events, each capped.
impl runs::SeedName for Report {
    fn seed_name(&self) -> String {
        let connected = self.connected.min(2);
        let left = self.counts.left.min(1);
        let requests = self.counts.requests.min(3);
        let events = (self.events / 20).min(3);
        format!("seed_c{connected}_l{left}_r{requests}_e{events}")
    }
}

/// Decodes and runs; `None` when the bytes do not decode.
pub fn run_bytes(data: &[u8]) -> Option<Report> {
    runs::decode(data).map(|(setup, ops): (Setup, Vec<Op>)| run(&setup, &ops))
}

/// Sends a frame on the latest socket (if any), noting a "visitor up" signal when the socket
/// is open.
fn send_frame(h: &mut Harness, opened: &[SocketId], last_up: &mut Option<Instant>, text: &str) {
    if let Some(socket) = h.last_socket {
        if h.open_sockets.contains(&socket) && opened.contains(&socket) && is_up_signal(text) {
            *last_up = Some(h.now);
        }
        h.frame(text);
    }
}

fn track(
    issued: &mut BTreeMap<RequestId, usize>,
    report: &mut Report,
    result: Result<RequestId, CommandError>,
) {
    if let Ok(id) = result {
        if issued.insert(id, 0).is_some() {
            report
                .violations
                .push(format!("resolve: id {id} issued twice"));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_step(
    h: &Harness,
    report: &mut Report,
    issued: &mut BTreeMap<RequestId, usize>,
    checked_events: &mut usize,
    stopped: &mut bool,
    last_presence: &mut VisitorPresence,
    last_up: Option<Instant>,
    grace: Duration,
    policy: &ReconnectPolicy,
) {
    if let Some(deadline) = h.core.poll_timeout() {
        if deadline < h.now {
            report.violations.push(format!(
                "deadline: poll_timeout {:?} before now",
                h.now - deadline
            ));
        }
    }
    if h.open_sockets.len() > 1 {
        report
            .violations
            .push(format!("sockets: {} open at once", h.open_sockets.len()));
    }
    for (at, event) in &h.events[*checked_events..] {
        if *stopped {
            report
                .violations
                .push(format!("stopped: event after stopped: {event:?}"));
        }
        match event {
            AgentEvent::Stopped { .. } => *stopped = true,
            AgentEvent::Connected { .. } => report.connected += 1,
            AgentEvent::RequestOutcome { id, .. } => match issued.get_mut(id) {
                Some(count) => *count += 1,
                None => report
                    .violations
                    .push(format!("resolve: outcome for unknown {id}")),
            },
            AgentEvent::VisitorPresence { state, .. } => {
                if *last_presence == VisitorPresence::Present && *state == VisitorPresence::Absent {
                    report.counts.left += 1;
                    let now = h.start + *at;
                    if let Some(up) = last_up {
                        if now.duration_since(up) < grace {
                            report.violations.push(format!(
                                "grace: visitor left {:?} after the last up signal",
                                now.duration_since(up)
                            ));
                        }
                    }
                }
                *last_presence = *state;
            }
            AgentEvent::Reconnecting { attempt, delay_ms } => {
                let (low, high) = policy.bounds(*attempt);
                let (low, high) = (low.as_millis() as u64, high.as_millis() as u64);
                if *delay_ms < low || *delay_ms > high {
                    report.violations.push(format!(
                        "backoff: attempt {attempt} waits {delay_ms} ms, outside {low}..={high}"
                    ));
                }
            }
            _ => {}
        }
    }
    *checked_events = h.events.len();
}
