//! [`BlockingVisitor`]: a [`VisitorProtocol`] driven by the blocking transport, for visitor
//! simulators, tests and the demo. Commands go to the core through
//! [`BlockingVisitor::command`], which carries out what the core asks for at once.

use std::time::{Duration, Instant};

use glance_presence_protocol::visitor::{
    CommandError, VisitorConfig, VisitorEvent, VisitorProtocol,
};

use glance_presence_transport::{entropy_seed, TransportConfig, TransportError};

use crate::driver::Driver;

/// A simulated Glance Presence visitor over blocking sockets.
///
/// ```no_run
/// use glance_presence_blocking::{BlockingVisitor, TransportConfig};
/// use glance_presence_protocol::visitor::VisitorConfig;
/// use glance_presence_protocol::PresenceData;
///
/// let config = VisitorConfig::builder().group_id(12345)
///     .visitor_id("v1")
///     .presence_server("http://127.0.0.1:8080")
///     .build()?;
/// let mut visitor = BlockingVisitor::new(config, TransportConfig::default())?;
/// visitor.connect()?;
/// let mut page = PresenceData::new();
/// page.insert("url", "https://shop.example/cart");
/// visitor.command(|v, now| v.presence(now, page))?;
/// while let Some(event) = visitor.next_event(None) {
///     println!("{event:?}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BlockingVisitor {
    driver: Driver<VisitorProtocol>,
}

impl BlockingVisitor {
    /// A visitor. Nothing is sent until a command asks for it.
    pub fn new(config: VisitorConfig, transport: TransportConfig) -> Result<Self, TransportError> {
        let core = VisitorProtocol::new(config.with_entropy(entropy_seed()), Instant::now());
        Ok(BlockingVisitor {
            driver: Driver::new(core, transport)?,
        })
    }

    /// The core, for its getters.
    pub fn core(&self) -> &VisitorProtocol {
        self.driver.core()
    }

    /// Connects (and stays connected until [`BlockingVisitor::disconnect`]).
    pub fn connect(&mut self) -> Result<(), CommandError> {
        self.driver.command(|core, now| core.connect(now))
    }

    /// Any command of [`VisitorProtocol`] (`presence`, `navigate`, `visibility`, `terms`,
    /// `session_start`, `fire`, …), run now; what it asks for is carried out before this
    /// returns.
    pub fn command<R>(&mut self, command: impl FnOnce(&mut VisitorProtocol, Instant) -> R) -> R {
        self.driver.command(command)
    }

    /// The next event, waiting at most `timeout` (`None`: until one comes).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Option<VisitorEvent> {
        self.driver.next_event(timeout)
    }

    /// Drives the visitor until an event for which `pick` returns `Some`, or the timeout;
    /// other events stay queued for [`BlockingVisitor::next_event`].
    pub fn wait_for<T>(
        &mut self,
        timeout: Duration,
        pick: impl FnMut(&VisitorEvent) -> Option<T>,
    ) -> Option<T> {
        self.driver.wait_for(Some(Instant::now() + timeout), pick)
    }

    /// Keeps the link serviced (keepalives, incoming frames) for `duration`, queueing events.
    pub fn pump(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while self.driver.turn(Some(deadline)) == crate::driver::Turn::Progress {}
    }

    /// Stops: a normal close, no goodbye frame.
    pub fn disconnect(&mut self) {
        self.driver.command(|core, now| core.disconnect(now));
    }
}
