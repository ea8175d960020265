//! The WebSocket endpoints `/agent` and `/visitorws`: upgrade checks, buffer sizes, and the
//! connection task that feeds received frames to the core and writes what the core sends.
//!
//! One task per connection runs a reader and a writer side by side. Frames are decoded with
//! the protocol crate's `ClientFrame::decode` (size limit from the configuration) outside the
//! core's lock. The writer takes encoded frames from the connection's bounded queue and batches
//! them into one flush. Buffers are kept small (4 KiB read buffer, no write buffering, a bounded
//! write buffer) so that an idle connection costs little memory.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use glance_presence_protocol::ClientFrame;
use tokio::sync::{mpsc, Notify};
use tracing::Instrument;

use crate::core::{ConnId, Role};
use crate::http::error_response;
use crate::server::PeerAddr;
use crate::shared::{ConnHandle, Outgoing, Shared};

/// Read buffer of each WebSocket (tungstenite's default is 128 KiB).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /agent`.
pub(crate) async fn agent_endpoint(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        if !shared.config.origin_allowed(origin) {
            shared
                .counters
                .origin_rejections
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, origin, "agent socket refused: origin not allowed");
            return error_response(StatusCode::FORBIDDEN, "origin", "origin not allowed");
        }
    }
    upgrade_socket(shared, peer, upgrade, Role::Agent)
}

/// `GET /visitorws`: any origin.
pub(crate) async fn visitor_endpoint(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(PeerAddr(peer)): ConnectInfo<PeerAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade_socket(shared, peer, upgrade, Role::Visitor)
}

fn upgrade_socket(
    shared: Arc<Shared>,
    peer: SocketAddr,
    upgrade: WebSocketUpgrade,
    role: Role,
) -> Response {
    if shared.is_shutting_down() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceunavailable",
            "the service is shutting down",
        );
    }
    if shared.open_connections() >= shared.config.limits().max_connections {
        shared
            .counters
            .refused_connections
            .fetch_add(1, Ordering::Relaxed);
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceunavailable",
            "too many connections",
        );
    }
    let limit = shared.config.limits().max_frame_bytes;
    // Frames up to twice the limit reach the decoder, which answers with the error frame;
    // anything larger is refused by the WebSocket layer itself.
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * limit + 4096)
        .max_message_size(2 * limit)
        .max_frame_size(2 * limit)
        .on_upgrade(move |socket| {
            let span = tracing::info_span!("socket", role = role.as_str(), %peer, conn = tracing::field::Empty);
            run_socket(shared, socket, role).instrument(span)
        })
        .into_response()
}

async fn run_socket(shared: Arc<Shared>, socket: WebSocket, role: Role) {
    let (tx, rx) = mpsc::channel(shared.config.limits().send_queue_frames);
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
    let (sink, stream) = socket.split();
    tokio::select! {
        _ = read_loop(&shared, conn, stream) => {}
        _ = write_loop(sink, rx) => {}
        _ = kill.notified() => {
            tracing::info!("socket dropped: send queue full");
        }
    }
    shared.unregister(conn);
    tracing::debug!("socket closed");
}

async fn read_loop(
    shared: &Shared,
    conn: ConnId,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
) {
    let limit = shared.config.limits().max_frame_bytes;
    while let Some(message) = stream.next().await {
        let decoded = match message {
            Ok(Message::Text(text)) => ClientFrame::decode(text.as_str(), limit),
            Ok(Message::Binary(bytes)) => ClientFrame::decode_bytes(&bytes, limit),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => {
                shared.with_core(|core, now| core.handle_activity(now, conn));
                continue;
            }
            Ok(Message::Close(_)) => break,
            Err(err) => {
                tracing::debug!(error = %err, "socket read failed");
                break;
            }
        };
        match decoded {
            Ok(frame) => {
                tracing::trace!(kind = frame.kind(), "frame received");
                shared.with_core(|core, now| core.handle_frame(now, conn, frame));
            }
            Err(err) => {
                tracing::info!(error = %err, "malformed frame");
                shared.with_core(|core, now| core.handle_malformed(now, conn, &err));
            }
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Feed everything queued, then flush once.
        while let Some(out) = next.take() {
            match out {
                Outgoing::Text(text) => {
                    if sink.feed(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Outgoing::Close(reason) => {
                    let frame = CloseFrame {
                        code: reason.code(),
                        reason: reason.text().into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    let _ = sink.close().await;
                    return;
                }
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
