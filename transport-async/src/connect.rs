//! Opening connections for the drivers and the HTTP client: TCP through the runtime, TLS with
//! the shared configuration for `wss://` and `https://` (futures-rustls), and a WebSocket over
//! that (async-tungstenite, with small buffers and a ceiling above the core's frame limit; the
//! handshake is done here so that the socket starts with a small read buffer).
//! The bytes a WebSocket reads are watched for the peer's Close frame, so that a close is
//! reported as what the peer sent. This module moves bytes only.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_tungstenite::tungstenite::handshake::client::{generate_request, Request};
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::rustls::pki_types::ServerName;
use futures_rustls::TlsConnector;
use futures_util::{AsyncReadExt, AsyncWriteExt};
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
    let config =
        websocket_config(shared.config.max_message_bytes).read_buffer_size(READ_BUFFER_BYTES);
    handshake(request, stream, config).await
}

/// The WebSocket's read buffer to start with. It holds the frames of this protocol (a
/// presence frame is a few hundred bytes) and grows for a larger one; it is most of what an
/// idle socket holds, so it starts small.
const READ_BUFFER_BYTES: usize = 1024;

/// Bound on the server's handshake answer (status line and headers).
const MAX_HANDSHAKE_ANSWER: usize = 16 * 1024;

/// The client side of the WebSocket handshake (RFC 6455 section 4.1). Written here rather
/// than taken from the WebSocket library so that the socket starts with a
/// [`READ_BUFFER_BYTES`] read buffer instead of inheriting the handshake's 4 KiB one: that
/// buffer is kept for the socket's whole life, and idle watched visitors are mostly sockets.
/// A status other than 101 is [`CloseReason::HandshakeRefused`].
async fn handshake(
    request: Request,
    mut stream: Sniffed,
    config: WebSocketConfig,
) -> Result<Ws, CloseReason> {
    let (bytes, key) = generate_request(request).map_err(transport_error)?;
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| transport_error(format_args!("cannot send the WebSocket upgrade: {e}")))?;
    stream.flush().await.map_err(transport_error)?;
    drop(bytes);
    let mut answer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let head_len = loop {
        let n = stream.read(&mut chunk).await.map_err(transport_error)?;
        if n == 0 {
            return Err(transport_error(
                "the server closed the connection during the WebSocket upgrade",
            ));
        }
        let searched_from = answer.len().saturating_sub(3);
        answer.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = answer
            .get(searched_from..)
            .and_then(|tail| tail.windows(4).position(|w| w == b"\r\n\r\n"))
        {
            break searched_from + end + 4;
        }
        if answer.len() > MAX_HANDSHAKE_ANSWER {
            return Err(transport_error(format_args!(
                "the WebSocket upgrade answer exceeds {MAX_HANDSHAKE_ANSWER} bytes"
            )));
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = answer.get(..head_len).unwrap_or_default();
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(transport_error("incomplete WebSocket upgrade answer"))
        }
        Err(e) => {
            return Err(transport_error(format_args!(
                "malformed WebSocket upgrade answer: {e}"
            )))
        }
    }
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(CloseReason::HandshakeRefused { status });
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !header("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(transport_error(
            "the WebSocket upgrade answer has no \"Upgrade: websocket\" header",
        ));
    }
    if !header("Connection").is_some_and(|v| {
        v.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(transport_error(
            "the WebSocket upgrade answer has no \"Connection: Upgrade\" header",
        ));
    }
    if header("Sec-WebSocket-Accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(transport_error(
            "the WebSocket upgrade answer has a wrong Sec-WebSocket-Accept key",
        ));
    }
    if header("Sec-WebSocket-Protocol").is_some() {
        return Err(transport_error(
            "the server chose a WebSocket subprotocol none was asked for",
        ));
    }
    // Frames the server sent right behind its answer.
    let tail = answer.get(head_len..).unwrap_or_default().to_vec();
    drop(answer);
    Ok(WebSocketStream::from_partially_read(stream, tail, Role::Client, Some(config)).await)
}
