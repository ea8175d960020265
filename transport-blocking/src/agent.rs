//! [`BlockingAgent`]: an [`AgentProtocol`] driven by the blocking transport, with calls that
//! block until their outcome. Every outcome, timeout included, is decided by the core; this
//! type registers the caller with the core crate's [`Outcomes`] and drives the core until
//! its outcome is routed to it.

use std::time::{Duration, Instant};

use std::collections::HashMap;

use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, AgentProtocol, CommandError, Delivery, Outcome, Outcomes,
    RequestFailure, RequestId, RequestValue, Routed, VisitorSnapshot, VisitorState,
};
use glance_presence_protocol::AuthToken;
use serde_json::Value;

use glance_presence_transport::{
    entropy_seed, unix_now, AgentError, TransportConfig, TransportError,
};

use crate::driver::{Driver, Route, Turn};

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
#[derive(Default)]
struct Waiting {
    outcomes: Outcomes<()>,
    ready: HashMap<RequestId, Outcome>,
    tokens: Option<TokenProvider>,
    token_wanted: bool,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiting")
            .field("outcomes", &self.outcomes)
            .field("ready", &self.ready.len())
            .field("token_provider", &self.tokens.is_some())
            .finish()
    }
}

impl Route<AgentProtocol> for Waiting {
    fn route(&mut self, event: AgentEvent) -> Option<AgentEvent> {
        if matches!(event, AgentEvent::TokenNeeded) && self.tokens.is_some() {
            self.token_wanted = true;
            return None;
        }
        match self.outcomes.route(event) {
            Routed::Claimed { id, result, .. } => {
                self.ready.insert(id, result);
                None
            }
            Routed::Event(event) => Some(event),
        }
    }

    fn answer(&mut self, core: &mut AgentProtocol, _now: Instant) -> bool {
        if !std::mem::take(&mut self.token_wanted) {
            return false;
        }
        let Some(provider) = self.tokens.as_mut() else {
            return false;
        };
        let token = provider().map_err(|e| e.to_string());
        // The time after the application's callback, which may have taken a while.
        let _ = core.provide_token(Instant::now(), token);
        true
    }
}

/// The application's token callback for token-provider configurations
/// (`AgentConfigBuilder::token_provider`): called on the driving thread each time the core
/// asks for a token (before the first connect, before the current one expires, after the
/// service refused one), it returns a fresh token or why there is none (retried after the
/// core's backoff). Keep it bounded: the agent waits for it, and the core gives up on an
/// answer after its request timeout.
pub type TokenProvider = Box<dyn FnMut() -> Result<AuthToken, BoxError> + Send>;

/// Any error the application's token callback returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl BlockingAgent {
    /// An agent for one visitor. Nothing is sent until a command asks for it.
    pub fn new(config: AgentConfig, transport: TransportConfig) -> Result<Self, TransportError> {
        let core = AgentProtocol::new(
            config.with_entropy(entropy_seed()),
            Instant::now(),
            unix_now(),
        );
        let request_timeout = core.config().timers().request_timeout;
        let mut driver = Driver::with_router(core, Waiting::default(), transport)?;
        driver.bound_http_by(request_timeout);
        Ok(BlockingAgent { driver })
    }

    /// An agent whose tokens come from `provider` (a configuration built with
    /// `AgentConfigBuilder::token_provider`): each [`AgentEvent::TokenNeeded`] is answered by
    /// calling it, and does not reach the application.
    ///
    /// ```no_run
    /// use glance_presence_blocking::{BlockingAgent, TransportConfig};
    /// use glance_presence_protocol::agent::AgentConfig;
    /// use glance_presence_protocol::AuthToken;
    ///
    /// let config = AgentConfig::builder()
    ///     .group_id(12345)
    ///     .visitor_id("v1")
    ///     .token_provider()
    ///     .build()?;
    /// let provider = || Ok(AuthToken::new("a token from your own auth service"));
    /// let mut agent = BlockingAgent::with_token_provider(config, TransportConfig::default(), provider)?;
    /// agent.connect()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_token_provider(
        config: AgentConfig,
        transport: TransportConfig,
        provider: impl FnMut() -> Result<AuthToken, BoxError> + Send + 'static,
    ) -> Result<Self, TransportError> {
        let mut agent = BlockingAgent::new(config, transport)?;
        agent.driver.router().tokens = Some(Box::new(provider));
        Ok(agent)
    }

    /// Answers [`AgentEvent::TokenNeeded`] by hand (agents without a provider callback):
    /// the token, or why there is none.
    pub fn provide_token(&mut self, token: Result<AuthToken, BoxError>) -> Result<(), AgentError> {
        let token = token.map_err(|e| e.to_string());
        Ok(self
            .driver
            .command(|core, now| core.provide_token(now, token))?)
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
    pub fn query(&mut self) -> Result<Option<VisitorState>, AgentError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_agents_of_one_visitor_draw_different_jitter_unless_a_seed_is_chosen() {
        let builder = || {
            AgentConfig::builder()
                .group_id(12345)
                .visitor_id("v1")
                .token("t")
                .presence_server("http://127.0.0.1:9")
        };
        let agent = |config| BlockingAgent::new(config, TransportConfig::default()).unwrap();
        let default_seed = builder().build().unwrap().rng_seed();
        let a = agent(builder().build().unwrap());
        let b = agent(builder().build().unwrap());
        let (a, b) = (a.core().config().rng_seed(), b.core().config().rng_seed());
        assert_ne!(a, b);
        assert_ne!(a, default_seed);
        let chosen = agent(builder().rng_seed(42).build().unwrap());
        assert_eq!(chosen.core().config().rng_seed(), 42);
    }
}
