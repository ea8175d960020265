//! Test controls: an admin interface that conformance runs and end-to-end tests use to make
//! the reference service misbehave on purpose, one decision at a time.
//!
//! Off by default. [`ServiceCore::enable_controls`] switches them on with an admin token (the
//! server does so only when its configuration names one, and the configuration refuses a
//! token unless the service listens on a loopback address). Every control is a `POST` to a path
//! under [`CONTROL_PREFIX`] with `Authorization: Bearer <admin token>` and a JSON body; with
//! the controls off the paths are `404 notfound` like any unknown path, and a missing or wrong
//! admin token is `401`. Answers are `200 {"ok":true,…}` or `400 {"err":"badrequest",…}`.
//!
//! | path | body | effect |
//! |---|---|---|
//! | `/control/drop` | `{"groupid":G,"visitorid":V,"role":"agent"\|"visitor"\|"all"}` | the chosen sockets are dropped without a close frame |
//! | `/control/send` | the same, plus `"frame":{…}` | the frame (any service frame: `redirect`, `scaledown`, `serverclose`, or anything else) is sent on the chosen sockets |
//! | `/control/fail` | `{"count":N,"status":S}` (optional `"path":"/findvisitor"`) | the next N REST answers (of that path) are `S {"err":"injected",…}` |
//! | `/control/pause` | `{"groupid":G,"visitorid":V,"paused":true\|false}` | while paused, nothing is sent to that visitor's sockets (a silent link) |
//! | `/control/break` | `{"no_signal_hold":b,"lookup_wrong_shape":b,"no_close_handshake":b}` | test-only broken behaviour (see [`Breakage`]) |
//! | `/control/reset` | `{}` | clears failures, pauses and breakage |
//! | `/control/events` | `{"since":N}` (optional `"groupid"`, `"visitorid"`) | read-only: what agents did, as observed here (see [`Observed`]) |
//!
//! While the controls are on, the service also keeps a bounded log of what agents do on the
//! wire ([`OBSERVED_BOUND`] entries, oldest dropped first): agent sockets attached and gone, the
//! keepalives they send, and every REST answer. The client conformance suite reads it through
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

/// REST failures still to inject.
#[derive(Debug, Clone)]
struct Failures {
    remaining: u32,
    status: u16,
    path: Option<String>,
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
    /// `keepalive` (it sent `k`) or `rest` (a REST answer).
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
        entry
    }
}

/// The state of the test controls.
#[derive(Debug, Default)]
pub struct Controls {
    token: Option<String>,
    failures: Option<Failures>,
    paused: HashSet<VisitorKey>,
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

    /// The injected answer for a REST request on `path`, if one is due (counts it down).
    pub(super) fn take_failure(&mut self, path: &str) -> Option<RestResponse> {
        let failures = self.failures.as_mut()?;
        if failures.path.as_deref().is_some_and(|p| p != path) {
            return None;
        }
        failures.remaining = failures.remaining.saturating_sub(1);
        let status = failures.status;
        if failures.remaining == 0 {
            self.failures = None;
        }
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
    /// Logs what an agent socket did (`open`, `close`, `keepalive`) when the controls are on.
    pub(super) fn observe_agent(
        &mut self,
        now: Instant,
        kind: &'static str,
        conn: ConnId,
        key: &VisitorKey,
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
            });
        }
    }

    /// Logs a REST answer when the controls are on.
    pub(super) fn observe_rest(
        &mut self,
        now: Instant,
        path: &str,
        query: Option<&str>,
        authorization: Option<&str>,
        status: u16,
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
            "drop" => self.control_sockets(now, &body, None),
            "send" => match body.get("frame").map(|f| {
                ServerFrame::decode(&f.to_string(), self.settings.max_frame_bytes.max(1 << 16))
            }) {
                Some(Ok(frame)) => self.control_sockets(now, &body, Some(frame)),
                Some(Err(e)) => Err(bad_request(format!("frame: {e}"))),
                None => Err(bad_request("frame is missing")),
            },
            "fail" => self.control_fail(&body),
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

    fn control_fail(&mut self, body: &Value) -> Result<RestResponse, RestResponse> {
        let count = body
            .get("count")
            .and_then(Value::as_u64)
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c > 0)
            .ok_or_else(|| bad_request("count must be a positive integer"))?;
        let status = body
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..=599).contains(s))
            .ok_or_else(|| bad_request("status must be 400-599"))?;
        let path = body.get("path").and_then(Value::as_str).map(str::to_owned);
        self.controls.failures = Some(Failures {
            remaining: count,
            status,
            path,
        });
        Ok(ok(json!({})))
    }

    /// Drops the chosen sockets (`frame` is `None`) or sends them a frame.
    fn control_sockets(
        &mut self,
        now: Instant,
        body: &Value,
        frame: Option<ServerFrame>,
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
        for &conn in &chosen {
            match &frame {
                Some(frame) => self.outputs.push_back(super::Output::Send {
                    conn,
                    frame: frame.clone(),
                }),
                None => self.close(now, conn, CloseCause::Dropped),
            }
        }
        Ok(ok(json!({ "sockets": chosen.len() })))
    }
}
