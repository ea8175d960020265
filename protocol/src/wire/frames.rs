//! The frame types: [`ClientFrame`] (client to service), [`ServerFrame`] (service to client),
//! [`ConnectFrame`] and [`InvokeRequest`], with their wire type names and how the service
//! forwards a visitor's frames. Decoding and encoding live in `decode` and `encode`.

use serde_json::Value;

use crate::ids::{GroupId, VisitorId};
use crate::presence::{PresenceData, TermsStatus, Visibility};
use crate::secret::AuthToken;

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

impl ClientFrame {
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
