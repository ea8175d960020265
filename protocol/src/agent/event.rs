//! What an [`AgentProtocol`](super::AgentProtocol) tells the application: [`AgentEvent`] and
//! the types it carries.
//!
//! Every event is `serde::Serialize` as one JSON object tagged by `"event"` (snake_case), so a
//! command-line tool can print them as JSON lines:
//! `{"event":"visitor_presence","state":"present","since_unix_ms":1700000000000}`.
//! Secrets never appear in events.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::link::link_event_into;
pub use crate::link::DisconnectReason;

use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::rest::RestError;
pub use crate::rest::{Delivery, VisitorState};

/// Names one application request (lookup, query, signal, invoke). Each resolves exactly once
/// with an [`AgentEvent::RequestOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RequestId(pub(crate) u64);

impl RequestId {
    /// The number behind the id (1 for the first request).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request#{}", self.0)
    }
}

/// Which command a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestKind {
    /// `lookup`.
    Lookup,
    /// `query`.
    Query,
    /// `find` (`findvisitor`).
    Find,
    /// `signal`.
    Signal,
    /// `invoke`.
    Invoke,
}

/// The agent's link to the service, as a getter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionState {
    /// `connect` has not been called.
    Idle,
    /// Authorizing, discovering, finding the visitor's server, opening the socket, or waiting
    /// for `connected`.
    Connecting,
    /// `connected` arrived; the link is up.
    Connected,
    /// The link is down and the next attempt waits for its backoff delay.
    Reconnecting {
        /// The attempt that will be made next (from 1).
        attempt: u32,
    },
    /// The agent has stopped for good; nothing more will happen.
    Stopped,
}

/// Whether the visitor is there, as far as the agent knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitorPresence {
    /// The visitor is connected (or reconnecting within the grace period).
    Present,
    /// The visitor is gone (confirmed by the service, or its socket stayed closed for the
    /// whole grace period).
    Absent,
    /// The agent is offline or has not heard yet; the last confirmed state is stale.
    Unknown,
}

/// Why the agent stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The application called `disconnect`.
    Requested,
    /// The service sent `serverclose`.
    ServerClose,
    /// The service refused the credentials or token and they cannot be renewed.
    Authorization,
    /// Discovery says presence is disabled for the group (empty `presenceUrl`).
    PresenceDisabled,
}

/// Where a presence-data event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceSource {
    /// A live `presence` frame; `data` holds the frame's fields.
    Live,
    /// The lookup made after `connected`, merged with the live frames that arrived before it;
    /// `data` holds the whole merged view.
    Snapshot,
}

/// The visitor as `lookupvisitor` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitorSnapshot {
    /// The server the visitor is connected to (`host[:port]`), when named.
    pub direct_server: Option<String>,
    /// When the visitor became present (Unix seconds), when given.
    pub visitor_present_since: Option<f64>,
    /// The presence data stored by the service.
    pub presence: PresenceData,
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestValue {
    /// A lookup: the visitor, or `None` when absent (`{}`).
    Lookup {
        /// The visitor's record.
        visitor: Option<VisitorSnapshot>,
    },
    /// A query: the visitor's state, or `None` when absent.
    Query {
        /// The visitor's state.
        visitor: Option<VisitorState>,
    },
    /// A find (`findvisitor`): whether the visitor is connected, and the server it is (or
    /// would be) connected to.
    Find {
        /// `visitorfound`.
        found: bool,
        /// The direct server (`host[:port]`), when named.
        direct_server: Option<String>,
    },
    /// A signal or invoke was accepted.
    Sent(Delivery),
}

/// Why a request failed. `reason()` gives Glance's reason strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason")]
#[non_exhaustive]
pub enum RequestFailure {
    /// The service refused the token (HTTP 401/403).
    #[serde(rename = "authorization")]
    #[error("authorization refused")]
    Authorization {
        /// The HTTP status, when there was one.
        status: Option<u16>,
    },
    /// The visitor is not there to receive the message.
    #[serde(rename = "visitornotpresent")]
    #[error("visitor not present")]
    VisitorNotPresent,
    /// The service is unavailable (HTTP 503).
    #[serde(rename = "serviceunavailable")]
    #[error("presence service unavailable")]
    ServiceUnavailable,
    /// No HTTP response.
    #[serde(rename = "connection")]
    #[error("connection failed: {detail}")]
    Connection {
        /// What the transport said.
        detail: String,
    },
    /// Any other failure.
    #[serde(rename = "error")]
    #[error("request failed (HTTP {status}): {detail}")]
    Error {
        /// The HTTP status (0 when none).
        status: u16,
        /// What went wrong.
        detail: String,
    },
    /// No answer within the request timeout (including time spent waiting for the link).
    #[serde(rename = "timedout")]
    #[error("request timed out")]
    TimedOut,
    /// The agent stopped (disconnect, serverclose, authorization failure) before it resolved.
    #[serde(rename = "cancelled")]
    #[error("request cancelled")]
    Cancelled,
}

impl RequestFailure {
    /// `"authorization"`, `"visitornotpresent"`, `"serviceunavailable"`, `"connection"`,
    /// `"error"`, `"timedout"` or `"cancelled"`.
    pub fn reason(&self) -> &'static str {
        match self {
            RequestFailure::Authorization { .. } => "authorization",
            RequestFailure::VisitorNotPresent => "visitornotpresent",
            RequestFailure::ServiceUnavailable => "serviceunavailable",
            RequestFailure::Connection { .. } => "connection",
            RequestFailure::Error { .. } => "error",
            RequestFailure::TimedOut => "timedout",
            RequestFailure::Cancelled => "cancelled",
        }
    }
}

impl From<RestError> for RequestFailure {
    fn from(error: RestError) -> Self {
        match error {
            RestError::Authorization { status } => RequestFailure::Authorization {
                status: Some(status),
            },
            RestError::ServiceUnavailable => RequestFailure::ServiceUnavailable,
            RestError::Connection { detail } => RequestFailure::Connection { detail },
            RestError::VisitorNotPresent => RequestFailure::VisitorNotPresent,
            RestError::Error { status, detail } => RequestFailure::Error { status, detail },
        }
    }
}

fn serialize_result<S: Serializer>(
    result: &Result<RequestValue, RequestFailure>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    match result {
        Ok(value) => map.serialize_entry("ok", value)?,
        Err(failure) => map.serialize_entry("error", failure)?,
    }
    map.end()
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentEvent {
    /// A connection attempt starts (authorize / discovery / findvisitor / socket).
    Connecting {
        /// 0 for the first connect and for immediate reconnects (redirect, scale-down, token
        /// renewal); `n` for the `n`-th attempt after a backoff delay (as announced by
        /// [`AgentEvent::Reconnecting`]).
        attempt: u32,
    },
    /// `connected` arrived: the link is up.
    Connected {
        /// The server the socket is connected to (`host[:port]`).
        server: String,
        /// The keepalive interval in use, in seconds (0: none).
        keepalive_secs: u64,
    },
    /// The link is down; the agent will try again.
    Disconnected {
        /// Why.
        why: DisconnectReason,
    },
    /// The next attempt waits this long.
    Reconnecting {
        /// The attempt that comes next (from 1).
        attempt: u32,
        /// The delay before it, in milliseconds.
        delay_ms: u64,
    },
    /// The agent needs a token (token-provider configurations only): answer with
    /// [`AgentProtocol::provide_token`](super::AgentProtocol::provide_token) within the request
    /// timeout. Asked before the first connect, before the current token expires (when its JWT
    /// `exp` is readable) and after the service refuses one; never twice at once.
    TokenNeeded,
    /// The agent has stopped. This is always the last event.
    Stopped {
        /// Why.
        why: StopReason,
    },
    /// The visitor's presence changed.
    VisitorPresence {
        /// The new state.
        state: VisitorPresence,
        /// When the state was last confirmed (Unix milliseconds).
        since_unix_ms: u64,
    },
    /// The visitor's socket opened or closed (`visitorsock`); page navigation shows up here
    /// only, never as a presence change.
    VisitorSocket {
        /// Whether it is open.
        connected: bool,
    },
    /// Presence data: a live update, or the merged snapshot after `connected`.
    Presence {
        /// Where it comes from.
        source: PresenceSource,
        /// The fields (the update for live frames, the whole view for the snapshot).
        data: PresenceData,
        /// The keys whose value changed in the agent's merged view, in the update's order.
        changed: Vec<String>,
    },
    /// The visitor's terms dialog status.
    Terms {
        /// The status.
        status: TermsStatus,
    },
    /// The visitor's page visibility.
    Visibility {
        /// Hidden or visible.
        visibility: Visibility,
    },
    /// A cobrowse session started.
    SessionStart {
        /// Payload, if any.
        data: Option<Value>,
    },
    /// A cobrowse session ended.
    SessionEnd {
        /// Payload, if any.
        data: Option<Value>,
    },
    /// The visitor reported an error (`visitorerror`).
    VisitorError {
        /// Its payload, e.g. `{"code":"conndrop","msg":…}`.
        data: Value,
    },
    /// An error in Glance's `onerror` shape, e.g. `{error:"connfail", detail:"authorization"}`.
    Error {
        /// The error code.
        error: String,
        /// The detail.
        detail: String,
    },
    /// The service moved the agent to another server.
    Redirected {
        /// The new server (`host[:port]`).
        server: String,
    },
    /// A request resolved (exactly once per request).
    RequestOutcome {
        /// The request.
        id: RequestId,
        /// Its kind.
        request: RequestKind,
        /// `{"ok": value}` or `{"error": {"reason": …}}`.
        #[serde(serialize_with = "serialize_result")]
        result: Result<RequestValue, RequestFailure>,
    },
    /// The service sent a frame that could not be decoded, or that makes no sense here. The
    /// frame is skipped; the link stays up.
    ProtocolViolation {
        /// What was wrong.
        detail: String,
    },
    /// A frame of a type this agent does not act on, kept for forward compatibility.
    Other {
        /// The frame's type.
        #[serde(rename = "type")]
        kind: String,
        /// Its payload.
        data: Option<Value>,
    },
}

link_event_into!(AgentEvent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_snake_case() {
        let e = AgentEvent::RequestOutcome {
            id: RequestId(3),
            request: RequestKind::Signal,
            result: Err(RequestFailure::VisitorNotPresent),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"request_outcome","id":3,"request":"signal","result":{"error":{"reason":"visitornotpresent"}}}"#
        );
        let e = AgentEvent::RequestOutcome {
            id: RequestId(4),
            request: RequestKind::Signal,
            result: Ok(RequestValue::Sent(Delivery::Held)),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"request_outcome","id":4,"request":"signal","result":{"ok":{"kind":"sent","delivery":"held"}}}"#
        );
        let e = AgentEvent::Disconnected {
            why: DisconnectReason::DeadLink,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"disconnected","why":{"kind":"dead_link"}}"#
        );
        let e = AgentEvent::Other {
            kind: "blur".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"other","type":"blur","data":null}"#
        );
    }
}
