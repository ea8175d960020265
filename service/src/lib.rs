//! # glance-presence-service
//!
//! The reference Glance Presence service: a local stand-in for Glance's Presence service that
//! end-to-end tests, demos and benchmarks run against, and that agent-console developers can
//! run instead of a Glance group. It is not Glance's service and does not talk to it.
//!
//! Two layers:
//!
//! * [`core::ServiceCore`]: every decision of the service as a sans-IO state machine (time,
//!   monotonic and wall, is an argument; outputs are polled), tested with virtual time: the
//!   sockets' frames, presence, signals and timers; every HTTP request, from routing, CORS and
//!   origins to bearer tokens, `Authorize` with its LoginKey, parameters, bodies and the reply
//!   shapes ([`core::rest`]); the connection cap and what happens to a consumer that does not
//!   read ([`core::Admission`], [`core::ServiceCore::handle_send_queue_full`]).
//! * The server ([`Service::start`], [`ServiceHandle::spawn`]): tokio + hyper/axum on one
//!   listener (plain, or TLS with rustls). It converts between HTTP and WebSocket traffic and
//!   the core's inputs and outputs, and carries out the core's answers: the WebSocket endpoints
//!   `/agent` and `/visitorws` and the REST endpoints `GET /lookupvisitor`, `GET /findvisitor`,
//!   `POST /signalvisitor`, `GET /query`, `GET /uniquevisitor`, `POST /presence`,
//!   `GET /services/authorizationservice/GetVisitorSettings3`,
//!   `POST /services/AuthorizationService.svc/rest/Authorize` and `GET /metrics`. What stays in
//!   the server is transport mechanics: TLS, the WebSocket handshake and framing (RFC 6455 close
//!   codes for frames the WebSocket layer refuses), HTTP header and idle timeouts, accept
//!   back-off, and the open-file limit the connection cap is lowered to.
//!
//! ```no_run
//! use glance_presence_service::{ServiceConfig, ServiceHandle};
//!
//! let service = ServiceHandle::spawn(ServiceConfig::default())?;
//! println!("presence service at {}", service.http_base()); // e.g. http://127.0.0.1:41234
//! // ... agents connect to ws://…/agent, visitors to ws://…/visitorws ...
//! service.shutdown(); // serverclose to every socket, then stop
//! # Ok::<(), glance_presence_service::StartError>(())
//! ```
//!
//! The server can also run on a listener the caller bound ([`Service::serve_on`]), or be
//! merged into an existing axum application as routes ([`Service::router`], a
//! [`MountedService`]); the core decides the same answers either way.
//!
//! Agents get a token from `Authorize` with a LoginKey made from a group's API key (the demo
//! group [`config::DEMO_GROUP_ID`] has the public key [`config::DEMO_API_KEY`]), or, in-process,
//! from [`ServiceHandle::issue_token`].
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod core;
mod http;
mod listener;
pub mod query;
mod respond;
mod server;
mod shared;
mod ws;

pub use config::{
    ConfigError, Limits, ServiceConfig, ServiceConfigBuilder, TlsConfig, TokenSecret,
};
pub use core::rest::{AUTHORIZE_PATH, TOKEN_MINUTES, VISITOR_SETTINGS_PATH};
pub use core::AdminToken;
pub use server::{
    MountedService, RunningService, Service, ServiceHandle, ServiceStats, ShutdownHandle,
    StartError,
};
pub use ws::READ_BUFFER_BYTES;
