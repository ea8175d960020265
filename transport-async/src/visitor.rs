//! [`AsyncVisitor`]: a [`VisitorProtocol`] driven by its own tokio task (the same driver as
//! the agent's), for visitor simulators and tests. Commands reach the core as closures run
//! on the task.

use std::time::Instant;

use glance_presence_blocking::{entropy_seed, TransportConfig, TransportError};
use glance_presence_protocol::visitor::{
    CommandError, VisitorConfig, VisitorEvent, VisitorProtocol,
};

use crate::driver::{Handle, TaskEnded};

/// A simulated Glance Presence visitor on a tokio task of its own.
///
/// Events wait in a bounded channel ([`crate::EVENT_BUFFER`]); when the application does not
/// read them, the task stops reading the socket while the core's timers keep going.
///
/// ```no_run
/// use glance_presence_async::{AsyncVisitor, TransportConfig};
/// use glance_presence_protocol::visitor::VisitorConfig;
/// use glance_presence_protocol::PresenceData;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = VisitorConfig::builder(12345)
///     .visitor_id("v1")
///     .presence_server("http://127.0.0.1:8080")
///     .build()?;
/// let mut visitor = AsyncVisitor::start(config, TransportConfig::default())?;
/// visitor.connect().await?;
/// let mut page = PresenceData::new();
/// page.insert("url", "https://shop.example/cart");
/// visitor.command(|v, now| v.presence(now, page)).await??;
/// while let Some(event) = visitor.next_event().await {
///     println!("{event:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncVisitor {
    handle: Handle<VisitorProtocol, ()>,
}

impl AsyncVisitor {
    /// A visitor on a new task of the current tokio runtime. Nothing is sent until a command
    /// asks for it. The task lives until the visitor is dropped.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime (as `tokio::spawn`).
    pub fn start(
        config: VisitorConfig,
        transport: TransportConfig,
    ) -> Result<Self, TransportError> {
        let core = VisitorProtocol::new(config.with_entropy(entropy_seed()), Instant::now());
        Ok(AsyncVisitor {
            handle: Handle::spawn(core, (), transport)?,
        })
    }

    /// Connects (and stays connected until [`AsyncVisitor::disconnect`]).
    ///
    /// # Cancel safety
    ///
    /// As [`AsyncVisitor::command`].
    pub async fn connect(&self) -> Result<(), CommandError> {
        self.command(|core, now| core.connect(now))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Runs any command of [`VisitorProtocol`] (`presence`, `navigate`, `visibility`,
    /// `terms`, `session_start`, `fire`, or a getter) on the task, which then carries out
    /// what the core asked for, and returns the closure's result.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before the command was queued runs nothing; dropping it later
    /// lets the command run and discards its result.
    pub async fn command<T: Send + 'static>(
        &self,
        command: impl FnOnce(&mut VisitorProtocol, Instant) -> T + Send + 'static,
    ) -> Result<T, TaskEnded> {
        self.handle
            .call(move |core, _, now| command(core, now))
            .await
    }

    /// The next event; `None` once the visitor has stopped and its last event was taken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next_event(&mut self) -> Option<VisitorEvent> {
        self.handle.next_event().await
    }

    /// Stops (a normal close, no goodbye frame) and returns once the task has emitted
    /// [`VisitorEvent::Stopped`]; earlier events stay available to `next_event`.
    ///
    /// # Cancel safety
    ///
    /// As [`crate::AsyncAgent::disconnect`].
    pub async fn disconnect(&mut self) {
        self.handle.stop().await;
    }
}
