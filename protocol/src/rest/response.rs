//! Response parsers for the Presence REST endpoints.
//!
//! Each parser takes the HTTP status and the raw body bytes and returns a typed result or a
//! [`RestError`]. They share one status mapping ([`check_response`]), a body size limit
//! ([`DEFAULT_MAX_BODY_BYTES`]), and one tolerance policy: a JSON `null` counts as absent,
//! epochs may be strings holding a float (as the service sends them) or numbers, `groupid` may be
//! a string or a number, ports may be numbers or numeric strings, and unknown fields are ignored
//! (or, in a lookup record, kept as presence data). A field of any other type is an
//! [`RestError::Error`] whose detail names the field. Nothing here panics.
//!
//! The `to_json` methods write the bodies the reference service sends, so that what it sends and
//! what the parsers read are tested against each other.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::ids::{UniqueId, VisitorId};
use crate::presence::{PresenceData, TermsStatus, Visibility};

use super::pydict::convert_python_dict_fields;
use super::server_addr::{Scheme, ServerAddr, ServerAddrError};
use super::{sanitize_detail, RestError};

/// Largest response body the parsers read: 256 KiB. A bigger body is a [`RestError::Error`].
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Lifetime of a unique id when `/uniquevisitor` does not say (Glance's client default), seconds.
pub const DEFAULT_UNIQUE_TIMEOUT_SECS: u64 = 300;

/// The documented fields of a `lookupvisitor` record; every other field is presence data.
const RECORD_FIELDS: [&str; 9] = [
    "direct",
    "visitorpresent",
    "timestamp",
    "visitorid",
    "groupid",
    "ds",
    "directserver",
    "tlsport",
    "httpsport",
];

/// Applies the status mapping and reads the body as JSON.
///
/// In order: status 0 → [`RestError::Connection`]; 401/403 → [`RestError::Authorization`];
/// 503 → [`RestError::ServiceUnavailable`]; a body over `max_bytes` → [`RestError::Error`]; a
/// JSON object with `"err":"visitornotpresent"` → [`RestError::VisitorNotPresent`] (any status);
/// any other status outside 2xx → [`RestError::Error`] (with the body's `err`/`msg` in the
/// detail); a 2xx body that is not JSON, or an object with both `err` and `msg` keys (Glance's
/// client rule) → [`RestError::Error`]. Otherwise the parsed body, or `None` for an empty
/// (all-whitespace) body. A UTF-8 byte-order mark is skipped.
pub fn check_response(
    status: u16,
    body: &[u8],
    max_bytes: usize,
) -> Result<Option<Value>, RestError> {
    match status {
        0 => {
            return Err(RestError::Connection {
                detail: "no HTTP response (status 0)".to_owned(),
            })
        }
        401 | 403 => {
            return Err(RestError::Authorization {
                status,
                detail: stated_reason(body, max_bytes),
            })
        }
        503 => return Err(RestError::ServiceUnavailable),
        _ => {}
    }
    if body.len() > max_bytes {
        return Err(RestError::Error {
            status,
            detail: format!(
                "response body of {} bytes exceeds the limit of {max_bytes} bytes",
                body.len()
            ),
        });
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let success = (200..300).contains(&status);
    let parsed: Option<Result<Value, serde_json::Error>> =
        if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(serde_json::from_slice(body))
        };
    let err_msg = match &parsed {
        Some(Ok(Value::Object(map))) => {
            if map
                .get("err")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case("visitornotpresent"))
            {
                return Err(RestError::VisitorNotPresent);
            }
            match (map.get("err"), map.get("msg")) {
                (Some(err), Some(msg)) => Some(format!("{}: {}", text_of(err), text_of(msg))),
                (Some(err), None) if !success => Some(text_of(err)),
                _ => None,
            }
        }
        _ => None,
    };
    if !success {
        let mut detail = format!("unexpected HTTP status {status}");
        if let Some(reported) = err_msg {
            detail.push_str("; the service reported ");
            detail.push_str(&sanitize_detail(&reported));
        }
        return Err(RestError::Error { status, detail });
    }
    if let Some(reported) = err_msg {
        return Err(RestError::Error {
            status,
            detail: format!("the service reported {}", sanitize_detail(&reported)),
        });
    }
    match parsed {
        None => Ok(None),
        Some(Ok(value)) => Ok(Some(value)),
        // serde_json's syntax errors name a line and column, never the input.
        Some(Err(e)) => Err(RestError::Error {
            status,
            detail: format!("body is not valid JSON: {e}"),
        }),
    }
}

/// Keys under which services state why they refused (the reference service's `msg`, and the
/// usual names elsewhere), compared without ASCII case.
const REASON_KEYS: [&str; 5] = ["msg", "message", "detail", "error_description", "reason"];

/// The reason a refusal's body states, cleaned (see [`sanitize_detail`]): the first of
/// [`REASON_KEYS`] in a JSON object, a JSON string, or a plain-text body (an HTML page is not
/// a reason). `None` for an empty, oversized or reasonless body.
fn stated_reason(body: &[u8], max_bytes: usize) -> Option<String> {
    if body.len() > max_bytes {
        return None;
    }
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => REASON_KEYS.iter().find_map(|wanted| {
            map.iter()
                .find(|(key, value)| key.eq_ignore_ascii_case(wanted) && !value.is_null())
                .map(|(_, value)| text_of(value))
        })?,
        Ok(Value::String(text)) => text,
        Ok(_) => return None,
        Err(_) => {
            let text = std::str::from_utf8(body).ok()?.trim();
            if text.starts_with('<') {
                return None;
            }
            text.to_owned()
        }
    };
    let cleaned = sanitize_detail(text.trim());
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_owned())
}

/// A string value as itself, anything else as JSON text.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The error for a field of the wrong JSON type.
pub(crate) fn wrong_type(status: u16, field: &str, expected: &str) -> RestError {
    RestError::Error {
        status,
        detail: format!("field `{field}` is not {expected}"),
    }
}

fn body_error(status: u16, detail: &str) -> RestError {
    RestError::Error {
        status,
        detail: detail.to_owned(),
    }
}

fn require_object(status: u16, value: Option<Value>) -> Result<Map<String, Value>, RestError> {
    match value {
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(body_error(status, "body is not a JSON object")),
        None => Err(body_error(status, "body is empty")),
    }
}

/// Typed access to the fields of a reply object; errors name the field (with `prefix`).
struct Fields<'a> {
    map: &'a Map<String, Value>,
    status: u16,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, status: u16) -> Self {
        Fields {
            map,
            status,
            prefix: "",
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn wrong(&self, key: &str, expected: &str) -> RestError {
        wrong_type(self.status, &format!("{}{key}", self.prefix), expected)
    }

    fn string(&self, key: &str) -> Result<Option<String>, RestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    /// A string, or a number written as text (ids).
    fn text(&self, key: &str) -> Result<Option<String>, RestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.wrong(key, "a string or a number")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, RestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.wrong(key, "a boolean")),
        }
    }

    /// Epoch seconds: a string holding a float (`"1583953702.0"`) or a number; `""` is absent.
    fn epoch(&self, key: &str) -> Result<Option<f64>, RestError> {
        const EXPECTED: &str = "an epoch (a number, or a string holding one)";
        let value = match self.get(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                // Rust would also read "inf" and "NaN"; epochs are digits, sign, dot, exponent.
                if s.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                {
                    s.parse::<f64>().ok()
                } else {
                    None
                }
            }
            Some(_) => None,
        };
        match value {
            Some(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.wrong(key, EXPECTED)),
        }
    }

    /// A non-negative integer up to `max`: a number (integral floats too) or a numeric string;
    /// `""` is absent.
    fn uint(&self, key: &str, max: u64, expected: &str) -> Result<Option<u64>, RestError> {
        let value = match self.get(key) {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= 9.0e15)
                    // Exact: integral and below 2^53.
                    .map(|f| f as u64)
            }),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse::<u64>().ok()
                } else {
                    None
                }
            }
            Some(_) => None,
        };
        match value {
            Some(v) if v <= max => Ok(Some(v)),
            _ => Err(self.wrong(key, expected)),
        }
    }

    fn port(&self, key: &str) -> Result<Option<u16>, RestError> {
        Ok(self
            .uint(key, u64::from(u16::MAX), "a port number (0-65535)")?
            .and_then(|p| u16::try_from(p).ok()))
    }

    /// The direct server of this object by Glance's rule (see [`direct_server_rule`]).
    fn direct_server(&self) -> Result<Option<String>, RestError> {
        let directserver = self.string("directserver")?;
        let direct = self.string("direct")?;
        let httpsport = self.port("httpsport")?;
        Ok(direct_server_rule(
            directserver.as_deref(),
            direct.as_deref(),
            httpsport,
        ))
    }
}

/// Glance's rule for the direct server of a reply: `directserver` if non-empty, else `direct`;
/// then `":" + httpsport` when `httpsport` is given and non-zero.
///
/// Project decision beyond Glance's client: the port is not appended when the chosen value
/// already ends in a port (`direct` is often `host:443`), where Glance's client would produce
/// `host:443:443`.
fn direct_server_rule(
    directserver: Option<&str>,
    direct: Option<&str>,
    httpsport: Option<u16>,
) -> Option<String> {
    let host = [directserver, direct]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())?;
    match httpsport {
        Some(port) if port != 0 && !has_port(host) => Some(format!("{host}:{port}")),
        _ => Some(host.to_owned()),
    }
}

/// Whether `host[:port]` text already carries a port.
fn has_port(host: &str) -> bool {
    match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    }
}

/// Writes an epoch the way the service does: a string holding a float (`"1583953702.0"`).
fn epoch_value(epoch: f64) -> Value {
    if epoch.is_finite() {
        Value::String(format!("{epoch:?}"))
    } else {
        Value::Null
    }
}

fn presence_from(mut map: Map<String, Value>) -> PresenceData {
    convert_python_dict_fields(&mut map);
    PresenceData::from_map(map)
}

// ---------------------------------------------------------------------------------------------
// lookupvisitor

/// A visitor's record from `lookupvisitor`.
///
/// The documented fields, as the service sends them (e.g.
/// `{"direct":"pr0016.glance.net:443","visitorpresent":"1583953702.0","timestamp":"1583953702.0","visitorid":"example","groupid":"12345","ds":"pr0016.glance.net/0","directserver":"pr0016.glance.net","tlsport":5501,"httpsport":443}`),
/// plus every other field as presence data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VisitorRecord {
    /// `direct`: the direct server, often `host:port`.
    pub direct: Option<String>,
    /// `directserver`: the direct server's host name.
    pub directserver: Option<String>,
    /// `ds`, e.g. `pr0016.glance.net/0` (meaning undocumented).
    pub ds: Option<String>,
    /// `visitorpresent`: epoch seconds (sent as a string holding a float).
    pub visitorpresent: Option<f64>,
    /// `timestamp`: epoch seconds (sent as a string holding a float).
    pub timestamp: Option<f64>,
    /// `visitorid`.
    pub visitorid: Option<String>,
    /// `groupid`, as text (the service sends a string; a number is accepted).
    pub groupid: Option<String>,
    /// `tlsport` (purpose undocumented).
    pub tlsport: Option<u16>,
    /// `httpsport`: the direct server's HTTPS port.
    pub httpsport: Option<u16>,
    /// Every other field: the visitor's presence data (`url`, `browser`, `browserver`,
    /// `platform`, custom fields). String values holding a Python-dict literal are parsed into
    /// objects, as Glance's client does.
    pub presence: PresenceData,
}

impl VisitorRecord {
    /// The direct server: `directserver` if present, else `direct`, plus `:httpsport` when given
    /// (not appended when the value already has a port, or when `httpsport` is 0).
    pub fn direct_server(&self) -> Option<String> {
        direct_server_rule(
            self.directserver.as_deref(),
            self.direct.as_deref(),
            self.httpsport,
        )
    }

    /// The reply body the service sends: the documented fields in the documented order
    /// (epochs as float strings, absent ones left out), then the presence fields flat. Presence
    /// keys that collide with a documented field are left out.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        };
        put("direct", self.direct.clone().map(Value::String));
        put("visitorpresent", self.visitorpresent.map(epoch_value));
        put("timestamp", self.timestamp.map(epoch_value));
        put("visitorid", self.visitorid.clone().map(Value::String));
        put("groupid", self.groupid.clone().map(Value::String));
        put("ds", self.ds.clone().map(Value::String));
        put("directserver", self.directserver.clone().map(Value::String));
        put("tlsport", self.tlsport.map(Value::from));
        put("httpsport", self.httpsport.map(Value::from));
        for (key, value) in self.presence.iter() {
            if !RECORD_FIELDS.contains(&key.as_str()) {
                map.insert(key.clone(), value.clone());
            }
        }
        Value::Object(map)
    }
}

/// The answer of `lookupvisitor`.
// A one-off reply, moved once to its user: boxing the record would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum LookupResult {
    /// `{}`: the visitor is not present.
    Absent,
    /// The visitor's record.
    Present(VisitorRecord),
}

/// Parses a `lookupvisitor` reply: `{}` is [`LookupResult::Absent`], any other object a
/// [`VisitorRecord`].
pub fn parse_lookup(status: u16, body: &[u8]) -> Result<LookupResult, RestError> {
    let mut map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    if map.is_empty() {
        return Ok(LookupResult::Absent);
    }
    let record = {
        let f = Fields::new(&map, status);
        VisitorRecord {
            direct: f.string("direct")?,
            directserver: f.string("directserver")?,
            ds: f.string("ds")?,
            visitorpresent: f.epoch("visitorpresent")?,
            timestamp: f.epoch("timestamp")?,
            visitorid: f.text("visitorid")?,
            groupid: f.text("groupid")?,
            tlsport: f.port("tlsport")?,
            httpsport: f.port("httpsport")?,
            presence: PresenceData::new(),
        }
    };
    for key in RECORD_FIELDS {
        map.shift_remove(key);
    }
    Ok(LookupResult::Present(VisitorRecord {
        presence: presence_from(map),
        ..record
    }))
}

// ---------------------------------------------------------------------------------------------
// findvisitor

/// The answer of `findvisitor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindResult {
    /// Whether the visitor is connected (`visitorfound`).
    pub found: bool,
    /// The direct server named in the reply (by the rule of
    /// [`VisitorRecord::direct_server`]); the reference service names one even when the visitor
    /// is absent, so that an agent can connect before its visitor.
    pub direct_server: Option<String>,
}

/// Parses a `findvisitor` reply.
///
/// Current shape: `{"ds":..,"direct":..,"directserver":..,"tlsport":..,"httpsport":..,"visitorfound":true|false}`.
/// Older shape: `{"visitorfound":{"direct":"<server>"}}` (found; the server is taken from the
/// nested object, falling back to the top level). A missing or `null` `visitorfound` means not
/// found; a number counts as found when non-zero (JavaScript truthiness).
pub fn parse_find(status: u16, body: &[u8]) -> Result<FindResult, RestError> {
    let map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    let f = Fields::new(&map, status);
    let top = f.direct_server()?;
    match f.get("visitorfound") {
        None => Ok(FindResult {
            found: false,
            direct_server: top,
        }),
        Some(Value::Bool(found)) => Ok(FindResult {
            found: *found,
            direct_server: top,
        }),
        Some(Value::Number(n)) => Ok(FindResult {
            found: n.as_f64().is_some_and(|v| v != 0.0),
            direct_server: top,
        }),
        Some(Value::Object(inner)) => {
            let nested = Fields {
                map: inner,
                status,
                prefix: "visitorfound.",
            };
            Ok(FindResult {
                found: true,
                direct_server: nested.direct_server()?.or(top),
            })
        }
        Some(_) => Err(f.wrong("visitorfound", "a boolean or an object")),
    }
}

// ---------------------------------------------------------------------------------------------
// signalvisitor

/// What became of a signal or invoke: the one type for a signal's result, from the
/// `signalvisitor` answer (a 2xx; a 404 `visitornotpresent` is [`RestError::VisitorNotPresent`]),
/// from the socket route, and in the reference service's reply.
///
/// Serialized tagged by `"delivery"` (snake_case), e.g. `{"delivery":"held"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "delivery", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delivery {
    /// `{"delivered":true}`: the visitor's socket was open and the message was sent.
    Delivered,
    /// `{"held":true}`: the visitor was seen within the service's window; the message waits
    /// for its next connect.
    Held,
    /// A success of another shape (the real service's body is undocumented; Glance's client
    /// passes it on as is). An empty body gives `Value::Null`.
    Accepted {
        /// The body as received.
        body: Value,
    },
    /// Sent as a frame on the agent's socket (the socket route); the service confirms
    /// nothing. Never a REST answer.
    SentUnconfirmed,
}

impl Delivery {
    /// The `signalvisitor` reply body the reference service sends (`SentUnconfirmed`, which
    /// is never a REST answer, writes `null`).
    pub fn to_json(&self) -> Value {
        let flag = |key: &str| {
            let mut map = Map::new();
            map.insert(key.to_owned(), Value::Bool(true));
            Value::Object(map)
        };
        match self {
            Delivery::Delivered => flag("delivered"),
            Delivery::Held => flag("held"),
            Delivery::Accepted { body } => body.clone(),
            Delivery::SentUnconfirmed => Value::Null,
        }
    }
}

/// Parses a `signalvisitor` reply. `delivered: true` wins over `held: true`; an empty 2xx body
/// is `Accepted(Value::Null)` (Glance's client reports success for it too).
pub fn parse_signal(status: u16, body: &[u8]) -> Result<Delivery, RestError> {
    let Some(value) = check_response(status, body, DEFAULT_MAX_BODY_BYTES)? else {
        return Ok(Delivery::Accepted { body: Value::Null });
    };
    let flag = |key: &str| value.get(key).and_then(Value::as_bool) == Some(true);
    Ok(if flag("delivered") {
        Delivery::Delivered
    } else if flag("held") {
        Delivery::Held
    } else {
        Delivery::Accepted { body: value }
    })
}

// ---------------------------------------------------------------------------------------------
// query

/// A visitor's current state from `query` (this project's definition; Glance's `query` is
/// undocumented): the one type for it, in the agent's answers and events as in the reference
/// service's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct VisitorState {
    /// `present`: always `true` in a parsed answer (an answer that says the visitor is not
    /// present is [`QueryResult::Absent`]); written as is by [`VisitorState::to_json`].
    pub present: bool,
    /// `sockets`: open visitor sockets (missing: 0).
    pub sockets: u32,
    /// `since`: epoch seconds of the last change of presence (missing: 0).
    pub since: f64,
    /// `presence`: the merged presence data (missing: empty).
    pub presence: PresenceData,
    /// `visibility`, when reported.
    pub visibility: Option<Visibility>,
    /// `terms`: the last terms status, when reported.
    pub terms: Option<TermsStatus>,
    /// `insession`: whether a cobrowse session is running (missing: `false`).
    pub in_session: bool,
}

impl VisitorState {
    /// The reply body the reference service sends:
    /// `{"present":true,"sockets":1,"since":"1583953702.0","presence":{..},"visibility":"visible","terms":"accepted","insession":false}`
    /// (`visibility`/`terms` left out when `None`).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("present".to_owned(), Value::Bool(self.present));
        map.insert("sockets".to_owned(), Value::from(self.sockets));
        map.insert("since".to_owned(), epoch_value(self.since));
        map.insert(
            "presence".to_owned(),
            Value::Object(self.presence.as_map().clone()),
        );
        if let Some(v) = self.visibility {
            map.insert(
                "visibility".to_owned(),
                Value::String(v.as_str().to_owned()),
            );
        }
        if let Some(t) = self.terms {
            map.insert("terms".to_owned(), Value::String(t.as_str().to_owned()));
        }
        map.insert("insession".to_owned(), Value::Bool(self.in_session));
        Value::Object(map)
    }
}

/// The answer of `query`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// The visitor is not present: `{}`, `"present":false` or `"connected":false`.
    Absent,
    /// The visitor is present (`"present":true` or `"connected":true`), with its state.
    Present(VisitorState),
}

/// Parses a `query` reply.
///
/// Presence is read only from what the answer says, never from a missing field:
///
/// - `{}` is [`QueryResult::Absent`];
/// - otherwise the boolean `present` (the reference service's shape) or, when it is missing,
///   the boolean `connected` (the shape of Glance's `visitorconn` frames, e.g.
///   `{"visitorid":"v1","connected":false}`) decides: `true` is [`QueryResult::Present`],
///   `false` [`QueryResult::Absent`];
/// - a non-empty answer with neither, or with both disagreeing, is a [`RestError::Error`]:
///   the agent does not guess.
///
/// The other fields (`sockets`, `since`, `presence`, `visibility`, `terms`, `insession`) are
/// optional and checked whatever the answer says; `visibility` and `terms` are read
/// case-insensitively, and an unknown word is an error naming the field.
pub fn parse_query(status: u16, body: &[u8]) -> Result<QueryResult, RestError> {
    let map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    if map.is_empty() {
        return Ok(QueryResult::Absent);
    }
    let f = Fields::new(&map, status);
    let presence = match f.get("presence") {
        None => PresenceData::new(),
        Some(Value::Object(p)) => presence_from(p.clone()),
        Some(_) => return Err(f.wrong("presence", "an object")),
    };
    let visibility = match f.string("visibility")? {
        None => None,
        Some(word) => Some(
            word.parse::<Visibility>()
                .map_err(|_| f.wrong("visibility", "\"hidden\" or \"visible\""))?,
        ),
    };
    let terms = match f.string("terms")? {
        None => None,
        Some(word) => Some(
            word.parse::<TermsStatus>()
                .map_err(|_| f.wrong("terms", "\"displayed\", \"accepted\" or \"declined\""))?,
        ),
    };
    let sockets = f
        .uint("sockets", u64::from(u32::MAX), "a socket count")?
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let present = match (f.bool("present")?, f.bool("connected")?) {
        (Some(present), None) => present,
        (None, Some(connected)) => connected,
        (Some(present), Some(connected)) if present == connected => present,
        (Some(_), Some(_)) => {
            return Err(body_error(
                status,
                "fields `present` and `connected` disagree about the visitor",
            ))
        }
        (None, None) => {
            return Err(body_error(
                status,
                "the answer has neither `present` nor `connected`: whether the visitor is \
                 present cannot be read",
            ))
        }
    };
    let state = VisitorState {
        present,
        sockets,
        since: f.epoch("since")?.unwrap_or(0.0),
        presence,
        visibility,
        terms,
        in_session: f.bool("insession")?.unwrap_or(false),
    };
    Ok(if present {
        QueryResult::Present(state)
    } else {
        QueryResult::Absent
    })
}

// ---------------------------------------------------------------------------------------------
// uniquevisitor

/// The answer of `uniquevisitor`: the id a `connectUnique` visitor connects with.
#[derive(Clone, PartialEq, Eq)]
pub struct UniqueVisitor {
    /// `visitorid`: `UNQ-<uniqueid>` (derived from `uniqueid` when the reply leaves it out).
    pub visitorid: VisitorId,
    /// `guesttoken`: sent in the visitor's `connect` frame. Hidden by `Debug`.
    pub guesttoken: Option<String>,
    /// `uniqueid`: the code the visitor reads out to the agent (taken from `visitorid` when the
    /// reply leaves it out; a number is accepted).
    pub uniqueid: UniqueId,
    /// `timeout`: seconds the code stays valid (missing: [`DEFAULT_UNIQUE_TIMEOUT_SECS`]).
    pub timeout: u64,
}

impl fmt::Debug for UniqueVisitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UniqueVisitor")
            .field("visitorid", &self.visitorid)
            .field(
                "guesttoken",
                &self.guesttoken.as_ref().map(|_| "<redacted>"),
            )
            .field("uniqueid", &self.uniqueid)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl UniqueVisitor {
    /// The reply body the reference service sends:
    /// `{"visitorid":"UNQ-123456789","guesttoken":"…","uniqueid":"123456789","timeout":300}`.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "visitorid".to_owned(),
            Value::String(self.visitorid.as_str().to_owned()),
        );
        if let Some(token) = &self.guesttoken {
            map.insert("guesttoken".to_owned(), Value::String(token.clone()));
        }
        map.insert(
            "uniqueid".to_owned(),
            Value::String(self.uniqueid.as_str().to_owned()),
        );
        map.insert(
            "timeout".to_owned(),
            Value::Number(Number::from(self.timeout)),
        );
        Value::Object(map)
    }
}

/// Parses a `uniquevisitor` reply `{visitorid, guesttoken, uniqueid, timeout}`. Either id may be
/// missing (it is derived from the other); both missing, or an id that breaks its rule, is an
/// error naming the field.
pub fn parse_unique_visitor(status: u16, body: &[u8]) -> Result<UniqueVisitor, RestError> {
    let map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    let f = Fields::new(&map, status);
    let invalid = |field: &str, e: crate::ids::IdError| RestError::Error {
        status,
        detail: sanitize_detail(&format!("field `{field}` is invalid: {e}")),
    };
    let visitor = f
        .text("visitorid")?
        .map(|v| VisitorId::new(v).map_err(|e| invalid("visitorid", e)))
        .transpose()?;
    let unique = f
        .text("uniqueid")?
        .map(|u| UniqueId::new(u).map_err(|e| invalid("uniqueid", e)))
        .transpose()?;
    let (visitorid, uniqueid) = match (visitor, unique) {
        (Some(v), Some(u)) => (v, u),
        (None, Some(u)) => (VisitorId::from_unique(&u), u),
        (Some(v), None) => match v.unique_id() {
            Some(u) => (v, u),
            None => return Err(body_error(status, "field `uniqueid` is missing")),
        },
        (None, None) => return Err(body_error(status, "field `uniqueid` is missing")),
    };
    Ok(UniqueVisitor {
        visitorid,
        guesttoken: f.text("guesttoken")?,
        uniqueid,
        timeout: f
            .uint("timeout", u64::MAX, "a number of seconds")?
            .unwrap_or(DEFAULT_UNIQUE_TIMEOUT_SECS),
    })
}

// ---------------------------------------------------------------------------------------------
// presence (visitor side)

/// The answer of the visitor's `POST /presence`: where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceAssignment {
    /// The direct server (by the rule of [`VisitorRecord::direct_server`]).
    pub direct_server: Option<String>,
}

/// Parses a `presence` reply `{"direct":..,"directserver":..,"httpsport":..}`.
pub fn parse_presence(status: u16, body: &[u8]) -> Result<PresenceAssignment, RestError> {
    let map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    Ok(PresenceAssignment {
        direct_server: Fields::new(&map, status).direct_server()?,
    })
}

// ---------------------------------------------------------------------------------------------
// GetVisitorSettings3

/// The group's presence settings from `GetVisitorSettings3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorSettings {
    /// `presenceUrl`: the presence host, `host[:port]` without a scheme. `None` when empty or
    /// missing: presence is disabled for the group.
    pub presence_url: Option<String>,
    /// `isPresenceLoadBalanced` (missing: `false`): when true, all traffic goes to
    /// `presence_url` and signals go over the agent socket.
    pub load_balanced: bool,
}

impl VisitorSettings {
    /// The presence server, reached with `scheme` (a `presenceUrl` that carries its own scheme
    /// keeps it). `None` when presence is disabled.
    pub fn presence_server(&self, scheme: Scheme) -> Option<Result<ServerAddr, ServerAddrError>> {
        self.presence_url.as_deref().map(|url| {
            if url.contains("://") {
                ServerAddr::parse(url)
            } else {
                ServerAddr::new(scheme, url)
            }
        })
    }

    /// The reply body the reference service sends:
    /// `{"presenceUrl":"127.0.0.1:PORT","isPresenceLoadBalanced":false}` (`""` when disabled).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "presenceUrl".to_owned(),
            Value::String(self.presence_url.clone().unwrap_or_default()),
        );
        map.insert(
            "isPresenceLoadBalanced".to_owned(),
            Value::Bool(self.load_balanced),
        );
        Value::Object(map)
    }
}

/// Parses a `GetVisitorSettings3` reply. Other fields are ignored.
pub fn parse_visitor_settings(status: u16, body: &[u8]) -> Result<VisitorSettings, RestError> {
    let map = require_object(
        status,
        check_response(status, body, DEFAULT_MAX_BODY_BYTES)?,
    )?;
    let f = Fields::new(&map, status);
    let presence_url = f
        .string("presenceUrl")?
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty());
    Ok(VisitorSettings {
        presence_url,
        load_balanced: f.bool("isPresenceLoadBalanced")?.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_carries_the_stated_reason_cleaned() {
        let refused = |status, body: &[u8]| match check_response(status, body, 1024) {
            Err(RestError::Authorization { status: s, detail }) => {
                assert_eq!(s, status);
                detail
            }
            other => panic!("{other:?}"),
        };
        let reason = |text: &str| Some(text.to_owned());
        assert_eq!(
            refused(401, br#"{"err":"authorization","msg":"token expired"}"#),
            reason("token expired")
        );
        assert_eq!(
            refused(403, br#"{"Message":"group not allowed"}"#),
            reason("group not allowed")
        );
        assert_eq!(
            refused(401, br#"{"error":"x","detail":{"code":7}}"#),
            reason(r#"{"code":7}"#)
        );
        assert_eq!(refused(401, br#""bad key""#), reason("bad key"));
        assert_eq!(refused(401, b"bad\x07 key\n"), reason("bad  key"));
        assert_eq!(
            refused(
                401,
                br#"{"msg":"Bearer abc.def refused, token eyJhbGciOi.x.y"}"#
            ),
            reason("Bearer <redacted> refused, token <redacted>")
        );
        let long = format!(r#"{{"msg":"{}"}}"#, "no ".repeat(200));
        let cut = refused(401, long.as_bytes()).unwrap_or_default();
        assert!(
            cut.chars().count() <= super::super::MAX_DETAIL_CHARS + 1,
            "{cut}"
        );
        assert_eq!(refused(401, b"<html><body>401</body></html>"), None);
        assert_eq!(refused(403, b""), None);
        assert_eq!(refused(401, br#"{"err":"authorization"}"#), None);
        assert_eq!(refused(401, &[b'x'; 2000]), None);
    }

    #[test]
    fn direct_server_rule_follows_glances_client() {
        let rule = direct_server_rule;
        assert_eq!(
            rule(Some("pr0016.glance.net"), Some("x:1"), Some(443)).as_deref(),
            Some("pr0016.glance.net:443")
        );
        assert_eq!(rule(None, Some("h"), Some(8443)).as_deref(), Some("h:8443"));
        assert_eq!(rule(Some(""), Some("h"), None).as_deref(), Some("h"));
        assert_eq!(
            rule(None, Some("h:443"), Some(443)).as_deref(),
            Some("h:443")
        );
        assert_eq!(rule(Some("h"), None, Some(0)).as_deref(), Some("h"));
        assert_eq!(
            rule(Some("[::1]"), None, Some(9)).as_deref(),
            Some("[::1]:9")
        );
        assert_eq!(
            rule(Some("[::1]:8"), None, Some(9)).as_deref(),
            Some("[::1]:8")
        );
        assert_eq!(rule(None, None, Some(443)), None);
        assert_eq!(rule(Some(""), Some(""), Some(443)), None);
    }

    #[test]
    fn epochs_are_written_as_float_strings() {
        assert_eq!(
            epoch_value(1583953702.0),
            Value::String("1583953702.0".into())
        );
        assert_eq!(epoch_value(1.5), Value::String("1.5".into()));
        assert_eq!(epoch_value(f64::NAN), Value::Null);
    }
}
