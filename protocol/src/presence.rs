//! Visitor presence data, terms status and page visibility.
//!
//! [`PresenceData`] is the ordered JSON object a visitor reports in `presence` frames (`url`,
//! `browser`, `browserver`, `platform`, then custom fields) and that the service keeps merged per
//! visitor. [`TermsStatus`] and [`Visibility`] are the payloads of `terms` and `visibility` frames.
//!
//! This module is plain data: it does no IO and knows nothing about frames or sockets (see
//! [`crate::wire`] for those).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// A value the visitor API lets a page put into its presence data: a string, a number or a
/// boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceValue {
    /// A JSON string.
    String(String),
    /// A JSON number.
    Number(Number),
    /// A JSON boolean.
    Bool(bool),
}

impl From<PresenceValue> for Value {
    fn from(value: PresenceValue) -> Self {
        match value {
            PresenceValue::String(s) => Value::String(s),
            PresenceValue::Number(n) => Value::Number(n),
            PresenceValue::Bool(b) => Value::Bool(b),
        }
    }
}

impl From<String> for PresenceValue {
    fn from(value: String) -> Self {
        PresenceValue::String(value)
    }
}

impl From<&str> for PresenceValue {
    fn from(value: &str) -> Self {
        PresenceValue::String(value.to_owned())
    }
}

impl From<bool> for PresenceValue {
    fn from(value: bool) -> Self {
        PresenceValue::Bool(value)
    }
}

impl From<Number> for PresenceValue {
    fn from(value: Number) -> Self {
        PresenceValue::Number(value)
    }
}

macro_rules! presence_value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for PresenceValue {
            fn from(value: $t) -> Self {
                PresenceValue::Number(Number::from(value))
            }
        }
    )*};
}
presence_value_from_int!(i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);

impl From<f64> for PresenceValue {
    /// A finite float becomes a number; NaN and infinities (which JSON cannot hold) become the
    /// string JavaScript's `JSON.stringify` would not send either, so they are kept as text.
    fn from(value: f64) -> Self {
        match Number::from_f64(value) {
            Some(n) => PresenceValue::Number(n),
            None => PresenceValue::String(value.to_string()),
        }
    }
}

/// The presence data of one visitor: an ordered JSON object.
///
/// Keys keep the order in which they were first set. The well-known fields are `url`, `browser`,
/// `browserver` (a number in Glance's visitor script) and `platform`; any other key is a custom
/// field. Values are normally strings, numbers or booleans, but data decoded from the wire keeps
/// whatever JSON the sender put there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PresenceData(Map<String, Value>);

impl PresenceData {
    /// Empty presence data.
    pub fn new() -> Self {
        PresenceData(Map::new())
    }

    /// Wraps a JSON object, keeping its order.
    pub fn from_map(map: Map<String, Value>) -> Self {
        PresenceData(map)
    }

    /// The JSON object.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// The JSON object, borrowed.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The value of one field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The page URL (`url`), when it is a string.
    pub fn url(&self) -> Option<&str> {
        self.get_str("url")
    }

    /// The browser name (`browser`), when it is a string.
    pub fn browser(&self) -> Option<&str> {
        self.get_str("browser")
    }

    /// The platform (`platform`), when it is a string.
    pub fn platform(&self) -> Option<&str> {
        self.get_str("platform")
    }

    /// The browser version (`browserver`): a number in Glance's visitor script, so it is
    /// returned as JSON.
    pub fn browserver(&self) -> Option<&Value> {
        self.0.get("browserver")
    }

    /// Sets one field. An existing key keeps its position; a new key is appended.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<PresenceValue>) {
        let value: PresenceValue = value.into();
        self.0.insert(key.into(), Value::from(value));
    }

    /// Merges a later update into this data: the later values win, existing keys keep their
    /// position, new keys are appended in `later`'s order.
    ///
    /// Returns the keys whose value changed or that were added, in `later`'s order.
    pub fn merge(&mut self, later: &PresenceData) -> Vec<String> {
        let mut changed = Vec::new();
        // The usual case first: the later data has the keys of this one in the same order (a
        // page reports the same object shape every time), so walk both together and look
        // nothing up by hash until the shapes part.
        let mut same_shape = 0;
        for ((key, existing), (later_key, value)) in self.0.iter_mut().zip(later.0.iter()) {
            if key != later_key {
                break;
            }
            if existing != value {
                existing.clone_from(value);
                changed.push(key.clone());
            }
            same_shape += 1;
        }
        for (key, value) in later.0.iter().skip(same_shape) {
            match self.0.get_mut(key) {
                Some(existing) if existing == value => {}
                Some(existing) => {
                    existing.clone_from(value);
                    changed.push(key.clone());
                }
                None => {
                    self.0.insert(key.clone(), value.clone());
                    changed.push(key.clone());
                }
            }
        }
        changed
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, in order.
    pub fn iter(&self) -> serde_json::map::Iter<'_> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a PresenceData {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Map<String, Value>> for PresenceData {
    fn from(map: Map<String, Value>) -> Self {
        PresenceData(map)
    }
}

impl From<PresenceData> for Map<String, Value> {
    fn from(data: PresenceData) -> Self {
        data.0
    }
}

impl Serialize for PresenceData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for PresenceData {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PresenceData".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Presence data: a JSON object of the visitor's fields (`url`, `browser`, `browserver`, `platform`, custom fields), in the order reported.",
            "type": "object",
        })
    }
}

impl<'de> Deserialize<'de> for PresenceData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(PresenceData)
    }
}

/// A word that is not one of the values of [`TermsStatus`] or [`Visibility`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}; expected one of {expected}")]
pub struct ParseStatusError {
    /// What was being parsed (`"terms status"` or `"visibility"`).
    pub what: &'static str,
    /// The offending text.
    pub value: String,
    /// The accepted words, in prose.
    pub expected: &'static str,
}

/// The state of the cobrowse terms dialog the visitor reports in a `terms` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TermsStatus {
    /// The terms were shown to the visitor.
    Displayed,
    /// The visitor accepted the terms.
    Accepted,
    /// The visitor declined the terms.
    Declined,
}

impl TermsStatus {
    /// The lowercase wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            TermsStatus::Displayed => "displayed",
            TermsStatus::Accepted => "accepted",
            TermsStatus::Declined => "declined",
        }
    }
}

impl fmt::Display for TermsStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TermsStatus {
    type Err = ParseStatusError;

    /// Case-insensitive (Glance's agent wrapper compares case-insensitively).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("displayed") {
            Ok(TermsStatus::Displayed)
        } else if s.eq_ignore_ascii_case("accepted") {
            Ok(TermsStatus::Accepted)
        } else if s.eq_ignore_ascii_case("declined") {
            Ok(TermsStatus::Declined)
        } else {
            Err(ParseStatusError {
                what: "terms status",
                value: s.to_owned(),
                expected: "displayed, accepted, declined",
            })
        }
    }
}

/// Whether the visitor's page is shown or hidden (a `visibility` frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// The page is hidden (another tab, minimised).
    Hidden,
    /// The page is visible.
    Visible,
}

impl Visibility {
    /// The lowercase wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Hidden => "hidden",
            Visibility::Visible => "visible",
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Visibility {
    type Err = ParseStatusError;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("hidden") {
            Ok(Visibility::Hidden)
        } else if s.eq_ignore_ascii_case("visible") {
            Ok(Visibility::Visible)
        } else {
            Err(ParseStatusError {
                what: "visibility",
                value: s.to_owned(),
                expected: "hidden, visible",
            })
        }
    }
}

macro_rules! serde_as_word {
    ($t:ty, $expecting:literal, $description:literal, $words:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        #[cfg(feature = "schemars")]
        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": $description,
                    "type": "string",
                    "enum": $words,
                })
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct WordVisitor;
                impl serde::de::Visitor<'_> for WordVisitor {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(WordVisitor)
            }
        }
    };
}

serde_as_word!(
    TermsStatus,
    "a terms status string",
    "The visitor's terms dialog status.",
    ["displayed", "accepted", "declined"]
);
serde_as_word!(
    Visibility,
    "a visibility string",
    "The visitor's page visibility.",
    ["hidden", "visible"]
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> PresenceData {
        match v {
            Value::Object(m) => PresenceData::from_map(m),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn accessors() {
        let d = data(
            json!({"url":"https://example.com/a","browser":"Chrome","browserver":120,"platform":"Linux","plan":"gold"}),
        );
        assert_eq!(d.url(), Some("https://example.com/a"));
        assert_eq!(d.browser(), Some("Chrome"));
        assert_eq!(d.platform(), Some("Linux"));
        assert_eq!(d.browserver(), Some(&json!(120)));
        assert_eq!(d.get("plan"), Some(&json!("gold")));
        assert_eq!(d.len(), 5);
        assert!(!d.is_empty());
        let keys: Vec<&str> = d.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["url", "browser", "browserver", "platform", "plan"]);
        assert_eq!(data(json!({"url": 5})).url(), None);
    }

    #[test]
    fn insert_keeps_position_and_types() {
        let mut d = PresenceData::new();
        assert!(d.is_empty());
        d.insert("url", "u1");
        d.insert("browserver", 17u32);
        d.insert("vip", true);
        d.insert("score", 1.5);
        d.insert("url", String::from("u2"));
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"url":"u2","browserver":17,"vip":true,"score":1.5}"#
        );
        d.insert("nan", f64::NAN);
        assert_eq!(d.get("nan"), Some(&json!("NaN")));
    }

    #[test]
    fn merge_semantics() {
        let mut d = data(json!({"url":"a","browser":"Firefox","x":1}));
        let later = data(json!({"y":2,"url":"b","browser":"Firefox"}));
        let changed = d.merge(&later);
        assert_eq!(changed, ["y", "url"]);
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"url":"b","browser":"Firefox","x":1,"y":2}"#
        );
        assert!(d.merge(&later).is_empty());
        assert!(d.merge(&PresenceData::new()).is_empty());
    }

    #[test]
    fn serde_plain_object() {
        let d: PresenceData = serde_json::from_str(r#"{"b":1,"a":"x"}"#).unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"b":1,"a":"x"}"#);
        assert!(serde_json::from_str::<PresenceData>("[1]").is_err());
        let m = d.clone().into_map();
        assert_eq!(PresenceData::from(m), d);
    }

    #[test]
    fn terms_status() {
        for (s, t) in [
            ("displayed", TermsStatus::Displayed),
            ("ACCEPTED", TermsStatus::Accepted),
            ("Declined", TermsStatus::Declined),
        ] {
            assert_eq!(s.parse::<TermsStatus>().unwrap(), t);
            assert_eq!(t.as_str(), s.to_ascii_lowercase());
            assert_eq!(t.to_string(), s.to_ascii_lowercase());
        }
        let err = "maybe".parse::<TermsStatus>().unwrap_err();
        assert_eq!(err.value, "maybe");
        assert_eq!(
            err.to_string(),
            "unknown terms status \"maybe\"; expected one of displayed, accepted, declined"
        );
        assert_eq!(
            serde_json::to_string(&TermsStatus::Accepted).unwrap(),
            "\"accepted\""
        );
        assert_eq!(
            serde_json::from_str::<TermsStatus>("\"DECLINED\"").unwrap(),
            TermsStatus::Declined
        );
        assert!(serde_json::from_str::<TermsStatus>("\"no\"").is_err());
        assert!(serde_json::from_str::<TermsStatus>("1").is_err());
    }

    #[test]
    fn visibility() {
        assert_eq!("Hidden".parse::<Visibility>().unwrap(), Visibility::Hidden);
        assert_eq!(
            "visible".parse::<Visibility>().unwrap(),
            Visibility::Visible
        );
        assert!("shown".parse::<Visibility>().is_err());
        assert_eq!(
            serde_json::to_string(&Visibility::Hidden).unwrap(),
            "\"hidden\""
        );
        assert_eq!(
            serde_json::from_str::<Visibility>("\"VISIBLE\"").unwrap(),
            Visibility::Visible
        );
    }
}
