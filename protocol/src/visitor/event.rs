//! What a [`VisitorProtocol`](super::VisitorProtocol) tells the application: [`VisitorEvent`]
//! and the types it carries.
//!
//! Every event is `serde::Serialize` as one JSON object tagged by `"event"` (snake_case), the
//! same convention as the agent's events, so a simulator can print them as JSON lines:
//! `{"event":"signal","data":{"hello":1}}`.

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::link::link_event_into;
pub use crate::link::DisconnectReason;

use crate::ids::{UniqueId, VisitorId};

/// The visitor's link to the service, as a getter reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Something the application should know.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
        #[serde(serialize_with = "unique_as_str")]
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

link_event_into!(VisitorEvent);

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
}
