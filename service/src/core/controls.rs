//! Test controls: an admin interface that conformance runs and end-to-end tests use to make
//! the reference service misbehave on purpose, one decision at a time.
//!
//! Off by default. [`ServiceCore::enable_controls`] switches them on with an admin token (the
//! server does so only when its configuration names one, and the configuration refuses a
//! token unless the service listens on a loopback address). Every control is a `POST` to a path
//! under [`CONTROL_PREFIX`] with `Authorization: Bearer <admin token>` and a JSON body; with
//! the controls off the paths are `404 notfound` like any unknown path, and a missing or wrong
//! admin token is `401`. Answers are `200 {"ok":true,…}` or `400 {"err":"badrequest",…}`; the
//! socket controls (`drop`, `send`, `silence`) answer `{"ok":true,"sockets":N,"at_ms":T}`, with
//! T on the clock of the observed log.
//!
//! | path | body | effect |
//! |---|---|---|
//! | `/control/drop` | `{"groupid":G,"visitorid":V,"role":"agent"\|"visitor"\|"all"}` | the chosen sockets are dropped without a close frame |
//! | `/control/send` | the same, plus `"frame":{…}`, or `"text":"…"` (optional `"repeat":R`) | the frame (any service frame: `redirect`, `scaledown`, `serverclose`, or anything else) is sent on the chosen sockets; or the raw text, repeated R times (1 when missing), as one text message: not JSON, or over the frame limit; at most [`MAX_INJECTED_TEXT_FACTOR`] × the frame limit (128 KiB by default), bigger is `400` |
//! | `/control/fail` | `{"count":N,"status":S}` (optional `"path":"/findvisitor"`) | the next N REST answers (of that path) are `S {"err":"injected",…}` |
//! | `/control/delay` | `{"count":N,"millis":M}` (optional `"path":"/findvisitor"`) | the next N REST answers (of that path) are decided and logged at once but written M ms later; M is 1 to [`MAX_DELAY_MILLIS`] (30 s) |
//! | `/control/pause` | `{"groupid":G,"visitorid":V,"paused":true\|false}` | while paused, no frame is sent to that visitor's visitor sockets (the WebSocket layer still answers pings) |
//! | `/control/silence` | the target of `/control/drop` | the chosen sockets, as open now, go silent until they close: no frame, no close frame and, from their first ping on, no pong either (the service stops reading them and discards what they send; it still counts as activity); sockets opened later are not affected |
//! | `/control/token_lifetime` | `{"secs":N}` (optional `"count":C`), or `{"secs":null}` | the tokens `Authorize` issues from now on (the next C only, when given) live N s instead of the duration asked for; N is 1 to [`MAX_TOKEN_LIFETIME_SECS`] (2 h); `null` goes back to the duration asked for |
//! | `/control/break` | `{"no_signal_hold":b,"lookup_wrong_shape":b,"no_close_handshake":b}` | test-only broken behaviour (see [`Breakage`]) |
//! | `/control/reset` | `{}` | clears failures, delays, pauses, silences (of sockets still to ping), token lifetimes and breakage |
//! | `/control/events` | `{"since":N}` (optional `"groupid"`, `"visitorid"`) | read-only: what agents did, as observed here (see [`Observed`]) |
//!
//! While the controls are on, the service also keeps a bounded log of what agents do on the
//! wire ([`OBSERVED_BOUND`] entries, oldest dropped first): agent sockets attached (with the
//! expiry of the token they connected with) and gone, the keepalives and WebSocket pings they
//! send, and every REST answer (for `Authorize`, the expiry of the token issued). No token is
//! ever logged, only its `exp`. The client conformance suite reads it through
//! `/control/events` to check a client's reconnects, keepalives and requests.

use std::collections::{HashSet, VecDeque};

use glance_presence_protocol::{GroupId, ServerFrame, VisitorId};
use serde_json::{json, Value};

use super::rest::{bad_request, RestResponse};
use super::timers::VisitorKey;
use super::{CloseCause, ConnId, ServiceCore};
use crate::core::rest::agent::bearer_token;
use std::time::Instant;

/// The admin token of the test controls. `Debug` shows `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// An admin token: at least 16 characters, no whitespace or control characters (it goes
    /// into an `Authorization` header).
    pub fn new(token: impl Into<String>) -> Result<Self, crate::ConfigError> {
        let token = token.into();
        if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(crate::ConfigError::Invalid(
                "the admin token must be at least 16 characters without whitespace".into(),
            ));
        }
        Ok(AdminToken(token))
    }

    /// The token itself.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Paths of the test controls start with this.
pub const CONTROL_PREFIX: &str = "/control/";

/// Deliberately broken behaviours, for showing that a conformance suite can fail. Each one
/// breaks exactly one requirement family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Breakage {
    /// Signals to a present visitor without a socket are refused as not present instead of
    /// held.
    pub no_signal_hold: bool,
    /// `lookupvisitor` answers a present visitor as `{"visitor":{…}}` instead of the flat
    /// record.
    pub lookup_wrong_shape: bool,
    /// A client's Close frame is not answered: the connection is dropped.
    pub no_close_handshake: bool,
}

/// The longest delay `/control/delay` injects, in milliseconds.
pub const MAX_DELAY_MILLIS: u64 = 30_000;
/// The longest token lifetime `/control/token_lifetime` sets, in seconds (the longest
/// `Authorize` grants anyway).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 7_200;
/// Text injected by `/control/send` is at most this many times the frame limit: over the limit,
/// so a client's size check is exercised, and within what the WebSocket layer writes.
pub const MAX_INJECTED_TEXT_FACTOR: usize = 2;

/// Something to do to the next N REST answers (of one path, when given): an injected status
/// (`/control/fail`) or a delay (`/control/delay`).
#[derive(Debug, Clone)]
struct NextAnswers<T> {
    remaining: u32,
    path: Option<String>,
    what: T,
}

/// What `slot` says for an answer on `path`, if anything (counts it down, emptying the slot
/// after the last).
fn take_next<T: Copy>(slot: &mut Option<NextAnswers<T>>, path: &str) -> Option<T> {
    let next = slot.as_mut()?;
    if next.path.as_deref().is_some_and(|p| p != path) {
        return None;
    }
    next.remaining = next.remaining.saturating_sub(1);
    let what = next.what;
    if next.remaining == 0 {
        *slot = None;
    }
    Some(what)
}

/// The lifetime of the tokens `Authorize` issues, set by `/control/token_lifetime`.
#[derive(Debug, Clone, Copy)]
struct TokenLifetime {
    secs: u64,
    /// How many tokens it still applies to (`None`: until cleared).
    remaining: Option<u32>,
}

/// What the driver does with a WebSocket ping it read (see [`ServiceCore::handle_ping`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingAnswer {
    /// Let the WebSocket layer answer it with a pong, as usual.
    Pong,
    /// The socket was silenced (`/control/silence`): stop reading it, so that no pong is
    /// written, and discard what it sends until it closes, reporting the bytes as activity.
    Withhold,
}

/// How many observations the log keeps.
pub const OBSERVED_BOUND: usize = 4096;

/// One thing an agent did, as the service saw it (reported by `/control/events`).
#[derive(Debug, Clone)]
pub struct Observed {
    /// Its number in the log (from 0; `since` in `/control/events` counts these).
    pub seq: u64,
    /// Milliseconds since the service started.
    pub at_ms: u64,
    /// `open` (an agent socket attached after its `connect`), `close` (it is gone),
    /// `keepalive` (it sent `k`), `ping` (it sent a WebSocket ping) or `rest` (a REST answer).
    pub kind: &'static str,
    /// The visitor, when the socket or request named one.
    pub visitor: Option<VisitorKey>,
    /// The socket (`open`, `close`, `keepalive`).
    pub conn: Option<u64>,
    /// The path (`rest`).
    pub path: Option<String>,
    /// The answer's status (`rest`).
    pub status: Option<u16>,
    /// Whether the request carried `Authorization: Bearer` (`rest`).
    pub bearer: bool,
    /// The `exp` (Unix seconds) of the token an agent socket connected with (`open`), or of
    /// the token `Authorize` issued (`rest`). Never the token itself.
    pub token_exp: Option<u64>,
}

impl Observed {
    fn to_json(&self) -> Value {
        let mut entry = json!({ "seq": self.seq, "at_ms": self.at_ms, "kind": self.kind });
        if let Some((group, visitor)) = &self.visitor {
            entry["groupid"] = json!(group.get());
            entry["visitorid"] = json!(visitor.as_str());
        }
        if let Some(conn) = self.conn {
            entry["conn"] = json!(conn);
        }
        if let Some(path) = &self.path {
            entry["path"] = json!(path);
            entry["bearer"] = json!(self.bearer);
        }
        if let Some(status) = self.status {
            entry["status"] = json!(status);
        }
        if let Some(exp) = self.token_exp {
            entry["token_exp"] = json!(exp);
        }
        entry
    }
}

/// The state of the test controls.
#[derive(Debug, Default)]
pub struct Controls {
    token: Option<String>,
    failures: Option<NextAnswers<u16>>,
    delays: Option<NextAnswers<std::time::Duration>>,
    token_lifetime: Option<TokenLifetime>,
    paused: HashSet<VisitorKey>,
    silenced: HashSet<ConnId>,
    breakage: Breakage,
    observed: VecDeque<Observed>,
    next_seq: u64,
}

impl Controls {
    /// Whether the controls are on.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// The broken behaviours switched on.
    pub fn breakage(&self) -> Breakage {
        self.breakage
    }

    pub(super) fn is_paused(&self, key: &VisitorKey) -> bool {
        !self.paused.is_empty() && self.paused.contains(key)
    }

    /// Adds an observation to the log (nothing when the controls are off).
    pub(super) fn observe(&mut self, mut entry: Observed) {
        if !self.enabled() {
            return;
        }
        entry.seq = self.next_seq;
        self.next_seq += 1;
        if self.observed.len() >= OBSERVED_BOUND {
            self.observed.pop_front();
        }
        self.observed.push_back(entry);
    }

    /// Whether `/control/silence` silenced this socket.
    pub(super) fn is_silenced(&self, conn: ConnId) -> bool {
        !self.silenced.is_empty() && self.silenced.contains(&conn)
    }

    /// Forgets what the controls knew of a socket that is gone.
    pub(super) fn forget_conn(&mut self, conn: ConnId) {
        self.silenced.remove(&conn);
    }

    /// The delay before writing the answer to a REST request on `path`, if one is due (counts
    /// it down).
    pub(super) fn take_delay(&mut self, path: &str) -> Option<std::time::Duration> {
        take_next(&mut self.delays, path)
    }

    /// The lifetime of the next token `Authorize` issues, when a control set one (counts it
    /// down).
    pub(super) fn take_token_lifetime(&mut self) -> Option<u64> {
        let lifetime = self.token_lifetime.as_mut()?;
        let secs = lifetime.secs;
        if let Some(remaining) = lifetime.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.token_lifetime = None;
            }
        }
        Some(secs)
    }

    /// The injected answer for a REST request on `path`, if one is due (counts it down).
    pub(super) fn take_failure(&mut self, path: &str) -> Option<RestResponse> {
        let status = take_next(&mut self.failures, path)?;
        let mut response = RestResponse::error(status, "injected", "failure injected by a test");
        if status == 503 {
            response.headers.push(("Retry-After", "1".to_owned()));
        }
        Some(response)
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Compares two strings without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn ok(extra: Value) -> RestResponse {
    let mut body = json!({ "ok": true });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    RestResponse::json(200, &body)
}

fn target(body: &Value) -> Result<VisitorKey, RestResponse> {
    let group = match body.get("groupid") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad_request("groupid is missing")),
    };
    let group: GroupId = group.parse().map_err(bad_request)?;
    let visitor = body
        .get("visitorid")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request("visitorid is missing"))?;
    Ok((group, VisitorId::new(visitor).map_err(bad_request)?))
}

fn flag(body: &Value, name: &str) -> bool {
    body.get(name).and_then(Value::as_bool).unwrap_or(false)
}

impl ServiceCore {
    /// Logs what an agent socket did (`open` with its token's `exp`, `close`, `keepalive`,
    /// `ping`) when the controls are on.
    pub(super) fn observe_agent(
        &mut self,
        now: Instant,
        kind: &'static str,
        conn: ConnId,
        key: &VisitorKey,
        token_exp: Option<u64>,
    ) {
        if self.controls.enabled() {
            let at_ms = millis(now.saturating_duration_since(self.epoch));
            self.controls.observe(Observed {
                seq: 0,
                at_ms,
                kind,
                visitor: Some(key.clone()),
                conn: Some(conn.0),
                path: None,
                status: None,
                bearer: false,
                token_exp,
            });
        }
    }

    /// Logs a REST answer (with the `exp` of the token it issued, for `Authorize`) when the
    /// controls are on.
    pub(super) fn observe_rest(
        &mut self,
        now: Instant,
        path: &str,
        query: Option<&str>,
        authorization: Option<&str>,
        status: u16,
        token_exp: Option<u64>,
    ) {
        if !self.controls.enabled() || path.starts_with(CONTROL_PREFIX) {
            return;
        }
        let q = crate::query::QueryParams::parse(query);
        let visitor = q
            .get("groupid")
            .and_then(|g| g.parse::<GroupId>().ok())
            .zip(q.get("visitorid").and_then(|v| VisitorId::new(v).ok()));
        let at_ms = millis(now.saturating_duration_since(self.epoch));
        self.controls.observe(Observed {
            seq: 0,
            at_ms,
            kind: "rest",
            visitor,
            conn: None,
            path: Some(path.to_owned()),
            status: Some(status),
            bearer: bearer_token(authorization).is_some(),
            token_exp,
        });
    }

    /// Switches the test controls on with this admin token (see the module docs). The server
    /// calls it only for a loopback service whose configuration names a token.
    pub fn enable_controls(&mut self, admin_token: &AdminToken) {
        self.controls.token = Some(admin_token.expose_secret().to_owned());
    }

    /// The test controls' state.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Sets the broken behaviours directly (tests and simulations; the admin interface does the
    /// same through `/control/break`).
    pub fn set_breakage(&mut self, breakage: Breakage) {
        self.controls.breakage = breakage;
    }

    /// Answers a request under [`CONTROL_PREFIX`] (`None`: the controls are off, answer as for
    /// an unknown path).
    pub(super) fn handle_control(
        &mut self,
        now: Instant,
        path: &str,
        authorization: Option<&str>,
        body: Option<&[u8]>,
    ) -> Option<RestResponse> {
        let token = self.controls.token.as_deref()?;
        let authorized = bearer_token(authorization).is_some_and(|t| same_secret(t, token));
        if !authorized {
            return Some(RestResponse::error(
                401,
                "authorization",
                "admin token missing or wrong",
            ));
        }
        let Some(body) = body else {
            return Some(RestResponse::error(
                413,
                "badrequest",
                "request body too large",
            ));
        };
        let body = match super::rest::json_body(body) {
            Ok(body) => body,
            Err(response) => return Some(response),
        };
        let action = path.strip_prefix(CONTROL_PREFIX).unwrap_or_default();
        let answer = match action {
            "drop" => self.control_sockets(now, &body, SocketAction::Drop),
            "send" => self
                .outgoing(&body)
                .and_then(|action| self.control_sockets(now, &body, action)),
            "silence" => self.control_sockets(now, &body, SocketAction::Silence),
            "fail" => next_answers(&body, "status", |status| {
                status
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (400..=599).contains(s))
                    .ok_or_else(|| bad_request("status must be 400-599"))
            })
            .map(|failures| {
                self.controls.failures = Some(failures);
                ok(json!({}))
            }),
            "delay" => next_answers(&body, "millis", |millis| {
                millis
                    .as_u64()
                    .filter(|m| (1..=MAX_DELAY_MILLIS).contains(m))
                    .map(std::time::Duration::from_millis)
                    .ok_or_else(|| bad_request(format!("millis must be 1 to {MAX_DELAY_MILLIS}")))
            })
            .map(|delays| {
                self.controls.delays = Some(delays);
                ok(json!({}))
            }),
            "token_lifetime" => token_lifetime(&body).map(|lifetime| {
                self.controls.token_lifetime = lifetime;
                ok(json!({}))
            }),
            "pause" => target(&body).map(|key| {
                if flag(&body, "paused") {
                    self.controls.paused.insert(key);
                } else {
                    self.controls.paused.remove(&key);
                }
                ok(json!({}))
            }),
            "break" => {
                self.controls.breakage = Breakage {
                    no_signal_hold: flag(&body, "no_signal_hold"),
                    lookup_wrong_shape: flag(&body, "lookup_wrong_shape"),
                    no_close_handshake: flag(&body, "no_close_handshake"),
                };
                Ok(ok(json!({})))
            }
            "events" => self.control_events(&body),
            "reset" => {
                self.controls.failures = None;
                self.controls.delays = None;
                self.controls.token_lifetime = None;
                self.controls.silenced.clear();
                self.controls.paused.clear();
                self.controls.breakage = Breakage::default();
                Ok(ok(json!({})))
            }
            _ => Err(RestResponse::error(404, "notfound", "no such control")),
        };
        tracing::info!(action, "test control");
        Some(answer.unwrap_or_else(|response| response))
    }

    /// The log from `since` on, of one visitor (and the requests that name none) when the
    /// body names one.
    fn control_events(&self, body: &Value) -> Result<RestResponse, RestResponse> {
        let since = body.get("since").and_then(Value::as_u64).unwrap_or(0);
        let only = if body.get("visitorid").is_some() {
            Some(target(body)?)
        } else {
            None
        };
        let events: Vec<Value> = self
            .controls
            .observed
            .iter()
            .filter(|o| o.seq >= since)
            .filter(|o| match (&only, &o.visitor) {
                (Some(key), Some(visitor)) => key == visitor,
                _ => true,
            })
            .map(Observed::to_json)
            .collect();
        Ok(ok(
            json!({ "next": self.controls.next_seq, "events": events }),
        ))
    }

    /// What `/control/send` sends: a service frame (`"frame"`) or raw text (`"text"`, repeated
    /// `"repeat"` times), bounded.
    fn outgoing(&self, body: &Value) -> Result<SocketAction, RestResponse> {
        match (body.get("frame"), body.get("text")) {
            (Some(frame), None) => ServerFrame::decode(
                &frame.to_string(),
                self.settings.max_frame_bytes.max(1 << 16),
            )
            .map(SocketAction::Send)
            .map_err(|e| bad_request(format!("frame: {e}"))),
            (None, Some(Value::String(text))) => {
                let repeat = match body.get("repeat") {
                    None => 1,
                    Some(r) => r
                        .as_u64()
                        .and_then(|r| usize::try_from(r).ok())
                        .filter(|r| *r > 0)
                        .ok_or_else(|| bad_request("repeat must be a positive integer"))?,
                };
                let bound = MAX_INJECTED_TEXT_FACTOR * self.settings.max_frame_bytes;
                match text.len().checked_mul(repeat) {
                    Some(len) if len > 0 && len <= bound => {
                        Ok(SocketAction::SendText(text.repeat(repeat)))
                    }
                    _ => Err(bad_request(format!(
                        "text times repeat must be 1 to {bound} bytes"
                    ))),
                }
            }
            (None, Some(_)) => Err(bad_request("text must be a string")),
            (Some(_), Some(_)) => Err(bad_request("send either frame or text, not both")),
            (None, None) => Err(bad_request("frame or text is missing")),
        }
    }

    /// Drops the chosen sockets, sends them something, or silences them.
    fn control_sockets(
        &mut self,
        now: Instant,
        body: &Value,
        action: SocketAction,
    ) -> Result<RestResponse, RestResponse> {
        let key = target(body)?;
        let role = body.get("role").and_then(Value::as_str).unwrap_or("all");
        let Some(v) = self.visitors.get(&key) else {
            return Ok(ok(json!({ "sockets": 0 })));
        };
        let chosen: Vec<ConnId> = match role {
            "agent" => v.agents.clone(),
            "visitor" => v.sockets.clone(),
            "all" => v.agents.iter().chain(&v.sockets).copied().collect(),
            other => return Err(bad_request(format!("unknown role {other:?}"))),
        };
        let at_ms = millis(now.saturating_duration_since(self.epoch));
        for &conn in &chosen {
            match &action {
                SocketAction::Drop => self.close(now, conn, CloseCause::Dropped),
                SocketAction::Send(frame) => self.outputs.push_back(super::Output::Send {
                    conn,
                    frame: frame.clone(),
                }),
                SocketAction::SendText(text) => self.outputs.push_back(super::Output::SendText {
                    conn,
                    text: text.clone(),
                }),
                SocketAction::Silence => {
                    self.controls.silenced.insert(conn);
                }
            }
        }
        Ok(ok(json!({ "sockets": chosen.len(), "at_ms": at_ms })))
    }
}

/// What a socket control does to the chosen sockets.
#[derive(Debug)]
enum SocketAction {
    Drop,
    Send(ServerFrame),
    SendText(String),
    Silence,
}

/// Reads `{"count":N,"<field>":…,"path"?:"/…"}`: a rule for the next N REST answers.
fn next_answers<T>(
    body: &Value,
    field: &str,
    read: impl FnOnce(&Value) -> Result<T, RestResponse>,
) -> Result<NextAnswers<T>, RestResponse> {
    let remaining = body
        .get("count")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|c| *c > 0)
        .ok_or_else(|| bad_request("count must be a positive integer"))?;
    let what = read(body.get(field).unwrap_or(&Value::Null))?;
    let path = match body.get("path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) => Some(path.clone()),
        Some(_) => return Err(bad_request("path must be a string")),
    };
    Ok(NextAnswers {
        remaining,
        path,
        what,
    })
}

/// Reads `{"secs":N,"count"?:C}` or `{"secs":null}` (back to the duration asked for).
fn token_lifetime(body: &Value) -> Result<Option<TokenLifetime>, RestResponse> {
    let secs = match body.get("secs") {
        None => return Err(bad_request("secs is missing")),
        Some(Value::Null) => return Ok(None),
        Some(secs) => secs
            .as_u64()
            .filter(|s| (1..=MAX_TOKEN_LIFETIME_SECS).contains(s))
            .ok_or_else(|| bad_request(format!("secs must be 1 to {MAX_TOKEN_LIFETIME_SECS}")))?,
    };
    let remaining = match body.get("count") {
        None | Some(Value::Null) => None,
        Some(count) => Some(
            count
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .filter(|c| *c > 0)
                .ok_or_else(|| bad_request("count must be a positive integer"))?,
        ),
    };
    Ok(Some(TokenLifetime { secs, remaining }))
}
