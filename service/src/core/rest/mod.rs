//! The service's HTTP face in the core: one request in, one answer out.
//!
//! [`ServiceCore::handle_http`] takes what matters of an HTTP request ([`RestRequest`]: method,
//! path, raw query, the `Authorization` and `Origin` headers, the body bytes) with the time,
//! monotonic and wall, and returns either a [`RestResponse`] (status, headers, body) or
//! [`HttpAnswer::Upgrade`] for a WebSocket endpoint the driver should open. Every decision is
//! made here: routing and methods, the agent origin check, the
//! answer while shutting down, the body limit, bearer tokens and their expiry against the
//! wall time passed in, `Authorize` with its LoginKey, query parameters (Glance's `&&` and
//! `ver` tolerated), signal bodies, and every reply's shape (written with the protocol crate's
//! writers where it has one). It is not the HTTP protocol: parsing requests and writing
//! responses on the wire is the server's, and so are the CORS headers of every REST answer
//! and the answers to CORS preflights (a well-kept layer writes them, echoing an origin that
//! [`origins::origin_accepted`] accepts).
//!
//! Submodules, one concept each: [`agent`] (the bearer-token endpoints), `visitor` (the visitor
//! and settings endpoints), `authorize` (`Authorize` with a LoginKey), [`origins`] (which
//! origins an agent request is accepted from), `metrics` (the OpenMetrics text and the latency histograms,
//! [`Latencies`]).

pub mod agent;
mod authorize;
mod metrics;
pub mod origins;
pub use metrics::{endpoint_label, Latencies};
mod visitor;

use std::fmt;
use std::time::{Duration, Instant};

use glance_presence_protocol::{GroupId, VisitorId};
use serde_json::{json, Value};

use super::{Role, ServiceCore};
use crate::query::QueryParams;

/// Path of the legacy Authorize endpoint.
pub const AUTHORIZE_PATH: &str = "/services/AuthorizationService.svc/rest/Authorize";
/// Path of the visitor settings endpoint.
pub const VISITOR_SETTINGS_PATH: &str = "/services/authorizationservice/GetVisitorSettings3";
/// Shortest and longest token lifetimes `Authorize` grants, in minutes.
pub const TOKEN_MINUTES: std::ops::RangeInclusive<u64> = 1..=120;

/// `Content-Type` of every JSON answer.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// `Content-Type` of the `/metrics` answer.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An HTTP method, as far as the service tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET` (and `HEAD`, which the server answers like `GET` without the body).
    Get,
    /// `POST`.
    Post,
    /// `OPTIONS` (a CORS preflight is answered by the server before the core sees it).
    Options,
    /// Anything else.
    Other,
}

/// What the core needs of one HTTP request.
#[derive(Clone, Copy)]
pub struct RestRequest<'a> {
    /// The method.
    pub method: HttpMethod,
    /// The path, without the query.
    pub path: &'a str,
    /// The raw query string, without the `?`.
    pub query: Option<&'a str>,
    /// The `Authorization` header, when present and readable as text.
    pub authorization: Option<&'a str>,
    /// The `Origin` header, when present and readable as text.
    pub origin: Option<&'a str>,
    /// The body, or `None` when it was not read in full within
    /// [`super::CoreSettings::max_body_bytes`] (answered 413).
    pub body: Option<&'a [u8]>,
}

impl fmt::Debug for RestRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("authorization", &self.authorization.map(|_| "<redacted>"))
            .field("origin", &self.origin)
            .field("body_bytes", &self.body.map(<[u8]>::len))
            .finish()
    }
}

/// An answer: status, headers (in order) and body.
#[derive(Clone, PartialEq, Eq)]
pub struct RestResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in order.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

impl fmt::Debug for RestResponse {
    // The body may hold a token (`Authorize`): shown by length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl RestResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Self {
        RestResponse {
            status,
            headers: vec![("Content-Type", JSON_CONTENT_TYPE.to_owned())],
            body: body.to_string(),
        }
    }

    /// `{"err":…,"msg":…}` with a status: the service's error shape.
    pub fn error(status: u16, err: &str, msg: &str) -> Self {
        RestResponse::json(status, &json!({ "err": err, "msg": msg }))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to do with an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpAnswer {
    /// Write this answer.
    Respond(RestResponse),
    /// Write this answer after the delay (the test control `/control/delay`: a slow server).
    /// The answer is decided now: what it does (a signal sent, a token issued) happens now.
    RespondAfter(std::time::Duration, RestResponse),
    /// A WebSocket endpoint: complete the upgrade (answering a malformed upgrade request with
    /// [`RestResponse::error`] 400) and register the socket with [`ServiceCore::open`].
    Upgrade(Role),
}

/// A 400 `badrequest` with the reason.
pub(crate) fn bad_request(msg: impl fmt::Display) -> RestResponse {
    RestResponse::error(400, "badrequest", &msg.to_string())
}

/// `groupid`: a positive integer.
pub(crate) fn group_param(q: &QueryParams) -> Result<GroupId, RestResponse> {
    let raw = q
        .get("groupid")
        .ok_or_else(|| bad_request("groupid is missing"))?;
    raw.parse::<GroupId>().map_err(bad_request)
}

/// `visitorid`: the visitor id rule.
pub(crate) fn visitor_param(q: &QueryParams) -> Result<VisitorId, RestResponse> {
    let raw = q
        .get("visitorid")
        .ok_or_else(|| bad_request("visitorid is missing"))?;
    VisitorId::new(raw).map_err(bad_request)
}

/// A body as JSON; an empty (all-whitespace) body reads as `{}`.
pub(crate) fn json_body(body: &[u8]) -> Result<Value, RestResponse> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("body is not JSON: {e}")))
}

fn is_agent_path(path: &str) -> bool {
    matches!(
        path,
        "/lookupvisitor" | "/findvisitor" | "/signalvisitor" | "/query" | AUTHORIZE_PATH
    )
}

/// An agent endpoint: a REST one or the agent socket (requests are accepted from the allowed
/// origins only).
fn is_agent_endpoint(path: &str) -> bool {
    is_agent_path(path) || path == "/agent"
}

fn is_rest_path(path: &str) -> bool {
    is_agent_path(path) || matches!(path, "/uniquevisitor" | "/presence" | VISITOR_SETTINGS_PATH)
}

/// The method each endpoint takes.
fn endpoint_method(path: &str) -> Option<HttpMethod> {
    match path {
        "/lookupvisitor"
        | "/findvisitor"
        | "/query"
        | "/uniquevisitor"
        | "/metrics"
        | VISITOR_SETTINGS_PATH
        | "/agent"
        | "/visitorws" => Some(HttpMethod::Get),
        "/signalvisitor" | "/presence" | AUTHORIZE_PATH => Some(HttpMethod::Post),
        _ => None,
    }
}

impl ServiceCore {
    /// Decides the answer to one HTTP request at monotonic `now` and wall time `unix` (time
    /// since the Unix epoch; tokens are checked and issued against it). Drain
    /// [`ServiceCore::poll_output`] afterwards: a signal may send a frame.
    pub fn handle_http(
        &mut self,
        now: Instant,
        unix: Duration,
        request: &RestRequest<'_>,
    ) -> HttpAnswer {
        let path = request.path;
        let origin = request.origin;
        let is_ws = matches!(path, "/agent" | "/visitorws");
        if !is_ws {
            self.stats.rest_requests += 1;
        }
        if path.starts_with(super::CONTROL_PREFIX) {
            if let Some(answer) =
                self.handle_control(now, path, request.authorization, request.body)
            {
                return HttpAnswer::Respond(answer);
            }
        }
        let origin_ok = origin.is_none_or(|origin| self.settings.origin_accepted(path, origin));
        if !origin_ok {
            self.stats.origin_rejections += 1;
            tracing::info!(path, "request refused: origin not allowed");
            return HttpAnswer::Respond(RestResponse::error(403, "origin", "origin not allowed"));
        }
        if request.method == HttpMethod::Options && !is_ws {
            return HttpAnswer::Respond(RestResponse {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            });
        }
        if (is_rest_path(path) || is_ws) && self.shutting_down {
            return HttpAnswer::Respond(RestResponse::error(
                503,
                "serviceunavailable",
                "the service is shutting down",
            ));
        }
        let method = endpoint_method(path);
        if method.is_some_and(|m| m != request.method) {
            let mut response =
                RestResponse::error(405, "methodnotallowed", "method not allowed here");
            if let Some(allowed) = method {
                let allow = if allowed == HttpMethod::Get {
                    "GET"
                } else {
                    "POST"
                };
                response.headers.push(("Allow", allow.to_owned()));
            }
            return HttpAnswer::Respond(response);
        }
        match path {
            "/agent" => return HttpAnswer::Upgrade(Role::Agent),
            "/visitorws" => return HttpAnswer::Upgrade(Role::Visitor),
            _ => {}
        }
        let Some(body) = request.body else {
            return HttpAnswer::Respond(RestResponse::error(
                413,
                "badrequest",
                "request body too large",
            ));
        };
        let delay = if is_rest_path(path) {
            self.controls.take_delay(path)
        } else {
            None
        };
        let respond = |response| match delay {
            Some(delay) => HttpAnswer::RespondAfter(delay, response),
            None => HttpAnswer::Respond(response),
        };
        if is_rest_path(path) {
            if let Some(injected) = self.controls.take_failure(path) {
                self.observe_rest(
                    now,
                    path,
                    request.query,
                    request.authorization,
                    injected.status,
                    None,
                );
                return respond(injected);
            }
        }
        let q = QueryParams::parse(request.query);
        let mut issued_exp = None;
        let response = match path {
            "/lookupvisitor" => self.rest_lookup(unix, &q, request.authorization),
            "/findvisitor" => self.rest_find(unix, &q, request.authorization),
            "/query" => self.rest_query(unix, &q, request.authorization),
            "/signalvisitor" => self.rest_signal(now, unix, &q, request.authorization, body),
            "/uniquevisitor" => self.rest_unique_visitor(now, &q),
            "/presence" => self.rest_presence(&q),
            VISITOR_SETTINGS_PATH => self.rest_visitor_settings(&q),
            AUTHORIZE_PATH => {
                let (response, exp) = self.rest_authorize(unix, &q, body);
                issued_exp = exp;
                response
            }
            "/metrics" => self.rest_metrics(),
            _ => RestResponse::error(404, "notfound", "no such endpoint"),
        };
        self.observe_rest(
            now,
            path,
            request.query,
            request.authorization,
            response.status,
            issued_exp,
        );
        tracing::debug!(?request.method, path, status = response.status, "REST request");
        respond(response)
    }
}

#[cfg(test)]
mod tests;
