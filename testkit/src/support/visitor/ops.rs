//! Arbitrary sequences of visitor inputs and the invariants every run must keep.
//!
//! A run is a [`Setup`] and a list of [`Op`]s (application commands, virtual time
//! steps, socket events on the current and stale sockets, valid frames, frames of any `type`
//! with any JSON `data` and extra fields, arbitrary text and binary frames of up to 4 KiB and
//! now and then over the limit, HTTP answers with any status and canonical, changed, JSON or
//! arbitrary bodies, failures and stale answers), both `arbitrary::Arbitrary`, so random bytes
//! decode into a run. [`run`] plays it, disconnects at the end, and returns every violation of:
//! - never more than one socket open or opening; frames only on open sockets, `connect`
//!   first and once, never with a token (checked by the [`Harness`] on every output);
//! - keepalives and pings only on a socket that received `connected`;
//! - nothing after `Stopped`, `Stopped` last and once; commands refused after it;
//! - `poll_timeout` never in the past;
//! - reconnect delays within the policy's bounds;
//! - no `Invoke` event for a function outside `GLANCE.` / `GLANCE_COBROWSE.Custom.`.
//!
//! Not the fake peer itself (the generic harness) nor the fuzz target (it calls [`run_bytes`]).

use std::time::Duration;

use arbitrary::Arbitrary;
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::io::{CloseReason, HttpRequestId, SansIo, SocketId};
use glance_presence_protocol::presence::{PresenceData, TermsStatus, Visibility};
use glance_presence_protocol::visitor::{CommandError, VisitorConfig, VisitorEvent};
use glance_presence_protocol::wire::invoke_func_allowed;
use serde_json::Value;

use super::super::harness::pick;
use super::super::{gen, runs};
use super::{Harness, PRESENCE, UNIQUE_ANSWER};

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

/// What a run found.
pub type Report = runs::Report<VisitorCounts>;

/// What only the visitor's runs count.
#[derive(Debug, Default)]
pub struct VisitorCounts {
    /// Sockets that were sent a frame.
    pub sockets: usize,
    /// `k` frames sent.
    pub keepalives: usize,
}

runs::run_ops! {
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
    }
    respond_body: u8
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
pub type BodyChoice = gen::WideBody<VisitorWords>;

/// A frame of any `type` (a visitor's frame type most of the time) with any `data` and extra
/// fields.
pub type AnyFrame = gen::AnyFrame<VisitorWords>;

/// The visitor's vocabulary for arbitrary frames and bodies.
#[derive(Debug, Clone, Arbitrary)]
pub struct VisitorWords;

#[rustfmt::skip]
impl gen::Vocabulary for VisitorWords {
    const WORDS: &'static [&'static str] = &[
        "type", "mtype", "data", "func", "args", "remote", "direct", "directserver",
        "httpsport", "visitorid", "uniqueid", "guesttoken", "keepalive",
        "GLANCE.Cobrowse.VisitorUI.showTerms", "GLANCE_COBROWSE.Custom.x", "127.0.0.1:8080", "",
    ];
    const FRAME_TYPES: &'static [&'static str] = &[
        "connected", "signal", "invoke", "blur", "redirect", "scaledown", "serverclose",
        "error", "visitorsock", "visitorconn", "presence", "k",
    ];
}

pub use gen::Blob;

const FUNCS: [&str; 6] = [
    "GLANCE.Cobrowse.VisitorUI.showTerms",
    "GLANCE_COBROWSE.Custom.hello",
    "alert",
    "GLANCE.",
    "window.GLANCE.x",
    "GLANCE_COBROWSE.other",
];

/// The frames a run sends from the templates.
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
            FrameChoice::Redirect(n) => gen::redirect_frame(n),
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

impl runs::SeedName for Report {
    /// Sockets, connected events, keepalives and events, each capped.
    fn seed_name(&self) -> String {
        let (sockets, keepalives) = (self.counts.sockets.min(3), self.counts.keepalives.min(2));
        let (connected, events) = (self.connected.min(2), (self.events / 8).min(4));
        format!("seed_s{sockets}_c{connected}_k{keepalives}_e{events}")
    }
}

/// Decodes and runs; `None` when the bytes do not decode.
pub fn run_bytes(data: &[u8]) -> Option<Report> {
    runs::decode(data).map(|(setup, ops): (Setup, Vec<Op>)| run(&setup, &ops))
}

/// Answers the outstanding request picked by `n` with `status` and the body made for its
/// URL.
fn respond(h: &mut Harness, n: u8, status: u16, body: impl FnOnce(&str) -> Vec<u8>) {
    if let Some((id, request)) = h.pick_pending(n) {
        let body = body(&request.url);
        h.answer(id, status, body);
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
            Op::Connect => h.core.connect(now),
            Op::Disconnect(n) => {
                if *n < 8 {
                    h.core.disconnect(now);
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
                h.core.presence(now, d)
            }
            Op::Navigate(n) => h
                .core
                .navigate(now, format!("https://shop.example.com/n{n}")),
            Op::Hide => h.core.visibility(now, Visibility::Hidden),
            Op::Show => h.core.visibility(now, Visibility::Visible),
            Op::Focus => h.core.focus(now),
            Op::Terms(n) => {
                let status = [
                    TermsStatus::Displayed,
                    TermsStatus::Accepted,
                    TermsStatus::Declined,
                ][*n as usize % 3];
                h.core.terms(now, status)
            }
            Op::SessionStart => h.core.session_start(now, None),
            Op::SessionEnd => h.core.session_end(now, Some(serde_json::json!({"x": 1}))),
            Op::VisitorError => h
                .core
                .visitor_error(now, serde_json::json!({"code": "conndrop"})),
            Op::Fire(n) => {
                let kind = ["custom", "presence", "", "blur", "cart"][*n as usize % 5];
                h.core.fire(now, kind, Some(serde_json::json!(n)))
            }
            Op::Advance(n) => {
                h.advance(runs::advance_step(*n));
                Ok(())
            }
            Op::SpuriousTimeout => {
                h.spurious_timeout();
                Ok(())
            }
            Op::OpenSocket => {
                if h.last_socket.is_some() {
                    h.open_socket();
                }
                Ok(())
            }
            Op::Accept(k) => {
                if h.last_socket.is_some() {
                    h.open_socket();
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
                if h.last_socket.is_some() {
                    h.binary_frame(bytes);
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
                if h.last_socket.is_none() {
                    // Nothing to send it on.
                } else if *binary {
                    h.binary_frame(&blob.0);
                } else {
                    h.frame(&String::from_utf8_lossy(&blob.0));
                }
                Ok(())
            }
            Op::Oversized => {
                if h.last_socket.is_some() {
                    let text = format!(r#"{{"type":"signal","data":"{}"}}"#, "x".repeat(70_000));
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
                            h.close_socket_on(socket, CloseReason::ClosedLocally);
                        } else {
                            h.frame_on(socket, &FrameChoice::Blur.text());
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
                respond(&mut h, *n, *status, |url| body.bytes(|n| canonical(url, n)));
                Ok(())
            }
            Op::FailHttp { pick: n } => {
                if let Some((id, _)) = h.pick_pending(*n) {
                    h.fail(id, "connection refused");
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
                    h.answer(id, 200, b"{}".to_vec());
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
            if !h.core.is_stopped() {
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
    if h.core.poll_timeout().is_some() || h.core.poll_output().is_some() {
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
    report.counts.sockets = h.sent.len();
    report.connected = h.count(|e| matches!(e, VisitorEvent::Connected { .. }));
    report.counts.keepalives = h
        .frames()
        .iter()
        .filter(|(_, text)| text == r#"{"type":"k"}"#)
        .count();
    report.violations = h.violations;
    report
}
