//! From an [`Envelope`] to a typed frame: the field readers and the `decode` constructors of
//! [`ClientFrame`] and [`ServerFrame`]. Every failure is a typed [`DecodeError`].

use serde_json::{Map, Value};

use super::envelope::{check_len_then_utf8, parse_envelope, Envelope};
use super::{ClientFrame, ConnectFrame, DecodeError, InvokeRequest, ServerFrame};
use crate::ids::{GroupId, IdError, VisitorId};
use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::secret::AuthToken;

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

impl ClientFrame {
    /// Decodes one text frame of at most `max_bytes` bytes (normally
    /// [`DEFAULT_MAX_FRAME_BYTES`](super::DEFAULT_MAX_FRAME_BYTES)).
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
}

impl ServerFrame {
    /// Decodes one text frame of at most `max_bytes` bytes (normally
    /// [`DEFAULT_MAX_FRAME_BYTES`](super::DEFAULT_MAX_FRAME_BYTES)).
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
}
