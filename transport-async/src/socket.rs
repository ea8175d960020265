//! Opening one async WebSocket (`ws://` over TCP, `wss://` over tokio-rustls) with small
//! buffers, a hard ceiling on message size above the core's own frame limit, and a bound on
//! the whole connect. The bytes read are watched for the peer's Close frame, so that a close
//! is reported as what the peer sent. This module moves bytes only: what to send and when
//! comes from the protocol core.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use glance_presence_protocol::io::CloseReason;
use glance_presence_transport::{
    websocket_config, websocket_target, CloseSniffer, WebSocketTarget,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;

/// A byte stream the WebSocket runs over: plain TCP or TLS over TCP.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The byte stream under the WebSocket, with the watch for the peer's Close frame.
pub(crate) struct Sniffed {
    inner: Box<dyn Io>,
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
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.close
                .feed(buf.filled().get(before..).unwrap_or_default());
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

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An open WebSocket.
pub(crate) type Ws = WebSocketStream<Sniffed>;

fn transport_error(detail: impl std::fmt::Display) -> CloseReason {
    CloseReason::TransportError {
        detail: detail.to_string(),
    }
}

/// Opens a WebSocket to `url` with extra handshake `headers`; TCP connect, TLS and the
/// WebSocket handshake together are bounded by `connect_timeout`. Failures come back as the
/// [`CloseReason`] the core expects.
pub(crate) async fn open(
    url: String,
    headers: Vec<(String, String)>,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
    max_message_bytes: usize,
) -> Result<Ws, CloseReason> {
    let attempt = open_unbounded(&url, &headers, tls, max_message_bytes);
    match tokio::time::timeout(connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(transport_error(format_args!(
            "the WebSocket connect did not complete within {connect_timeout:?}"
        ))),
    }
}

async fn open_unbounded(
    url: &str,
    headers: &[(String, String)],
    tls: Arc<ClientConfig>,
    max_message_bytes: usize,
) -> Result<Ws, CloseReason> {
    let WebSocketTarget {
        request,
        host,
        port,
        secure,
    } = websocket_target(url, headers)?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| transport_error(format_args!("cannot connect to {host}:{port}: {e}")))?;
    tcp.set_nodelay(true).map_err(transport_error)?;
    let stream: Box<dyn Io> = if secure {
        let name = ServerName::try_from(host).map_err(transport_error)?;
        let tls = TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| transport_error(format_args!("TLS: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let stream = Sniffed {
        inner: stream,
        close: CloseSniffer::new(),
    };
    let config = websocket_config(max_message_bytes);
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _response)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(CloseReason::HandshakeRefused {
                status: response.status().as_u16(),
            })
        }
        Err(e) => Err(transport_error(e)),
    }
}
