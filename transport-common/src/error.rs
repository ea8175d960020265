//! The transports' typed errors: setting a transport up ([`TransportError`]), one HTTP
//! exchange that got no answer ([`HttpError`]), and a blocking or async call on an agent that
//! did not succeed ([`AgentError`]). What the core decides (refusals, timeouts) stays the
//! core's types, wrapped here.

use glance_presence_protocol::agent::{CommandError, RequestFailure, RequestValue};

/// The transport could not be set up, or could not reach the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The TLS configuration (or one of its extra roots) was refused by rustls.
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// The runtime could not start what the transport needs (a worker thread, a task).
    #[error("cannot start the transport: {0}")]
    Start(String),
}

/// One HTTP exchange ended without an answer. Any HTTP status is an answer, not an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL cannot be requested (not `http`/`https`, no host, bad header...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No connection could be made (DNS, TCP or TLS).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The connection broke during the exchange, or the answer was not HTTP.
    #[error("the exchange failed: {0}")]
    Exchange(String),
    /// The answer's body is over the limit.
    #[error("the response body is over {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The exchange did not complete within its bound.
    #[error("no answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The transport stopped before the exchange completed.
    #[error("the transport stopped")]
    Stopped,
}

/// A call on an agent did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The core refused the command before sending anything (bad invoke func, queue full,
    /// stopped...).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The request was sent and failed (service refusal, timeout, connection...).
    #[error(transparent)]
    Failed(#[from] RequestFailure),
    /// The request resolved with a value of an unexpected kind (a bug in the core).
    #[error("unexpected outcome {0:?}")]
    Unexpected(Box<RequestValue>),
}

impl AgentError {
    /// Glance's reason string for a failed request (`"visitornotpresent"`, …), or `"usage"`
    /// for a command refused before anything was sent.
    pub fn reason(&self) -> &'static str {
        match self {
            AgentError::Command(_) => "usage",
            AgentError::Failed(failure) => failure.reason(),
            AgentError::Unexpected(_) => "error",
        }
    }
}
