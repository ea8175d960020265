//! Why a link went down: [`DisconnectReason`], shared by the agent and the visitor (both
//! re-export it from their `event` modules). It says nothing about what happens next; the
//! core that reports it decides that.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::io::CloseReason;

/// Why the link went down.
///
/// Serialized (and read back) as one JSON object tagged by `"kind"` (snake_case), e.g.
/// `{"kind":"redirect","server":"p2.example.com"}`. Some reasons belong to one core only:
/// [`TokenRefused`](DisconnectReason::TokenRefused) to the agent;
/// [`Navigation`](DisconnectReason::Navigation), [`Hidden`](DisconnectReason::Hidden) and
/// [`Blurred`](DisconnectReason::Blurred) to the visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The service closed the socket.
    ClosedByPeer {
        /// The close code, if any.
        code: Option<u16>,
        /// The close reason text.
        reason: String,
    },
    /// The service sent a close frame it must not send (a code such as 1006 that never goes
    /// on the wire, a code outside the allowed ranges, a malformed payload); `code` and
    /// `reason` are what it sent, `detail` what is wrong with it.
    ClosedByPeerInvalid {
        /// The close code as sent, if the frame held one.
        code: Option<u16>,
        /// The close reason text as sent.
        reason: String,
        /// What is wrong with the frame.
        detail: String,
    },
    /// The transport failed (could not connect, reset, TLS...).
    TransportError {
        /// What the transport said.
        detail: String,
    },
    /// The WebSocket upgrade was refused with this HTTP status.
    HandshakeRefused {
        /// The status.
        status: u16,
    },
    /// Nothing came in after the idle ping within the pong timeout.
    DeadLink,
    /// A connect step (a request before the socket, opening the socket, waiting for
    /// `connected`) took longer than its timeout.
    ConnectTimeout,
    /// A step before the socket failed.
    ConnectFailed {
        /// The step: `"authorize"`, `"discovery"` or `"findvisitor"` (agent);
        /// `"uniquevisitor"` or `"presence"` (visitor).
        step: Cow<'static, str>,
        /// Glance's reason string (`"connection"`, `"serviceunavailable"`, `"error"`,
        /// `"timedout"`...).
        reason: Cow<'static, str>,
        /// Details, never holding a secret.
        detail: String,
    },
    /// The service told the client to move to another server.
    Redirect {
        /// The server named (`host[:port]`).
        server: String,
    },
    /// The service is scaling down; the client reconnects (the agent discovers its server
    /// again).
    ScaleDown,
    /// The token was refused and the client is renewing it before it reconnects (the
    /// agent's token; the unique visitor's guest token).
    TokenRefused,
    /// Agent: the token was renewed before it expired; the agent reconnects with the new
    /// one (the service closes a socket at its token's expiry).
    TokenRenewed,
    /// The service sent `serverclose` and the client is configured to come back
    /// ([`AfterServerClose::Reconnect`](crate::link::AfterServerClose::Reconnect)) after the
    /// reconnect policy's delay.
    ServerClose,
    /// Visitor: the application reported a page load (`navigate`); a new socket opens at
    /// once.
    Navigation,
    /// Visitor: the application reported the page hidden; the socket stays closed until it
    /// is shown.
    Hidden,
    /// Visitor: another socket with the same visitor id took over; the socket stays closed
    /// until `focus`.
    Blurred,
}

impl From<CloseReason> for DisconnectReason {
    /// How a socket close reads as a reason (a close the core asked for reads as a transport
    /// error, `"closed locally"`).
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::HandshakeRefused { status } => {
                DisconnectReason::HandshakeRefused { status }
            }
            CloseReason::ClosedByPeer { code, reason } => {
                DisconnectReason::ClosedByPeer { code, reason }
            }
            CloseReason::ClosedByPeerInvalid {
                code,
                reason,
                detail,
            } => DisconnectReason::ClosedByPeerInvalid {
                code,
                reason,
                detail,
            },
            CloseReason::TransportError { detail } => DisconnectReason::TransportError { detail },
            CloseReason::ClosedLocally => DisconnectReason::TransportError {
                detail: "closed locally".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_tagged_by_kind() {
        let json = |why: DisconnectReason| serde_json::to_string(&why).unwrap();
        assert_eq!(json(DisconnectReason::DeadLink), r#"{"kind":"dead_link"}"#);
        assert_eq!(
            json(DisconnectReason::Redirect {
                server: "p2".to_owned()
            }),
            r#"{"kind":"redirect","server":"p2"}"#
        );
        assert_eq!(
            json(CloseReason::from_close_payload(&[0x03, 0xEE]).into()),
            r#"{"kind":"closed_by_peer_invalid","code":1006,"reason":"","detail":"close code 1006 must not be sent on the wire"}"#
        );
        assert_eq!(
            json(CloseReason::from_close_payload(b"\x0f\xa1bye").into()),
            r#"{"kind":"closed_by_peer","code":4001,"reason":"bye"}"#
        );
        assert_eq!(
            json(CloseReason::ClosedLocally.into()),
            r#"{"kind":"transport_error","detail":"closed locally"}"#
        );
    }

    #[test]
    fn reads_back_as_written() {
        let line = r#"{"kind":"connect_failed","step":"discovery","reason":"timedout","detail":"request timed out"}"#;
        let why: DisconnectReason = serde_json::from_str(line).unwrap();
        assert_eq!(
            why,
            DisconnectReason::ConnectFailed {
                step: "discovery".into(),
                reason: "timedout".into(),
                detail: "request timed out".to_owned(),
            }
        );
        assert_eq!(serde_json::to_string(&why).unwrap(), line);
        for line in [
            r#"{"kind":"closed_by_peer","code":4001,"reason":"bye"}"#,
            r#"{"kind":"closed_by_peer_invalid","code":1006,"reason":"","detail":"close code 1006 must not be sent on the wire"}"#,
            r#"{"kind":"handshake_refused","status":403}"#,
            r#"{"kind":"token_renewed"}"#,
        ] {
            let why: DisconnectReason = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&why).unwrap(), line);
        }
        assert!(serde_json::from_str::<DisconnectReason>(r#"{"kind":"gone"}"#).is_err());
        assert!(serde_json::from_str::<DisconnectReason>(r#"{"kind":"connect_failed"}"#).is_err());
    }
}
