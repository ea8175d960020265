//! The one serde pass over a frame's text: the size check, then a parse into an [`Envelope`]
//! that borrows the type names, keeps only the top-level keys the decoders read (everything
//! else is skipped without being built) and holds `data` as a `Value` to be moved, never
//! re-parsed, into the typed frame.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::DecodeError;

/// A `type` or `mtype` field.
pub(super) enum TypeField<'a> {
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
pub(super) struct Envelope<'a> {
    pub(super) kind: TypeField<'a>,
    pub(super) mtype: TypeField<'a>,
    pub(super) data: Option<Value>,
    pub(super) keepalive: Option<Value>,
    pub(super) direct: Option<Value>,
    pub(super) authorization: Option<Value>,
    pub(super) groupid: Option<Value>,
    pub(super) visitorid: Option<Value>,
    pub(super) guesttoken: Option<Value>,
    pub(super) version: Option<Value>,
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
                        Key::Data => env.data = map.next_value::<Option<Data>>()?.map(|d| d.0),
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
pub(super) fn parse_envelope(
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

pub(super) fn check_len_then_utf8(bytes: &[u8], max_bytes: usize) -> Result<&str, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit: max_bytes,
        });
    }
    std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
}

/// `data`, built as a `Value` in one pass like serde_json's own, except that an object is
/// given room for [`DATA_FIELDS`] fields up front (a presence object holds about that many), so
/// it is not grown and rehashed field by field.
struct Data(Value);

/// Fields an object in `data` has room for before it grows.
const DATA_FIELDS: usize = 8;

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Data;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Data, A::Error> {
                let mut map = Map::with_capacity(DATA_FIELDS);
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    map.insert(key, value);
                }
                Ok(Data(Value::Object(map)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Data, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = access.next_element::<Value>()? {
                    items.push(item);
                }
                Ok(Data(Value::Array(items)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Data, E> {
                Ok(Data(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Data, E> {
                Ok(Data(Value::Number(v.into())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Data, E> {
                Ok(Data(Value::Number(v.into())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Data, E> {
                Ok(Data(Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Data, E> {
                Ok(Data(Value::String(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Data, E> {
                Ok(Data(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Data, E> {
                Ok(Data(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Data, E> {
                Ok(Data(Value::Null))
            }
        }
        deserializer.deserialize_any(V)
    }
}
