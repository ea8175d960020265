//! Validated identifiers: group ids, visitor ids, unique ids and partner user ids.
//!
//! Every constructor checks the rule of DESIGN §4 and returns an [`IdError`] that names the rule
//! and the offending value. Nothing here does IO. These types are what the rest of the crate takes,
//! so an id that reaches a frame or a URL has already been checked.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest visitor id the service accepts (the session-key rule of Glance's SDKs).
pub const VISITOR_ID_MAX_LEN: usize = 62;
/// Prefix that turns a unique id into a visitor id.
pub const UNIQUE_PREFIX: &str = "UNQ-";
/// Longest unique id: `UNQ-` plus it must still be a valid visitor id.
pub const UNIQUE_ID_MAX_LEN: usize = VISITOR_ID_MAX_LEN - UNIQUE_PREFIX.len();
/// Longest partner user id (Glance web-service conventions).
pub const PARTNER_USER_ID_MAX_LEN: usize = 255;

/// Which kind of id an [`IdError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// A Glance group id (also the partner id).
    Group,
    /// A visitor id.
    Visitor,
    /// A unique id (`connectUnique` visitors).
    Unique,
    /// A partner user id (the agent's identity).
    PartnerUser,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Group => "group id",
            IdKind::Visitor => "visitor id",
            IdKind::Unique => "unique id",
            IdKind::PartnerUser => "partner user id",
        })
    }
}

/// An id broke its rule. The message names the rule and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The id is the empty string.
    #[error("{kind} must not be empty")]
    Empty {
        /// Which id.
        kind: IdKind,
    },
    /// The id is longer than its maximum.
    #[error("{kind} {value:?} is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Which id.
        kind: IdKind,
        /// The offending value.
        value: String,
        /// Its length in characters.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The id holds a character outside its alphabet.
    #[error("{kind} {value:?} has the character {ch:?} at position {position}; only {allowed} are allowed")]
    InvalidCharacter {
        /// Which id.
        kind: IdKind,
        /// The offending value.
        value: String,
        /// The first character outside the alphabet.
        ch: char,
        /// Its position (in characters, from 0).
        position: usize,
        /// The alphabet, in words.
        allowed: &'static str,
    },
    /// A group id that is not a positive integer.
    #[error("group id {value:?} is not a positive integer")]
    NotPositiveInteger {
        /// The offending value.
        value: String,
    },
}

/// A Glance group id: a positive integer. The partner id of a LoginKey is the group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(NonZeroU64);

impl GroupId {
    /// A group id from an integer; zero is refused.
    pub fn new(value: u64) -> Result<Self, IdError> {
        NonZeroU64::new(value)
            .map(GroupId)
            .ok_or_else(|| IdError::NotPositiveInteger {
                value: value.to_string(),
            })
    }

    /// The integer value.
    pub fn get(self) -> u64 {
        self.0.get()
    }
}

impl TryFrom<u64> for GroupId {
    type Error = IdError;

    /// As [`GroupId::new`].
    fn try_from(value: u64) -> Result<Self, IdError> {
        GroupId::new(value)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for GroupId {
    type Err = IdError;

    /// Parses decimal digits only (no sign, no spaces, no leading `+`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_positive = || IdError::NotPositiveInteger {
            value: s.to_owned(),
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_positive());
        }
        let value: u64 = s.parse().map_err(|_| not_positive())?;
        GroupId::new(value).map_err(|_| not_positive())
    }
}

impl Serialize for GroupId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(deserializer)?;
        GroupId::new(value).map_err(serde::de::Error::custom)
    }
}

const VISITOR_ALPHABET: &str = "letters, digits, '_', '~' and '-'";

fn is_visitor_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || matches!(ch, '_' | '~' | '-')
}

fn check_visitor_alphabet(kind: IdKind, value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if let Some((position, ch)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !is_visitor_char(*c))
    {
        return Err(IdError::InvalidCharacter {
            kind,
            value: value.to_owned(),
            ch,
            position,
            allowed: VISITOR_ALPHABET,
        });
    }
    // The alphabet is ASCII, so bytes and characters agree from here on.
    if value.len() > max {
        return Err(IdError::TooLong {
            kind,
            value: value.to_owned(),
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// A visitor id: 1–62 characters of `[A-Za-z0-9_~-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VisitorId(String);

impl VisitorId {
    /// Checks the visitor id rule.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check_visitor_alphabet(IdKind::Visitor, &value, VISITOR_ID_MAX_LEN)?;
        Ok(VisitorId(value))
    }

    /// The visitor id of a `connectUnique` visitor: `UNQ-<uniqueid>`.
    pub fn from_unique(unique: &UniqueId) -> Self {
        VisitorId(format!("{UNIQUE_PREFIX}{}", unique.as_str()))
    }

    /// The unique id this visitor id was made from, if it starts with `UNQ-`.
    pub fn unique_id(&self) -> Option<UniqueId> {
        self.0
            .strip_prefix(UNIQUE_PREFIX)
            .and_then(|rest| UniqueId::new(rest).ok())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VisitorId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VisitorId::new(s)
    }
}

impl Serialize for VisitorId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for VisitorId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "VisitorId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A visitor id: 1 to 62 characters of A-Z, a-z, 0-9, `_`, `~` and `-`.",
            "type": "string",
            "pattern": format!("^[A-Za-z0-9_~-]{{1,{VISITOR_ID_MAX_LEN}}}$"),
        })
    }
}

impl<'de> Deserialize<'de> for VisitorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        VisitorId::new(value).map_err(serde::de::Error::custom)
    }
}

/// A unique id (the code a `connectUnique` visitor reads out): 1–58 characters of
/// `[A-Za-z0-9_~-]`, so that `UNQ-<uniqueid>` is a valid visitor id. Glance issues digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueId(String);

impl UniqueId {
    /// Checks the unique id rule.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        check_visitor_alphabet(IdKind::Unique, &value, UNIQUE_ID_MAX_LEN)?;
        Ok(UniqueId(value))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UniqueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for UniqueId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UniqueId::new(s)
    }
}

/// A partner user id: the agent's identity within its group, 1–255 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartnerUserId(String);

impl PartnerUserId {
    /// Checks the partner user id rule.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let kind = IdKind::PartnerUser;
        if value.is_empty() {
            return Err(IdError::Empty { kind });
        }
        if let Some((position, ch)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
            return Err(IdError::InvalidCharacter {
                kind,
                value,
                ch,
                position,
                allowed: "printable characters",
            });
        }
        let len = value.chars().count();
        if len > PARTNER_USER_ID_MAX_LEN {
            return Err(IdError::TooLong {
                kind,
                value,
                len,
                max: PARTNER_USER_ID_MAX_LEN,
            });
        }
        Ok(PartnerUserId(value))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartnerUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PartnerUserId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartnerUserId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert_eq!(GroupId::new(12345).unwrap().get(), 12345);
        assert!(matches!(
            GroupId::new(0),
            Err(IdError::NotPositiveInteger { .. })
        ));
        assert_eq!("21489".parse::<GroupId>().unwrap().get(), 21489);
        assert_eq!(GroupId::try_from(7u64), GroupId::new(7));
        assert!(GroupId::try_from(0u64).is_err());
        for bad in ["", "0", "-1", "+5", " 5", "5a", "99999999999999999999999"] {
            let err = bad.parse::<GroupId>().unwrap_err();
            assert_eq!(
                err,
                IdError::NotPositiveInteger {
                    value: bad.to_owned()
                },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn visitor_ids() {
        for good in ["v1", "666666", "a_b~c-D", &"x".repeat(62)] {
            assert_eq!(VisitorId::new(good).unwrap().as_str(), good);
        }
        assert_eq!(
            VisitorId::new("").unwrap_err(),
            IdError::Empty {
                kind: IdKind::Visitor
            }
        );
        let long = "x".repeat(63);
        assert!(matches!(
            VisitorId::new(long.clone()),
            Err(IdError::TooLong { len: 63, max: 62, ref value, .. }) if *value == long
        ));
        let err = VisitorId::new("a b").unwrap_err();
        assert!(matches!(
            err,
            IdError::InvalidCharacter {
                ch: ' ',
                position: 1,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "visitor id \"a b\" has the character ' ' at position 1; only letters, digits, '_', '~' and '-' are allowed"
        );
        assert!(VisitorId::new("é").is_err());
        assert!(VisitorId::new("a/b").is_err());
    }

    #[test]
    fn unique_ids_become_visitor_ids() {
        let unique = UniqueId::new("123456789").unwrap();
        let visitor = VisitorId::from_unique(&unique);
        assert_eq!(visitor.as_str(), "UNQ-123456789");
        assert_eq!(visitor.unique_id(), Some(unique));
        let longest = UniqueId::new("9".repeat(58)).unwrap();
        assert!(VisitorId::new(VisitorId::from_unique(&longest).as_str()).is_ok());
        assert!(UniqueId::new("9".repeat(59)).is_err());
        assert_eq!(VisitorId::new("plain").unwrap().unique_id(), None);
    }

    #[test]
    fn partner_user_ids() {
        assert!(PartnerUserId::new("agent1").is_ok());
        assert!(PartnerUserId::new("jane.doe@example.com").is_ok());
        assert!(PartnerUserId::new("é".repeat(255)).is_ok());
        assert!(matches!(
            PartnerUserId::new("é".repeat(256)),
            Err(IdError::TooLong { len: 256, .. })
        ));
        assert!(matches!(PartnerUserId::new(""), Err(IdError::Empty { .. })));
        assert!(matches!(
            PartnerUserId::new("a\nb"),
            Err(IdError::InvalidCharacter { ch: '\n', .. })
        ));
    }

    #[test]
    fn serde_validates() {
        let v: VisitorId = serde_json::from_str("\"v1\"").unwrap();
        assert_eq!(v.as_str(), "v1");
        assert!(serde_json::from_str::<VisitorId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<GroupId>("0").is_err());
        assert_eq!(
            serde_json::to_string(&GroupId::new(7).unwrap()).unwrap(),
            "7"
        );
    }
}
