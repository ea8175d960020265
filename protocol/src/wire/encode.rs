//! From a typed frame to its JSON text: small borrowed structs through serde_json, with exactly
//! the keys Glance's clients write, in their order.

use serde::{Serialize, Serializer};

use super::{ClientFrame, ConnectFrame, ServerFrame};
use crate::ids::GroupId;
use crate::secret::AuthToken;

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

impl ClientFrame {
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
}

impl ServerFrame {
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
}
