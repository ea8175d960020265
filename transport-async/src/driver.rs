//! The one async driver: a hand-written future per core (agent or visitor) that owns the core
//! and its socket. Each time it is polled it takes the commands queued for it, the socket's
//! messages, the socket being opened, finished HTTP exchanges and the core's timer, feeds the
//! core what happened and carries out the core's outputs (the drain rule); it decides nothing
//! (reconnects, keepalives and timeouts come from the core's outputs and `poll_timeout`).
//!
//! The driver is a plain future, so it costs one task and no channel per core: commands reach
//! it through its [`Slot`] (a small queue and a waker shared with the handles), events leave
//! through the merged [`Inbox`] of its agent or fleet, whose per-source bound and lag policy
//! are described there. HTTP exchanges are futures of the shared client, polled here and
//! bounded by the core's request timeout; they are dropped (cancelled) when the core stops.

use std::collections::VecDeque;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use glance_presence_protocol::agent::AgentProtocol;
use glance_presence_protocol::io::{
    CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput,
};
use glance_presence_protocol::visitor::VisitorProtocol;
use glance_presence_transport::HttpError;

use crate::connect::{self, Ws};
use crate::inbox::{Inbox, Source};
use crate::runtime::{self, AsyncTimer, BoxFuture};
use crate::shared::Inner;

/// Bound on writing one close frame when the driver closes a socket.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// Rounds of work in one poll before the driver yields to other tasks.
const ROUNDS_PER_POLL: usize = 32;

/// What the driver needs from a core beyond [`SansIo`].
pub(crate) trait Core: SansIo + Send + 'static {
    /// Stops for good (the core emits its final event).
    fn stop(&mut self, now: Instant);
    /// Whether the core has stopped for good.
    fn is_stopped(&self) -> bool;
    /// How long an HTTP exchange may take, from the moment the core asks for it.
    fn http_bound(&self) -> Option<Duration>;
}

impl Core for AgentProtocol {
    fn stop(&mut self, now: Instant) {
        self.disconnect(now);
    }
    fn is_stopped(&self) -> bool {
        AgentProtocol::is_stopped(self)
    }
    fn http_bound(&self) -> Option<Duration> {
        Some(self.config().timers().request_timeout)
    }
}

impl Core for VisitorProtocol {
    fn stop(&mut self, now: Instant) {
        self.disconnect(now);
    }
    fn is_stopped(&self) -> bool {
        VisitorProtocol::is_stopped(self)
    }
    fn http_bound(&self) -> Option<Duration> {
        None
    }
}

/// Takes the events that someone inside the driver waits for (request outcomes, token
/// requests) before they go to the application, and feeds the core what it answers.
pub(crate) trait Route<P: SansIo>: Send + 'static {
    /// `None` when the event was taken here; `Some` to deliver it to the application.
    fn route(&mut self, event: P::Event) -> Option<P::Event>;

    /// Polls what the router owes the core (a token it is fetching); `true` when the core
    /// was fed.
    fn poll_answer(&mut self, core: &mut P, cx: &mut Context<'_>) -> bool {
        let _ = (core, cx);
        false
    }
}

/// No waiters: every event goes to the application.
impl<P: SansIo> Route<P> for () {
    fn route(&mut self, event: P::Event) -> Option<P::Event> {
        Some(event)
    }
}

/// A command: runs in the driver with the core, the router and the time.
pub(crate) type Command<P, R> = Box<dyn FnOnce(&mut P, &mut R, Instant) + Send>;

/// What the handles of one driver share with it.
pub(crate) struct Slot<P, R> {
    commands: Mutex<VecDeque<Command<P, R>>>,
    waker: AtomicWaker,
    queued: AtomicUsize,
    stop: AtomicBool,
    ended: AtomicBool,
}

impl<P, R> Slot<P, R> {
    pub(crate) fn new() -> Self {
        Slot {
            commands: Mutex::new(VecDeque::new()),
            waker: AtomicWaker::new(),
            queued: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            ended: AtomicBool::new(false),
        }
    }

    /// Queues a command; `false` when the driver has ended.
    pub(crate) fn send(&self, command: Command<P, R>) -> bool {
        match self.commands.lock() {
            // Checked under the lock the driver ends under: a command is either run or
            // refused, never left behind.
            Ok(mut commands) if !self.ended.load(Ordering::Acquire) => commands.push_back(command),
            _ => return false,
        }
        self.waker.wake();
        true
    }

    /// Marks the driver ended and drops the commands it will never run (their callers see
    /// the driver gone). `false` when it had already ended.
    fn end(&self) -> bool {
        let dropped = match self.commands.lock() {
            Ok(mut commands) => {
                if self.ended.swap(true, Ordering::AcqRel) {
                    return false;
                }
                mem::take(&mut *commands)
            }
            Err(_) => return !self.ended.swap(true, Ordering::AcqRel),
        };
        drop(dropped);
        true
    }

    /// Asks the driver to stop its core.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the driver has ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn take_commands(&self) -> VecDeque<Command<P, R>> {
        match self.commands.lock() {
            Ok(mut commands) => mem::take(&mut *commands),
            Err(_) => VecDeque::new(),
        }
    }
}

impl<P: Send + 'static, R: Send + 'static> Source for Slot<P, R> {
    fn queued(&self) -> &AtomicUsize {
        &self.queued
    }

    fn wake(&self) {
        self.waker.wake();
    }
}

type HttpFuture = BoxFuture<Result<(u16, Vec<u8>), HttpError>>;

/// The driver of one core (see the module docs).
pub(crate) struct Driver<P: Core, R, K> {
    core: P,
    router: R,
    slot: Arc<Slot<P, R>>,
    source: Arc<dyn Source>,
    shared: Arc<Inner>,
    inbox: Arc<Inbox<K, P::Event>>,
    key: K,
    socket: Option<(SocketId, Ws)>,
    opening: Option<(SocketId, BoxFuture<Result<Ws, CloseReason>>)>,
    outbound: VecDeque<Message>,
    flushing: bool,
    http: Vec<(HttpRequestId, HttpFuture)>,
    timer: Option<Pin<Box<dyn AsyncTimer>>>,
    armed: Option<Instant>,
    /// Events waiting for room in the inbox.
    pending: VecDeque<P::Event>,
    stopping: bool,
}

impl<P, R, K> Driver<P, R, K>
where
    P: Core,
    P::Event: Send + 'static,
    R: Route<P>,
    K: Clone + Send + 'static,
{
    /// A driver for `core`, registered with `inbox` as a running source.
    pub(crate) fn new(
        core: P,
        router: R,
        slot: Arc<Slot<P, R>>,
        shared: Arc<Inner>,
        inbox: Arc<Inbox<K, P::Event>>,
        key: K,
    ) -> Self {
        inbox.source_started();
        let source: Arc<dyn Source> = slot.clone();
        Driver {
            core,
            router,
            slot,
            source,
            shared,
            inbox,
            key,
            socket: None,
            opening: None,
            outbound: VecDeque::new(),
            flushing: false,
            http: Vec::new(),
            timer: None,
            armed: None,
            pending: VecDeque::new(),
            stopping: false,
        }
    }

    /// One round: every input that is ready, then the drain; `true` when anything happened.
    fn round(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        let now = Instant::now();
        for command in self.slot.take_commands() {
            command(&mut self.core, &mut self.router, now);
            progress = true;
        }
        if self.slot.stop.load(Ordering::Acquire) && !self.stopping {
            self.stopping = true;
            self.core.stop(now);
            self.http.clear();
            progress = true;
        }
        if self.router.poll_answer(&mut self.core, cx) {
            progress = true;
        }
        if let Some((id, connect)) = &mut self.opening {
            if let Poll::Ready(result) = connect.as_mut().poll(cx) {
                let socket = *id;
                self.opening = None;
                let input = match result {
                    Ok(ws) => {
                        self.socket = Some((socket, ws));
                        TransportInput::SocketOpened { socket }
                    }
                    Err(reason) => TransportInput::SocketClosed { socket, reason },
                };
                self.core.handle_input(Instant::now(), input);
                progress = true;
            }
        }
        let mut i = 0;
        while i < self.http.len() {
            if let Poll::Ready(result) = self.http[i].1.as_mut().poll(cx) {
                let (id, _) = self.http.swap_remove(i);
                let input = match result {
                    Ok((status, body)) => TransportInput::HttpResponse { id, status, body },
                    Err(error) => TransportInput::HttpFailed {
                        id,
                        detail: error.to_string(),
                    },
                };
                self.core.handle_input(Instant::now(), input);
                progress = true;
            } else {
                i += 1;
            }
        }
        if self.pending.is_empty() {
            if let Some((_, ws)) = &mut self.socket {
                if let Poll::Ready(message) = ws.poll_next_unpin(cx) {
                    self.on_message(message);
                    progress = true;
                }
            }
        }
        if self
            .core
            .poll_timeout()
            .is_some_and(|due| due <= Instant::now())
        {
            self.core.handle_timeout(Instant::now());
            progress = true;
        }
        progress |= self.drain();
        self.deliver();
        progress |= self.flush(cx);
        progress
    }

    /// Carries out every output the core has; `true` when there was one.
    fn drain(&mut self) -> bool {
        let mut any = false;
        while let Some(output) = self.core.poll_output() {
            any = true;
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
                    self.close_current();
                    let shared = Arc::clone(&self.shared);
                    self.opening = Some((socket, Box::pin(connect::open(shared, url, headers))));
                }
                Output::SendFrame { socket, text } => {
                    if self.socket.as_ref().is_some_and(|(id, _)| *id == socket) {
                        self.outbound.push_back(Message::text(text));
                    }
                }
                Output::SendPing { socket } => {
                    if self.socket.as_ref().is_some_and(|(id, _)| *id == socket) {
                        self.outbound.push_back(Message::Ping(Vec::new().into()));
                    }
                }
                Output::CloseSocket { socket } => {
                    if self.socket.as_ref().is_some_and(|(id, _)| *id == socket)
                        || self.opening.as_ref().is_some_and(|(id, _)| *id == socket)
                    {
                        self.close_current();
                    }
                }
                Output::Http { id, request } => {
                    let bound = self
                        .core
                        .http_bound()
                        .map_or(self.shared.config.http_timeout, |b| {
                            b.min(self.shared.config.http_timeout)
                        });
                    let deadline = Instant::now() + bound;
                    let client = self.shared.http.clone();
                    self.http.push((
                        id,
                        Box::pin(async move { client.execute_until(&request, deadline).await }),
                    ));
                }
            }
        }
        any
    }

    /// Hands waiting events to the inbox while this source has room.
    fn deliver(&mut self) {
        while let Some(event) = self.pending.pop_front() {
            if let Err(event) = self.inbox.push(self.key.clone(), event, &self.source) {
                self.pending.push_front(event);
                return;
            }
        }
    }

    /// Writes queued frames; `true` when the socket was lost (the core was told).
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((_, ws)) = &mut self.socket else {
            self.outbound.clear();
            return false;
        };
        let mut failure = None;
        while !self.outbound.is_empty() {
            match ws.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(message) = self.outbound.pop_front() {
                        if let Err(e) = ws.start_send_unpin(message) {
                            failure = Some(e);
                            break;
                        }
                        self.flushing = true;
                    }
                }
                Poll::Ready(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Poll::Pending => break,
            }
        }
        if failure.is_none() && self.flushing {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.flushing = false,
                Poll::Ready(Err(e)) => failure = Some(e),
                Poll::Pending => {}
            }
        }
        match failure {
            Some(e) => {
                self.lose_socket(CloseReason::TransportError {
                    detail: e.to_string(),
                });
                true
            }
            None => false,
        }
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
        self.outbound.clear();
        self.flushing = false;
        if let Some((socket, _)) = self.socket.take() {
            self.core.handle_input(
                Instant::now(),
                TransportInput::SocketClosed { socket, reason },
            );
        }
    }

    /// Closes the open socket (a normal close frame, written in the background within a
    /// short bound) and abandons one being opened.
    fn close_current(&mut self) {
        self.opening = None;
        self.outbound.clear();
        self.flushing = false;
        if let Some((_, ws)) = self.socket.take() {
            let runtime = Arc::clone(&self.shared.runtime);
            self.shared
                .runtime
                .spawn(Box::pin(async move { shut(runtime, ws).await }));
        }
    }

    /// Arms the timer for the core's next deadline; `true` when it is already due.
    fn arm(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.core.poll_timeout() else {
            self.armed = None;
            return false;
        };
        if deadline <= Instant::now() {
            return true;
        }
        let timer = match &mut self.timer {
            Some(timer) => {
                if self.armed != Some(deadline) {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self.timer.insert(self.shared.runtime.timer(deadline)),
        };
        self.armed = Some(deadline);
        timer.as_mut().poll(cx).is_ready()
    }

    /// Frees the room of queues that are empty now: an idle driver holds no spare capacity
    /// (thousands of idle drivers would otherwise keep the high-water mark of each).
    fn release_idle(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = VecDeque::new();
        }
        if self.outbound.is_empty() && self.outbound.capacity() > 0 {
            self.outbound = VecDeque::new();
        }
        if self.http.is_empty() && self.http.capacity() > 0 {
            self.http = Vec::new();
        }
    }

    fn finished(&self) -> bool {
        self.core.is_stopped() && self.pending.is_empty()
    }
}

impl<P, R, K> Future for Driver<P, R, K>
where
    P: Core + Unpin,
    P::Event: Send + Unpin + 'static,
    R: Route<P> + Unpin,
    K: Clone + Send + Unpin + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.slot.waker.register(cx.waker());
        let mut rounds = 0;
        loop {
            while this.round(cx) {
                rounds += 1;
                if rounds >= ROUNDS_PER_POLL {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            if this.finished() {
                this.close_current();
                this.http.clear();
                if this.slot.end() {
                    this.inbox.source_ended();
                }
                return Poll::Ready(());
            }
            if !this.arm(cx) {
                this.release_idle();
                return Poll::Pending;
            }
        }
    }
}

impl<P: Core, R, K> Drop for Driver<P, R, K> {
    fn drop(&mut self) {
        if self.slot.end() {
            // Dropped before it finished (the runtime shut down): the stream must still end.
            self.inbox.source_ended();
        }
    }
}

/// Writes a normal close frame (1000) within a short bound, then drops the stream.
async fn shut(runtime: Arc<dyn runtime::Runtime>, mut ws: Ws) {
    let close = ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    let _ = runtime::until(&runtime, Instant::now() + CLOSE_WRITE_TIMEOUT, close).await;
}
