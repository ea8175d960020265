//! [`ConfigError`]: why a configuration was refused, shared by the agent's and the visitor's
//! builders (and the link settings they share). Returned by `build()`, before any IO; each
//! variant names the setting at fault. This module only defines the type.

use std::time::Duration;

use crate::ids::IdError;
use crate::rest::ServerAddrError;
use crate::rest::{AUTHORIZE_MAX_DURATION_MINUTES, AUTHORIZE_MIN_DURATION_MINUTES};

/// A configuration was refused. Each variant names the setting at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No group id was set.
    #[error("the group id is not set")]
    MissingGroup,
    /// Neither a visitor id nor a unique id was set.
    #[error("set exactly one of the visitor id and the unique id; neither is set")]
    MissingVisitor,
    /// Both a visitor id and a unique id were set.
    #[error("set exactly one of the visitor id and the unique id; both are set")]
    VisitorAndUnique,
    /// An id broke its rule. The message is the id's own, which names the kind of id.
    #[error("{source}")]
    InvalidId {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        source: IdError,
    },
    /// Neither a token, nor credentials, nor a token provider was set.
    #[error("set an authorization token, credentials (partner user id and API key), or a token provider")]
    MissingAuth,
    /// More than one of a token, credentials and a token provider was set.
    #[error("set only one of an authorization token, credentials and a token provider")]
    TokenAndCredentials,
    /// The token or API key is empty.
    #[error("{field} is empty")]
    EmptySecret {
        /// The setting.
        field: &'static str,
    },
    /// The token lifetime asked of `Authorize` is outside 1–120 minutes.
    #[error("the authorization duration is {minutes} minutes; it must be from {AUTHORIZE_MIN_DURATION_MINUTES} to {AUTHORIZE_MAX_DURATION_MINUTES}")]
    AuthorizeDuration {
        /// The value given.
        minutes: u32,
    },
    /// A server address could not be parsed.
    #[error("{field}: {source}")]
    InvalidServer {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        source: ServerAddrError,
    },
    /// A plain-text (`http`/`ws`) server that is not a loopback host.
    #[error("{field}: plain http/ws is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost), not {host:?}; use https")]
    PlainTextNotLoopback {
        /// The setting.
        field: &'static str,
        /// The host.
        host: String,
    },
    /// A timer is out of range.
    #[error("{field} is {value:?}; {rule}")]
    InvalidTimer {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: Duration,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The reconnect policy is unusable.
    #[error("reconnect policy: {0}")]
    InvalidReconnectPolicy(&'static str),
    /// A size limit is out of range.
    #[error("{field} is {value}; it must be at least {min}")]
    InvalidLimit {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: usize,
        /// The smallest value allowed.
        min: usize,
    },
    /// The client version is not `major.minor.patch`.
    #[error("client version {value:?} must be major.minor.patch (digits only)")]
    InvalidVersion {
        /// The value given.
        value: String,
    },
    /// The `Origin` header value is not `scheme://host[:port]`.
    #[error("origin {value:?} must be scheme://host[:port] without a path or spaces")]
    InvalidOrigin {
        /// The value given.
        value: String,
    },
    /// The site name is empty or has characters that do not belong in a query string.
    #[error("site {value:?} must be a non-empty word of letters, digits, '-' and '_'")]
    InvalidSite {
        /// The value given.
        value: String,
    },
}
