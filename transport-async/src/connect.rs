//! Opening connections for the drivers and the HTTP client: TCP through the runtime, TLS with
//! the shared configuration for `wss://` and `https://` (futures-rustls), and a WebSocket over
//! that (async-tungstenite, with small buffers and a ceiling above the core's frame limit).
//! The bytes a WebSocket reads are watched for the peer's Close frame, so that a close is
//! reported as what the peer sent. This module moves bytes only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::TlsConnector;
use glance_presence_protocol::io::CloseReason;
use glance_presence_transport::{
    websocket_config, websocket_target, CloseSniffer, TlsContext, WebSocketTarget,
};

use crate::runtime::{self, BoxIo, Runtime};
use crate::shared::Inner;

/// The byte stream under a WebSocket, with the watch for the peer's Close frame.
pub(crate) struct Sniffed {
    inner: BoxIo,
    close: CloseSniffer,
}

impl Sniffed {
    /// The peer's Close frame, if one was read (what it sent, valid or not).
    pub(crate) fn peer_close(&self) -> Option<CloseReason> {
        self.close.peer_close()
    }
}

impl AsyncRead for Sniffed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.close.feed(buf.get(..n).unwrap_or_default());
        }
        polled
    }
}

impl AsyncWrite for Sniffed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// An open WebSocket.
pub(crate) type Ws = WebSocketStream<Sniffed>;

fn transport_error(detail: impl std::fmt::Display) -> CloseReason {
    CloseReason::TransportError {
        detail: detail.to_string(),
    }
}

/// A TCP stream to `host:port`, with TLS over it when `secure` (the shared configuration,
/// built on first use).
pub(crate) async fn stream(
    runtime: &Arc<dyn Runtime>,
    tls: &TlsContext,
    host: &str,
    port: u16,
    secure: bool,
) -> io::Result<BoxIo> {
    let tcp = runtime::connect_host(runtime, host, port).await?;
    if !secure {
        return Ok(tcp);
    }
    let config = tls
        .client_config()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tls = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Box::new(tls))
}

/// Opens a WebSocket to `url` with extra handshake `headers`; waiting for a connect slot,
/// TCP, TLS and the WebSocket handshake together are bounded by the connect timeout.
/// Failures come back as the [`CloseReason`] the core expects.
pub(crate) async fn open(
    shared: Arc<Inner>,
    url: String,
    headers: Vec<(String, String)>,
) -> Result<Ws, CloseReason> {
    let timeout = shared.config.connect_timeout;
    let deadline = Instant::now() + timeout;
    let attempt = async {
        let _slot = shared.connects.acquire().await;
        open_unbounded(&shared, &url, &headers).await
    };
    match runtime::until(&shared.runtime, deadline, attempt).await {
        Some(result) => result,
        None => Err(transport_error(format_args!(
            "the WebSocket connect did not complete within {timeout:?}"
        ))),
    }
}

async fn open_unbounded(
    shared: &Inner,
    url: &str,
    headers: &[(String, String)],
) -> Result<Ws, CloseReason> {
    let WebSocketTarget {
        request,
        host,
        port,
        secure,
    } = websocket_target(url, headers)?;
    let io = stream(&shared.runtime, &shared.tls, &host, port, secure)
        .await
        .map_err(|e| transport_error(format_args!("cannot connect to {host}:{port}: {e}")))?;
    let stream = Sniffed {
        inner: io,
        close: CloseSniffer::new(),
    };
    let config = websocket_config(shared.config.max_message_bytes);
    match async_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(async_tungstenite::tungstenite::Error::Http(response)) => {
            Err(CloseReason::HandshakeRefused {
                status: response.status().as_u16(),
            })
        }
        Err(e) => Err(transport_error(e)),
    }
}
