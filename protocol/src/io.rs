//! The transport vocabulary shared by every protocol core of this crate.
//!
//! A core (the agent's `AgentProtocol`, later the visitor's) describes IO and never performs
//! it. It asks for work through [`Output`] (open a WebSocket, send a text frame, send a ping,
//! close the socket, perform an HTTP request, or hand the application an event) and learns what
//! happened through [`TransportInput`] (socket opened, frame, pong, socket closed and why, HTTP
//! response, HTTP failure). The [`SansIo`] trait ties these together so that one driver loop per
//! transport (blocking, async) serves every protocol.
//!
//! Sockets are named by a [`SocketId`] that the core allocates anew for every socket it asks
//! to open, so inputs that arrive late from an old socket are recognised and ignored. HTTP
//! requests are named by an [`HttpRequestId`] in the same way.
//!
//! This module only defines types; it does no IO.

use std::fmt;
use std::time::Instant;

use crate::rest::HttpRequest;

/// Names one socket the core asked to open. Never reused within one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub(crate) u64);

impl SocketId {
    /// The number behind the id (1 for the first socket).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socket#{}", self.0)
    }
}

/// Names one HTTP request the core asked for. Never reused within one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HttpRequestId(pub(crate) u64);

impl HttpRequestId {
    /// The number behind the id (1 for the first request).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for HttpRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http#{}", self.0)
    }
}

/// Why a socket closed (or never opened), as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer sent a close frame (code and reason as received; no code when the frame had
    /// none).
    ClosedByPeer {
        /// The WebSocket close code.
        code: Option<u16>,
        /// The close reason text.
        reason: String,
    },
    /// The peer sent a close frame it must not send (see [`CloseReason::from_close_payload`]):
    /// a code that never goes on the wire (1005, 1006, 1015), a code RFC 6455 does not allow
    /// (below 1000, 1004, 1016–2999, 5000 and up), a one-byte payload, a payload over 125
    /// bytes, or a reason that is not UTF-8. `code` and `reason` are what the frame held (no
    /// code for a one-byte payload; the reason decoded lossily). The transport's own reaction
    /// (it answers such a frame as a protocol error, 1002) is not reported here.
    ClosedByPeerInvalid {
        /// The close code as sent, when the frame held one.
        code: Option<u16>,
        /// The close reason text as sent (invalid UTF-8 replaced).
        reason: String,
        /// What is wrong with the frame.
        detail: String,
    },
    /// The WebSocket upgrade was answered with a non-101 HTTP status (401/403 mean the
    /// service refused the credentials).
    HandshakeRefused {
        /// The HTTP status of the refusal.
        status: u16,
    },
    /// The connection could not be made or broke (DNS, TCP, TLS, reset, EOF without a close
    /// frame...).
    TransportError {
        /// What the transport said.
        detail: String,
    },
    /// The socket was closed because the core asked for it ([`Output::CloseSocket`]).
    ClosedLocally,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::ClosedByPeer {
                code: Some(code),
                reason,
            } if !reason.is_empty() => {
                write!(f, "closed by the peer ({code}: {reason})")
            }
            CloseReason::ClosedByPeer {
                code: Some(code), ..
            } => {
                write!(f, "closed by the peer ({code})")
            }
            CloseReason::ClosedByPeer { code: None, .. } => f.write_str("closed by the peer"),
            CloseReason::ClosedByPeerInvalid { detail, .. } => {
                write!(
                    f,
                    "closed by the peer with an invalid close frame ({detail})"
                )
            }
            CloseReason::HandshakeRefused { status } => {
                write!(f, "WebSocket upgrade refused with HTTP {status}")
            }
            CloseReason::TransportError { detail } => write!(f, "transport error: {detail}"),
            CloseReason::ClosedLocally => f.write_str("closed locally"),
        }
    }
}

/// Largest payload of a WebSocket control frame, a close frame included (RFC 6455 §5.5).
pub const MAX_CLOSE_PAYLOAD: usize = 125;

/// Whether a peer may send close code `code` on the wire (RFC 6455 §7.4 and the IANA
/// registry): 1000–1003, 1007–1014 and 3000–4999. 1004 is reserved; 1005, 1006 and 1015 only
/// name situations locally and must never be sent; 1016–2999 are reserved for the protocol;
/// anything below 1000 or from 5000 up is not a close code.
pub fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl CloseReason {
    /// How the payload of a close frame the peer sent reads: an empty payload is
    /// [`CloseReason::ClosedByPeer`] without a code; a payload with an allowed code
    /// ([`close_code_allowed`]) and a UTF-8 reason of at most 123 bytes is
    /// [`CloseReason::ClosedByPeer`] with them; anything else is
    /// [`CloseReason::ClosedByPeerInvalid`], keeping what the frame held.
    pub fn from_close_payload(payload: &[u8]) -> CloseReason {
        let (code, rest) = match payload {
            [] => {
                return CloseReason::ClosedByPeer {
                    code: None,
                    reason: String::new(),
                }
            }
            [_] => {
                return CloseReason::ClosedByPeerInvalid {
                    code: None,
                    reason: String::new(),
                    detail: "a close payload of one byte (a code needs two)".to_owned(),
                }
            }
            [high, low, rest @ ..] => (u16::from_be_bytes([*high, *low]), rest),
        };
        let text = std::str::from_utf8(rest);
        let reason = match text {
            Ok(text) => text.to_owned(),
            Err(_) => String::from_utf8_lossy(rest).into_owned(),
        };
        let detail = if payload.len() > MAX_CLOSE_PAYLOAD {
            format!(
                "a close payload of {} bytes (at most {MAX_CLOSE_PAYLOAD} allowed)",
                payload.len()
            )
        } else if matches!(code, 1005 | 1006 | 1015) {
            format!("close code {code} must not be sent on the wire")
        } else if !close_code_allowed(code) {
            format!("close code {code} is not allowed on the wire")
        } else if text.is_err() {
            "the close reason is not UTF-8".to_owned()
        } else {
            return CloseReason::ClosedByPeer {
                code: Some(code),
                reason,
            };
        };
        CloseReason::ClosedByPeerInvalid {
            code: Some(code),
            reason,
            detail,
        }
    }
}

/// What the driver tells the core about the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportInput {
    /// The socket asked for by [`Output::OpenSocket`] completed its WebSocket handshake.
    SocketOpened {
        /// Which socket.
        socket: SocketId,
    },
    /// A text frame arrived.
    Frame {
        /// Which socket.
        socket: SocketId,
        /// The frame's text.
        text: String,
    },
    /// A binary frame arrived (the protocol uses text frames; the bytes are decoded as UTF-8
    /// JSON and reported if they are not).
    BinaryFrame {
        /// Which socket.
        socket: SocketId,
        /// The frame's payload.
        data: Vec<u8>,
    },
    /// A WebSocket pong arrived.
    Pong {
        /// Which socket.
        socket: SocketId,
    },
    /// A WebSocket ping arrived (the transport answers it with a pong itself; the core counts
    /// it as inbound activity for the dead-link logic).
    Ping {
        /// Which socket.
        socket: SocketId,
    },
    /// The socket closed, or could not be opened.
    SocketClosed {
        /// Which socket.
        socket: SocketId,
        /// Why.
        reason: CloseReason,
    },
    /// The HTTP request got a response (any status).
    HttpResponse {
        /// Which request.
        id: HttpRequestId,
        /// The HTTP status.
        status: u16,
        /// The body (possibly empty).
        body: Vec<u8>,
    },
    /// The HTTP request failed without a response (DNS, TCP, TLS, timeout in the driver...).
    HttpFailed {
        /// Which request.
        id: HttpRequestId,
        /// What the transport said.
        detail: String,
    },
}

/// What the core asks the driver to do, or tells the application.
///
/// Exhaustive on purpose: a driver matches every variant and has a correct answer for each
/// (there is no catch-all arm to get wrong). What the application hears is the event type `E`,
/// which is itself non-exhaustive.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<E> {
    /// Open a WebSocket to `url` (`wss://…` or `ws://…`) with these extra request headers
    /// (e.g. `Origin`), then report [`TransportInput::SocketOpened`] or
    /// [`TransportInput::SocketClosed`]. Never asked while another socket of the same core is
    /// open or opening.
    OpenSocket {
        /// The id the core gave this socket.
        socket: SocketId,
        /// Where to connect.
        url: String,
        /// Extra handshake headers, in order.
        headers: Vec<(String, String)>,
    },
    /// Send a text frame on the socket.
    SendFrame {
        /// Which socket.
        socket: SocketId,
        /// The frame's text.
        text: String,
    },
    /// Send a WebSocket ping (the answer is [`TransportInput::Pong`]).
    SendPing {
        /// Which socket.
        socket: SocketId,
    },
    /// Close the socket (or abandon it while it is opening). The core considers it gone at
    /// once and ignores whatever arrives from it afterwards, including its
    /// [`TransportInput::SocketClosed`].
    CloseSocket {
        /// Which socket.
        socket: SocketId,
    },
    /// Perform an HTTP request, then report [`TransportInput::HttpResponse`] or
    /// [`TransportInput::HttpFailed`] with the same id.
    Http {
        /// The id to report back.
        id: HttpRequestId,
        /// Method, URL, headers and body.
        request: HttpRequest,
    },
    /// Hand this event to the application.
    Event(E),
}

impl<E> Output<E> {
    /// The event, if this output is one.
    pub fn into_event(self) -> Option<E> {
        match self {
            Output::Event(event) => Some(event),
            _ => None,
        }
    }
}

/// A sans-IO protocol core, seen from a transport driver.
///
/// # Drain contract
///
/// After every call that feeds the core (an input, a timeout, or an application command on the
/// concrete type), call [`SansIo::poll_output`] until it returns `None` and carry out each
/// output in order; then wait until the next input or until [`SansIo::poll_timeout`], whichever
/// comes first, and call [`SansIo::handle_timeout`] when the deadline has come. Pass the time
/// of each call as `now`; it must not go backwards (an earlier `now` is treated as the latest
/// one seen). Calling `handle_timeout` early, or twice, does nothing.
///
/// # Re-entrancy
///
/// A driver may feed an input (or a command, or a timeout) while it is still draining
/// outputs, for example when carrying out an output fails at once and the driver reports the
/// failure before taking the next output. The core appends what that input causes to the end
/// of its single output queue, after the outputs already waiting, so nothing is lost or
/// reordered: the driver simply keeps calling `poll_output` until it returns `None`. Every
/// core of this crate holds to this (it is tested), and never asks the driver to call back
/// into it from inside a method.
pub trait SansIo {
    /// What the core tells the application.
    type Event;

    /// Feeds one transport input. Inputs about sockets or requests the core no longer knows
    /// (stale ids) are ignored.
    fn handle_input(&mut self, now: Instant, input: TransportInput);

    /// Fires every timer that is due at `now`.
    fn handle_timeout(&mut self, now: Instant);

    /// The next thing to do, if any.
    fn poll_output(&mut self) -> Option<Output<Self::Event>>;

    /// When to call [`SansIo::handle_timeout`] next, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut bytes = code.to_be_bytes().to_vec();
        bytes.extend_from_slice(reason);
        bytes
    }

    #[test]
    fn a_valid_close_keeps_the_code_and_reason_sent() {
        assert_eq!(
            CloseReason::from_close_payload(&payload(4001, b"bye")),
            CloseReason::ClosedByPeer {
                code: Some(4001),
                reason: "bye".to_owned()
            }
        );
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(
                matches!(
                    CloseReason::from_close_payload(&payload(code, b"")),
                    CloseReason::ClosedByPeer { code: Some(c), .. } if c == code
                ),
                "{code}"
            );
        }
        assert_eq!(
            CloseReason::from_close_payload(&[]),
            CloseReason::ClosedByPeer {
                code: None,
                reason: String::new()
            }
        );
    }

    #[test]
    fn an_invalid_close_says_so_and_keeps_what_was_sent() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            let reason = CloseReason::from_close_payload(&payload(code, b"why"));
            let CloseReason::ClosedByPeerInvalid {
                code: Some(sent),
                reason: text,
                detail,
            } = &reason
            else {
                panic!("{code}: {reason:?}")
            };
            assert_eq!((*sent, text.as_str()), (code, "why"));
            assert!(detail.contains(&code.to_string()), "{detail}");
        }
        assert!(matches!(
            CloseReason::from_close_payload(&[3]),
            CloseReason::ClosedByPeerInvalid { code: None, .. }
        ));
        let bad_utf8 = CloseReason::from_close_payload(&payload(1000, b"a\xffb"));
        assert!(
            matches!(&bad_utf8, CloseReason::ClosedByPeerInvalid { code: Some(1000), reason, detail }
                if reason == "a\u{fffd}b" && detail.contains("UTF-8")),
            "{bad_utf8:?}"
        );
        let long = CloseReason::from_close_payload(&payload(1000, &[b'x'; 124]));
        assert!(
            matches!(&long, CloseReason::ClosedByPeerInvalid { detail, .. } if detail.contains("126 bytes")),
            "{long:?}"
        );
        assert_eq!(
            CloseReason::from_close_payload(&payload(1006, b"")).to_string(),
            "closed by the peer with an invalid close frame (close code 1006 must not be sent on the wire)"
        );
    }
}
