//! The WebSocket frames of the Glance Presence protocol as typed values, and their codec.
//!
//! Every frame is one JSON object in one WebSocket text frame. [`ClientFrame`] is what an agent
//! or a visitor sends to the service; [`ServerFrame`] is what the service sends back (its own
//! frames, and visitor frames forwarded to agents).
//!
//! Decoding follows Glance's shipped clients: the frame's name is `mtype || type` (`mtype` wins
//! when it is a non-empty string), the payload is `data`, unknown fields are ignored and `null`
//! counts as absent. A type this module does not know decodes to an `Other` value that keeps the
//! type and the payload, so newer peers never break older ones. Every failure is a typed
//! [`DecodeError`]: a decoder never panics, whatever the input. The size limit is checked before
//! anything is parsed, and the input is parsed exactly once.
//!
//! Encoding writes exactly the keys Glance's clients write, in their order, and nothing else.
//!
//! This module is a codec only: no IO, no state, no policy (which frames a role may send, or
//! which `invoke` functions are allowed, is the caller's business; [`invoke_func_allowed`] is
//! offered as a helper).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::ids::{GroupId, IdError, VisitorId};
use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::secret::AuthToken;

/// Default largest frame the decoders accept: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Why a frame could not be decoded. Each kind of failure has its own variant.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is longer than the limit. Checked before anything else.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length of the frame in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not UTF-8 (only from `decode_bytes`).
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// The text is not one JSON value, or nests deeper than the JSON parser allows.
    #[error("frame is not valid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser reported.
        detail: String,
    },
    /// The JSON value is not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// Neither `mtype` nor `type` is a non-empty string.
    #[error("frame has no type")]
    MissingType,
    /// A field the frame needs is missing (or `null`), or has the wrong JSON type.
    #[error("field {field} must be {expected}")]
    WrongType {
        /// The field as a path, e.g. `"data.connected"`.
        field: &'static str,
        /// What it must be, e.g. `"a boolean"`.
        expected: &'static str,
    },
    /// A field has the right JSON type but a value that is not accepted.
    #[error("field {field} is invalid: {detail}")]
    InvalidValue {
        /// The field as a path, e.g. `"visitorid"`.
        field: &'static str,
        /// Why, e.g. the [`IdError`] text of a bad visitor id.
        detail: String,
    },
}

/// The payload of an `invoke` frame: `{"func":..,"args":..}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvokeRequest {
    /// The visitor-side function to run, e.g. `GLANCE.Cobrowse.VisitorUI.showTerms`.
    pub func: String,
    /// Its arguments (any JSON; `null` when absent).
    #[serde(default)]
    pub args: Value,
}

impl InvokeRequest {
    /// Whether [`func`](Self::func) may be invoked on a visitor (see [`invoke_func_allowed`]).
    pub fn is_allowed_func(&self) -> bool {
        invoke_func_allowed(&self.func)
    }
}

/// Whether a function name may be invoked on a visitor: it starts with `GLANCE.` or
/// `GLANCE_COBROWSE.Custom.` and has something after that prefix.
pub fn invoke_func_allowed(func: &str) -> bool {
    ["GLANCE.", "GLANCE_COBROWSE.Custom."].iter().any(|prefix| {
        func.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// The first frame every client sends on a new socket: `connect`.
///
/// Wire (key order exactly this; `authorization` and `guesttoken` omitted when `None`):
/// `{"type":"connect","authorization":"..","groupid":"12345","visitorid":"v1","guesttoken":"..","version":"6.25.0"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectFrame {
    /// The agent's token. Visitors send none, and then the key is omitted entirely.
    pub authorization: Option<AuthToken>,
    /// The group.
    pub group: GroupId,
    /// Whether `groupid` is a JSON string (`"12345"`, Glance's agent) rather than a number
    /// (`12345`, a visitor given the group by its page). Decoding accepts both and records which.
    pub group_as_string: bool,
    /// The visitor the socket is about.
    pub visitor: VisitorId,
    /// The guest token of a `connectUnique` visitor; the key is omitted when `None`.
    pub guest_token: Option<String>,
    /// The client's version, `major.minor.patch` (empty when the client sent none).
    pub version: String,
}

/// A frame from a client (an agent or a visitor) to the service.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `connect`, the first frame of every socket (see [`ConnectFrame`]).
    Connect(ConnectFrame),
    /// `{"type":"k"}`, sent every `keepalive` seconds after `connected`.
    Keepalive,
    /// An agent's signal over its socket: `{"type":"signal","mtype":"signal","data":<v>}`.
    Signal(Value),
    /// An agent's invoke over its socket:
    /// `{"type":"invoke","mtype":"invoke","data":{"func":..,"args":..}}`.
    Invoke(InvokeRequest),
    /// A visitor's presence data: `{"type":"presence","data":{...}}`.
    Presence(PresenceData),
    /// A visitor's page visibility: `{"type":"visibility","data":{"visibility":"hidden"}}`.
    Visibility(Visibility),
    /// A visitor's terms dialog state: `{"type":"terms","data":{"status":"accepted"}}`.
    Terms(TermsStatus),
    /// `{"type":"visitorsessionstart"}`, plus `"data"` when `Some`.
    VisitorSessionStart(Option<Value>),
    /// `{"type":"visitorsessionend"}`, plus `"data"` when `Some`.
    VisitorSessionEnd(Option<Value>),
    /// `{"type":"visitorerror","data":{...}}`.
    VisitorError(Value),
    /// Any other type (a visitor's `fire(type, data)`, a newer client's frame): kept as it came,
    /// never an error. `kind` is never one of the types above.
    Other {
        /// The frame's type.
        kind: String,
        /// Its payload, when it had one.
        data: Option<Value>,
    },
}

/// A frame from the service to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// `{"type":"connected","keepalive":30}` (`keepalive` at top level, in seconds; `data` when
    /// `Some`).
    Connected {
        /// Seconds between the client's `k` frames.
        keepalive: Option<u64>,
        /// Payload, when any.
        data: Option<Value>,
    },
    /// `{"type":"visitorsock","data":{"connected":true}}`: the visitor's socket came or went.
    VisitorSock {
        /// Whether the visitor has a socket now.
        connected: bool,
    },
    /// `{"type":"visitorconn","data":{"connected":false}}`: the visitor became present or
    /// stopped being present.
    VisitorConn {
        /// Whether the visitor is present now.
        connected: bool,
    },
    /// A visitor's presence data, forwarded.
    Presence(PresenceData),
    /// A visitor's visibility, forwarded.
    Visibility(Visibility),
    /// A visitor's terms status, forwarded.
    Terms(TermsStatus),
    /// `visitorsessionstart`, forwarded.
    VisitorSessionStart(Option<Value>),
    /// `visitorsessionend`, forwarded.
    VisitorSessionEnd(Option<Value>),
    /// `visitorerror`, forwarded.
    VisitorError(Value),
    /// Use another server: encoded `{"type":"redirect","data":{"direct":..}}`; decoded from
    /// `data.direct` or, when there is no `data`, from a top-level `direct`.
    Redirect {
        /// The server, `host[:port]`.
        direct: String,
    },
    /// `{"type":"serverclose"}`: the service is closing the socket; do not reconnect.
    ServerClose,
    /// `{"type":"scaledown"}`: reconnect now (re-discovering the server).
    ScaleDown,
    /// `{"type":"blur"}`: a newer socket with the same visitor id took over.
    Blur,
    /// `{"type":"error","data":{"error":"connfail","detail":"authorization"}}` (`detail` omitted
    /// when `None`).
    Error {
        /// The error code.
        error: String,
        /// The detail, when any.
        detail: Option<String>,
    },
    /// `{"type":"signal","data":<v>}`: a signal delivered to a visitor.
    Signal(Value),
    /// `{"type":"invoke","data":{"func":..,"args":..}}`: an invoke delivered to a visitor.
    Invoke(InvokeRequest),
    /// Any other type, kept as it came (including visitor `fire` frames forwarded to agents).
    /// `kind` is never one of the types above.
    Other {
        /// The frame's type.
        kind: String,
        /// Its payload, when it had one.
        data: Option<Value>,
    },
}

const CLIENT_KINDS: [&str; 10] = [
    "connect",
    "k",
    "signal",
    "invoke",
    "presence",
    "visibility",
    "terms",
    "visitorsessionstart",
    "visitorsessionend",
    "visitorerror",
];

const SERVER_KINDS: [&str; 16] = [
    "connected",
    "visitorsock",
    "visitorconn",
    "presence",
    "visibility",
    "terms",
    "visitorsessionstart",
    "visitorsessionend",
    "visitorerror",
    "redirect",
    "serverclose",
    "scaledown",
    "blur",
    "error",
    "signal",
    "invoke",
];

// ---------------------------------------------------------------------------------------------
// Decoding: one pass of serde_json over the text into an envelope that borrows the type names
// and keeps `data` as a `Value`, which is then moved (never re-parsed) into the typed frame.

/// A `type` or `mtype` field.
enum TypeField<'a> {
    Absent,
    Str(Cow<'a, str>),
    Wrong,
}

impl<'de> Deserialize<'de> for TypeField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(TypeField::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(TypeField::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(TypeField::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(TypeField::Absent)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(TypeField::Absent)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(TypeField::Wrong)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(TypeField::Wrong)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(TypeField::Wrong)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(TypeField::Wrong)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeField::Wrong)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeField::Wrong)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// The top-level keys the decoders look at; everything else is skipped without being built.
enum Key {
    Type,
    Mtype,
    Data,
    Keepalive,
    Direct,
    Authorization,
    GroupId,
    VisitorId,
    GuestToken,
    Version,
    Ignored,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "type" => Key::Type,
                    "mtype" => Key::Mtype,
                    "data" => Key::Data,
                    "keepalive" => Key::Keepalive,
                    "direct" => Key::Direct,
                    "authorization" => Key::Authorization,
                    "groupid" => Key::GroupId,
                    "visitorid" => Key::VisitorId,
                    "guesttoken" => Key::GuestToken,
                    "version" => Key::Version,
                    _ => Key::Ignored,
                })
            }
        }
        deserializer.deserialize_identifier(V)
    }
}

/// One decoded JSON object, before it is turned into a typed frame. `null` fields are `None`.
struct Envelope<'a> {
    kind: TypeField<'a>,
    mtype: TypeField<'a>,
    data: Option<Value>,
    keepalive: Option<Value>,
    direct: Option<Value>,
    authorization: Option<Value>,
    groupid: Option<Value>,
    visitorid: Option<Value>,
    guesttoken: Option<Value>,
    version: Option<Value>,
}

/// The whole input: an object (`Some`), or any other well-formed JSON value (`None`).
struct Parsed<'a>(Option<Envelope<'a>>);

impl<'de> Deserialize<'de> for Parsed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Parsed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut env = Envelope {
                    kind: TypeField::Absent,
                    mtype: TypeField::Absent,
                    data: None,
                    keepalive: None,
                    direct: None,
                    authorization: None,
                    groupid: None,
                    visitorid: None,
                    guesttoken: None,
                    version: None,
                };
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Type => env.kind = map.next_value()?,
                        Key::Mtype => env.mtype = map.next_value()?,
                        Key::Data => env.data = map.next_value()?,
                        Key::Keepalive => env.keepalive = map.next_value()?,
                        Key::Direct => env.direct = map.next_value()?,
                        Key::Authorization => env.authorization = map.next_value()?,
                        Key::GroupId => env.groupid = map.next_value()?,
                        Key::VisitorId => env.visitorid = map.next_value()?,
                        Key::GuestToken => env.guesttoken = map.next_value()?,
                        Key::Version => env.version = map.next_value()?,
                        Key::Ignored => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Parsed(Some(env)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Parsed(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Parsed(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Size check, then one parse; returns the frame name (`mtype || type`) and the envelope.
fn parse_envelope(
    text: &str,
    max_bytes: usize,
) -> Result<(Cow<'_, str>, Envelope<'_>), DecodeError> {
    if text.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: text.len(),
            limit: max_bytes,
        });
    }
    let parsed: Parsed<'_> = serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson {
        detail: e.to_string(),
    })?;
    let Parsed(Some(mut env)) = parsed else {
        return Err(DecodeError::NotAnObject);
    };
    let mtype = std::mem::replace(&mut env.mtype, TypeField::Absent);
    let kind = match mtype {
        TypeField::Str(s) if !s.is_empty() => s,
        TypeField::Wrong => {
            return Err(DecodeError::WrongType {
                field: "mtype",
                expected: "a string",
            })
        }
        TypeField::Str(_) | TypeField::Absent => {
            match std::mem::replace(&mut env.kind, TypeField::Absent) {
                TypeField::Str(s) if !s.is_empty() => s,
                TypeField::Str(_) | TypeField::Absent => return Err(DecodeError::MissingType),
                TypeField::Wrong => {
                    return Err(DecodeError::WrongType {
                        field: "type",
                        expected: "a string",
                    })
                }
            }
        }
    };
    Ok((kind, env))
}

fn check_len_then_utf8(bytes: &[u8], max_bytes: usize) -> Result<&str, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: max_bytes,
        });
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
}

const AN_OBJECT: &str = "an object";
const A_STRING: &str = "a string";

/// `data` as an object; absent or another type is [`DecodeError::WrongType`].
fn data_object(data: Option<Value>) -> Result<Map<String, Value>, DecodeError> {
    match data {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(DecodeError::WrongType {
            field: "data",
            expected: AN_OBJECT,
        }),
    }
}

fn required_string(value: Option<Value>, field: &'static str) -> Result<String, DecodeError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        _ => Err(DecodeError::WrongType {
            field,
            expected: A_STRING,
        }),
    }
}

fn optional_string(
    value: Option<Value>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DecodeError::WrongType {
            field,
            expected: A_STRING,
        }),
    }
}

fn presence_data(data: Option<Value>) -> Result<PresenceData, DecodeError> {
    match data {
        None => Ok(PresenceData::new()),
        Some(Value::Object(map)) => Ok(PresenceData::from_map(map)),
        Some(_) => Err(DecodeError::WrongType {
            field: "data",
            expected: AN_OBJECT,
        }),
    }
}

/// A word of `data` (`data.visibility`, `data.status`) parsed case-insensitively.
fn status_word<T>(data: Option<Value>, key: &str, field: &'static str) -> Result<T, DecodeError>
where
    T: std::str::FromStr<Err = crate::presence::ParseStatusError>,
{
    let map = data_object(data)?;
    match map.get(key) {
        Some(Value::String(s)) => {
            s.parse().map_err(
                |e: crate::presence::ParseStatusError| DecodeError::InvalidValue {
                    field,
                    detail: e.to_string(),
                },
            )
        }
        _ => Err(DecodeError::WrongType {
            field,
            expected: A_STRING,
        }),
    }
}

fn visibility(data: Option<Value>) -> Result<Visibility, DecodeError> {
    status_word(data, "visibility", "data.visibility")
}

fn terms(data: Option<Value>) -> Result<TermsStatus, DecodeError> {
    status_word(data, "status", "data.status")
}

fn invoke(data: Option<Value>) -> Result<InvokeRequest, DecodeError> {
    let mut map = data_object(data)?;
    let func = required_string(map.remove("func"), "data.func")?;
    let args = map.remove("args").unwrap_or(Value::Null);
    Ok(InvokeRequest { func, args })
}

fn connected_flag(data: Option<Value>) -> Result<bool, DecodeError> {
    let map = data_object(data)?;
    match map.get("connected") {
        Some(Value::Bool(b)) => Ok(*b),
        _ => Err(DecodeError::WrongType {
            field: "data.connected",
            expected: "a boolean",
        }),
    }
}

fn keepalive(value: Option<Value>) -> Result<Option<u64>, DecodeError> {
    const EXPECTED: &str = "a non-negative integer";
    let number = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n,
        Some(_) => {
            return Err(DecodeError::WrongType {
                field: "keepalive",
                expected: EXPECTED,
            })
        }
    };
    if let Some(n) = number.as_u64() {
        return Ok(Some(n));
    }
    let invalid = || DecodeError::InvalidValue {
        field: "keepalive",
        detail: format!("{number} is not a non-negative integer"),
    };
    // A whole float such as 30.0 (some JSON writers produce it) is accepted.
    match number.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_616.0 => {
            // In range and whole, so the conversion is exact.
            Ok(Some(f as u64))
        }
        _ => Err(invalid()),
    }
}

fn group(value: Option<Value>) -> Result<(GroupId, bool), DecodeError> {
    let invalid = |e: IdError| DecodeError::InvalidValue {
        field: "groupid",
        detail: e.to_string(),
    };
    match value {
        Some(Value::String(s)) => s.parse::<GroupId>().map(|g| (g, true)).map_err(invalid),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => GroupId::new(v).map(|g| (g, false)).map_err(invalid),
            None => Err(invalid(IdError::NotPositiveInteger {
                value: n.to_string(),
            })),
        },
        _ => Err(DecodeError::WrongType {
            field: "groupid",
            expected: "a group id (a string of digits or a number)",
        }),
    }
}

fn connect(env: Envelope<'_>) -> Result<ConnectFrame, DecodeError> {
    let authorization = optional_string(env.authorization, "authorization")?.map(AuthToken::new);
    let (group, group_as_string) = group(env.groupid)?;
    let visitor = VisitorId::new(required_string(env.visitorid, "visitorid")?).map_err(|e| {
        DecodeError::InvalidValue {
            field: "visitorid",
            detail: e.to_string(),
        }
    })?;
    let guest_token = optional_string(env.guesttoken, "guesttoken")?;
    let version = optional_string(env.version, "version")?.unwrap_or_default();
    Ok(ConnectFrame {
        authorization,
        group,
        group_as_string,
        visitor,
        guest_token,
        version,
    })
}

fn redirect(env: Envelope<'_>) -> Result<String, DecodeError> {
    // Glance's agent: `d = msg.data || msg; d.direct`.
    match env.data {
        Some(data) => required_string(data_object(Some(data))?.remove("direct"), "data.direct"),
        None => required_string(env.direct, "direct"),
    }
}

fn error_frame(data: Option<Value>) -> Result<ServerFrame, DecodeError> {
    let mut map = data_object(data)?;
    let error = required_string(map.remove("error"), "data.error")?;
    let detail = optional_string(map.remove("detail"), "data.detail")?;
    Ok(ServerFrame::Error { error, detail })
}

// ---------------------------------------------------------------------------------------------
// Encoding: small borrowed structs through serde_json, keys in the order Glance's clients use.

/// `{"type":..,"mtype":..,"keepalive":..,"data":..}`, each optional key omitted when `None`.
#[derive(Serialize)]
struct Out<'a, D: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtype: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keepalive: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
}

/// The JSON text of a value whose serialization cannot fail (string keys, no fallible
/// `Serialize` impls). Falls back to an empty string rather than panicking.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn bare(kind: &str) -> String {
    to_json(&Out::<()> {
        kind,
        mtype: None,
        keepalive: None,
        data: None,
    })
}

fn with_data<D: Serialize>(kind: &str, data: Option<D>) -> String {
    to_json(&Out {
        kind,
        mtype: None,
        keepalive: None,
        data,
    })
}

#[derive(Serialize)]
struct VisibilityOut {
    visibility: &'static str,
}

#[derive(Serialize)]
struct TermsOut {
    status: &'static str,
}

#[derive(Serialize)]
struct ConnectedOut {
    connected: bool,
}

#[derive(Serialize)]
struct DirectOut<'a> {
    direct: &'a str,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

struct GroupOut {
    group: GroupId,
    as_string: bool,
}

impl Serialize for GroupOut {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.as_string {
            serializer.collect_str(&self.group)
        } else {
            serializer.serialize_u64(self.group.get())
        }
    }
}

#[derive(Serialize)]
struct ConnectOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorization: Option<&'a str>,
    groupid: GroupOut,
    visitorid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    guesttoken: Option<&'a str>,
    version: &'a str,
}

impl ConnectFrame {
    fn encode(&self) -> String {
        to_json(&ConnectOut {
            kind: "connect",
            authorization: self.authorization.as_ref().map(AuthToken::expose_secret),
            groupid: GroupOut {
                group: self.group,
                as_string: self.group_as_string,
            },
            visitorid: self.visitor.as_str(),
            guesttoken: self.guest_token.as_deref(),
            version: &self.version,
        })
    }
}

fn agent_route<D: Serialize>(kind: &str, data: &D) -> String {
    to_json(&Out {
        kind,
        mtype: Some(kind),
        keepalive: None,
        data: Some(data),
    })
}

// ---------------------------------------------------------------------------------------------

impl ClientFrame {
    /// Decodes one text frame of at most `max_bytes` bytes (normally
    /// [`DEFAULT_MAX_FRAME_BYTES`]).
    pub fn decode(text: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        let (kind, env) = parse_envelope(text, max_bytes)?;
        Ok(match kind.as_ref() {
            "connect" => ClientFrame::Connect(connect(env)?),
            "k" => ClientFrame::Keepalive,
            "signal" => ClientFrame::Signal(env.data.unwrap_or(Value::Null)),
            "invoke" => ClientFrame::Invoke(invoke(env.data)?),
            "presence" => ClientFrame::Presence(presence_data(env.data)?),
            "visibility" => ClientFrame::Visibility(visibility(env.data)?),
            "terms" => ClientFrame::Terms(terms(env.data)?),
            "visitorsessionstart" => ClientFrame::VisitorSessionStart(env.data),
            "visitorsessionend" => ClientFrame::VisitorSessionEnd(env.data),
            "visitorerror" => ClientFrame::VisitorError(env.data.unwrap_or(Value::Null)),
            _ => ClientFrame::Other {
                kind: kind.into_owned(),
                data: env.data,
            },
        })
    }

    /// Decodes a frame given as bytes: the size limit first, then UTF-8, then as
    /// [`decode`](Self::decode).
    pub fn decode_bytes(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        Self::decode(check_len_then_utf8(bytes, max_bytes)?, max_bytes)
    }

    /// The frame as JSON text, exactly as Glance's clients write it.
    ///
    /// `VisitorSessionStart(Some(Value::Null))` (and the like) writes `"data":null`, which
    /// decodes back as `None`.
    pub fn encode(&self) -> String {
        match self {
            ClientFrame::Connect(c) => c.encode(),
            ClientFrame::Keepalive => bare("k"),
            ClientFrame::Signal(v) => agent_route("signal", v),
            ClientFrame::Invoke(r) => agent_route("invoke", r),
            ClientFrame::Presence(p) => with_data("presence", Some(p)),
            ClientFrame::Visibility(v) => with_data(
                "visibility",
                Some(VisibilityOut {
                    visibility: v.as_str(),
                }),
            ),
            ClientFrame::Terms(t) => with_data("terms", Some(TermsOut { status: t.as_str() })),
            ClientFrame::VisitorSessionStart(d) => with_data("visitorsessionstart", d.as_ref()),
            ClientFrame::VisitorSessionEnd(d) => with_data("visitorsessionend", d.as_ref()),
            ClientFrame::VisitorError(v) => with_data("visitorerror", Some(v)),
            ClientFrame::Other { kind, data } => with_data(kind, data.as_ref()),
        }
    }

    /// The frame's wire type (`"connect"`, `"k"`, ..., or the `Other` kind).
    pub fn kind(&self) -> &str {
        match self {
            ClientFrame::Connect(_) => "connect",
            ClientFrame::Keepalive => "k",
            ClientFrame::Signal(_) => "signal",
            ClientFrame::Invoke(_) => "invoke",
            ClientFrame::Presence(_) => "presence",
            ClientFrame::Visibility(_) => "visibility",
            ClientFrame::Terms(_) => "terms",
            ClientFrame::VisitorSessionStart(_) => "visitorsessionstart",
            ClientFrame::VisitorSessionEnd(_) => "visitorsessionend",
            ClientFrame::VisitorError(_) => "visitorerror",
            ClientFrame::Other { kind, .. } => kind,
        }
    }

    /// Whether `kind` is a type [`ClientFrame::decode`] turns into a variant other than
    /// [`ClientFrame::Other`].
    pub fn is_known_kind(kind: &str) -> bool {
        CLIENT_KINDS.contains(&kind)
    }

    /// The frame the service forwards to a visitor's agents for this visitor-originated frame,
    /// with type and payload kept: `presence`, `visibility`, `terms`, `visitorsessionstart`,
    /// `visitorsessionend`, `visitorerror` and `Other`.
    ///
    /// `None` for `connect`, `k`, `signal` and `invoke`, and for an `Other` frame whose type is
    /// one of the service's own frame types (`connected`, `visitorsock`, `visitorconn`,
    /// `redirect`, `serverclose`, `scaledown`, `blur`, `error`): a visitor must not be able to
    /// make an agent believe the service sent it, say, a `redirect`.
    pub fn into_forwarded(self) -> Option<ServerFrame> {
        Some(match self {
            ClientFrame::Presence(p) => ServerFrame::Presence(p),
            ClientFrame::Visibility(v) => ServerFrame::Visibility(v),
            ClientFrame::Terms(t) => ServerFrame::Terms(t),
            ClientFrame::VisitorSessionStart(d) => ServerFrame::VisitorSessionStart(d),
            ClientFrame::VisitorSessionEnd(d) => ServerFrame::VisitorSessionEnd(d),
            ClientFrame::VisitorError(v) => ServerFrame::VisitorError(v),
            ClientFrame::Other { kind, data } => {
                if ServerFrame::is_known_kind(&kind) {
                    return None;
                }
                ServerFrame::Other { kind, data }
            }
            ClientFrame::Connect(_)
            | ClientFrame::Keepalive
            | ClientFrame::Signal(_)
            | ClientFrame::Invoke(_) => return None,
        })
    }
}

impl ServerFrame {
    /// Decodes one text frame of at most `max_bytes` bytes (normally
    /// [`DEFAULT_MAX_FRAME_BYTES`]).
    pub fn decode(text: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        let (kind, env) = parse_envelope(text, max_bytes)?;
        Ok(match kind.as_ref() {
            "connected" => ServerFrame::Connected {
                keepalive: keepalive(env.keepalive)?,
                data: env.data,
            },
            "visitorsock" => ServerFrame::VisitorSock {
                connected: connected_flag(env.data)?,
            },
            "visitorconn" => ServerFrame::VisitorConn {
                connected: connected_flag(env.data)?,
            },
            "presence" => ServerFrame::Presence(presence_data(env.data)?),
            "visibility" => ServerFrame::Visibility(visibility(env.data)?),
            "terms" => ServerFrame::Terms(terms(env.data)?),
            "visitorsessionstart" => ServerFrame::VisitorSessionStart(env.data),
            "visitorsessionend" => ServerFrame::VisitorSessionEnd(env.data),
            "visitorerror" => ServerFrame::VisitorError(env.data.unwrap_or(Value::Null)),
            "redirect" => ServerFrame::Redirect {
                direct: redirect(env)?,
            },
            "serverclose" => ServerFrame::ServerClose,
            "scaledown" => ServerFrame::ScaleDown,
            "blur" => ServerFrame::Blur,
            "error" => error_frame(env.data)?,
            "signal" => ServerFrame::Signal(env.data.unwrap_or(Value::Null)),
            "invoke" => ServerFrame::Invoke(invoke(env.data)?),
            _ => ServerFrame::Other {
                kind: kind.into_owned(),
                data: env.data,
            },
        })
    }

    /// Decodes a frame given as bytes: the size limit first, then UTF-8, then as
    /// [`decode`](Self::decode).
    pub fn decode_bytes(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        Self::decode(check_len_then_utf8(bytes, max_bytes)?, max_bytes)
    }

    /// The frame as JSON text (shapes in the variant docs).
    ///
    /// An optional payload of `Some(Value::Null)` writes `"data":null`, which decodes back as
    /// `None`.
    pub fn encode(&self) -> String {
        match self {
            ServerFrame::Connected { keepalive, data } => to_json(&Out {
                kind: "connected",
                mtype: None,
                keepalive: *keepalive,
                data: data.as_ref(),
            }),
            ServerFrame::VisitorSock { connected } => with_data(
                "visitorsock",
                Some(ConnectedOut {
                    connected: *connected,
                }),
            ),
            ServerFrame::VisitorConn { connected } => with_data(
                "visitorconn",
                Some(ConnectedOut {
                    connected: *connected,
                }),
            ),
            ServerFrame::Presence(p) => with_data("presence", Some(p)),
            ServerFrame::Visibility(v) => with_data(
                "visibility",
                Some(VisibilityOut {
                    visibility: v.as_str(),
                }),
            ),
            ServerFrame::Terms(t) => with_data("terms", Some(TermsOut { status: t.as_str() })),
            ServerFrame::VisitorSessionStart(d) => with_data("visitorsessionstart", d.as_ref()),
            ServerFrame::VisitorSessionEnd(d) => with_data("visitorsessionend", d.as_ref()),
            ServerFrame::VisitorError(v) => with_data("visitorerror", Some(v)),
            ServerFrame::Redirect { direct } => with_data("redirect", Some(DirectOut { direct })),
            ServerFrame::ServerClose => bare("serverclose"),
            ServerFrame::ScaleDown => bare("scaledown"),
            ServerFrame::Blur => bare("blur"),
            ServerFrame::Error { error, detail } => with_data(
                "error",
                Some(ErrorOut {
                    error,
                    detail: detail.as_deref(),
                }),
            ),
            ServerFrame::Signal(v) => with_data("signal", Some(v)),
            ServerFrame::Invoke(r) => with_data("invoke", Some(r)),
            ServerFrame::Other { kind, data } => with_data(kind, data.as_ref()),
        }
    }

    /// The frame's wire type (`"connected"`, `"visitorsock"`, ..., or the `Other` kind).
    pub fn kind(&self) -> &str {
        match self {
            ServerFrame::Connected { .. } => "connected",
            ServerFrame::VisitorSock { .. } => "visitorsock",
            ServerFrame::VisitorConn { .. } => "visitorconn",
            ServerFrame::Presence(_) => "presence",
            ServerFrame::Visibility(_) => "visibility",
            ServerFrame::Terms(_) => "terms",
            ServerFrame::VisitorSessionStart(_) => "visitorsessionstart",
            ServerFrame::VisitorSessionEnd(_) => "visitorsessionend",
            ServerFrame::VisitorError(_) => "visitorerror",
            ServerFrame::Redirect { .. } => "redirect",
            ServerFrame::ServerClose => "serverclose",
            ServerFrame::ScaleDown => "scaledown",
            ServerFrame::Blur => "blur",
            ServerFrame::Error { .. } => "error",
            ServerFrame::Signal(_) => "signal",
            ServerFrame::Invoke(_) => "invoke",
            ServerFrame::Other { kind, .. } => kind,
        }
    }

    /// Whether `kind` is a type [`ServerFrame::decode`] turns into a variant other than
    /// [`ServerFrame::Other`].
    pub fn is_known_kind(kind: &str) -> bool {
        SERVER_KINDS.contains(&kind)
    }
}
