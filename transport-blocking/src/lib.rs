//! # glance-presence-blocking
//!
//! A blocking transport for the sans-IO cores of `glance-presence-protocol`: WebSockets over
//! tungstenite (`ws://`, and `wss://` with rustls) and HTTP over ureq (`http://`, and
//! `https://` with rustls). [`BlockingAgent`] watches one visitor; [`BlockingVisitor`] plays a
//! visitor (simulators, tests, the demo). Both are thin: one generic [`Driver`] loop carries
//! out the core's outputs, and every protocol decision (reconnect, keepalive, timeouts, token
//! refresh) is the core's.
//!
//! It is not an async transport (see `glance-presence-async`) and it starts no threads: work
//! happens inside the calls you make, so call [`BlockingAgent::next_event`] in a loop while
//! you watch.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod agent;
mod driver;
mod http;
mod os;
mod socket;
mod tls;
mod visitor;

pub use agent::{AgentError, BlockingAgent, Events};
pub use driver::{Driver, TransportConfig, TransportError, Turn};
pub use http::HttpClient;
pub use os::{entropy_seed, unix_now};
pub use socket::{
    websocket_config, websocket_target, CloseSniffer, WebSocketTarget, CAPTURED_CLOSE_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
};
pub use tls::TlsRoots;
pub use visitor::BlockingVisitor;
