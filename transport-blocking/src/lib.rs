//! # glance-presence-blocking
//!
//! A blocking transport for the sans-IO cores of `glance-presence-protocol`: WebSockets over
//! tungstenite (`ws://`, and `wss://` with rustls) and HTTP over ureq (`http://`, and
//! `https://` with rustls). [`BlockingAgent`] watches one visitor; [`BlockingVisitor`] plays a
//! visitor (simulators, tests, the demo). Both are thin: one generic [`Driver`] loop carries
//! out the core's outputs, and every protocol decision (reconnect, keepalive, timeouts, token
//! refresh) is the core's. What both transports share (configuration, TLS trust, WebSocket
//! settings, typed errors) comes from `glance-presence-transport` and is re-exported here.
//!
//! It is not an async transport (see `glance-presence-async`). Work happens inside the calls
//! you make, so call [`BlockingAgent::next_event`] in a loop while you watch; the only thread
//! it starts is one reused HTTP worker per driver, so that an HTTP exchange never stalls the
//! socket or the core's timers.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod agent;
mod driver;
mod http;
mod socket;
mod visitor;
mod wait;

pub use agent::{BlockingAgent, Events, TokenProvider};
pub use driver::{Driver, Route, Turn};
pub use glance_presence_transport::{
    entropy_seed, unix_now, AgentError, HttpError, TlsRoots, TransportConfig, TransportError,
};
pub use http::HttpClient;
pub use visitor::BlockingVisitor;
