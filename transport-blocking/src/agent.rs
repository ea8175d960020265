//! [`BlockingAgent`]: an [`AgentProtocol`] driven by the blocking transport, with calls that
//! block until their outcome. Every outcome, timeout included, is decided by the core; this
//! type registers the caller with the core crate's [`Outcomes`] and drives the core until
//! its outcome is routed to it.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, AgentProtocol, CommandError, Delivery, Outcome, Outcomes,
    RequestFailure, RequestId, RequestValue, Routed, VisitorSnapshot, VisitorStatus,
};
use serde_json::Value;

use crate::driver::{Driver, Route, TransportConfig, TransportError, Turn};
use crate::os::{entropy_seed, unix_now};

/// A blocking call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The core refused the command before sending anything (bad invoke func, queue full,
    /// stopped...).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The request was sent and failed (service refusal, timeout, connection...).
    #[error(transparent)]
    Failed(#[from] RequestFailure),
    /// The request resolved with a value of an unexpected kind (a bug in the core).
    #[error("unexpected outcome {0:?}")]
    Unexpected(Box<RequestValue>),
}

impl AgentError {
    /// Glance's reason string for a failed request (`"visitornotpresent"`, …), or `"usage"`
    /// for a command refused before anything was sent.
    pub fn reason(&self) -> &'static str {
        match self {
            AgentError::Command(_) => "usage",
            AgentError::Failed(failure) => failure.reason(),
            AgentError::Unexpected(_) => "error",
        }
    }
}

/// A Glance Presence agent over blocking sockets.
///
/// ```no_run
/// use glance_presence_blocking::{BlockingAgent, TransportConfig};
/// use glance_presence_protocol::agent::AgentConfig;
///
/// let config = AgentConfig::builder()
///     .group_id(12345)
///     .visitor_id("v1")
///     .token("…")
///     .build()?;
/// let mut agent = BlockingAgent::new(config, TransportConfig::default())?;
/// agent.connect()?;
/// while let Some(event) = agent.next_event(None) {
///     println!("{}", serde_json::to_string(&event)?);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BlockingAgent {
    driver: Driver<AgentProtocol, Waiting>,
}

/// The blocking calls' requests: registered before the core runs, outcomes kept until the
/// caller takes them.
#[derive(Debug, Default)]
struct Waiting {
    outcomes: Outcomes<()>,
    ready: HashMap<RequestId, Outcome>,
}

impl Route<AgentEvent> for Waiting {
    fn route(&mut self, event: AgentEvent) -> Option<AgentEvent> {
        match self.outcomes.route(event) {
            Routed::Claimed { id, result, .. } => {
                self.ready.insert(id, result);
                None
            }
            Routed::Event(event) => Some(event),
        }
    }
}

impl BlockingAgent {
    /// An agent for one visitor. Nothing is sent until a command asks for it.
    pub fn new(config: AgentConfig, transport: TransportConfig) -> Result<Self, TransportError> {
        let core = AgentProtocol::new(
            config.with_entropy(entropy_seed()),
            Instant::now(),
            unix_now(),
        );
        Ok(BlockingAgent {
            driver: Driver::with_router(core, Waiting::default(), transport)?,
        })
    }

    /// The core, for its getters (connection state, visitor presence, merged presence data).
    pub fn core(&self) -> &AgentProtocol {
        self.driver.core()
    }

    /// Starts watching the visitor: authorize if needed, find the server, open the socket.
    /// Returns at once; progress arrives as events.
    pub fn connect(&mut self) -> Result<(), AgentError> {
        Ok(self.driver.command(|core, now| core.connect(now))?)
    }

    /// The next event, waiting at most `timeout` (`None`: until one comes). `None` when the
    /// wait ended without one, or when the agent has stopped and every event was taken.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Option<AgentEvent> {
        self.driver.next_event(timeout)
    }

    /// A blocking iterator over events; it ends once the agent has stopped and its last event
    /// was taken.
    pub fn events(&mut self) -> Events<'_> {
        Events { agent: self }
    }

    /// Looks the visitor up: `None` when the visitor is absent.
    pub fn lookup(&mut self) -> Result<Option<VisitorSnapshot>, AgentError> {
        match self.request(|core, now| core.lookup(now))? {
            RequestValue::Lookup { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Queries the visitor's current state: `None` when the visitor is absent.
    pub fn query(&mut self) -> Result<Option<VisitorStatus>, AgentError> {
        match self.request(|core, now| core.query(now))? {
            RequestValue::Query { visitor } => Ok(visitor),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Finds the server the visitor is connected to (`findvisitor`): whether it is there,
    /// and the direct server named.
    pub fn find(&mut self) -> Result<(bool, Option<String>), AgentError> {
        match self.request(|core, now| core.find(now))? {
            RequestValue::Find {
                found,
                direct_server,
            } => Ok((found, direct_server)),
            other => Err(AgentError::Unexpected(Box::new(other))),
        }
    }

    /// Sends the visitor a signal (any JSON value) and waits for the service's answer.
    pub fn signal(&mut self, data: Value) -> Result<Delivery, AgentError> {
        delivery(self.request(|core, now| core.signal(now, data))?)
    }

    /// Asks the visitor's page to run `func` (in `GLANCE.` or `GLANCE_COBROWSE.Custom.`) with
    /// `args`, and waits for the service's answer.
    pub fn invoke(&mut self, func: &str, args: Value) -> Result<Delivery, AgentError> {
        delivery(self.request(|core, now| core.invoke(now, func, args))?)
    }

    /// Stops: pending requests fail as cancelled, the socket closes. Events up to the final
    /// `stopped` stay available to [`BlockingAgent::next_event`].
    pub fn disconnect(&mut self) {
        self.driver.command(|core, now| core.disconnect(now));
    }

    /// Runs a request command, registered as waiting for its outcome before the core runs
    /// on, and drives the core until the outcome is routed here. The core resolves every
    /// request exactly once (its request timeout included), so this returns.
    fn request(
        &mut self,
        command: impl FnOnce(&mut AgentProtocol, Instant) -> Result<RequestId, CommandError>,
    ) -> Result<RequestValue, AgentError> {
        let id = self.driver.command_routed(|core, waiting, now| {
            let id = command(core, now)?;
            waiting.outcomes.wait(id, ());
            Ok::<_, CommandError>(id)
        })?;
        loop {
            if let Some(outcome) = self.driver.router().ready.remove(&id) {
                return Ok(outcome?);
            }
            match self.driver.turn(None) {
                Turn::Progress | Turn::DeadlineReached => {}
                Turn::Idle => {
                    // Nothing can happen any more and no outcome came: the core had nothing
                    // left to wait for.
                    self.driver.router().outcomes.forget(id);
                    return Err(AgentError::Failed(RequestFailure::Cancelled));
                }
            }
        }
    }
}

fn delivery(value: RequestValue) -> Result<Delivery, AgentError> {
    match value {
        RequestValue::Sent(delivery) => Ok(delivery),
        other => Err(AgentError::Unexpected(Box::new(other))),
    }
}

/// Blocking iterator over an agent's events (see [`BlockingAgent::events`]).
#[derive(Debug)]
pub struct Events<'a> {
    agent: &'a mut BlockingAgent,
}

impl Iterator for Events<'_> {
    type Item = AgentEvent;

    fn next(&mut self) -> Option<AgentEvent> {
        self.agent.next_event(None)
    }
}
