//! Where a client WebSocket goes and how it buffers: the target read from the URL the core
//! asked for ([`websocket_target`]) and small buffer settings with a hard message ceiling
//! ([`websocket_config`]). Shared by the blocking and async transports; it opens nothing.

use glance_presence_protocol::io::CloseReason;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;

/// Default hard ceiling on one WebSocket message from the peer, in bytes: 1 MiB, sixteen
/// times the core's default frame limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// WebSocket buffer settings for a client socket (shared by the blocking and async
/// transports): tungstenite's defaults hold 128 KiB per socket; these hold a few KiB.
///
/// `max_message_bytes` is the transport's hard ceiling: a message or frame over it drops the
/// link. It must sit above the core's own `max_frame_bytes`, which judges oversized frames
/// (a `protocol_violation`, the link kept); the ceiling only bounds memory.
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(max_message_bytes.saturating_mul(2).max(64 * 1024))
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

fn transport_error(detail: impl std::fmt::Display) -> CloseReason {
    CloseReason::TransportError {
        detail: detail.to_string(),
    }
}

/// Where a WebSocket goes, read from the URL the core asked for (shared by the blocking and
/// async transports).
#[derive(Debug)]
pub struct WebSocketTarget {
    /// The handshake request, with the core's extra headers.
    pub request: tungstenite::handshake::client::Request,
    /// The host to connect to (brackets of an IPv6 literal removed).
    pub host: String,
    /// The port (443 for `wss`, 80 for `ws` when the URL names none).
    pub port: u16,
    /// `wss://`: TLS over the TCP stream.
    pub secure: bool,
}

/// Reads `url` and `headers` into a [`WebSocketTarget`]; failures are the [`CloseReason`] the
/// core expects.
pub fn websocket_target(
    url: &str,
    headers: &[(String, String)],
) -> Result<WebSocketTarget, CloseReason> {
    let mut request = url.into_client_request().map_err(transport_error)?;
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(transport_error)?;
        let value = HeaderValue::from_str(value).map_err(transport_error)?;
        request.headers_mut().append(name, value);
    }
    let uri = request.uri().clone();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(transport_error(format_args!(
                "unsupported WebSocket scheme {other:?}"
            )))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| transport_error("the WebSocket URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    Ok(WebSocketTarget {
        request,
        host,
        port,
        secure,
    })
}
