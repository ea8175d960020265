//! What an [`AgentProtocol`](super::AgentProtocol) tells the application: [`AgentEvent`] and
//! the types it carries.
//!
//! Every event is `serde::Serialize` as one JSON object tagged by `"event"` (snake_case), so a
//! command-line tool can print them as JSON lines:
//! `{"event":"visitor_presence","state":"present","since_unix_ms":1700000000000}`; and
//! `serde::Deserialize`, so a recorded stream of such lines can be read back into events. A
//! payload of `Some(Value::Null)` (an `Option<Value>` field) is written as `null` and reads back
//! as `None`.
//! Secrets never appear in events. With the crate's `schemars` feature, the events and the
//! types they carry implement `schemars::JsonSchema`, describing that same JSON.

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::link::DisconnectReason;
use crate::link::LinkEvent;

use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::rest::RestError;
pub use crate::rest::{Delivery, VisitorState};

/// Names one application request (lookup, query, signal, invoke). Each resolves exactly once
/// with an [`AgentEvent::RequestOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PresenceSource {
    /// A live `presence` frame; `data` holds the frame's fields.
    Live,
    /// The lookup made after `connected`, merged with the live frames that arrived before it;
    /// `data` holds the whole merged view.
    Snapshot,
}

/// The visitor as `lookupvisitor` reports it: the documented record fields and the presence
/// data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VisitorSnapshot {
    /// The server the visitor is connected to (`host[:port]`), when named.
    pub direct_server: Option<String>,
    /// When the visitor became present (Unix seconds), when given.
    pub visitor_present_since: Option<f64>,
    /// The presence data stored by the service.
    pub presence: PresenceData,
    /// `timestamp`: when the service wrote the record (Unix seconds), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
    /// `visitorid`, as the service wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    /// `groupid`, as the service wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// `ds` (meaning undocumented), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds: Option<String>,
    /// `tlsport` (purpose undocumented), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_port: Option<u16>,
    /// `httpsport`: the direct server's HTTPS port, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_port: Option<u16>,
}

impl From<crate::rest::VisitorRecord> for VisitorSnapshot {
    fn from(record: crate::rest::VisitorRecord) -> Self {
        VisitorSnapshot {
            direct_server: record.direct_server(),
            visitor_present_since: record.visitorpresent,
            presence: record.presence,
            timestamp: record.timestamp,
            visitor_id: record.visitorid,
            group_id: record.groupid,
            ds: record.ds,
            tls_port: record.tlsport,
            https_port: record.httpsport,
        }
    }
}

/// What a successful request returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "reason")]
#[non_exhaustive]
pub enum RequestFailure {
    /// The service refused the token (HTTP 401/403).
    #[serde(rename = "authorization")]
    #[error("authorization refused{}", crate::rest::stated(.detail.as_deref()))]
    Authorization {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The service's stated reason, when it gave one (cleaned, bounded, token-like words
        /// redacted: see [`RestError::Authorization`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
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
            RestError::Authorization { status, detail } => RequestFailure::Authorization {
                status: Some(status),
                detail,
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

/// A request's result as written: `{"ok": value}` or `{"error": failure}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
enum ResultRepr {
    Ok(RequestValue),
    Error(RequestFailure),
}

fn deserialize_result<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Result<RequestValue, RequestFailure>, D::Error> {
    Ok(match ResultRepr::deserialize(deserializer)? {
        ResultRepr::Ok(value) => Ok(value),
        ResultRepr::Error(failure) => Err(failure),
    })
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
        #[serde(
            serialize_with = "serialize_result",
            deserialize_with = "deserialize_result"
        )]
        #[cfg_attr(feature = "schemars", schemars(with = "ResultRepr"))]
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

/// The link's events are the core's own variants of the same names and fields.
impl From<LinkEvent> for AgentEvent {
    fn from(event: LinkEvent) -> Self {
        match event {
            LinkEvent::Connecting { attempt } => AgentEvent::Connecting { attempt },
            LinkEvent::Connected {
                server,
                keepalive_secs,
            } => AgentEvent::Connected {
                server,
                keepalive_secs,
            },
            LinkEvent::Disconnected { why } => AgentEvent::Disconnected { why },
            LinkEvent::Reconnecting { attempt, delay_ms } => {
                AgentEvent::Reconnecting { attempt, delay_ms }
            }
            LinkEvent::Redirected { server } => AgentEvent::Redirected { server },
            LinkEvent::ProtocolViolation { detail } => AgentEvent::ProtocolViolation { detail },
        }
    }
}

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

    /// Writes `event` as JSON, reads it back, and checks both the event and the text.
    fn round_trip(event: &AgentEvent) {
        let json = serde_json::to_string(event).unwrap();
        let back: AgentEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, event, "{json}");
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    fn data(pairs: &[(&str, Value)]) -> PresenceData {
        let mut map = serde_json::Map::new();
        for (key, value) in pairs {
            map.insert((*key).to_owned(), value.clone());
        }
        PresenceData::from(map)
    }

    #[test]
    fn every_event_reads_back_as_written() {
        use serde_json::json;
        let presence = data(&[
            ("url", json!("https://shop.example.com/")),
            ("browserver", json!(120)),
            ("ratio", json!(0.1)),
        ]);
        let state = VisitorState {
            present: true,
            sockets: 2,
            since: 1_699_999_990.25,
            presence: presence.clone(),
            visibility: Some(Visibility::Hidden),
            terms: Some(TermsStatus::Accepted),
            in_session: true,
        };
        let reasons = [
            DisconnectReason::ClosedByPeer {
                code: Some(1001),
                reason: "going away".into(),
            },
            DisconnectReason::ClosedByPeer {
                code: None,
                reason: String::new(),
            },
            DisconnectReason::ClosedByPeerInvalid {
                code: Some(1006),
                reason: String::new(),
                detail: "close code 1006 must not be sent on the wire".into(),
            },
            DisconnectReason::TransportError {
                detail: "reset".into(),
            },
            DisconnectReason::HandshakeRefused { status: 403 },
            DisconnectReason::DeadLink,
            DisconnectReason::ConnectTimeout,
            DisconnectReason::ConnectFailed {
                step: "findvisitor".into(),
                reason: "connection".into(),
                detail: "connection failed: refused".into(),
            },
            DisconnectReason::Redirect {
                server: "p2.example.com:8443".into(),
            },
            DisconnectReason::ScaleDown,
            DisconnectReason::TokenRefused,
            DisconnectReason::TokenRenewed,
            DisconnectReason::ServerClose,
            DisconnectReason::Navigation,
            DisconnectReason::Hidden,
            DisconnectReason::Blurred,
        ];
        let values = [
            RequestValue::Lookup { visitor: None },
            RequestValue::Lookup {
                visitor: Some(VisitorSnapshot {
                    direct_server: Some("127.0.0.1:8080".into()),
                    visitor_present_since: Some(1_699_999_990.0),
                    presence: presence.clone(),
                    timestamp: Some(1_699_999_991.5),
                    visitor_id: Some("v1".into()),
                    group_id: Some("12345".into()),
                    ds: Some("127.0.0.1/0".into()),
                    tls_port: Some(0),
                    https_port: Some(8080),
                }),
            },
            RequestValue::Lookup {
                visitor: Some(VisitorSnapshot {
                    direct_server: None,
                    visitor_present_since: None,
                    presence: PresenceData::default(),
                    timestamp: None,
                    visitor_id: None,
                    group_id: None,
                    ds: None,
                    tls_port: None,
                    https_port: None,
                }),
            },
            RequestValue::Query { visitor: None },
            RequestValue::Query {
                visitor: Some(state.clone()),
            },
            RequestValue::Query {
                visitor: Some(VisitorState {
                    visibility: None,
                    terms: None,
                    ..state
                }),
            },
            RequestValue::Find {
                found: true,
                direct_server: Some("p1.example.com".into()),
            },
            RequestValue::Find {
                found: false,
                direct_server: None,
            },
            RequestValue::Sent(Delivery::Delivered),
            RequestValue::Sent(Delivery::Held),
            RequestValue::Sent(Delivery::Accepted {
                body: json!({"queued": 3}),
            }),
            RequestValue::Sent(Delivery::Accepted { body: Value::Null }),
            RequestValue::Sent(Delivery::SentUnconfirmed),
        ];
        let failures = [
            RequestFailure::Authorization {
                status: Some(401),
                detail: Some("token expired".into()),
            },
            RequestFailure::Authorization {
                status: None,
                detail: None,
            },
            RequestFailure::VisitorNotPresent,
            RequestFailure::ServiceUnavailable,
            RequestFailure::Connection {
                detail: "refused".into(),
            },
            RequestFailure::Error {
                status: 500,
                detail: "boom".into(),
            },
            RequestFailure::TimedOut,
            RequestFailure::Cancelled,
        ];
        let kinds = [
            RequestKind::Lookup,
            RequestKind::Query,
            RequestKind::Find,
            RequestKind::Signal,
            RequestKind::Invoke,
        ];

        let mut events = vec![
            AgentEvent::Connecting { attempt: 0 },
            AgentEvent::Connected {
                server: "127.0.0.1:8080".into(),
                keepalive_secs: 30,
            },
            AgentEvent::Reconnecting {
                attempt: 2,
                delay_ms: 335,
            },
            AgentEvent::TokenNeeded,
            AgentEvent::VisitorSocket { connected: true },
            AgentEvent::Presence {
                source: PresenceSource::Snapshot,
                data: presence.clone(),
                changed: vec!["url".into(), "browserver".into()],
            },
            AgentEvent::Presence {
                source: PresenceSource::Live,
                data: PresenceData::default(),
                changed: Vec::new(),
            },
            AgentEvent::SessionStart {
                data: Some(json!({"sessionKey": "1234"})),
            },
            AgentEvent::SessionStart { data: None },
            AgentEvent::SessionEnd {
                data: Some(json!([1, "two", null])),
            },
            AgentEvent::SessionEnd { data: None },
            AgentEvent::VisitorError {
                data: json!({"code": "conndrop", "msg": "gone"}),
            },
            AgentEvent::VisitorError { data: Value::Null },
            AgentEvent::Error {
                error: "connfail".into(),
                detail: "authorization".into(),
            },
            AgentEvent::Redirected {
                server: "p2.example.com".into(),
            },
            AgentEvent::ProtocolViolation {
                detail: "frame has no type".into(),
            },
            AgentEvent::Other {
                kind: "somethingnew".into(),
                data: Some(json!({"a": 1})),
            },
            AgentEvent::Other {
                kind: "blur".into(),
                data: None,
            },
        ];
        for why in [
            StopReason::Requested,
            StopReason::ServerClose,
            StopReason::Authorization,
            StopReason::PresenceDisabled,
        ] {
            events.push(AgentEvent::Stopped { why });
        }
        for state in [
            VisitorPresence::Present,
            VisitorPresence::Absent,
            VisitorPresence::Unknown,
        ] {
            events.push(AgentEvent::VisitorPresence {
                state,
                since_unix_ms: 1_700_000_000_000,
            });
        }
        for status in [
            TermsStatus::Displayed,
            TermsStatus::Accepted,
            TermsStatus::Declined,
        ] {
            events.push(AgentEvent::Terms { status });
        }
        for visibility in [Visibility::Hidden, Visibility::Visible] {
            events.push(AgentEvent::Visibility { visibility });
        }
        events.extend(
            reasons
                .into_iter()
                .map(|why| AgentEvent::Disconnected { why }),
        );
        let results = values
            .into_iter()
            .map(Ok)
            .chain(failures.into_iter().map(Err));
        for (n, result) in results.enumerate() {
            events.push(AgentEvent::RequestOutcome {
                id: RequestId(n as u64 + 1),
                request: kinds[n % kinds.len()],
                result,
            });
        }
        for event in &events {
            round_trip(event);
        }

        // The getter's types read back too.
        for state in [
            ConnectionState::Idle,
            ConnectionState::Connecting,
            ConnectionState::Connected,
            ConnectionState::Reconnecting { attempt: 3 },
            ConnectionState::Stopped,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(
                serde_json::from_str::<ConnectionState>(&json).unwrap(),
                state
            );
        }
    }

    /// Lines as an agent prints them with `--json`: each reads back into an event that is
    /// written out again as the same text.
    #[test]
    fn recorded_lines_read_back() {
        let lines = [
            r#"{"event":"connecting","attempt":0}"#,
            r#"{"event":"connected","server":"127.0.0.1:8080","keepalive_secs":30}"#,
            r#"{"event":"visitor_presence","state":"present","since_unix_ms":1699999990000}"#,
            r#"{"event":"presence","source":"snapshot","data":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"},"changed":["url","browser","browserver","platform"]}"#,
            r#"{"event":"presence","source":"live","data":{"url":"https://shop.example.com/next"},"changed":["url"]}"#,
            r#"{"event":"request_outcome","id":2,"request":"lookup","result":{"ok":{"kind":"lookup","visitor":{"direct_server":"127.0.0.1:8080","visitor_present_since":1699999990.0,"presence":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}}}}}"#,
            r#"{"event":"request_outcome","id":2,"request":"query","result":{"ok":{"kind":"query","visitor":null}}}"#,
            r#"{"event":"request_outcome","id":1,"request":"signal","result":{"ok":{"kind":"sent","delivery":"delivered"}}}"#,
            r#"{"event":"request_outcome","id":3,"request":"signal","result":{"error":{"reason":"visitornotpresent"}}}"#,
            r#"{"event":"disconnected","why":{"kind":"connect_failed","step":"token provider","reason":"error","detail":"request failed (HTTP 0): the application supplied no token within the request timeout"}}"#,
            r#"{"event":"disconnected","why":{"kind":"closed_by_peer","code":1001,"reason":"going away"}}"#,
            r#"{"event":"reconnecting","attempt":1,"delay_ms":157}"#,
            r#"{"event":"other","type":"visitorsock","data":{"connected":true}}"#,
            r#"{"event":"session_start","data":null}"#,
            r#"{"event":"token_needed"}"#,
            r#"{"event":"stopped","why":{"kind":"requested"}}"#,
        ];
        for line in lines {
            let event: AgentEvent = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
        }
        let event: AgentEvent = serde_json::from_str(lines[9]).unwrap();
        assert!(matches!(
            event,
            AgentEvent::Disconnected {
                why: DisconnectReason::ConnectFailed { ref step, .. }
            } if step == "token provider"
        ));
        // A command-line `--json` line puts `time_unix_ms` and `visitor_id` before the
        // event's own fields; the event reads back from it as it is.
        let recorded = r#"{"time_unix_ms":1700000000123,"visitor_id":"v-42","event":"visitor_presence","state":"absent","since_unix_ms":1700000006000}"#;
        assert_eq!(
            serde_json::from_str::<AgentEvent>(recorded).unwrap(),
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Absent,
                since_unix_ms: 1_700_000_006_000,
            }
        );
        let recorded = r#"{"time_unix_ms":1700000000456,"visitor_id":"v-42","event":"request_outcome","id":4,"request":"invoke","result":{"ok":{"kind":"sent","delivery":"held"}}}"#;
        assert_eq!(
            serde_json::from_str::<AgentEvent>(recorded).unwrap(),
            AgentEvent::RequestOutcome {
                id: RequestId(4),
                request: RequestKind::Invoke,
                result: Ok(RequestValue::Sent(Delivery::Held)),
            }
        );
        // Wrong shapes are errors, not panics.
        for bad in [
            r#"{"event":"nosuchevent"}"#,
            r#"{"attempt":0}"#,
            r#"{"event":"connecting","attempt":-1}"#,
            r#"{"event":"request_outcome","id":1,"request":"signal","result":{}}"#,
            r#"{"event":"request_outcome","id":1,"request":"signal","result":{"ok":{"kind":"sent","delivery":"lost"}}}"#,
            r#"{"event":"terms","status":"maybe"}"#,
        ] {
            assert!(serde_json::from_str::<AgentEvent>(bad).is_err(), "{bad}");
        }
    }
}
