//! What a [`VisitorProtocol`](super::VisitorProtocol) tells the application: [`VisitorEvent`]
//! and the types it carries.
//!
//! Every event is `serde::Serialize` as one JSON object tagged by `"event"` (snake_case), the
//! same convention as the agent's events, so a simulator can print them as JSON lines:
//! `{"event":"signal","data":{"hello":1}}`; and `serde::Deserialize`, so a recorded stream of
//! such lines can be read back into events. A payload of `Some(Value::Null)` (an
//! `Option<Value>` field) is written as `null` and reads back as `None`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use crate::link::DisconnectReason;
use crate::link::LinkEvent;

use crate::ids::{UniqueId, VisitorId};

/// The visitor's link to the service, as a getter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionState {
    /// `connect` has not been called.
    Idle,
    /// Asking `uniquevisitor` / `presence`, opening the socket, or waiting for `connected`
    /// (messages already flow once the socket is open).
    Connecting,
    /// `connected` arrived; the link is up.
    Connected,
    /// The link is down and the next attempt waits for its backoff delay.
    Reconnecting {
        /// The attempt that will be made next (from 1).
        attempt: u32,
    },
    /// No socket on purpose: the page is hidden (until `visibility(Visible)`) and/or blurred
    /// (until `focus`). Messages wait in the queue.
    Paused {
        /// The page is hidden.
        hidden: bool,
        /// Another socket with the same visitor id took over (`blur`).
        blurred: bool,
    },
    /// The visitor has stopped for good; nothing more will happen.
    Stopped,
}

/// Why the visitor stopped for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schemars", schemars(rename = "VisitorStopReason"))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The application called `disconnect`.
    Requested,
    /// The service sent `serverclose` (Glance's `onclose`; its guest page reads it as "the
    /// connection timed out").
    ServerClose,
}

fn unique_as_str<S: Serializer>(id: &UniqueId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(id.as_str())
}

fn unique_from_str<'de, D: Deserializer<'de>>(deserializer: D) -> Result<UniqueId, D::Error> {
    UniqueId::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum VisitorEvent {
    /// A connection attempt starts.
    Connecting {
        /// Attempts counted since the link was last up (0 for the first).
        attempt: u32,
    },
    /// Unique mode: `uniquevisitor` assigned the visitor its one-time id (Glance's
    /// `onuniqueid`). The visitor reads `unique_id` out to the agent.
    UniqueId {
        /// The code, e.g. `123456789`.
        #[serde(serialize_with = "unique_as_str", deserialize_with = "unique_from_str")]
        #[cfg_attr(feature = "schemars", schemars(with = "String"))]
        unique_id: UniqueId,
        /// The visitor id it connects as, `UNQ-<uniqueid>`.
        visitor_id: VisitorId,
        /// How long the code stays valid, in seconds.
        timeout_secs: u64,
    },
    /// `connected` arrived: the link is up.
    Connected {
        /// The server the socket is connected to (`host[:port]`).
        server: String,
        /// The keepalive interval in use, in seconds (0: none).
        keepalive_secs: u64,
    },
    /// The link is down. `Reconnecting` or `Connecting` follows unless the visitor is paused
    /// (hidden or blurred).
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
    /// The visitor has stopped. This is always the last event.
    Stopped {
        /// Why.
        why: StopReason,
    },
    /// An agent's signal (Glance's `onsignal`).
    Signal {
        /// The payload, as sent.
        data: Value,
    },
    /// An agent asked to run `func(args)` on the page, and `func` is allowed (under `GLANCE.`
    /// or `GLANCE_COBROWSE.Custom.`). `args` carries `"remote": true`, as Glance's script sets
    /// it (an object gets the key; `null` or a missing `args` becomes `{"remote":true}`; other
    /// JSON values are passed as they came).
    Invoke {
        /// The function.
        func: String,
        /// Its arguments.
        args: Value,
    },
    /// An agent asked to run a function outside `GLANCE.` / `GLANCE_COBROWSE.Custom.`; it must
    /// not run (Glance's `ERR_BADINVOKE`).
    InvokeRefused {
        /// The function asked for.
        func: String,
    },
    /// A newer socket with the same visitor id took over (`blur`). The visitor closes its
    /// socket and queues its messages until the application calls `focus`.
    Blurred,
    /// The service moved the visitor to another server.
    Redirected {
        /// The new server (`host[:port]`).
        server: String,
    },
    /// An error in Glance's `onerror` shape: an `error` frame from the service, or
    /// `{error:"connfail", detail:<reason>}` when a request before the socket failed.
    Error {
        /// The error code.
        error: String,
        /// The detail.
        detail: String,
    },
    /// The service sent a frame that could not be decoded, or that makes no sense here. The
    /// frame is skipped; the link stays up.
    ProtocolViolation {
        /// What was wrong.
        detail: String,
    },
    /// A frame of a type the visitor does not act on, kept for forward compatibility.
    Other {
        /// The frame's type.
        #[serde(rename = "type")]
        kind: String,
        /// Its payload.
        data: Option<Value>,
    },
}

/// The link's events are the core's own variants of the same names and fields.
impl From<LinkEvent> for VisitorEvent {
    fn from(event: LinkEvent) -> Self {
        match event {
            LinkEvent::Connecting { attempt } => VisitorEvent::Connecting { attempt },
            LinkEvent::Connected {
                server,
                keepalive_secs,
            } => VisitorEvent::Connected {
                server,
                keepalive_secs,
            },
            LinkEvent::Disconnected { why } => VisitorEvent::Disconnected { why },
            LinkEvent::Reconnecting { attempt, delay_ms } => {
                VisitorEvent::Reconnecting { attempt, delay_ms }
            }
            LinkEvent::Redirected { server } => VisitorEvent::Redirected { server },
            LinkEvent::ProtocolViolation { detail } => VisitorEvent::ProtocolViolation { detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_snake_case() {
        let e = VisitorEvent::UniqueId {
            unique_id: UniqueId::new("123456789").unwrap(),
            visitor_id: VisitorId::new("UNQ-123456789").unwrap(),
            timeout_secs: 300,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"unique_id","unique_id":"123456789","visitor_id":"UNQ-123456789","timeout_secs":300}"#
        );
        let e = VisitorEvent::Disconnected {
            why: DisconnectReason::Hidden,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"disconnected","why":{"kind":"hidden"}}"#
        );
        assert_eq!(
            serde_json::to_string(&VisitorEvent::Blurred).unwrap(),
            r#"{"event":"blurred"}"#
        );
        let e = VisitorEvent::Other {
            kind: "future".into(),
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"other","type":"future","data":null}"#
        );
        let s = ConnectionState::Paused {
            hidden: true,
            blurred: false,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"state":"paused","hidden":true,"blurred":false}"#
        );
    }

    #[test]
    fn every_event_reads_back_as_written() {
        use serde_json::json;
        let mut events = vec![
            VisitorEvent::Connecting { attempt: 1 },
            VisitorEvent::UniqueId {
                unique_id: UniqueId::new("123456789").unwrap(),
                visitor_id: VisitorId::new("UNQ-123456789").unwrap(),
                timeout_secs: 300,
            },
            VisitorEvent::Connected {
                server: "127.0.0.1:8080".into(),
                keepalive_secs: 240,
            },
            VisitorEvent::Reconnecting {
                attempt: 1,
                delay_ms: 5000,
            },
            VisitorEvent::Stopped {
                why: StopReason::Requested,
            },
            VisitorEvent::Stopped {
                why: StopReason::ServerClose,
            },
            VisitorEvent::Signal {
                data: json!({"hello": "visitor", "n": 1}),
            },
            VisitorEvent::Signal { data: Value::Null },
            VisitorEvent::Invoke {
                func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
                args: json!({"sessionKey": "1234", "remote": true}),
            },
            VisitorEvent::InvokeRefused {
                func: "window.alert".into(),
            },
            VisitorEvent::Blurred,
            VisitorEvent::Redirected {
                server: "127.0.0.1:9090".into(),
            },
            VisitorEvent::Error {
                error: "connfail".into(),
                detail: "serviceunavailable".into(),
            },
            VisitorEvent::ProtocolViolation {
                detail: "frame is not a JSON object".into(),
            },
            VisitorEvent::Other {
                kind: "future".into(),
                data: Some(json!([1, 2])),
            },
            VisitorEvent::Other {
                kind: "future".into(),
                data: None,
            },
        ];
        for why in [
            DisconnectReason::ConnectFailed {
                step: "uniquevisitor".into(),
                reason: "serviceunavailable".into(),
                detail: "presence service unavailable (HTTP 503)".into(),
            },
            DisconnectReason::Navigation,
            DisconnectReason::Hidden,
            DisconnectReason::Blurred,
            DisconnectReason::ServerClose,
        ] {
            events.push(VisitorEvent::Disconnected { why });
        }
        for event in &events {
            let json = serde_json::to_string(event).unwrap();
            let back: VisitorEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, event, "{json}");
            assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
        for state in [
            ConnectionState::Idle,
            ConnectionState::Connecting,
            ConnectionState::Connected,
            ConnectionState::Reconnecting { attempt: 2 },
            ConnectionState::Paused {
                hidden: false,
                blurred: true,
            },
            ConnectionState::Stopped,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(
                serde_json::from_str::<ConnectionState>(&json).unwrap(),
                state
            );
        }
    }

    /// Lines as a visitor's events are printed: each reads back and is written out again as
    /// the same text; a bad id is an error.
    #[test]
    fn recorded_lines_read_back() {
        let lines = [
            r#"{"event":"connecting","attempt":0}"#,
            r#"{"event":"unique_id","unique_id":"123456789","visitor_id":"UNQ-123456789","timeout_secs":300}"#,
            r#"{"event":"connected","server":"127.0.0.1:8080","keepalive_secs":30}"#,
            r#"{"event":"signal","data":{"hello":"visitor","n":1}}"#,
            r#"{"event":"invoke","func":"GLANCE_COBROWSE.Custom.greet","args":{"remote":true}}"#,
            r#"{"event":"disconnected","why":{"kind":"connect_failed","step":"uniquevisitor","reason":"connection","detail":"connection failed: connection refused"}}"#,
            r#"{"event":"disconnected","why":{"kind":"navigation"}}"#,
            r#"{"event":"blurred"}"#,
            r#"{"event":"stopped","why":{"kind":"server_close"}}"#,
        ];
        for line in lines {
            let event: VisitorEvent = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
        }
        for bad in [
            r#"{"event":"unique_id","unique_id":"no spaces","visitor_id":"UNQ-1","timeout_secs":300}"#,
            r#"{"event":"unique_id","unique_id":"1","visitor_id":"bad id!","timeout_secs":300}"#,
            r#"{"event":"signal"}"#,
        ] {
            assert!(serde_json::from_str::<VisitorEvent>(bad).is_err(), "{bad}");
        }
    }
}
