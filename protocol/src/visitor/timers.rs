//! The visitor's timers: one key per deadline in its timer table, the link's own
//! among them. A private module: the keys are `pub` only so the crate's one `SansIo`
//! implementation may name them, and nothing outside the crate can.

use std::time::Instant;

use crate::link::LinkTimer;
use crate::timer::TimerKey;

/// The visitor's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorTimer {
    /// Nothing inbound after the idle ping: the link is dead.
    PongDeadline,
    /// A connect step (request, socket, `connected`) took too long.
    ConnectTimeout,
    /// The backoff delay is over: try again.
    Reconnect,
    /// Send `{"type":"k"}`.
    Keepalive,
    /// Inbound silence: send a ping.
    IdlePing,
    /// The link has stayed up long enough: the backoff and the hop count start over.
    Stable,
}

impl From<LinkTimer> for VisitorTimer {
    fn from(timer: LinkTimer) -> Self {
        match timer {
            LinkTimer::PongDeadline => VisitorTimer::PongDeadline,
            LinkTimer::ConnectTimeout => VisitorTimer::ConnectTimeout,
            LinkTimer::Reconnect => VisitorTimer::Reconnect,
            LinkTimer::Keepalive => VisitorTimer::Keepalive,
            LinkTimer::IdlePing => VisitorTimer::IdlePing,
            LinkTimer::Stable => VisitorTimer::Stable,
        }
    }
}

impl TimerKey for VisitorTimer {
    type Slots = [Option<Instant>; 6];
    const ALL: &'static [Self] = &[
        VisitorTimer::PongDeadline,
        VisitorTimer::ConnectTimeout,
        VisitorTimer::Reconnect,
        VisitorTimer::Keepalive,
        VisitorTimer::IdlePing,
        VisitorTimer::Stable,
    ];

    fn index(self) -> usize {
        self as usize
    }
}
