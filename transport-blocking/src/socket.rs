//! Opening and using one blocking WebSocket (`ws://` over TCP, `wss://` over rustls), with
//! small buffers and a hard ceiling on message size that sits above the core's own frame limit.
//! This module moves bytes only: what to send and when comes from the protocol core.
//!
//! It also watches the bytes read for the peer's Close frame (`CloseSniffer`), so that a
//! close is reported as what the peer sent, not as the answer the WebSocket library gave it.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use glance_presence_protocol::io::CloseReason;
use glance_presence_transport::{
    websocket_config, websocket_target, CloseSniffer, TlsContext, WebSocketTarget,
};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use tungstenite::handshake::HandshakeError;
use tungstenite::WebSocket;

/// A TCP stream, with or without TLS.
#[derive(Debug)]
enum Inner {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// The byte stream under a blocking WebSocket: TCP with or without TLS, and the watch for the
/// peer's Close frame.
#[derive(Debug)]
pub(crate) struct Stream {
    inner: Inner,
    close: CloseSniffer,
}

impl Stream {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match &self.inner {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(tls) => tls.get_ref(),
        }
    }

    /// The peer's Close frame, if one was read (see [`CloseSniffer::peer_close`]).
    pub(crate) fn peer_close(&self) -> Option<CloseReason> {
        self.close.peer_close()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::Plain(tcp) => tcp.read(buf)?,
            Inner::Tls(tls) => tls.read(buf)?,
        };
        self.close.feed(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.write(buf),
            Inner::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(tcp) => tcp.flush(),
            Inner::Tls(tls) => tls.flush(),
        }
    }
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

/// Opens a WebSocket to `url` with extra handshake `headers`. Failures come back as the
/// [`CloseReason`] the core expects.
pub(crate) fn open(
    url: &str,
    headers: &[(String, String)],
    tls: &TlsContext,
    connect_timeout: Duration,
    max_message_bytes: usize,
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
    let inner = if secure {
        let name = ServerName::try_from(host.clone()).map_err(transport_error)?;
        // The shared configuration is built on the first `wss://` socket, never for `ws://`.
        let config = tls.client_config().map_err(transport_error)?;
        let conn = ClientConnection::new(config, name).map_err(transport_error)?;
        Inner::Tls(Box::new(StreamOwned::new(conn, tcp)))
    } else {
        Inner::Plain(tcp)
    };
    let stream = Stream {
        inner,
        close: CloseSniffer::new(),
    };
    let config = websocket_config(max_message_bytes);
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
