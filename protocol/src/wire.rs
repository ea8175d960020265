//! WebSocket frames of the Glance Presence protocol, as typed values (work in progress).
//!
//! Each frame is one JSON object in a text frame. This module only converts between text and
//! typed values; it does no IO.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{GroupId, VisitorId};
use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::secret::AuthToken;

/// Default largest frame accepted by the decoders: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;

/// Why a frame could not be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is longer than the limit (checked before anything else).
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length of the frame in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not UTF-8 (only from `decode_bytes`).
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// The text is not JSON (or nests too deeply).
    #[error("frame is not valid JSON: {detail}")]
    InvalidJson {
        /// What the JSON parser said.
        detail: String,
    },
    /// The JSON is not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// Neither `mtype` nor `type` names the frame.
    #[error("frame has no type")]
    MissingType,
    /// A field is missing or has the wrong JSON type.
    #[error("field {field} must be {expected}")]
    WrongType {
        /// The field, as a path (`"data.connected"`).
        field: &'static str,
        /// What it must be, in words (`"a boolean"`).
        expected: &'static str,
    },
    /// A field has the right type but an unacceptable value.
    #[error("field {field} is invalid: {detail}")]
    InvalidValue {
        /// The field, as a path.
        field: &'static str,
        /// Why it is invalid.
        detail: String,
    },
}

/// An `invoke` payload: `{"func":..,"args":..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeRequest {
    /// The visitor-side function to run, e.g. `GLANCE.Cobrowse.VisitorUI.showTerms`.
    pub func: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Value,
}

impl InvokeRequest {
    /// Whether `func` may be invoked (see [`invoke_func_allowed`]).
    pub fn is_allowed_func(&self) -> bool {
        invoke_func_allowed(&self.func)
    }
}

/// Whether a function name may be invoked on a visitor: it starts with `GLANCE.` or
/// `GLANCE_COBROWSE.Custom.` and has something after the prefix.
pub fn invoke_func_allowed(func: &str) -> bool {
    ["GLANCE.", "GLANCE_COBROWSE.Custom."].iter().any(|prefix| {
        func.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// The first frame of every socket, `connect`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectFrame {
    /// The agent's token; visitors send none (the key is omitted).
    pub authorization: Option<AuthToken>,
    /// The group.
    pub group: GroupId,
    /// Whether `groupid` is written as a JSON string (agents) rather than a number (visitors).
    pub group_as_string: bool,
    /// The visitor.
    pub visitor: VisitorId,
    /// The guest token of a `connectUnique` visitor (key omitted when `None`).
    pub guest_token: Option<String>,
    /// The client version, `major.minor.patch`.
    pub version: String,
}

/// A frame from a client (agent or visitor) to the service.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `connect`.
    Connect(ConnectFrame),
    /// `k`.
    Keepalive,
    /// `signal` (agent socket route).
    Signal(Value),
    /// `invoke` (agent socket route).
    Invoke(InvokeRequest),
    /// `presence`.
    Presence(PresenceData),
    /// `visibility`.
    Visibility(Visibility),
    /// `terms`.
    Terms(TermsStatus),
    /// `visitorsessionstart`.
    VisitorSessionStart(Option<Value>),
    /// `visitorsessionend`.
    VisitorSessionEnd(Option<Value>),
    /// `visitorerror`.
    VisitorError(Value),
    /// Any other type.
    Other {
        /// The type.
        kind: String,
        /// The payload.
        data: Option<Value>,
    },
}

/// A frame from the service to a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// `connected`.
    Connected {
        /// Keepalive interval in seconds.
        keepalive: Option<u64>,
        /// Payload.
        data: Option<Value>,
    },
    /// `visitorsock`.
    VisitorSock {
        /// Whether the visitor has a socket.
        connected: bool,
    },
    /// `visitorconn`.
    VisitorConn {
        /// Whether the visitor is present.
        connected: bool,
    },
    /// `presence`.
    Presence(PresenceData),
    /// `visibility`.
    Visibility(Visibility),
    /// `terms`.
    Terms(TermsStatus),
    /// `visitorsessionstart`.
    VisitorSessionStart(Option<Value>),
    /// `visitorsessionend`.
    VisitorSessionEnd(Option<Value>),
    /// `visitorerror`.
    VisitorError(Value),
    /// `redirect`.
    Redirect {
        /// The server to use.
        direct: String,
    },
    /// `serverclose`.
    ServerClose,
    /// `scaledown`.
    ScaleDown,
    /// `blur`.
    Blur,
    /// `error`.
    Error {
        /// The error code.
        error: String,
        /// The detail.
        detail: Option<String>,
    },
    /// `signal`.
    Signal(Value),
    /// `invoke`.
    Invoke(InvokeRequest),
    /// Any other type.
    Other {
        /// The type.
        kind: String,
        /// The payload.
        data: Option<Value>,
    },
}

fn not_yet() -> DecodeError {
    DecodeError::InvalidJson {
        detail: "decoder not available yet".to_owned(),
    }
}

impl ClientFrame {
    /// Decodes a text frame.
    pub fn decode(text: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        if text.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                len: text.len(),
                limit: max_bytes,
            });
        }
        Err(not_yet())
    }
    /// Decodes a frame given as bytes.
    pub fn decode_bytes(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                limit: max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Self::decode(text, max_bytes)
    }
    /// Encodes the frame.
    pub fn encode(&self) -> String {
        String::from("{}")
    }
    /// The wire type.
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
    /// The frame forwarded to agents.
    pub fn into_forwarded(self) -> Option<ServerFrame> {
        None
    }
}

impl ServerFrame {
    /// Decodes a text frame.
    pub fn decode(text: &str, max_bytes: usize) -> Result<Self, DecodeError> {
        if text.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                len: text.len(),
                limit: max_bytes,
            });
        }
        Err(not_yet())
    }
    /// Decodes a frame given as bytes.
    pub fn decode_bytes(bytes: &[u8], max_bytes: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_bytes {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                limit: max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Self::decode(text, max_bytes)
    }
    /// Encodes the frame.
    pub fn encode(&self) -> String {
        String::from("{}")
    }
    /// The wire type.
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
}
