//! # glance-presence-transport
//!
//! What the transports of `glance-presence` share, so that the blocking transport
//! (`glance-presence-blocking`) and the async one (`glance-presence-async`) depend on it and not
//! on each other:
//!
//! - [`TransportConfig`]: connect and HTTP bounds, the WebSocket message ceiling, TLS trust,
//!   the shared HTTP pool's limits and the bound on concurrent connects;
//! - [`TlsRoots`] and [`TlsContext`]: one rustls client configuration per process or fleet,
//!   built on the first `https://` or `wss://` use only;
//! - [`websocket_target`] and [`websocket_config`]: where a WebSocket goes and its small
//!   buffers; [`CloseSniffer`]: the peer's Close frame as it was sent;
//! - [`HttpTarget`]: where an HTTP request goes;
//! - typed errors ([`TransportError`], [`HttpError`], [`AgentError`]);
//! - [`entropy_seed`] and [`unix_now`]: what a driver takes from the operating system and
//!   hands to a core, which reads neither.
//!
//! It performs no IO of its own and decides nothing about the protocol: that is the core's
//! (`glance-presence-protocol`).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod close;
mod config;
mod error;
mod http;
mod os;
mod tls;
mod websocket;

pub use close::{CloseSniffer, CAPTURED_CLOSE_BYTES};
pub use config::TransportConfig;
pub use error::{AgentError, HttpError, TransportError};
pub use http::{HttpTarget, MAX_RESPONSE_BYTES, USER_AGENT};
pub use os::{entropy_seed, unix_now};
pub use tls::{TlsContext, TlsRoots};
pub use websocket::{
    websocket_config, websocket_target, WebSocketTarget, DEFAULT_MAX_MESSAGE_BYTES,
};
