//! [`AsyncAgent`]: one [`AgentProtocol`] on a driver task, with a cloneable [`AgentHandle`]
//! whose async calls resolve with the request's outcome, and its events as a `Stream`
//! ([`AgentEvents`]). Every outcome, timeout included, is decided by the core; the core
//! crate's [`Outcomes`] routes it to the caller waiting for it. The fleet's visitors are the
//! same driver and router, keyed by visitor.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_channel::oneshot;
use futures_core::Stream;
use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, AgentProtocol, CommandError, ConnectionState, Delivery, Outcome,
    Outcomes, RequestFailure, RequestId, RequestValue, Routed, VisitorPresence, VisitorSnapshot,
    VisitorState,
};
use glance_presence_protocol::AuthToken;
use glance_presence_transport::{entropy_seed, unix_now, AgentError, TransportError};
use serde_json::Value;

use crate::driver::{Driver, Route, Slot};
use crate::inbox::Inbox;
use crate::shared::Transport;
use crate::tokens::{BoxError, TokenClient, TokenProvider, Tokens};

/// Events one agent may have waiting for the application (see the inbox's lag policy: past
/// it the agent stops reading its socket until the application catches up).
pub const EVENT_BUFFER: usize = 64;

/// The callers waiting for their request's outcome, and the agent's token requests (lives in
/// the driver).
pub(crate) struct Waiters {
    outcomes: Outcomes<oneshot::Sender<Outcome>>,
    tokens: Option<TokenClient>,
}

impl Waiters {
    pub(crate) fn new(tokens: Option<Arc<Tokens>>) -> Self {
        Waiters {
            outcomes: Outcomes::default(),
            tokens: tokens.map(TokenClient::new),
        }
    }
}

impl Route<AgentProtocol> for Waiters {
    fn route(&mut self, event: AgentEvent) -> Option<AgentEvent> {
        if matches!(event, AgentEvent::TokenNeeded) {
            if let Some(tokens) = &mut self.tokens {
                tokens.want();
                return None;
            }
        }
        match self.outcomes.route(event) {
            Routed::Claimed {
                waiter,
                id,
                request,
                result,
            } => match waiter.send(result) {
                Ok(()) => None,
                // The caller dropped its future: the outcome goes to the event stream.
                Err(result) => Some(AgentEvent::RequestOutcome {
                    id,
                    request,
                    result,
                }),
            },
            Routed::Event(event) => Some(event),
        }
    }

    fn poll_answer(&mut self, core: &mut AgentProtocol, cx: &mut Context<'_>) -> bool {
        match &mut self.tokens {
            Some(tokens) => tokens.poll(core, cx),
            None => false,
        }
    }
}

pub(crate) type AgentSlot = Slot<AgentProtocol, Waiters>;

/// Starts the driver of one agent core on the transport's runtime.
pub(crate) fn spawn_agent<K: Clone + Send + Unpin + 'static>(
    transport: &Transport,
    config: AgentConfig,
    tokens: Option<Arc<Tokens>>,
    inbox: Arc<Inbox<K, AgentEvent>>,
    key: K,
) -> Arc<AgentSlot> {
    let core = AgentProtocol::new(
        config.with_entropy(entropy_seed()),
        Instant::now(),
        unix_now(),
    );
    let slot = Arc::new(Slot::new());
    let driver = Driver::new(
        core,
        Waiters::new(tokens),
        Arc::clone(&slot),
        Arc::clone(&transport.inner),
        inbox,
        key,
    );
    transport.inner.runtime.spawn(Box::pin(driver));
    slot
}

/// Runs `f` in the driver and returns its result; `Err` when the driver has ended.
pub(crate) async fn call<T: Send + 'static>(
    slot: &AgentSlot,
    f: impl FnOnce(&mut AgentProtocol, &mut Waiters, Instant) -> T + Send + 'static,
) -> Result<T, AgentError> {
    let (tx, rx) = oneshot::channel();
    let sent = slot.send(Box::new(move |core, waiters, now| {
        let _ = tx.send(f(core, waiters, now));
    }));
    if !sent {
        return Err(AgentError::Command(CommandError::Stopped));
    }
    rx.await
        .map_err(|_| AgentError::Command(CommandError::Stopped))
}

/// Runs a request command in the driver, registers the caller as the waiter for its outcome,
/// and waits for it. The core resolves every request exactly once (its request timeout
/// included), so this returns.
pub(crate) async fn request(
    slot: &AgentSlot,
    command: impl FnOnce(&mut AgentProtocol, Instant) -> Result<RequestId, CommandError>
        + Send
        + 'static,
) -> Result<RequestValue, AgentError> {
    let waiting = call(slot, move |core, waiters, now| {
        let id = command(core, now)?;
        let (tx, rx) = oneshot::channel();
        waiters.outcomes.wait(id, tx);
        Ok::<_, CommandError>(rx)
    })
    .await??;
    match waiting.await {
        Ok(outcome) => Ok(outcome?),
        // The driver ended without an outcome.
        Err(_) => Err(AgentError::Failed(RequestFailure::Cancelled)),
    }
}

/// The commands of one agent, shared by [`AgentHandle`] and the fleet's handle.
pub(crate) mod ops {
    use super::*;

    pub(crate) async fn lookup(slot: &AgentSlot) -> Result<Option<VisitorSnapshot>, AgentError> {
        match request(slot, |core, now| core.lookup(now)).await? {
            RequestValue::Lookup { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    pub(crate) async fn query(slot: &AgentSlot) -> Result<Option<VisitorState>, AgentError> {
        match request(slot, |core, now| core.query(now)).await? {
            RequestValue::Query { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    pub(crate) async fn find(slot: &AgentSlot) -> Result<(bool, Option<String>), AgentError> {
        match request(slot, |core, now| core.find(now)).await? {
            RequestValue::Find {
                found,
                direct_server,
            } => Ok((found, direct_server)),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    pub(crate) async fn signal(slot: &AgentSlot, data: Value) -> Result<Delivery, AgentError> {
        delivery(request(slot, move |core, now| core.signal(now, data)).await?)
    }

    pub(crate) async fn invoke(
        slot: &AgentSlot,
        func: &str,
        args: Value,
    ) -> Result<Delivery, AgentError> {
        let func = func.to_owned();
        delivery(request(slot, move |core, now| core.invoke(now, func, args)).await?)
    }

    pub(crate) async fn state(slot: &AgentSlot) -> Result<AgentState, AgentError> {
        call(slot, |core, _, _| AgentState {
            connection: core.connection_state(),
            presence: core.visitor_presence(),
        })
        .await
    }

    fn delivery(value: RequestValue) -> Result<Delivery, AgentError> {
        match value {
            RequestValue::Sent(delivery) => Ok(delivery),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }
}

/// An agent's connection and its visitor's presence, as its core sees them now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentState {
    /// The agent's own link.
    pub connection: ConnectionState,
    /// The visitor's presence (unknown while the agent is offline past the leave grace).
    pub presence: VisitorPresence,
}

/// Stops the driver once the last handle is gone.
struct StopOnDrop(Arc<AgentSlot>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// A cloneable handle to one agent: commands from any task while another reads the events.
/// The agent stops once its last handle (the [`AsyncAgent`] included) is dropped.
#[derive(Clone)]
pub struct AgentHandle {
    guard: Arc<StopOnDrop>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("running", &!self.slot().ended())
            .finish()
    }
}

impl AgentHandle {
    fn slot(&self) -> &AgentSlot {
        &self.guard.0
    }

    /// Starts watching the visitor: authorize if needed, find the server, open the socket.
    /// Returns once the core took the command; progress arrives as events.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may or may not have started the connection (it has if the
    /// command was queued); calling it again is harmless.
    pub async fn connect(&self) -> Result<(), AgentError> {
        Ok(call(self.slot(), |core, _, now| core.connect(now)).await??)
    }

    /// Looks the visitor up: `None` when the visitor is absent.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request running in the core if it was already queued;
    /// its outcome then goes to the event stream. The agent is unaffected.
    pub async fn lookup(&self) -> Result<Option<VisitorSnapshot>, AgentError> {
        ops::lookup(self.slot()).await
    }

    /// Queries the visitor's current state: `None` when the visitor is absent.
    ///
    /// # Cancel safety
    ///
    /// As [`AgentHandle::lookup`].
    pub async fn query(&self) -> Result<Option<VisitorState>, AgentError> {
        ops::query(self.slot()).await
    }

    /// Finds the server the visitor is connected to (`findvisitor`): whether it is there,
    /// and the direct server named.
    ///
    /// # Cancel safety
    ///
    /// As [`AgentHandle::lookup`].
    pub async fn find(&self) -> Result<(bool, Option<String>), AgentError> {
        ops::find(self.slot()).await
    }

    /// Sends the visitor a signal (any JSON value) and waits for the service's answer.
    ///
    /// # Cancel safety
    ///
    /// As [`AgentHandle::lookup`]: a signal already queued is still sent.
    pub async fn signal(&self, data: Value) -> Result<Delivery, AgentError> {
        ops::signal(self.slot(), data).await
    }

    /// Asks the visitor's page to run `func` (in `GLANCE.` or `GLANCE_COBROWSE.Custom.`) with
    /// `args`, and waits for the service's answer. Any other `func` is refused before
    /// anything is sent.
    ///
    /// # Cancel safety
    ///
    /// As [`AgentHandle::lookup`]: an invoke already queued is still sent.
    pub async fn invoke(&self, func: &str, args: Value) -> Result<Delivery, AgentError> {
        ops::invoke(self.slot(), func, args).await
    }

    /// The agent's connection and its visitor's presence now.
    pub async fn state(&self) -> Result<AgentState, AgentError> {
        ops::state(self.slot()).await
    }

    /// Answers [`AgentEvent::TokenNeeded`] by hand (agents started without a token
    /// callback): the token, or why there is none.
    pub async fn provide_token(
        &self,
        token: Result<AuthToken, BoxError>,
    ) -> Result<(), AgentError> {
        let token = token.map_err(|e| e.to_string());
        Ok(call(self.slot(), move |core, _, now| {
            core.provide_token(now, token)
        })
        .await??)
    }

    /// Runs any getter or command of the core in the driver and returns its result.
    pub async fn with_core<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AgentProtocol, Instant) -> T + Send + 'static,
    ) -> Result<T, AgentError> {
        call(self.slot(), move |core, _, now| f(core, now)).await
    }

    /// Stops: pending requests fail as cancelled, the socket closes with a normal close; the
    /// event stream ends after [`AgentEvent::Stopped`].
    pub async fn disconnect(&self) {
        let _ = call(self.slot(), |core, _, now| core.disconnect(now)).await;
    }
}

/// The events of one agent, as a `Stream` that ends after [`AgentEvent::Stopped`].
///
/// Cancel-safe: dropping a `next()` future loses no event. Dropping the stream discards the
/// agent's later events (the agent keeps running while a handle lives).
pub struct AgentEvents {
    inbox: Arc<Inbox<(), AgentEvent>>,
}

impl std::fmt::Debug for AgentEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEvents")
            .field("waiting", &self.inbox.len())
            .finish()
    }
}

impl Stream for AgentEvents {
    type Item = AgentEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AgentEvent>> {
        self.inbox
            .poll_next(cx)
            .map(|next| next.map(|((), event)| event))
    }
}

impl Drop for AgentEvents {
    fn drop(&mut self) {
        self.inbox.reader_gone();
    }
}

/// A Glance Presence agent on an async runtime: a handle ([`AsyncAgent::handle`], cloneable)
/// and its events ([`AsyncAgent::next_event`], or [`AsyncAgent::events`] as a `Stream`).
///
/// ```no_run
/// use glance_presence_async::{AsyncAgent, TransportConfig};
/// use glance_presence_protocol::agent::AgentConfig;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = AgentConfig::builder()
///     .group_id(12345)
///     .visitor_id("v1")
///     .token("…")
///     .build()?;
/// let mut agent = AsyncAgent::start(config, TransportConfig::default())?;
/// agent.connect().await?;
/// while let Some(event) = agent.next_event().await {
///     println!("{}", serde_json::to_string(&event)?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncAgent {
    handle: AgentHandle,
    events: AgentEvents,
}

impl AsyncAgent {
    /// An agent for one visitor on the default runtime, with resources of its own. Nothing
    /// is sent until a command asks for it. To share one HTTP client and TLS configuration
    /// among many agents, build a [`Transport`] once and use [`AsyncAgent::start_with`].
    ///
    /// # Panics
    ///
    /// With the `tokio` feature, outside a tokio runtime.
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub fn start(
        config: AgentConfig,
        transport: glance_presence_transport::TransportConfig,
    ) -> Result<Self, TransportError> {
        Ok(AsyncAgent::start_with(
            &Transport::with_default_runtime(transport)?,
            config,
        ))
    }

    /// An agent on shared resources.
    pub fn start_with(transport: &Transport, config: AgentConfig) -> Self {
        AsyncAgent::spawn(transport, config, None)
    }

    /// An agent whose tokens come from `provider` (a configuration built with
    /// `AgentConfigBuilder::token_provider`): each [`AgentEvent::TokenNeeded`] is answered by
    /// it and does not reach the application.
    pub fn start_with_tokens(
        transport: &Transport,
        config: AgentConfig,
        provider: TokenProvider,
    ) -> Self {
        AsyncAgent::spawn(transport, config, Some(Tokens::new(provider)))
    }

    fn spawn(transport: &Transport, config: AgentConfig, tokens: Option<Arc<Tokens>>) -> Self {
        let inbox = Arc::new(Inbox::new(EVENT_BUFFER));
        let slot = spawn_agent(transport, config, tokens, Arc::clone(&inbox), ());
        inbox.close();
        AsyncAgent {
            handle: AgentHandle {
                guard: Arc::new(StopOnDrop(slot)),
            },
            events: AgentEvents { inbox },
        }
    }

    /// A cloneable handle for other tasks.
    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// The events as a `Stream`.
    pub fn events(&mut self) -> &mut AgentEvents {
        &mut self.events
    }

    /// The handle and the event stream, apart.
    pub fn into_parts(self) -> (AgentHandle, AgentEvents) {
        (self.handle, self.events)
    }

    /// The next event; `None` once the agent has stopped and its last event
    /// ([`AgentEvent::Stopped`]) was taken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next_event(&mut self) -> Option<AgentEvent> {
        std::future::poll_fn(|cx| Pin::new(&mut self.events).poll_next(cx)).await
    }

    /// See [`AgentHandle::connect`].
    pub async fn connect(&self) -> Result<(), AgentError> {
        self.handle.connect().await
    }

    /// See [`AgentHandle::lookup`].
    pub async fn lookup(&self) -> Result<Option<VisitorSnapshot>, AgentError> {
        self.handle.lookup().await
    }

    /// See [`AgentHandle::query`].
    pub async fn query(&self) -> Result<Option<VisitorState>, AgentError> {
        self.handle.query().await
    }

    /// See [`AgentHandle::find`].
    pub async fn find(&self) -> Result<(bool, Option<String>), AgentError> {
        self.handle.find().await
    }

    /// See [`AgentHandle::signal`].
    pub async fn signal(&self, data: Value) -> Result<Delivery, AgentError> {
        self.handle.signal(data).await
    }

    /// See [`AgentHandle::invoke`].
    pub async fn invoke(&self, func: &str, args: Value) -> Result<Delivery, AgentError> {
        self.handle.invoke(func, args).await
    }

    /// See [`AgentHandle::state`].
    pub async fn state(&self) -> Result<AgentState, AgentError> {
        self.handle.state().await
    }

    /// Stops: pending requests fail as cancelled, the socket closes with a normal close.
    /// Returns once the command was taken; the events up to [`AgentEvent::Stopped`] stay
    /// available to [`AsyncAgent::next_event`], which then returns `None`.
    pub async fn disconnect(&mut self) {
        self.handle.disconnect().await;
    }
}
