//! [`AsyncVisitor`]: a [`VisitorProtocol`] on a driver task (the same driver as the agent's),
//! for visitor simulators and tests. Commands reach the core as closures run in the driver.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_channel::oneshot;
use futures_core::Stream;
use glance_presence_protocol::visitor::{
    CommandError, VisitorConfig, VisitorEvent, VisitorProtocol,
};
use glance_presence_transport::{entropy_seed, TransportError};

use crate::agent::EVENT_BUFFER;
use crate::driver::{Driver, Slot};
use crate::inbox::Inbox;
use crate::shared::Transport;

/// The driver task is gone; nothing more will happen on this handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEnded;

impl std::fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the driver task has ended")
    }
}

impl std::error::Error for TaskEnded {}

/// A simulated Glance Presence visitor on a task of its own.
///
/// Events wait in a bounded queue ([`EVENT_BUFFER`]); when the application does not read
/// them, the driver stops reading the socket while the core's timers keep going.
///
/// ```no_run
/// use glance_presence_async::{AsyncVisitor, TransportConfig};
/// use glance_presence_protocol::visitor::VisitorConfig;
/// use glance_presence_protocol::PresenceData;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = VisitorConfig::builder()
///     .group_id(12345)
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
pub struct AsyncVisitor {
    slot: Arc<Slot<VisitorProtocol, ()>>,
    inbox: Arc<Inbox<(), VisitorEvent>>,
}

impl std::fmt::Debug for AsyncVisitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncVisitor")
            .field("running", &!self.slot.ended())
            .field("waiting_events", &self.inbox.len())
            .finish()
    }
}

impl AsyncVisitor {
    /// A visitor on the default runtime, with resources of its own.
    ///
    /// # Panics
    ///
    /// With the `tokio` feature, outside a tokio runtime.
    #[cfg(any(feature = "tokio", feature = "smol"))]
    pub fn start(
        config: VisitorConfig,
        transport: glance_presence_transport::TransportConfig,
    ) -> Result<Self, TransportError> {
        Ok(AsyncVisitor::start_with(
            &Transport::with_default_runtime(transport)?,
            config,
        ))
    }

    /// A visitor on shared resources. Nothing is sent until a command asks for it; the
    /// visitor stops when dropped.
    pub fn start_with(transport: &Transport, config: VisitorConfig) -> Self {
        let core = VisitorProtocol::new(config.with_entropy(entropy_seed()), Instant::now());
        let inbox = Arc::new(Inbox::new(EVENT_BUFFER));
        let slot = Arc::new(Slot::new());
        let driver = Driver::new(
            core,
            (),
            Arc::clone(&slot),
            Arc::clone(&transport.inner),
            Arc::clone(&inbox),
            (),
        );
        transport.inner.runtime.spawn(Box::pin(driver));
        inbox.close();
        AsyncVisitor { slot, inbox }
    }

    /// Connects (and stays connected until [`AsyncVisitor::disconnect`]).
    pub async fn connect(&self) -> Result<(), CommandError> {
        self.command(|core, now| core.connect(now))
            .await
            .unwrap_or(Err(CommandError::Stopped))
    }

    /// Runs any command of [`VisitorProtocol`] (`presence`, `navigate`, `visibility`,
    /// `terms`, `session_start`, `fire`, or a getter) in the driver, which then carries out
    /// what the core asked for, and returns the closure's result.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future after the command was queued lets it run and discards its result.
    pub async fn command<T: Send + 'static>(
        &self,
        command: impl FnOnce(&mut VisitorProtocol, Instant) -> T + Send + 'static,
    ) -> Result<T, TaskEnded> {
        let (tx, rx) = oneshot::channel();
        let sent = self.slot.send(Box::new(move |core, (), now| {
            let _ = tx.send(command(core, now));
        }));
        if !sent {
            return Err(TaskEnded);
        }
        rx.await.map_err(|_| TaskEnded)
    }

    /// The next event; `None` once the visitor has stopped and its last event was taken.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next_event(&mut self) -> Option<VisitorEvent> {
        let inbox = &self.inbox;
        std::future::poll_fn(|cx| inbox.poll_next(cx).map(|next| next.map(|((), e)| e))).await
    }

    /// Stops (a normal close, no goodbye frame); the events up to
    /// [`VisitorEvent::Stopped`] stay available to `next_event`.
    pub async fn disconnect(&mut self) {
        let _ = self.command(|core, now| core.disconnect(now)).await;
    }
}

impl Stream for AsyncVisitor {
    type Item = VisitorEvent;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<VisitorEvent>> {
        self.inbox.poll_next(cx).map(|next| next.map(|((), e)| e))
    }
}

impl Drop for AsyncVisitor {
    fn drop(&mut self) {
        self.slot.stop();
        self.inbox.reader_gone();
    }
}
