//! [`Fleet`]: many watched visitors from one object. Each visitor is one agent core on one
//! driver task with one socket; all of them share the fleet's [`Transport`] (one HTTP client,
//! one TLS configuration, one bound on concurrent connects) and, with a token callback, one
//! authorization: when many agents need a token at once the callback runs once for all.
//!
//! Events of every visitor come out of one `Stream` ([`FleetEvents`]) keyed by visitor id,
//! in arrival order. Each visitor may have at most [`FleetBuilder::per_visitor_queue`] events
//! waiting (64 by default); a visitor at its bound stops reading its socket until the reader
//! takes one of its events (its timers and commands keep running; other visitors are not held
//! up; nothing is dropped). A [`FleetHandle`] (cloneable) adds and removes visitors, and
//! looks up, signals, invokes and reports the state of any watched visitor while another
//! task reads the events.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_core::Stream;
use glance_presence_protocol::agent::{
    AgentConfigBuilder, AgentEvent, ConfigError, Delivery, VisitorSnapshot, VisitorState,
};
use glance_presence_protocol::VisitorId;
use glance_presence_transport::{AgentError, TransportError};
use serde_json::Value;

use crate::agent::{ops, spawn_agent, AgentSlot, AgentState, EVENT_BUFFER};
use crate::inbox::Inbox;
use crate::shared::Transport;
use crate::tokens::{TokenProvider, Tokens};

/// A fleet call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The visitor is not watched by this fleet.
    #[error("visitor {0} is not watched")]
    NotWatched(String),
    /// The visitor is already watched.
    #[error("visitor {0} is already watched")]
    AlreadyWatched(String),
    /// The fleet has been closed.
    #[error("the fleet is closed")]
    Closed,
    /// The visitor's configuration is invalid (from the fleet's template and its id).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The agent of that visitor refused or failed the call.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// Builds a [`Fleet`].
pub struct FleetBuilder {
    template: AgentConfigBuilder,
    transport: Option<Transport>,
    tokens: Option<TokenProvider>,
    per_visitor_queue: usize,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("transport", &self.transport)
            .field("token_provider", &self.tokens.is_some())
            .field("per_visitor_queue", &self.per_visitor_queue)
            .finish()
    }
}

impl FleetBuilder {
    /// The shared resources the fleet's agents use (default: a new [`Transport`] on the
    /// default runtime with default settings).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// One token callback for the whole fleet: every agent is configured with
    /// `token_provider()`, and agents that need a token at the same time share one call.
    pub fn token_provider(mut self, provider: TokenProvider) -> Self {
        self.tokens = Some(provider);
        self
    }

    /// How many events one visitor may have waiting in the merged stream (default 64).
    pub fn per_visitor_queue(mut self, events: usize) -> Self {
        self.per_visitor_queue = events.max(1);
        self
    }

    /// The fleet, watching nobody yet.
    ///
    /// # Panics
    ///
    /// Without a transport given, with the `tokio` feature, outside a tokio runtime.
    pub fn build(self) -> Result<Fleet, TransportError> {
        let transport = match self.transport {
            Some(transport) => transport,
            #[cfg(any(feature = "tokio", feature = "smol"))]
            None => Transport::with_default_runtime(Default::default())?,
            #[cfg(not(any(feature = "tokio", feature = "smol")))]
            None => {
                return Err(TransportError::Start(
                    "no runtime feature is on: give the fleet a Transport".to_owned(),
                ))
            }
        };
        let template = match self.tokens.is_some() {
            true => self.template.token_provider(),
            false => self.template,
        };
        let inbox = Arc::new(Inbox::new(self.per_visitor_queue));
        let inner = Arc::new(FleetInner {
            transport,
            template,
            tokens: self.tokens.map(Tokens::new),
            inbox: Arc::clone(&inbox),
            visitors: Mutex::new(Some(HashMap::new())),
        });
        Ok(Fleet {
            handle: FleetHandle {
                guard: Arc::new(CloseOnDrop(inner)),
            },
            events: FleetEvents { inbox },
        })
    }
}

struct FleetInner {
    transport: Transport,
    template: AgentConfigBuilder,
    tokens: Option<Arc<Tokens>>,
    inbox: Arc<Inbox<VisitorId, AgentEvent>>,
    /// `None` once closed.
    visitors: Mutex<Option<HashMap<VisitorId, Arc<AgentSlot>>>>,
}

impl FleetInner {
    fn close(&self) {
        let visitors = match self.visitors.lock() {
            Ok(mut visitors) => visitors.take(),
            Err(_) => None,
        };
        for slot in visitors.into_iter().flat_map(HashMap::into_values) {
            slot.stop();
        }
        self.inbox.close();
    }
}

/// Closes the fleet once the last handle is gone.
struct CloseOnDrop(Arc<FleetInner>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Many watched visitors behind one object (see the module docs): a handle
/// ([`Fleet::handle`], cloneable) and the merged events ([`Fleet::events`]).
///
/// ```no_run
/// use futures_util::StreamExt;
/// use glance_presence_async::Fleet;
/// use glance_presence_protocol::agent::AgentConfig;
/// use glance_presence_protocol::AuthToken;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let template = AgentConfig::builder().group_id(12345);
/// let tokens = glance_presence_async::token_provider(|| async {
///     Ok(AuthToken::new("a token from your own auth service"))
/// });
/// let (fleet, mut events) = Fleet::builder(template).token_provider(tokens).build()?.into_parts();
/// for visitor in ["v1", "v2", "v3"] {
///     fleet.watch(visitor).await?;
/// }
/// while let Some((visitor, event)) = events.next().await {
///     println!("{visitor}: {}", serde_json::to_string(&event)?);
/// }
/// # Ok(()) }
/// ```
pub struct Fleet {
    handle: FleetHandle,
    events: FleetEvents,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("watched", &self.handle.len())
            .finish()
    }
}

impl Fleet {
    /// A fleet whose visitors' configurations start from `template` (group, servers, timers;
    /// the visitor id is set per visitor).
    pub fn builder(template: AgentConfigBuilder) -> FleetBuilder {
        FleetBuilder {
            template,
            transport: None,
            tokens: None,
            per_visitor_queue: EVENT_BUFFER,
        }
    }

    /// A cloneable handle.
    pub fn handle(&self) -> FleetHandle {
        self.handle.clone()
    }

    /// The merged events.
    pub fn events(&mut self) -> &mut FleetEvents {
        &mut self.events
    }

    /// The handle and the event stream, apart.
    pub fn into_parts(self) -> (FleetHandle, FleetEvents) {
        (self.handle, self.events)
    }
}

/// A cloneable handle to a [`Fleet`]. The fleet closes (every visitor stops, the event
/// stream ends after their last events) once its last handle is dropped, or on
/// [`FleetHandle::close`].
#[derive(Clone)]
pub struct FleetHandle {
    guard: Arc<CloseOnDrop>,
}

impl std::fmt::Debug for FleetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHandle")
            .field("watched", &self.len())
            .finish()
    }
}

impl FleetHandle {
    fn inner(&self) -> &FleetInner {
        &self.guard.0
    }

    fn slot(&self, visitor: &str) -> Result<Arc<AgentSlot>, FleetError> {
        let visitors = self
            .inner()
            .visitors
            .lock()
            .map_err(|_| FleetError::Closed)?;
        let visitors = visitors.as_ref().ok_or(FleetError::Closed)?;
        visitors
            .iter()
            .find(|(id, _)| id.as_str() == visitor)
            .map(|(_, slot)| Arc::clone(slot))
            .ok_or_else(|| FleetError::NotWatched(visitor.to_owned()))
    }

    /// Starts watching `visitor` (a visitor id, or `UNQ-…`): its agent connects at once;
    /// progress arrives as events keyed by its id.
    pub async fn watch(&self, visitor: &str) -> Result<VisitorId, FleetError> {
        let inner = self.inner();
        let config = inner.template.clone().visitor_id(visitor).build()?;
        let id = config.visitor().clone();
        let slot = {
            let mut visitors = inner.visitors.lock().map_err(|_| FleetError::Closed)?;
            let visitors = visitors.as_mut().ok_or(FleetError::Closed)?;
            if visitors.get(&id).is_some_and(|slot| !slot.ended()) {
                return Err(FleetError::AlreadyWatched(id.to_string()));
            }
            let slot = spawn_agent(
                &inner.transport,
                config,
                inner.tokens.clone(),
                Arc::clone(&inner.inbox),
                id.clone(),
            );
            visitors.insert(id.clone(), Arc::clone(&slot));
            slot
        };
        crate::agent::call(&slot, |core, _, now| core.connect(now))
            .await
            .map_err(FleetError::Agent)?
            .map_err(|e| FleetError::Agent(e.into()))?;
        Ok(id)
    }

    /// Stops watching `visitor`; its last events (up to `Stopped`) still come.
    pub fn unwatch(&self, visitor: &str) -> Result<(), FleetError> {
        let slot = {
            let mut visitors = self
                .inner()
                .visitors
                .lock()
                .map_err(|_| FleetError::Closed)?;
            let visitors = visitors.as_mut().ok_or(FleetError::Closed)?;
            let key = visitors
                .keys()
                .find(|id| id.as_str() == visitor)
                .cloned()
                .ok_or_else(|| FleetError::NotWatched(visitor.to_owned()))?;
            visitors.remove(&key)
        };
        if let Some(slot) = slot {
            slot.stop();
        }
        Ok(())
    }

    /// The watched visitors.
    pub fn watched(&self) -> Vec<VisitorId> {
        match self.inner().visitors.lock() {
            Ok(visitors) => visitors
                .as_ref()
                .map(|v| v.keys().cloned().collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// How many visitors are watched.
    pub fn len(&self) -> usize {
        match self.inner().visitors.lock() {
            Ok(visitors) => visitors.as_ref().map_or(0, HashMap::len),
            Err(_) => 0,
        }
    }

    /// Whether no visitor is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shared resources.
    pub fn transport(&self) -> &Transport {
        &self.inner().transport
    }

    /// How many times the fleet's token callback ran.
    pub fn token_fetches(&self) -> u64 {
        self.inner().tokens.as_ref().map_or(0, |t| t.fetches())
    }

    /// The agent's connection and the visitor's presence now.
    pub async fn state(&self, visitor: &str) -> Result<AgentState, FleetError> {
        Ok(ops::state(&*self.slot(visitor)?).await?)
    }

    /// Looks `visitor` up: `None` when absent.
    pub async fn lookup(&self, visitor: &str) -> Result<Option<VisitorSnapshot>, FleetError> {
        Ok(ops::lookup(&*self.slot(visitor)?).await?)
    }

    /// Queries `visitor`'s current state: `None` when absent.
    pub async fn query(&self, visitor: &str) -> Result<Option<VisitorState>, FleetError> {
        Ok(ops::query(&*self.slot(visitor)?).await?)
    }

    /// Finds the server `visitor` is connected to.
    pub async fn find(&self, visitor: &str) -> Result<(bool, Option<String>), FleetError> {
        Ok(ops::find(&*self.slot(visitor)?).await?)
    }

    /// Signals `visitor` and waits for the service's answer.
    pub async fn signal(&self, visitor: &str, data: Value) -> Result<Delivery, FleetError> {
        Ok(ops::signal(&*self.slot(visitor)?, data).await?)
    }

    /// Asks `visitor`'s page to run `func` with `args` and waits for the service's answer.
    pub async fn invoke(
        &self,
        visitor: &str,
        func: &str,
        args: Value,
    ) -> Result<Delivery, FleetError> {
        Ok(ops::invoke(&*self.slot(visitor)?, func, args).await?)
    }

    /// Stops every visitor; the event stream ends after their last events.
    pub fn close(&self) {
        self.inner().close();
    }
}

/// The merged events of a fleet, keyed by visitor id (see the module docs for the lag
/// policy). Ends once the fleet is closed and every visitor's last event was taken.
/// Cancel-safe. Dropping it discards later events.
pub struct FleetEvents {
    inbox: Arc<Inbox<VisitorId, AgentEvent>>,
}

impl std::fmt::Debug for FleetEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetEvents")
            .field("waiting", &self.inbox.len())
            .finish()
    }
}

impl Stream for FleetEvents {
    type Item = (VisitorId, AgentEvent);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbox.poll_next(cx)
    }
}

impl Drop for FleetEvents {
    fn drop(&mut self) {
        self.inbox.reader_gone();
    }
}
