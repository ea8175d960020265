//! The HTTP side of the server: every request is converted into the core's
//! [`RestRequest`](crate::core::rest::RestRequest), and the core's answer into an axum response;
//! an answer that asks for a WebSocket upgrade is handed to [`crate::ws`].
//!
//! Nothing is decided here (routing, origins, tokens, parameters, bodies and reply shapes are
//! the core's: see [`crate::core::rest`]). The CORS headers of every REST answer, and the
//! answers to CORS preflights, are written by tower-http's [`CorsLayer`]: the caller's `Origin`
//! is echoed when the core's [`origin_accepted`] accepts it for the path (every origin on a
//! visitor endpoint; the allowed ones on an agent endpoint), with the methods `GET, POST,
//! OPTIONS`, the headers `Authorization, Content-Type`, a preflight lifetime of 600 s and
//! `Vary: Origin`. The WebSocket paths get none. The time each REST answer took, from the
//! request's arrival to the answer, feeds the core's latency histogram of its endpoint. The
//! body is read up to the core's body limit; a body that does not fit is reported as not read,
//! and the core answers it. An answer the core delays (the test control `/control/delay`) is
//! written once the delay has passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::core::rest::origins::origin_accepted;
use crate::core::rest::{HttpAnswer, HttpMethod, RestRequest};
use crate::listener::PeerAddr;
use crate::respond::into_response;
use crate::shared::{wall_clock, Shared};
use crate::ws;

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer of the REST paths: an origin the core accepts for the path is echoed.
fn cors_layer(shared: &Shared) -> CorsLayer {
    let allowed: Arc<[String]> = shared.config.allowed_origins().into();
    let accepted = move |origin: &HeaderValue, request: &axum::http::request::Parts| {
        origin
            .to_str()
            .is_ok_and(|origin| origin_accepted(&allowed, request.uri.path(), origin))
    };
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(accepted))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(PREFLIGHT_MAX_AGE)
        .vary([header::ORIGIN])
}

/// The WebSocket paths, routed to the core without CORS headers.
fn socket_routes(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for path in SOCKET_PATHS {
        router = router.route(path, any(handle));
    }
    router.with_state(shared)
}

/// The whole service: its socket paths, and every other path (the REST endpoints, the test
/// controls, and the core's 404) behind the CORS layer.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(cors_layer(&shared))
        .with_state(shared.clone())
        .merge(socket_routes(shared))
}

/// The service's WebSocket paths.
const SOCKET_PATHS: [&str; 2] = ["/agent", "/visitorws"];

/// The service's REST paths, each routed to the core (which answers every method itself).
const REST_PATHS: [&str; 9] = [
    "/lookupvisitor",
    "/findvisitor",
    "/signalvisitor",
    "/query",
    "/uniquevisitor",
    "/presence",
    "/metrics",
    crate::core::rest::VISITOR_SETTINGS_PATH,
    crate::core::rest::AUTHORIZE_PATH,
];

/// A router to merge into an application's: the service's own paths only and no fallback, so
/// that it merges with a router that has one. The REST paths and the test controls carry the
/// same CORS layer as [`router`]'s; the application's own routes are left alone.
pub(crate) fn mountable_router(shared: Arc<Shared>) -> Router {
    let mut rest = Router::new();
    for path in REST_PATHS {
        rest = rest.route(path, any(handle));
    }
    let controls = format!("{}{{*rest}}", crate::core::CONTROL_PREFIX);
    rest.route(&controls, any(handle))
        .layer(cors_layer(&shared))
        .with_state(shared.clone())
        .merge(socket_routes(shared))
}

/// The peer address: the listener's, or the one an application's server gives through
/// `ConnectInfo<SocketAddr>`; unknown otherwise.
fn peer_of(extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|ConnectInfo(PeerAddr(peer))| *peer)
        .or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer)
        })
}

fn method(method: &Method) -> HttpMethod {
    match *method {
        Method::GET | Method::HEAD => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::OPTIONS => HttpMethod::Options,
        _ => HttpMethod::Other,
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let peer = peer_of(&parts.extensions);
    let body = axum::body::to_bytes(body, shared.max_body_bytes).await.ok();
    let rest = RestRequest {
        method: method(&parts.method),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authorization: header_text(&parts.headers, header::AUTHORIZATION),
        origin: header_text(&parts.headers, header::ORIGIN),
        body: body.as_deref(),
    };
    let unix = wall_clock();
    let (delay, answer) = match shared.with_core(|core, now| core.handle_http(now, unix, &rest)) {
        HttpAnswer::Respond(answer) => (None, answer),
        HttpAnswer::RespondAfter(delay, answer) => (Some(delay), answer),
        HttpAnswer::Upgrade(role) => {
            return ws::upgrade_socket(
                shared,
                peer,
                Request::from_parts(parts, Body::empty()),
                role,
            )
        }
    };
    if let Some(delay) = delay {
        // A test control asked for a slow answer: the core decided it, the server waits.
        tokio::time::sleep(delay).await;
    }
    if !matches!(parts.uri.path(), "/agent" | "/visitorws") {
        shared
            .latencies
            .observe_rest(parts.uri.path(), started.elapsed());
    }
    into_response(answer)
}
