//! The command's JSON lines (`--json`) as one type, [`JsonLine`]: what is printed is a
//! `JsonLine` serialized, and `cli/events.schema.json` is its JSON Schema, generated from the
//! same types (`glance-presence json-schema` prints it).

use glance_presence_protocol::agent::{AgentEvent, Delivery, VisitorSnapshot, VisitorState};
use glance_presence_protocol::presence::PresenceData;
use glance_presence_protocol::visitor::VisitorEvent;
use schemars::JsonSchema;
use serde::Serialize;

use crate::render;

/// The `$id` of the schema: where it lives in the source.
const SCHEMA_ID: &str = "https://github.com/glance-presence/glance-presence/cli/events.schema.json";

/// One line of the glance-presence command's JSON output (--json): an agent or visitor event
/// (watch, demo, visitor), or the result of a one-shot command (lookup, query, find, signal,
/// invoke, authorize, login-key). Every line starts with time_unix_ms and, when it is about a
/// visitor, visitor_id. Every time in it is in Unix milliseconds.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "glance-presence JSON lines")]
pub enum JsonLine<'a> {
    /// An agent event (watch, demo) or a visitor event (visitor), as the library serializes
    /// it (`event` names it).
    Event {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The visitor the line is about (its id, or its unique id).
        visitor_id: &'a str,
        /// The event's own fields.
        #[serde(flatten)]
        event: Event<'a>,
    },
    /// lookup: whether the visitor is present, and the service's record of it.
    Lookup {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The visitor the line is about (its id, or its unique id).
        visitor_id: &'a str,
        /// Whether the visitor is present.
        present: bool,
        /// The service's record, when the visitor is present.
        #[serde(skip_serializing_if = "Option::is_none")]
        visitor: Option<LookupRecord>,
    },
    /// query: whether the visitor is present, and its current state.
    Query {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The visitor the line is about (its id, or its unique id).
        visitor_id: &'a str,
        /// Whether the visitor is present.
        present: bool,
        /// Its state, when the visitor is present.
        #[serde(skip_serializing_if = "Option::is_none")]
        visitor: Option<VisitorState>,
    },
    /// find: whether the visitor was found, and the server it is on.
    Find {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The visitor the line is about (its id, or its unique id).
        visitor_id: &'a str,
        /// Whether the visitor is connected.
        found: bool,
        /// The server it is (or would be) connected to (`host[:port]`), when named.
        direct_server: Option<String>,
    },
    /// signal and invoke: what the service said.
    Sent {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The visitor the line is about (its id, or its unique id).
        visitor_id: &'a str,
        /// How the message was taken.
        result: Delivery,
    },
    /// authorize: the token.
    Token {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The token.
        token: &'a str,
    },
    /// login-key --json: the LoginKey.
    LoginKey {
        /// When the line was printed, in Unix milliseconds.
        time_unix_ms: u64,
        /// The LoginKey.
        login_key: &'a str,
    },
}

/// An event line's event: the agent's or the visitor's.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Event<'a> {
    /// An agent event (watch, demo).
    Agent(&'a AgentEvent),
    /// A visitor event (visitor).
    Visitor(&'a VisitorEvent),
}

/// The lookup's whole record (the documented fields and the presence data) with its times in
/// Unix milliseconds, the command's one time unit. Every field is written, `null` when the
/// service left it out.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LookupRecord {
    /// The server the visitor is connected to (`host[:port]`).
    pub direct_server: Option<String>,
    /// When the visitor became present, in Unix milliseconds.
    pub visitor_present_since_unix_ms: Option<u64>,
    /// When the service wrote the record, in Unix milliseconds.
    pub timestamp_unix_ms: Option<u64>,
    /// `visitorid`, as the service wrote it.
    pub visitorid: Option<String>,
    /// `groupid`, as the service wrote it.
    pub groupid: Option<String>,
    /// `ds` (meaning undocumented).
    pub ds: Option<String>,
    /// `tlsport` (purpose undocumented).
    pub tlsport: Option<u16>,
    /// `httpsport`: the direct server's HTTPS port.
    pub httpsport: Option<u16>,
    /// The presence data stored by the service.
    pub presence: PresenceData,
}

impl From<VisitorSnapshot> for LookupRecord {
    fn from(visitor: VisitorSnapshot) -> Self {
        LookupRecord {
            direct_server: visitor.direct_server,
            visitor_present_since_unix_ms: visitor
                .visitor_present_since
                .and_then(render::seconds_to_ms),
            timestamp_unix_ms: visitor.timestamp.and_then(render::seconds_to_ms),
            visitorid: visitor.visitor_id,
            groupid: visitor.group_id,
            ds: visitor.ds,
            tlsport: visitor.tls_port,
            httpsport: visitor.https_port,
            presence: visitor.presence,
        }
    }
}

impl JsonLine<'_> {
    /// The line as JSON text. The types hold nothing that JSON cannot write (string keys
    /// only); should that ever fail, the error is the text of a line of its own.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({ "time_unix_ms": render::unix_ms(), "error": e.to_string() })
                .to_string()
        })
    }
}

/// The JSON Schema of [`JsonLine`], as `cli/events.schema.json` holds it (pretty-printed,
/// with a final newline).
pub fn schema_text() -> String {
    let mut schema = schemars::schema_for!(JsonLine<'static>);
    schema.insert("$id".to_owned(), SCHEMA_ID.into());
    let mut text = serde_json::to_string_pretty(&schema)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    text.push('\n');
    text
}
