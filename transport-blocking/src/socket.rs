//! Opening and using one blocking WebSocket (`ws://` over TCP, `wss://` over rustls), with
//! small buffers and a frame size limit. This module moves bytes only: what to send and when
//! comes from the protocol core.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use glance_presence_protocol::io::CloseReason;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{HeaderName, HeaderValue};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

/// A TCP stream, with or without TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// WebSocket buffer settings for a client socket (shared by the blocking and async
/// transports): tungstenite's defaults hold 128 KiB per socket; these hold a few KiB, and no
/// message over `max_frame_bytes` is accepted.
pub fn websocket_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(max_frame_bytes.saturating_mul(2).max(64 * 1024))
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
}

fn transport_error(detail: impl std::fmt::Display) -> CloseReason {
    CloseReason::TransportError {
        detail: detail.to_string(),
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, CloseReason> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| transport_error(format_args!("cannot resolve {host}: {e}")))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => transport_error(format_args!("cannot connect to {host}:{port}: {e}")),
        None => transport_error(format_args!("{host} has no address")),
    })
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

/// Opens a WebSocket to `url` with extra handshake `headers`. Failures come back as the
/// [`CloseReason`] the core expects.
pub(crate) fn open(
    url: &str,
    headers: &[(String, String)],
    tls: &Arc<ClientConfig>,
    connect_timeout: Duration,
    max_frame_bytes: usize,
) -> Result<WebSocket<Stream>, CloseReason> {
    let WebSocketTarget {
        request,
        host,
        port,
        secure,
    } = websocket_target(url, headers)?;
    let tcp = connect_tcp(&host, port, connect_timeout)?;
    tcp.set_nodelay(true).map_err(transport_error)?;
    // The handshake must not hang: bound it by the connect timeout.
    tcp.set_read_timeout(Some(connect_timeout))
        .map_err(transport_error)?;
    tcp.set_write_timeout(Some(connect_timeout))
        .map_err(transport_error)?;
    let stream = if secure {
        let name = ServerName::try_from(host.clone()).map_err(transport_error)?;
        let conn = ClientConnection::new(Arc::clone(tls), name).map_err(transport_error)?;
        Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
    } else {
        Stream::Plain(tcp)
    };
    let config = websocket_config(max_frame_bytes);
    match tungstenite::client::client_with_config(request, stream, Some(config)) {
        Ok((socket, _response)) => Ok(socket),
        Err(HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(CloseReason::HandshakeRefused {
                status: response.status().as_u16(),
            })
        }
        Err(HandshakeError::Failure(e)) => Err(transport_error(e)),
        Err(HandshakeError::Interrupted(_)) => {
            Err(transport_error("the WebSocket handshake timed out"))
        }
    }
}
