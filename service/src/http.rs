//! The HTTP side of the service: the router, the REST endpoints, CORS and `/metrics`.
//!
//! Answers follow the shapes of the reference service (see the crate docs): JSON bodies with
//! `Content-Type: application/json; charset=utf-8`; errors as `{"err":…,"msg":…}` with 400
//! (invalid ids or parameters), 401 (missing, bad or expired token), 403 (token for another
//! group, or an agent origin that is not allowed), 404 (`visitornotpresent`), 429 (hold queue
//! full) and 503 (shutting down). Query strings are read as Glance's clients write them (see
//! [`crate::query`]). Agent endpoints (`lookupvisitor`, `findvisitor`, `signalvisitor`,
//! `query`, `Authorize`) check the `Origin` against the allowed agent origins; visitor endpoints
//! (`uniquevisitor`, `presence`, `GetVisitorSettings3`) accept every origin.

// Handlers return the error answer itself as the `Err` of their helpers; boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use glance_presence_protocol::wire::InvokeRequest;
use glance_presence_protocol::{GroupId, LoginKey, PartnerUserId, ServerFrame, VisitorId};
use serde_json::{json, Map, Value};

use crate::auth::TokenError;
use crate::core::{SignalOutcome, VisitorSnapshot};
use crate::query::QueryParams;
use crate::shared::{unix_now, Shared};
use crate::ws;

/// Path of the legacy Authorize endpoint.
pub const AUTHORIZE_PATH: &str = "/services/AuthorizationService.svc/rest/Authorize";
/// Path of the visitor settings endpoint.
pub const VISITOR_SETTINGS_PATH: &str = "/services/authorizationservice/GetVisitorSettings3";
/// Shortest and longest token lifetimes `Authorize` grants, in minutes.
pub const TOKEN_MINUTES: std::ops::RangeInclusive<u64> = 1..=120;

const JSON: &str = "application/json; charset=utf-8";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/agent", get(ws::agent_endpoint))
        .route("/visitorws", get(ws::visitor_endpoint))
        .route("/lookupvisitor", get(lookup_visitor))
        .route("/findvisitor", get(find_visitor))
        .route("/signalvisitor", post(signal_visitor))
        .route("/query", get(query))
        .route("/uniquevisitor", get(unique_visitor))
        .route("/presence", post(presence))
        .route(VISITOR_SETTINGS_PATH, get(visitor_settings))
        .route(AUTHORIZE_PATH, post(authorize))
        .route("/metrics", get(metrics))
        .fallback(any(not_found))
        .layer(DefaultBodyLimit::max(shared.config.limits().max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            cors_and_limits,
        ))
        .with_state(shared)
}

// ------------------------------------------------------------------------------- helpers

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// `{"err":…,"msg":…}` with a status.
pub(crate) fn error_response(status: StatusCode, err: &str, msg: &str) -> Response {
    json_response(status, &json!({ "err": err, "msg": msg }))
}

fn bad_request(msg: impl std::fmt::Display) -> Response {
    error_response(StatusCode::BAD_REQUEST, "badrequest", &msg.to_string())
}

fn params(uri: &Uri) -> QueryParams {
    QueryParams::parse(uri.query())
}

fn group_param(q: &QueryParams) -> Result<GroupId, Response> {
    let raw = q
        .get("groupid")
        .ok_or_else(|| bad_request("groupid is missing"))?;
    raw.parse::<GroupId>().map_err(bad_request)
}

fn visitor_param(q: &QueryParams) -> Result<VisitorId, Response> {
    let raw = q
        .get("visitorid")
        .ok_or_else(|| bad_request("visitorid is missing"))?;
    VisitorId::new(raw).map_err(bad_request)
}

/// Checks `Authorization: Bearer <token>` for `group` with the wall clock.
fn authorize_agent(shared: &Shared, headers: &HeaderMap, group: GroupId) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let fail = |status: StatusCode, msg: &str| {
        shared
            .counters
            .rest_auth_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(%group, status = status.as_u16(), msg, "REST authorization failed");
        Err(error_response(status, "authorization", msg))
    };
    let Some(token) = token else {
        return fail(StatusCode::UNAUTHORIZED, "missing bearer token");
    };
    match shared
        .tokens
        .verify_agent(token, Some(group), unix_now() as u64)
    {
        Ok(_) if shared.config.api_keys(group).is_some() => Ok(()),
        Ok(_) => fail(StatusCode::FORBIDDEN, "group not served here"),
        Err(TokenError::WrongGroup) => fail(StatusCode::FORBIDDEN, "token is for another group"),
        Err(TokenError::Expired) => fail(StatusCode::UNAUTHORIZED, "token expired"),
        Err(_) => fail(StatusCode::UNAUTHORIZED, "invalid token"),
    }
}

/// The common prologue of agent endpoints: group, token, visitor.
fn agent_request(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(GroupId, VisitorId), Response> {
    let q = params(uri);
    let group = group_param(&q)?;
    authorize_agent(shared, headers, group)?;
    let visitor = visitor_param(&q)?;
    Ok((group, visitor))
}

fn direct_fields(shared: &Shared, map: &mut Map<String, Value>) {
    map.insert("ds".into(), Value::from(format!("{}/0", shared.host)));
    map.insert("direct".into(), Value::from(shared.direct()));
    map.insert("directserver".into(), Value::from(shared.host.clone()));
    map.insert("tlsport".into(), Value::from(0));
    map.insert("httpsport".into(), Value::from(shared.port));
}

/// Unix seconds as Glance writes them: a string holding a float.
fn epoch_text(secs: f64) -> String {
    format!("{secs:.1}")
}

fn read_json_body(body: &Bytes) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("body is not JSON: {e}")))
}

// ------------------------------------------------------------------------------- endpoints

async fn lookup_visitor(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (group, visitor) = match agent_request(&shared, &uri, &headers) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    let snapshot = shared.read_core(|core| core.lookup(group, &visitor));
    let body = match snapshot {
        None => Value::Object(Map::new()),
        Some(s) => Value::Object(lookup_record(&shared, s)),
    };
    json_response(StatusCode::OK, &body)
}

fn lookup_record(shared: &Shared, s: VisitorSnapshot) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("direct".into(), Value::from(shared.direct()));
    map.insert(
        "visitorpresent".into(),
        Value::from(epoch_text(s.since_unix)),
    );
    map.insert("timestamp".into(), Value::from(epoch_text(s.updated_unix)));
    map.insert("visitorid".into(), Value::from(s.visitor.as_str()));
    map.insert("groupid".into(), Value::from(s.group.to_string()));
    map.insert("ds".into(), Value::from(format!("{}/0", shared.host)));
    map.insert("directserver".into(), Value::from(shared.host.clone()));
    map.insert("tlsport".into(), Value::from(0));
    map.insert("httpsport".into(), Value::from(shared.port));
    // Presence fields are flat; a field that would shadow a record field is left out.
    for (key, value) in s.presence.into_map() {
        if !map.contains_key(&key) {
            map.insert(key, value);
        }
    }
    map
}

async fn find_visitor(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let (group, visitor) = match agent_request(&shared, &uri, &headers) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    let found = shared.read_core(|core| core.is_present(group, &visitor));
    let mut map = Map::new();
    direct_fields(&shared, &mut map);
    map.insert("visitorfound".into(), Value::from(found));
    json_response(StatusCode::OK, &Value::Object(map))
}

/// The frame a `signalvisitor` body asks for.
fn signal_frame(body: Value) -> Result<ServerFrame, Response> {
    let Value::Object(mut map) = body else {
        return Err(bad_request("body must be a JSON object"));
    };
    let kind = match map.get("mtype").or_else(|| map.get("type")) {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => return Err(bad_request("mtype is missing")),
    };
    let data = map.remove("data").filter(|v| !v.is_null());
    match kind.as_str() {
        "signal" => Ok(ServerFrame::Signal(data.unwrap_or(Value::Null))),
        "invoke" => {
            let request: InvokeRequest = data
                .ok_or_else(|| bad_request("invoke needs data {func, args}"))
                .and_then(|d| {
                    serde_json::from_value(d)
                        .map_err(|e| bad_request(format!("invoke data is not {{func, args}}: {e}")))
                })?;
            Ok(ServerFrame::Invoke(request))
        }
        other if ServerFrame::is_known_kind(other) => Err(bad_request(format!(
            "mtype {other:?} cannot be sent to a visitor"
        ))),
        _ => Ok(ServerFrame::Other { kind, data }),
    }
}

async fn signal_visitor(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (group, visitor) = match agent_request(&shared, &uri, &headers) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    let frame = match read_json_body(&body).and_then(signal_frame) {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let kind = frame.kind().to_owned();
    let outcome = shared.with_core(|core, now| core.signal(now, group, &visitor, frame));
    tracing::debug!(%group, %visitor, kind, ?outcome, "signalvisitor");
    match outcome {
        SignalOutcome::Delivered => json_response(StatusCode::OK, &json!({"delivered": true})),
        SignalOutcome::Held => json_response(StatusCode::OK, &json!({"held": true})),
        SignalOutcome::NotPresent => error_response(
            StatusCode::NOT_FOUND,
            "visitornotpresent",
            "visitor not present",
        ),
        SignalOutcome::HoldQueueFull => error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "holdqueuefull",
            "too many signals held for this visitor",
        ),
    }
}

async fn query(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let (group, visitor) = match agent_request(&shared, &uri, &headers) {
        Ok(ids) => ids,
        Err(response) => return response,
    };
    let body = match shared.read_core(|core| core.lookup(group, &visitor)) {
        None => json!({}),
        Some(s) => json!({
            "present": true,
            "sockets": s.sockets,
            "since": epoch_text(s.since_unix),
            "presence": s.presence,
            "visibility": s.visibility.map(|v| v.as_str()),
            "terms": s.terms.map(|t| t.as_str()),
            "insession": s.in_session,
        }),
    };
    json_response(StatusCode::OK, &body)
}

async fn unique_visitor(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let q = params(&uri);
    let group = match group_param(&q) {
        Ok(group) => group,
        Err(response) => return response,
    };
    if shared.config.api_keys(group).is_none() {
        return bad_request(format!("group {group} is not served here"));
    }
    // `visitorid=undefined` (or any id that is not `UNQ-…`) asks for a new unique id.
    let requested = q.get("visitorid").and_then(|v| VisitorId::new(v).ok());
    let u = shared.with_core(|core, now| core.unique_visitor(now, group, requested.as_ref()));
    json_response(
        StatusCode::OK,
        &json!({
            "visitorid": u.visitor.as_str(),
            "guesttoken": u.guest_token,
            "uniqueid": u.unique.as_str(),
            "timeout": u.timeout_secs,
        }),
    )
}

async fn presence(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let q = params(&uri);
    let group = match group_param(&q) {
        Ok(group) => group,
        Err(response) => return response,
    };
    if let Err(response) = visitor_param(&q) {
        return response;
    }
    if shared.config.api_keys(group).is_none() {
        return bad_request(format!("group {group} is not served here"));
    }
    json_response(
        StatusCode::OK,
        &json!({
            "direct": shared.direct(),
            "directserver": shared.host,
            "httpsport": shared.port,
        }),
    )
}

async fn visitor_settings(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let q = params(&uri);
    let group = match group_param(&q) {
        Ok(group) => group,
        Err(response) => return response,
    };
    // An empty presenceUrl tells Glance's clients that presence is off for the group.
    let url = if shared.config.api_keys(group).is_some() {
        shared.direct()
    } else {
        String::new()
    };
    json_response(
        StatusCode::OK,
        &json!({
            "presenceUrl": url,
            "isPresenceLoadBalanced": shared.config.load_balanced(),
        }),
    )
}

fn text_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn authorize(State(shared): State<Arc<Shared>>, uri: Uri, body: Bytes) -> Response {
    let q = params(&uri);
    let fail = |status: StatusCode, err: &str, msg: &str| {
        shared
            .counters
            .authorize_failures
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(status = status.as_u16(), msg, "Authorize refused");
        error_response(status, err, msg)
    };
    let minutes = match q.get("duration") {
        None | Some("") => *TOKEN_MINUTES.end(),
        Some(text) => match text.parse::<u64>() {
            Ok(m) if TOKEN_MINUTES.contains(&m) => m,
            _ => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "badrequest",
                    "duration must be 1 to 120 minutes",
                )
            }
        },
    };
    if let Some(service) = q.get("service").filter(|s| !s.is_empty()) {
        if service != "presence" {
            return fail(
                StatusCode::BAD_REQUEST,
                "badrequest",
                "only the presence service is authorized here",
            );
        }
    }
    let credentials = match read_json_body(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return fail(
                StatusCode::BAD_REQUEST,
                "badrequest",
                "body must be a JSON object",
            )
        }
        Err(response) => return response,
    };
    let partner = match text_or_number(credentials.get("partnerid")).map(|p| p.parse::<GroupId>()) {
        Some(Ok(group)) => group,
        Some(Err(e)) => return fail(StatusCode::BAD_REQUEST, "badrequest", &e.to_string()),
        None => {
            return fail(
                StatusCode::BAD_REQUEST,
                "badrequest",
                "partnerid is missing",
            )
        }
    };
    if let Some(group) = q.get("groupid").filter(|g| !g.is_empty()) {
        if group.parse::<GroupId>().ok() != Some(partner) {
            return fail(
                StatusCode::BAD_REQUEST,
                "badrequest",
                "groupid and partnerid differ",
            );
        }
    }
    let user = match text_or_number(credentials.get("partneruserid")).map(PartnerUserId::new) {
        Some(Ok(user)) => user,
        Some(Err(e)) => return fail(StatusCode::BAD_REQUEST, "badrequest", &e.to_string()),
        None => {
            return fail(
                StatusCode::BAD_REQUEST,
                "badrequest",
                "partneruserid is missing",
            )
        }
    };
    let Some(Value::String(key)) = credentials.get("loginkey") else {
        return fail(StatusCode::BAD_REQUEST, "badrequest", "loginkey is missing");
    };
    let login_key = LoginKey::new(key.clone());
    let Some(api_keys) = shared.config.api_keys(partner) else {
        return fail(StatusCode::UNAUTHORIZED, "authorization", "unknown partner");
    };
    let now = unix_now() as u64;
    let verified = api_keys.iter().any(|api_key| {
        glance_presence_protocol::loginkey::verify(&login_key, partner, &user, api_key, now).is_ok()
    });
    if !verified {
        return fail(
            StatusCode::UNAUTHORIZED,
            "authorization",
            "the login key is not valid",
        );
    }
    match shared.tokens.issue_agent(partner, &user, now, minutes * 60) {
        Ok((token, _exp)) => {
            tracing::info!(group = %partner, user = %user, minutes, "token issued");
            json_response(StatusCode::OK, &Value::from(token.expose_secret()))
        }
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            "the token could not be made",
        ),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = render_metrics(&shared);
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The Prometheus text exposition of the service's counters and gauges.
pub(crate) fn render_metrics(shared: &Shared) -> String {
    let s = shared.core_stats();
    let c = &shared.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    };
    family(
        "glance_presence_connections",
        "gauge",
        "Open WebSocket connections by role.",
        &[
            ("role=\"agent\"", s.agent_sockets),
            ("role=\"visitor\"", s.visitor_sockets),
        ],
    );
    family(
        "glance_presence_visitors_present",
        "gauge",
        "Visitors present (with a socket, or within the presence window).",
        &[("", s.visitors_present)],
    );
    family(
        "glance_presence_visitors_tracked",
        "gauge",
        "Visitor records held.",
        &[("", s.visitors_tracked)],
    );
    family(
        "glance_presence_presence_bytes",
        "gauge",
        "Bytes held in visitors' merged presence records (as compact JSON).",
        &[("", s.presence_bytes)],
    );
    family(
        "glance_presence_presence_refused_total",
        "counter",
        "Presence frames refused whole because the record would exceed its bounds.",
        &[("", s.presence_refused)],
    );
    family(
        "glance_presence_tokens_expired_total",
        "counter",
        "Agent sockets closed at their token's expiry.",
        &[("", s.tokens_expired)],
    );
    family(
        "glance_presence_signals_total",
        "counter",
        "Signals by outcome.",
        &[
            ("outcome=\"delivered\"", s.signals_delivered),
            ("outcome=\"held\"", s.signals_held),
            ("outcome=\"dropped\"", s.signals_dropped),
            ("outcome=\"notpresent\"", s.signals_not_present),
            ("outcome=\"queuefull\"", s.signals_queue_full),
        ],
    );
    family(
        "glance_presence_auth_failures_total",
        "counter",
        "Refused tokens and login keys by where they were refused.",
        &[
            ("endpoint=\"socket\"", s.auth_failures),
            ("endpoint=\"rest\"", load(&c.rest_auth_failures)),
            ("endpoint=\"authorize\"", load(&c.authorize_failures)),
        ],
    );
    family(
        "glance_presence_origin_rejections_total",
        "counter",
        "Agent requests refused for their Origin.",
        &[("", load(&c.origin_rejections))],
    );
    family(
        "glance_presence_frames_received_total",
        "counter",
        "Well-formed frames received.",
        &[("", s.frames_received)],
    );
    family(
        "glance_presence_frames_forwarded_total",
        "counter",
        "Visitor frames forwarded to agent sockets.",
        &[("", s.frames_forwarded)],
    );
    family(
        "glance_presence_malformed_frames_total",
        "counter",
        "Malformed or out-of-order frames.",
        &[("", s.malformed_frames)],
    );
    family(
        "glance_presence_disconnects_total",
        "counter",
        "Sockets closed by the service, by reason.",
        &[
            ("reason=\"idle\"", s.idle_timeouts),
            ("reason=\"slowconsumer\"", load(&c.slow_consumers)),
        ],
    );
    family(
        "glance_presence_blurs_total",
        "counter",
        "blur frames sent to older visitor sockets.",
        &[("", s.blurs)],
    );
    family(
        "glance_presence_connections_total",
        "counter",
        "WebSocket connections accepted since start.",
        &[("", s.connections_total)],
    );
    family(
        "glance_presence_connections_refused_total",
        "counter",
        "Connections (HTTP or WebSocket) refused because the connection limit was reached.",
        &[("", load(&c.refused_connections))],
    );
    family(
        "glance_presence_rest_requests_total",
        "counter",
        "HTTP requests other than WebSocket upgrades.",
        &[("", load(&c.rest_requests))],
    );
    out
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "notfound", "no such endpoint")
}

// ------------------------------------------------------------------------------- CORS

fn is_agent_path(path: &str) -> bool {
    matches!(
        path,
        "/lookupvisitor" | "/findvisitor" | "/signalvisitor" | "/query" | AUTHORIZE_PATH
    )
}

fn is_rest_path(path: &str) -> bool {
    is_agent_path(path) || matches!(path, "/uniquevisitor" | "/presence" | VISITOR_SETTINGS_PATH)
}

/// CORS (preflights and response headers), the agent origin check, the body size limit and
/// the shutting-down answer, around every route.
async fn cors_and_limits(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_ws = matches!(path.as_str(), "/agent" | "/visitorws");
    if !is_ws {
        shared
            .counters
            .rest_requests
            .fetch_add(1, Ordering::Relaxed);
    }
    let origin_ok = match &origin {
        Some(origin) if is_agent_path(&path) => shared.config.origin_allowed(origin),
        _ => true,
    };
    if request.method() == Method::OPTIONS {
        if !origin_ok {
            shared
                .counters
                .origin_rejections
                .fetch_add(1, Ordering::Relaxed);
            return error_response(StatusCode::FORBIDDEN, "origin", "origin not allowed");
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        add_cors(response.headers_mut(), origin.as_deref());
        return response;
    }
    if !origin_ok {
        shared
            .counters
            .origin_rejections
            .fetch_add(1, Ordering::Relaxed);
        tracing::info!(path, "REST request refused: origin not allowed");
        return error_response(StatusCode::FORBIDDEN, "origin", "origin not allowed");
    }
    if is_rest_path(&path) && shared.is_shutting_down() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceunavailable",
            "the service is shutting down",
        );
    }
    let limit = shared.config.limits().max_body_bytes;
    let too_long = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > limit);
    if too_long {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "badrequest",
            "request body too large",
        );
    }
    let method = request.method().clone();
    let mut response = next.run(request).await;
    if !is_ws {
        add_cors(response.headers_mut(), origin.as_deref());
        tracing::debug!(%method, path, status = response.status().as_u16(), "REST request");
    }
    response
}

fn add_cors(headers: &mut HeaderMap, origin: Option<&str>) {
    let allow_origin = origin
        .and_then(|o| HeaderValue::from_str(o).ok())
        .unwrap_or(HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}
