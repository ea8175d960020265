//! Admission decisions: whether a new connection is served under the connection cap, and what
//! happens to a socket whose send queue is full.
//!
//! The server counts nothing and decides nothing here: it reports that a connection was
//! accepted or ended, and that a frame did not fit in a socket's queue; the core answers with
//! what to do. It is not the place of the WebSocket upgrade checks (those are routed with the
//! REST requests, see [`super::rest`]).

use std::time::Instant;

use super::rest::RestResponse;
use super::{CloseCause, ConnId, ServiceCore};

/// What to do with a connection just accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Serve it; report [`ServiceCore::connection_ended`] when it ends.
    Accept,
    /// Over the connection cap: write this answer (a 503 with `Retry-After`) and close. The
    /// connection does not count as open.
    Refuse(RestResponse),
    /// Over the cap while the most refusals are already under way: close it at once.
    Drop,
}

impl ServiceCore {
    /// A connection (HTTP, later perhaps upgraded to a WebSocket) was accepted while
    /// `refusals_under_way` refusals are still being written. Connections already open are
    /// never affected by the decision.
    pub fn admit_connection(&mut self, refusals_under_way: usize) -> Admission {
        let open = usize::try_from(self.stats.open_connections).unwrap_or(usize::MAX);
        if open < self.settings.max_connections {
            self.stats.open_connections += 1;
            return Admission::Accept;
        }
        self.stats.refused_connections += 1;
        tracing::debug!(open, "connection refused: too many connections");
        if refusals_under_way >= self.settings.refusals_at_once {
            return Admission::Drop;
        }
        let mut response = RestResponse::error(503, "serviceunavailable", "too many connections");
        response.headers.push(("Retry-After", "1".to_owned()));
        response.headers.push(("Connection", "close".to_owned()));
        Admission::Refuse(response)
    }

    /// A connection admitted by [`ServiceCore::admit_connection`] has ended.
    pub fn connection_ended(&mut self) {
        self.stats.open_connections = self.stats.open_connections.saturating_sub(1);
    }

    /// Connections admitted and not yet ended (HTTP and WebSocket).
    pub fn open_connections(&self) -> u64 {
        self.stats.open_connections
    }

    /// A frame for `conn` did not fit in its send queue: the consumer does not read. The socket
    /// is let go at once (counted, logged) and an [`super::Output::Close`] with
    /// [`CloseCause::SlowConsumer`] asks the driver to drop it; the driver still reports
    /// [`ServiceCore::handle_closed`] when its transport is gone.
    pub fn handle_send_queue_full(&mut self, now: Instant, conn: ConnId) {
        if !self.is_open(conn) {
            return;
        }
        self.stats.slow_consumers += 1;
        tracing::warn!(%conn, "send queue full: disconnecting a consumer that does not read");
        self.close(now, conn, CloseCause::SlowConsumer);
    }
}
