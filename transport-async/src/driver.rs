//! The one async driver: a tokio task per core that owns the core and its socket and selects
//! over the socket's next message, the core's next deadline, the command channel, finished
//! HTTP exchanges and room in the event channel. It feeds the core what happened and carries
//! out the core's outputs; it decides nothing (reconnects, keepalives and timeouts come from
//! the core's outputs and `poll_timeout`).
//!
//! Every branch of the select is cancel-safe by construction: `mpsc` receives and
//! `reserve_owned` lose nothing when another branch wins, the socket's `next()` keeps its
//! state in the stream, the socket being opened is a boxed future polled by reference across
//! iterations, and the sleep is rebuilt from `poll_timeout` every turn.
//!
//! Backpressure: events wait in the task until the bounded event channel has room. While
//! events wait, the task stops reading the socket (so a slow application slows the service's
//! sends through TCP instead of growing a buffer), but it still fires the core's timers
//! (keepalives, request timeouts), runs commands and takes HTTP answers.

use std::collections::VecDeque;
use std::future::{pending, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use glance_presence_blocking::{HttpClient, TransportConfig, TransportError};
use glance_presence_protocol::agent::AgentProtocol;
use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::visitor::VisitorProtocol;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::rustls::ClientConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::socket::{self, Ws};

/// Capacity of each handle's event channel (see the crate docs on backpressure).
pub const EVENT_BUFFER: usize = 64;

/// Capacity of each handle's command channel; a caller waits for room.
pub const COMMAND_BUFFER: usize = 16;

/// Bound on writing one close frame when the driver closes a socket.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// The driver task is gone (it panicked, or the runtime is shutting down); nothing more will
/// happen on this handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEnded;

impl std::fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the driver task has ended")
    }
}

impl std::error::Error for TaskEnded {}

/// What the driver needs from a core beyond [`SansIo`]: how to stop it, and whether it has.
pub(crate) trait Core: SansIo + Send + 'static {
    /// Stops for good (the core emits its final event).
    fn stop(&mut self, now: Instant);
    /// Whether the core has stopped for good.
    fn is_stopped(&self) -> bool;
}

impl Core for AgentProtocol {
    fn stop(&mut self, now: Instant) {
        self.disconnect(now);
    }
    fn is_stopped(&self) -> bool {
        AgentProtocol::is_stopped(self)
    }
}

impl Core for VisitorProtocol {
    fn stop(&mut self, now: Instant) {
        self.disconnect(now);
    }
    fn is_stopped(&self) -> bool {
        VisitorProtocol::is_stopped(self)
    }
}

/// Takes the events that someone inside the task waits for (request outcomes) before they go
/// to the application.
pub(crate) trait Route<E>: Send + 'static {
    /// `None` when the event was handed to a waiter; `Some` to deliver it to the application.
    fn route(&mut self, event: E) -> Option<E>;
}

/// No waiters: every event goes to the application.
impl<E> Route<E> for () {
    fn route(&mut self, event: E) -> Option<E> {
        Some(event)
    }
}

/// A command: runs on the task with the core, the router and the time.
type Command<P, R> = Box<dyn FnOnce(&mut P, &mut R, Instant) + Send>;

type HttpDone = (HttpRequestId, Result<(u16, Vec<u8>), String>);

/// The application's side of one driver task.
pub(crate) struct Handle<P: Core, R> {
    commands: mpsc::Sender<Command<P, R>>,
    events: mpsc::Receiver<P::Event>,
    /// Events taken off the channel by [`Handle::stop`], not yet handed out.
    stash: VecDeque<P::Event>,
}

impl<P: Core, R> std::fmt::Debug for Handle<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("task_running", &!self.commands.is_closed())
            .field("stashed_events", &self.stash.len())
            .finish()
    }
}

impl<P, R> Handle<P, R>
where
    P: Core,
    P::Event: Send + 'static,
    R: Route<P::Event>,
{
    /// Spawns the task for `core` on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub(crate) fn spawn(
        core: P,
        router: R,
        config: TransportConfig,
    ) -> Result<Self, TransportError> {
        let tls = config.tls_roots.client_config()?;
        let http = HttpClient::new(&config.tls_roots, config.http_timeout);
        let (command_tx, command_rx) = mpsc::channel(COMMAND_BUFFER);
        let (event_tx, event_rx) = mpsc::channel(EVENT_BUFFER);
        let (http_tx, http_rx) = mpsc::unbounded_channel();
        let task = Task {
            core,
            router,
            socket: None,
            opening: None,
            http,
            http_done: http_tx,
            tls,
            config,
            pending: VecDeque::new(),
            events: Some(event_tx),
        };
        tokio::spawn(task.run(command_rx, http_rx));
        Ok(Handle {
            commands: command_tx,
            events: event_rx,
            stash: VecDeque::new(),
        })
    }

    /// Runs `f` on the task (then the task carries out what the core asked for) and returns
    /// its result. Dropping the future before the command was queued sends nothing; dropping
    /// it later lets the command run and discards its result.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut P, &mut R, Instant) -> T + Send + 'static,
    ) -> Result<T, TaskEnded> {
        let (tx, rx) = oneshot::channel();
        let command: Command<P, R> = Box::new(move |core, router, now| {
            let _ = tx.send(f(core, router, now));
        });
        self.commands.send(command).await.map_err(|_| TaskEnded)?;
        rx.await.map_err(|_| TaskEnded)
    }

    /// The next event; `None` once the core has stopped and every event was taken.
    pub(crate) async fn next_event(&mut self) -> Option<P::Event> {
        if let Some(event) = self.stash.pop_front() {
            return Some(event);
        }
        self.events.recv().await
    }

    /// Stops the core and waits until the task has delivered its last event (which stay
    /// available to [`Handle::next_event`]).
    pub(crate) async fn stop(&mut self) {
        let _ = self.call(|core, _, now| core.stop(now)).await;
        while let Some(event) = self.events.recv().await {
            self.stash.push_back(event);
        }
    }
}

/// A socket being opened: a boxed future, polled by reference so that it survives the select
/// iterations it does not win.
struct Opening {
    id: SocketId,
    connect: Pin<Box<dyn Future<Output = Result<Ws, CloseReason>> + Send>>,
}

/// What woke the task.
enum Wake<P: Core, R> {
    Command(Option<Command<P, R>>),
    Socket(Option<Result<Message, WsError>>),
    Opened(Result<Box<Ws>, CloseReason>),
    Http(HttpDone),
    Timer,
    Room(Option<mpsc::OwnedPermit<P::Event>>),
}

/// The task's state: the core and the IO it carries out for it.
struct Task<P: Core, R> {
    core: P,
    router: R,
    socket: Option<(SocketId, Ws)>,
    opening: Option<Opening>,
    http: HttpClient,
    http_done: mpsc::UnboundedSender<HttpDone>,
    tls: Arc<ClientConfig>,
    config: TransportConfig,
    /// Events waiting for room in the event channel.
    pending: VecDeque<P::Event>,
    /// `None` once the core has stopped and its last event was delivered (or the application
    /// dropped its receiver).
    events: Option<mpsc::Sender<P::Event>>,
}

impl<P, R> Task<P, R>
where
    P: Core,
    P::Event: Send + 'static,
    R: Route<P::Event>,
{
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command<P, R>>,
        mut http_done: mpsc::UnboundedReceiver<HttpDone>,
    ) {
        loop {
            self.drain().await;
            self.deliver_ready();
            let deadline = self.core.poll_timeout();
            let read_socket = self.socket.is_some() && self.pending.is_empty();
            let opening = self.opening.is_some();
            let room = match &self.events {
                Some(tx) if !self.pending.is_empty() => Some(tx.clone()),
                _ => None,
            };
            let wait_room = room.is_some();
            let wake = tokio::select! {
                command = commands.recv() => Wake::Command(command),
                message = next_message(&mut self.socket), if read_socket => Wake::Socket(message),
                opened = next_opened(&mut self.opening), if opening => Wake::Opened(opened),
                Some(done) = http_done.recv() => Wake::Http(done),
                () = sleep_until(deadline), if deadline.is_some() => Wake::Timer,
                permit = reserve(room), if wait_room => Wake::Room(permit),
            };
            let now = Instant::now();
            match wake {
                Wake::Command(Some(command)) => command(&mut self.core, &mut self.router, now),
                Wake::Command(None) => {
                    // Every handle is gone: stop the core, carry out its last outputs, end.
                    self.core.stop(now);
                    self.drain().await;
                    break;
                }
                Wake::Socket(message) => self.on_message(message),
                Wake::Opened(result) => {
                    let Some(opening) = self.opening.take() else {
                        continue;
                    };
                    let input = match result {
                        Ok(ws) => {
                            self.socket = Some((opening.id, *ws));
                            TransportInput::SocketOpened { socket: opening.id }
                        }
                        Err(reason) => TransportInput::SocketClosed {
                            socket: opening.id,
                            reason,
                        },
                    };
                    self.core.handle_input(now, input);
                }
                Wake::Http((id, result)) => {
                    let input = match result {
                        Ok((status, body)) => TransportInput::HttpResponse { id, status, body },
                        Err(detail) => TransportInput::HttpFailed { id, detail },
                    };
                    self.core.handle_input(now, input);
                }
                Wake::Timer => self.core.handle_timeout(now),
                Wake::Room(Some(permit)) => {
                    if let Some(event) = self.pending.pop_front() {
                        permit.send(event);
                    }
                }
                Wake::Room(None) => {
                    // The application dropped its receiver: nobody will read events.
                    self.pending.clear();
                    self.events = None;
                }
            }
        }
        if let Some((_, ws)) = self.socket.take() {
            shut(ws).await;
        }
    }

    /// Hands queued events to the channel while it has room; closes the channel once the
    /// core has stopped and the last event went out.
    fn deliver_ready(&mut self) {
        let Some(tx) = &self.events else {
            self.pending.clear();
            return;
        };
        while let Some(event) = self.pending.pop_front() {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.pending.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    self.events = None;
                    return;
                }
            }
        }
        if self.core.is_stopped() {
            self.events = None;
        }
    }

    /// Carries out every output the core has (the drain rule).
    async fn drain(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Event(event) => {
                    if let Some(event) = self.router.route(event) {
                        self.pending.push_back(event);
                    }
                }
                Output::OpenSocket {
                    socket,
                    url,
                    headers,
                } => {
                    if let Some((_, old)) = self.socket.take() {
                        shut(old).await;
                    }
                    tracing::debug!(%socket, url, "opening WebSocket");
                    let connect = socket::open(
                        url,
                        headers,
                        Arc::clone(&self.tls),
                        self.config.connect_timeout,
                        self.config.max_message_bytes,
                    );
                    self.opening = Some(Opening {
                        id: socket,
                        connect: Box::pin(connect),
                    });
                }
                Output::SendFrame { socket, text } => self.send(socket, Message::text(text)).await,
                Output::SendPing { socket } => {
                    self.send(socket, Message::Ping(Vec::new().into())).await
                }
                Output::CloseSocket { socket } => {
                    if self.opening.as_ref().is_some_and(|o| o.id == socket) {
                        self.opening = None;
                    }
                    if self.socket.as_ref().is_some_and(|(id, _)| *id == socket) {
                        if let Some((_, ws)) = self.socket.take() {
                            shut(ws).await;
                        }
                    }
                }
                Output::Http { id, request } => {
                    let http = self.http.clone();
                    let done = self.http_done.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = done.send((id, http.execute(&request).map_err(|e| e.to_string())));
                    });
                }
            }
        }
    }

    /// Sends one message; a write that fails, or does not complete within the connect
    /// timeout, is a broken link.
    async fn send(&mut self, id: SocketId, message: Message) {
        let Some((_, ws)) = self.socket.as_mut().filter(|(open, _)| *open == id) else {
            return; // a stale socket: the core no longer cares
        };
        let detail = match tokio::time::timeout(self.config.connect_timeout, ws.send(message)).await
        {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "a WebSocket write did not complete in time".to_owned(),
        };
        self.lose_socket(CloseReason::TransportError { detail });
    }

    fn on_message(&mut self, message: Option<Result<Message, WsError>>) {
        let Some((id, ws)) = &self.socket else {
            return;
        };
        let socket = *id;
        // What the peer sent in its Close frame, not the library's answer to it.
        let peer_close = ws.get_ref().peer_close();
        let input = match message {
            Some(Ok(Message::Text(text))) => TransportInput::Frame {
                socket,
                text: text.as_str().to_owned(),
            },
            Some(Ok(Message::Binary(data))) => TransportInput::BinaryFrame {
                socket,
                data: data.to_vec(),
            },
            Some(Ok(Message::Pong(_))) => TransportInput::Pong { socket },
            Some(Ok(Message::Ping(_))) => TransportInput::Ping { socket },
            Some(Ok(Message::Frame(_))) => return,
            Some(Ok(Message::Close(frame))) => {
                let reason = peer_close.unwrap_or_else(|| {
                    let (code, reason) = match frame {
                        Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_owned()),
                        None => (None, String::new()),
                    };
                    CloseReason::ClosedByPeer { code, reason }
                });
                return self.lose_socket(reason);
            }
            None | Some(Err(WsError::ConnectionClosed)) | Some(Err(WsError::AlreadyClosed)) => {
                return self.lose_socket(peer_close.unwrap_or(CloseReason::ClosedByPeer {
                    code: None,
                    reason: String::new(),
                }));
            }
            Some(Err(e)) => {
                // A malformed close frame fails in the library: report the frame itself.
                return self.lose_socket(peer_close.unwrap_or_else(|| {
                    CloseReason::TransportError {
                        detail: e.to_string(),
                    }
                }));
            }
        };
        self.core.handle_input(Instant::now(), input);
    }

    /// The socket broke: drop it and tell the core.
    fn lose_socket(&mut self, reason: CloseReason) {
        if let Some((socket, _)) = self.socket.take() {
            self.core.handle_input(
                Instant::now(),
                TransportInput::SocketClosed { socket, reason },
            );
        }
    }
}

async fn next_message(socket: &mut Option<(SocketId, Ws)>) -> Option<Result<Message, WsError>> {
    match socket {
        Some((_, ws)) => ws.next().await,
        None => pending().await,
    }
}

async fn next_opened(opening: &mut Option<Opening>) -> Result<Box<Ws>, CloseReason> {
    match opening {
        Some(opening) => opening.connect.as_mut().await.map(Box::new),
        None => pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => pending().await,
    }
}

async fn reserve<E>(room: Option<mpsc::Sender<E>>) -> Option<mpsc::OwnedPermit<E>> {
    match room {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => pending().await,
    }
}

/// Closes a socket without waiting for the peer: a normal close frame (1000) if it can be
/// written within a short bound, then the stream is dropped.
async fn shut(mut ws: Ws) {
    let close = ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, close).await;
}
