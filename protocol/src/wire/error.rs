//! [`DecodeError`]: why a frame could not be decoded, one variant per kind of failure.

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
        /// Why, e.g. the [`IdError`](crate::ids::IdError) text of a bad visitor id.
        detail: String,
    },
}
