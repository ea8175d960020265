//! The WebSocket endpoints `/agent` and `/visitorws` once the core has admitted the upgrade:
//! the handshake, buffer sizes, the connection task that feeds received frames to the core and
//! writes what the core sends, and the close handshake. What the service answers, and when a
//! socket is closed, is the core's decision; this module only carries it out.
//!
//! One task per connection runs a reader and a writer side by side. Frames are decoded with
//! the protocol crate's `ClientFrame::decode` (size limit from the configuration) outside the
//! core's lock. The writer takes encoded frames from the connection's bounded queue and batches
//! them into one flush. Buffers are kept small (4 KiB read buffer, no write buffering, a bounded
//! write buffer) so that an idle connection costs little memory.
//!
//! Closing (RFC 6455 §5.5.1, §7.1): a client's Close frame is answered with a Close frame (its
//! code echoed) before the TCP connection closes. After a Close frame of the service's own (from
//! the core: shutdown, idle, protocol and size errors, authorization) the task waits, bounded,
//! for the client's answer. What the WebSocket layer itself refuses is closed with the code
//! RFC 6455 names, a reason, and a log line with the peer: 1007 a text message that is not
//! UTF-8, 1009 a frame or message over twice the frame limit, 1002 any other protocol violation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use glance_presence_protocol::ClientFrame;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::WebSocketStream;
use tracing::Instrument;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::Message;

use crate::core::rest::RestResponse;
use crate::core::{CloseCause, ConnId, PingAnswer, Role, ServiceCore};
use crate::listener::ConnectionPermit;
use crate::respond::into_response;
use crate::shared::{ConnHandle, Outgoing, Shared};

/// Read buffer of each WebSocket (tungstenite's default is 128 KiB).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// How long the close handshake may take once either side has sent its Close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The `Sec-WebSocket-Key` of a well-formed upgrade request (RFC 6455 §4.2.1).
fn websocket_key(headers: &HeaderMap) -> Result<&HeaderValue, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("not a WebSocket upgrade: Connection must include upgrade");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("not a WebSocket upgrade: Upgrade must be websocket");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("Sec-WebSocket-Key is missing")
}

/// Completes the upgrade the core admitted (see [`crate::core::rest::HttpAnswer::Upgrade`]) and
/// spawns the socket's task; a request that is not a well-formed upgrade gets the core's 400.
pub(crate) fn upgrade_socket(
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    mut request: Request,
    role: Role,
) -> Response {
    let accept = match websocket_key(request.headers()) {
        Ok(key) => derive_accept_key(key.as_bytes()),
        Err(msg) => return into_response(RestResponse::error(400, "badrequest", msg)),
    };
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return into_response(RestResponse::error(
            400,
            "badrequest",
            "this connection cannot be upgraded",
        ));
    };
    // The connection's permit stays taken while the socket is open.
    let permit = request.extensions_mut().remove::<ConnectionPermit>();
    let limit = shared.read_core(|core| core.settings().max_frame_bytes);
    // Frames up to twice the limit reach the decoder, which answers with the error frame;
    // anything larger is refused by the WebSocket layer itself.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * limit + 4096)
        .max_message_size(Some(2 * limit))
        .max_frame_size(Some(2 * limit));
    let peer = peer.map_or_else(|| "unknown".to_owned(), |peer| peer.to_string());
    let span =
        tracing::info_span!("socket", role = role.as_str(), %peer, conn = tracing::field::Empty);
    tokio::spawn(
        async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(error = %err, "WebSocket upgrade failed");
                    return;
                }
            };
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                tungstenite::protocol::Role::Server,
                Some(config),
            )
            .await;
            run_socket(shared, socket, role).await;
            drop(permit);
        }
        .instrument(span),
    );
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// How a socket's reader and writer ended.
#[derive(Debug)]
enum End {
    /// The client sent a Close frame; the answer is queued.
    ClientClosed,
    /// The service sent a Close frame (asked for by the core).
    ServiceClosed,
    /// The WebSocket layer refused what the client sent: close with this code and reason.
    Refused(CloseCode, &'static str),
    /// The connection is gone, or was dropped (send queue full).
    Gone,
    /// The core withheld the pong to a ping (a socket silenced by a test control): nothing
    /// more is read or written on the WebSocket layer, which would answer the ping.
    Silenced,
}

async fn run_socket(shared: Arc<Shared>, socket: Socket, role: Role) {
    let (tx, mut rx) = mpsc::channel(shared.config.limits().send_queue_frames);
    let kill = Arc::new(Notify::new());
    let conn = shared.register(
        role,
        ConnHandle {
            tx,
            kill: kill.clone(),
        },
    );
    tracing::Span::current().record("conn", tracing::field::display(conn));
    tracing::debug!("socket opened");
    let (mut sink, mut stream) = socket.split();
    let end = tokio::select! {
        end = read_loop(&shared, conn, role, &mut stream) => end,
        end = write_loop(&shared, role, &mut sink, &mut rx) => end,
        _ = kill.notified() => {
            tracing::info!("socket dropped: send queue full");
            End::Gone
        }
    };
    match end {
        End::ClientClosed => {
            shared.unregister(conn);
            if shared.read_core(|core| core.controls().breakage().no_close_handshake) {
                // A test-only broken service: the Close frame is not answered.
                return;
            }
            // Sends the queued answer to the client's Close frame.
            let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
        }
        End::ServiceClosed => {
            // The core has let go of the connection already; wait for the client's answer,
            // still counting the socket as open so that a graceful stop waits for it too.
            let _ = tokio::time::timeout(CLOSE_WAIT, await_close(&mut stream)).await;
            shared.unregister(conn);
        }
        End::Refused(code, reason) => {
            shared.unregister(conn);
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let closing = async {
                if sink.send(Message::Close(Some(frame))).await.is_err() {
                    return;
                }
                if let Ok(socket) = sink.reunite(stream) {
                    // What the client still sends is unreadable: discard it until the client
                    // closes, so that the close does not reset the connection under our Close.
                    let mut io = socket.into_inner();
                    let _ = io.shutdown().await;
                    let mut buf = [0u8; 4096];
                    while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            };
            let _ = tokio::time::timeout(CLOSE_WAIT, closing).await;
        }
        End::Gone => shared.unregister(conn),
        End::Silenced => {
            if let Ok(socket) = sink.reunite(stream) {
                discard_until_closed(&shared, conn, socket, &mut rx, &kill).await;
            }
            shared.unregister(conn);
        }
    }
    tracing::debug!("socket closed");
}

/// A silenced socket after its first ping: reads the raw connection, discarding the bytes but
/// reporting them to the core as activity, until the client closes it or the core lets go of
/// it (a close or a drop); nothing is written, so the ping stays unanswered.
async fn discard_until_closed(
    shared: &Shared,
    conn: ConnId,
    socket: Socket,
    rx: &mut mpsc::Receiver<Outgoing>,
    kill: &Notify,
) {
    let mut io = socket.into_inner();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            read = io.read(&mut buf) => match read {
                Ok(n) if n > 0 => shared.with_core(|core, now| core.handle_activity(now, conn)),
                _ => return,
            },
            out = rx.recv() => match out {
                Some(Outgoing::Text(..)) => {}
                Some(Outgoing::Close(_)) | None => return,
            },
            _ = kill.notified() => return,
        }
    }
}

/// Reads until the client's Close frame (or the end of the connection).
async fn await_close(stream: &mut SplitStream<Socket>) {
    while let Some(Ok(message)) = stream.next().await {
        if matches!(message, Message::Close(_)) {
            return;
        }
    }
}

async fn read_loop(
    shared: &Shared,
    conn: ConnId,
    role: Role,
    stream: &mut SplitStream<Socket>,
) -> End {
    let limit = shared.config.limits().max_frame_bytes;
    while let Some(message) = stream.next().await {
        let read_at = Instant::now();
        let decoded = match message {
            Ok(Message::Text(text)) => ClientFrame::decode(text.as_str(), limit),
            Ok(Message::Binary(bytes)) => ClientFrame::decode_bytes(&bytes, limit),
            Ok(Message::Ping(_)) => {
                match shared.with_core(|core, now| core.handle_ping(now, conn)) {
                    PingAnswer::Pong => continue,
                    PingAnswer::Withhold => return End::Silenced,
                }
            }
            Ok(Message::Pong(_)) => {
                shared.with_core(|core, now| core.handle_activity(now, conn));
                continue;
            }
            Ok(Message::Close(_)) => return End::ClientClosed,
            Ok(Message::Frame(_)) => continue,
            Err(err) => return refused(err),
        };
        match decoded {
            Ok(frame) => {
                tracing::trace!(kind = frame.kind(), "frame received");
                let handle = |core: &mut ServiceCore, now| core.handle_frame(now, conn, frame);
                if role == Role::Visitor {
                    shared.with_core_relaying(read_at, handle);
                } else {
                    shared.with_core(handle);
                }
            }
            Err(err) => {
                tracing::info!(error = %err, "malformed frame");
                shared.with_core(|core, now| core.handle_malformed(now, conn, &err));
            }
        }
    }
    End::Gone
}

/// The close code RFC 6455 names for what the WebSocket layer refused (logged with the peer,
/// which the socket's span carries), or [`End::Gone`] when the connection itself failed.
fn refused(err: tungstenite::Error) -> End {
    use tungstenite::Error;
    let (code, reason) = match &err {
        Error::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in a text message"),
        Error::Capacity(_) => (CloseCode::Size, "message too big"),
        Error::Protocol(_) | Error::AttackAttempt => (CloseCode::Protocol, "protocol error"),
        _ => {
            tracing::debug!(error = %err, "socket read failed");
            return End::Gone;
        }
    };
    tracing::info!(error = %err, code = u16::from(code), "socket closed: {reason}");
    End::Refused(code, reason)
}

/// Writes what the core sends. On an agent socket, the frames relayed from a visitor feed the
/// relay latency once written (flushed).
async fn write_loop(
    shared: &Shared,
    role: Role,
    sink: &mut SplitSink<Socket, Message>,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> End {
    let mut relayed: Vec<Instant> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Feed everything queued, then flush once.
        while let Some(out) = next.take() {
            match out {
                Outgoing::Text(text, read_at) => {
                    if sink.feed(Message::Text(text.into())).await.is_err() {
                        return End::Gone;
                    }
                    if let (Role::Agent, Some(read_at)) = (role, read_at) {
                        relayed.push(read_at);
                    }
                }
                Outgoing::Close(CloseCause::Dropped) => return End::Gone,
                Outgoing::Close(reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(reason.code()),
                        reason: reason.text().into(),
                    };
                    if sink.send(Message::Close(Some(frame))).await.is_err() {
                        return End::Gone;
                    }
                    return End::ServiceClosed;
                }
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return End::Gone;
        }
        for read_at in relayed.drain(..) {
            shared.latencies.observe_relay(read_at.elapsed());
        }
    }
    End::Gone
}
