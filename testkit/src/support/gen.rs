//! Arbitrary wire material both cores' input generators share: JSON values and words drawn
//! from a core's vocabulary, frames of any `type` with any `data`, HTTP bodies beyond the
//! canonical ones, and blobs of any size. Each core's `ops` names its own [`Vocabulary`]; the
//! ops themselves (and what they mean) are not here.

use std::fmt::Debug;
use std::marker::PhantomData;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Value};

/// The words and server frame types a core's arbitrary inputs draw from (a marker type, so
/// [`Json`], [`AnyFrame`] and [`WideBody`] know which list to use).
pub trait Vocabulary: Debug + Clone {
    /// Words that mean something to the core, used as strings and keys now and then.
    const WORDS: &'static [&'static str];
    /// Server frame types: every known one (room for arbitrary text is added).
    const FRAME_TYPES: &'static [&'static str];
}

/// Any JSON value, at most four levels deep, with small containers.
#[derive(Debug, Clone)]
pub struct Json<V>(pub Value, PhantomData<V>);

impl<'a, V: Vocabulary> Arbitrary<'a> for Json<V> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Json(json_value(u, 4, V::WORDS)?, PhantomData))
    }
}

/// A frame of any `type` (a known one most of the time) with any `data` and extra fields.
#[derive(Debug, Clone)]
pub struct AnyFrame<V>(pub String, PhantomData<V>);

impl<'a, V: Vocabulary> Arbitrary<'a> for AnyFrame<V> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(AnyFrame(
            any_frame(u, V::FRAME_TYPES, V::WORDS)?,
            PhantomData,
        ))
    }
}

/// An HTTP answer's body beyond the canonical ones.
#[derive(Debug, Clone, Arbitrary)]
pub enum WideBody<V: Vocabulary> {
    /// A canonical body with one top-level field set to any JSON value (or removed).
    Changed(u8, u8, Option<Json<V>>),
    /// Any JSON value.
    Json(Json<V>),
    /// Up to 4 KiB of arbitrary bytes (now and then more than the body limit).
    Blob(Blob),
}

impl<V: Vocabulary> WideBody<V> {
    /// The body's bytes; `canonical(n)` is the `n`th canonical body for the request's URL.
    pub fn bytes(&self, canonical: impl FnOnce(u8) -> String) -> Vec<u8> {
        match self {
            WideBody::Changed(n, field, value) => {
                let value = value.as_ref().map(|json| &json.0);
                changed(&canonical(*n), *field, value).into_bytes()
            }
            WideBody::Json(value) => value.0.to_string().into_bytes(),
            WideBody::Blob(blob) => blob.0.clone(),
        }
    }
}

/// A canonical body with one top-level field (picked by `pick`) set to `value`, or removed.
fn changed(body: &str, pick: u8, value: Option<&Value>) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(usize::from(pick) % map.len())
                .cloned()
                .unwrap_or_default();
            match value {
                Some(v) => {
                    map.insert(key, v.clone());
                }
                None => {
                    map.remove(&key);
                }
            }
            Value::Object(map).to_string()
        }
        _ => value.map_or_else(String::new, Value::to_string),
    }
}

/// One of `words` half the time, else up to 24 arbitrary characters.
pub fn word(u: &mut Unstructured<'_>, words: &[&str]) -> arbitrary::Result<String> {
    if bool::arbitrary(u)? {
        Ok(words[u.choose_index(words.len())?].to_owned())
    } else {
        let len = u.int_in_range(0..=24)?;
        Ok(String::from_utf8_lossy(u.bytes(len.min(u.len()))?).into_owned())
    }
}

/// Any JSON value, nested at most `depth` deep, with strings and keys from `words` now and
/// then.
pub fn json_value(u: &mut Unstructured<'_>, depth: u8, words: &[&str]) -> arbitrary::Result<Value> {
    let kinds = if depth == 0 { 6 } else { 8 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => Value::from(u64::arbitrary(u)? >> u.int_in_range(0..=63)?),
        3 => Value::from(i64::arbitrary(u)?),
        4 => serde_json::Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number),
        5 => Value::String(word(u, words)?),
        6 => {
            let n = u.int_in_range(0..=5)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(json_value(u, depth - 1, words)?);
            }
            Value::Array(items)
        }
        _ => {
            let n = u.int_in_range(0..=5)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = word(u, words)?;
                map.insert(key, json_value(u, depth - 1, words)?);
            }
            Value::Object(map)
        }
    })
}

/// A frame of any `type` (one of `types` most of the time) with any `data` and extra fields.
pub fn any_frame(
    u: &mut Unstructured<'_>,
    types: &[&str],
    words: &[&str],
) -> arbitrary::Result<String> {
    let mut map = Map::new();
    let kind = match u.choose_index(types.len() + 4)? {
        i if i < types.len() => Value::from(types[i]),
        i if i == types.len() => json_value(u, 1, words)?,
        _ => Value::String(word(u, words)?),
    };
    let key = if u.ratio(1, 8)? { "mtype" } else { "type" };
    map.insert(key.to_owned(), kind);
    if u.ratio(3, 4)? {
        let data = if bool::arbitrary(u)? {
            // An object with the fields the known frames read, any values.
            let mut data = Map::new();
            for _ in 0..u.int_in_range(0..=3)? {
                data.insert(word(u, words)?, json_value(u, 2, words)?);
            }
            Value::Object(data)
        } else {
            json_value(u, 3, words)?
        };
        map.insert("data".to_owned(), data);
    }
    for _ in 0..u.int_in_range(0..=2)? {
        map.insert(word(u, words)?, json_value(u, 1, words)?);
    }
    Ok(Value::Object(map).to_string())
}

/// A `redirect` frame to the target picked by `n`: another port, the same server, a foreign
/// host, or an address that does not parse.
pub fn redirect_frame(n: u8) -> String {
    let target = [
        "127.0.0.1:9090",
        "127.0.0.1:8080",
        "evil.example.com:80",
        "bad host",
    ][n as usize % 4];
    format!(r#"{{"type":"redirect","data":{{"direct":"{target}"}}}}"#)
}

/// Up to 63 arbitrary bytes, one time in 8 up to 4 KiB, or (one time in 32) 70,000 bytes,
/// over the default frame limit.
#[derive(Debug, Clone)]
pub struct Blob(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Blob {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.ratio(1, 32)? {
            let fill = u8::arbitrary(u)?;
            let mut bytes = br#"{"type":"signal","data":""#.to_vec();
            bytes.resize(70_000, fill.max(b' '));
            return Ok(Blob(bytes));
        }
        // Mostly short, so one op does not take the whole input.
        let len = if u.ratio(1, 8)? {
            usize::from(u16::arbitrary(u)? % 4097)
        } else {
            usize::from(u8::arbitrary(u)? % 64)
        };
        Ok(Blob(u.bytes(len.min(u.len()))?.to_vec()))
    }
}
