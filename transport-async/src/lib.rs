//! # glance-presence-async
//!
//! An async (tokio) transport for the sans-IO cores of `glance-presence-protocol`.
//! [`AsyncAgent`] watches one visitor; [`AsyncVisitor`] plays a visitor (simulators, tests).
//! Each one is a handle to **one tokio task** that owns its core and its socket and selects
//! over the socket's next message, the core's next deadline (`poll_timeout`), a bounded
//! command channel and the HTTP exchanges that finished. The task is thin: it carries out the
//! core's outputs and feeds back what happened; reconnect, backoff, keepalives, dead-link
//! detection, request timeouts and token renewal are all the core's.
//!
//! - WebSockets: `tokio-tungstenite` over `tokio::net::TcpStream`, or over a `tokio-rustls`
//!   stream for `wss://`, with the small buffers of the blocking transport (4 KiB read
//!   buffer, no write buffer, messages up to [`TransportConfig::max_message_bytes`]).
//! - HTTP: there is no async HTTP stack here. An agent makes few HTTP exchanges (authorize,
//!   `findvisitor`, lookups, signals), so each one runs the blocking
//!   [`glance_presence_blocking::HttpClient`] on `tokio::task::spawn_blocking`, bounded by
//!   [`TransportConfig::http_timeout`], and its answer comes back to the task on a channel.
//! - Configuration, TLS roots and errors are those of `glance-presence-blocking`
//!   ([`TransportConfig`], [`TlsRoots`], [`TransportError`], [`AgentError`]).
//!
//! It is not a runtime-agnostic transport (tokio only), not an HTTP client, and it does not
//! decide anything about the protocol. Starting a handle needs a running tokio runtime.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod agent;
mod driver;
mod socket;
mod visitor;

pub use agent::AsyncAgent;
pub use driver::{TaskEnded, COMMAND_BUFFER, EVENT_BUFFER};
pub use glance_presence_blocking::{AgentError, TlsRoots, TransportConfig, TransportError};
pub use visitor::AsyncVisitor;
