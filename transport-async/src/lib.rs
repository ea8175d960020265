//! # glance-presence-async
//!
//! An async transport for the sans-IO cores of `glance-presence-protocol`, built to watch
//! thousands of visitors from one process:
//!
//! - [`AsyncAgent`] watches one visitor (a cloneable [`AgentHandle`] and an event `Stream`);
//!   [`Fleet`] watches many (add and remove visitors at runtime, one authorization, one
//!   merged event stream keyed by visitor id with a bounded queue per visitor);
//!   [`AsyncVisitor`] plays a visitor (simulators, tests).
//! - Each core runs on one small driver task that owns its core and its one socket and
//!   carries out the core's outputs; reconnect, backoff, keepalives, dead-link detection,
//!   request timeouts and token renewal are all the core's.
//! - Shared resources ([`Transport`]): one HTTP client (HTTP/1.1, bounded pool with an idle
//!   timeout, small buffers; an exchange the core gives up on is cancelled), one TLS
//!   configuration built on the first `https://`/`wss://` use only, and a bound on connects
//!   running at once so that a reconnect storm stays orderly. An idle watched visitor holds
//!   one socket.
//! - Runtimes: tokio (feature `tokio`, the default; only tokio's `rt`, `net` and `time` are
//!   required) or smol (feature `smol`), through the small [`Runtime`] trait.
//! - Tokens on request: an async callback ([`token_provider`]) answers the cores'
//!   `TokenNeeded`; a fleet calls it once for all its agents.
//!
//! Configuration, TLS roots and errors are those of `glance-presence-transport`, re-exported
//! here. It is not an HTTP client library, and it decides nothing about the protocol.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

mod agent;
mod connect;
mod driver;
mod fleet;
mod http;
mod inbox;
pub mod runtime;
mod shared;
mod tokens;
mod visitor;

pub use agent::{AgentEvents, AgentHandle, AgentState, AsyncAgent, EVENT_BUFFER};
pub use fleet::{Fleet, FleetBuilder, FleetError, FleetEvents, FleetHandle};
pub use glance_presence_transport::{
    AgentError, HttpError, TlsRoots, TransportConfig, TransportError,
};
pub use http::HttpClient;
pub use runtime::Runtime;
#[cfg(feature = "smol")]
pub use runtime::SmolRuntime;
#[cfg(feature = "tokio")]
pub use runtime::TokioRuntime;
pub use shared::Transport;
pub use tokens::{token_provider, BoxError, TokenProvider};
pub use visitor::{AsyncVisitor, TaskEnded};
