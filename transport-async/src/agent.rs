//! [`AsyncAgent`]: an [`AgentProtocol`] driven by its own tokio task, with async calls that
//! resolve with the request's outcome. Every outcome, timeout included, is decided by the
//! core; the core crate's [`Outcomes`] routes it to the caller waiting for it.

use std::time::Instant;

use glance_presence_blocking::{
    entropy_seed, unix_now, AgentError, TransportConfig, TransportError,
};
use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, AgentProtocol, CommandError, Delivery, Outcome, Outcomes,
    RequestFailure, RequestId, RequestValue, Routed, VisitorSnapshot, VisitorStatus,
};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::driver::{Handle, Route};

/// The callers waiting for their request's outcome (lives in the task).
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    outcomes: Outcomes<oneshot::Sender<Outcome>>,
}

impl Route<AgentEvent> for Waiters {
    fn route(&mut self, event: AgentEvent) -> Option<AgentEvent> {
        match self.outcomes.route(event) {
            Routed::Claimed {
                waiter,
                id,
                request,
                result,
            } => match waiter.send(result) {
                Ok(()) => None,
                // The caller dropped its future: the outcome goes to `next_event`.
                Err(result) => Some(AgentEvent::RequestOutcome {
                    id,
                    request,
                    result,
                }),
            },
            Routed::Event(event) => Some(event),
        }
    }
}

/// A Glance Presence agent on a tokio task of its own.
///
/// All methods take `&self` except [`AsyncAgent::next_event`] and
/// [`AsyncAgent::disconnect`], so requests can run concurrently (e.g. with `tokio::join!`)
/// while one place reads events.
///
/// # Events and request outcomes
///
/// The core reports every request's result as an [`AgentEvent::RequestOutcome`]. When the
/// caller of [`lookup`](AsyncAgent::lookup) (or `query`, `find`, `signal`, `invoke`) is still
/// waiting, the outcome goes **to that caller only**, as with the blocking agent. When the
/// caller dropped its future, the outcome is delivered to [`AsyncAgent::next_event`] instead,
/// so nothing is lost.
///
/// # Backpressure
///
/// Events wait in a bounded channel ([`crate::EVENT_BUFFER`]). When the application does
/// not read them, the task stops reading the socket once the channel is full (the service
/// sees TCP backpressure); the core's own timers keep going (keepalives, request timeouts),
/// commands still run and requests still resolve, because their outcomes do not go through
/// the channel.
///
/// ```no_run
/// use glance_presence_async::{AsyncAgent, TransportConfig};
/// use glance_presence_protocol::agent::AgentConfig;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = AgentConfig::builder()
///     .group_id(12345)
///     .visitor_id("v1")
///     .credentials("agent1", std::env::var("GLANCE_API_KEY")?)
///     .build()?;
/// let mut agent = AsyncAgent::start(config, TransportConfig::default())?;
/// println!("{:?}", agent.lookup().await?);
/// agent.connect().await?;
/// while let Some(event) = agent.next_event().await {
///     println!("{}", serde_json::to_string(&event)?);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncAgent {
    handle: Handle<AgentProtocol, Waiters>,
}

fn task_ended<T>(_: T) -> AgentError {
    AgentError::Command(CommandError::Stopped)
}

impl AsyncAgent {
    /// An agent for one visitor, on a new task of the current tokio runtime. Nothing is sent
    /// until a command asks for it. The task lives until the agent is dropped.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (as `tokio::spawn`).
    pub fn start(config: AgentConfig, transport: TransportConfig) -> Result<Self, TransportError> {
        let core = AgentProtocol::new(
            config.with_entropy(entropy_seed()),
            Instant::now(),
            unix_now(),
        );
        Ok(AsyncAgent {
            handle: Handle::spawn(core, Waiters::default(), transport)?,
        })
    }

    /// Starts watching the visitor: authorize if needed, find the server, open the socket.
    /// Returns once the core took the command; progress arrives as events.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes may or may not have started the connection
    /// (it has if the command was queued); calling it again is harmless.
    pub async fn connect(&self) -> Result<(), AgentError> {
        let result = self
            .handle
            .call(|core, _, now| core.connect(now))
            .await
            .map_err(task_ended)?;
        Ok(result?)
    }

    /// The next event; `None` once the agent has stopped and its last event
    /// ([`AgentEvent::Stopped`]) was taken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next_event(&mut self) -> Option<AgentEvent> {
        self.handle.next_event().await
    }

    /// Looks the visitor up: `None` when the visitor is absent.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the request running in the core if it was already queued;
    /// its outcome then goes to [`AsyncAgent::next_event`]. The agent is unaffected.
    pub async fn lookup(&self) -> Result<Option<VisitorSnapshot>, AgentError> {
        match self.request(|core, now| core.lookup(now)).await? {
            RequestValue::Lookup { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Queries the visitor's current state: `None` when the visitor is absent.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncAgent::lookup`].
    pub async fn query(&self) -> Result<Option<VisitorStatus>, AgentError> {
        match self.request(|core, now| core.query(now)).await? {
            RequestValue::Query { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Finds the server the visitor is connected to (`findvisitor`): whether it is there,
    /// and the direct server named.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncAgent::lookup`].
    pub async fn find(&self) -> Result<(bool, Option<String>), AgentError> {
        match self.request(|core, now| core.find(now)).await? {
            RequestValue::Find {
                found,
                direct_server,
            } => Ok((found, direct_server)),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Sends the visitor a signal (any JSON value) and waits for the service's answer.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncAgent::lookup`]: a signal already queued is still sent.
    pub async fn signal(&self, data: Value) -> Result<Delivery, AgentError> {
        let value = self
            .request(move |core, now| core.signal(now, data))
            .await?;
        delivery(value)
    }

    /// Asks the visitor's page to run `func` (in `GLANCE.` or `GLANCE_COBROWSE.Custom.`) with
    /// `args`, and waits for the service's answer. Any other `func` is refused before
    /// anything is sent.
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncAgent::lookup`]: an invoke already queued is still sent.
    pub async fn invoke(&self, func: &str, args: Value) -> Result<Delivery, AgentError> {
        let func = func.to_owned();
        let value = self
            .request(move |core, now| core.invoke(now, func, args))
            .await?;
        delivery(value)
    }

    /// Stops: pending requests fail as cancelled, the socket closes with a normal close.
    /// Returns once the task has emitted [`AgentEvent::Stopped`]; the events up to it stay
    /// available to [`AsyncAgent::next_event`], which then returns `None`.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the stop under way (it happens if the command was
    /// queued); events it had taken off the channel are kept for `next_event`.
    pub async fn disconnect(&mut self) {
        self.handle.stop().await;
    }

    /// Runs a request command on the task, registers the caller as the waiter for its
    /// outcome, and waits for it. The core resolves every request exactly once (its request
    /// timeout included), so this returns.
    async fn request(
        &self,
        command: impl FnOnce(&mut AgentProtocol, Instant) -> Result<RequestId, CommandError>
            + Send
            + 'static,
    ) -> Result<RequestValue, AgentError> {
        let waiting = self
            .handle
            .call(move |core, waiters: &mut Waiters, now| {
                let id = command(core, now)?;
                let (tx, rx) = oneshot::channel();
                waiters.outcomes.wait(id, tx);
                Ok::<_, CommandError>(rx)
            })
            .await
            .map_err(task_ended)??;
        match waiting.await {
            Ok(outcome) => Ok(outcome?),
            // The task ended without an outcome.
            Err(_) => Err(AgentError::Failed(RequestFailure::Cancelled)),
        }
    }
}

fn delivery(value: RequestValue) -> Result<Delivery, AgentError> {
    match value {
        RequestValue::Sent(delivery) => Ok(delivery),
        other => Err(AgentError::Unexpected(Box::new(other))),
    }
}
