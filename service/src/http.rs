//! The HTTP side of the server: every request is converted into the core's
//! [`RestRequest`](crate::core::rest::RestRequest), and the core's answer into an axum response;
//! an answer that asks for a WebSocket upgrade is handed to [`crate::ws`].
//!
//! Nothing is decided here (routing, CORS, origins, tokens, parameters, bodies and reply
//! shapes are the core's: see [`crate::core::rest`]). The time each REST answer took, from the
//! request's arrival to the answer, feeds the core's latency histogram of its endpoint. The body is read up to the core's body
//! limit; a body that does not fit is reported as not read, and the core answers it. An answer
//! the core delays (the test control `/control/delay`) is written once the delay has passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;
use axum::Router;

use crate::core::rest::{HttpAnswer, HttpMethod, RestRequest};
use crate::listener::PeerAddr;
use crate::respond::into_response;
use crate::shared::{wall_clock, Shared};
use crate::ws;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// The service's paths, each routed to the core (which answers every method itself).
const PATHS: [&str; 11] = [
    "/agent",
    "/visitorws",
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
/// that it merges with a router that has one.
pub(crate) fn mountable_router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new();
    for path in PATHS {
        router = router.route(path, any(handle));
    }
    let controls = format!("{}{{*rest}}", crate::core::CONTROL_PREFIX);
    router.route(&controls, any(handle)).with_state(shared)
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
