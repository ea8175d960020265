//! The agent's timers: one key per deadline in its timer table, the link's own
//! among them. A private module: the keys are `pub` only so the crate's one `SansIo`
//! implementation may name them, and nothing outside the crate can.

use std::time::Instant;

use crate::link::LinkTimer;
use crate::timer::TimerKey;

/// The agent's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentTimer {
    /// Nothing inbound after the idle ping: the link is dead.
    PongDeadline,
    /// The socket did not open, or `connected` did not come, in time.
    ConnectTimeout,
    /// The earliest request / internal HTTP deadline.
    Deadlines,
    /// The visitor-leave grace ran out.
    VisitorGrace,
    /// Renew the token (80% of its life).
    TokenRefresh,
    /// The backoff delay is over: try again.
    Reconnect,
    /// Send `{"type":"k"}`.
    Keepalive,
    /// Inbound silence: send a ping.
    IdlePing,
    /// The link has stayed up long enough: backoff, hops and token refusals start over.
    Stable,
    /// The agent's own link has been down for the leave grace: the visitor's last known
    /// state is no longer vouched for.
    VisitorUnknown,
    /// The application has not answered `TokenNeeded` within the request timeout.
    TokenWait,
}

impl From<LinkTimer> for AgentTimer {
    fn from(timer: LinkTimer) -> Self {
        match timer {
            LinkTimer::PongDeadline => AgentTimer::PongDeadline,
            LinkTimer::ConnectTimeout => AgentTimer::ConnectTimeout,
            LinkTimer::Reconnect => AgentTimer::Reconnect,
            LinkTimer::Keepalive => AgentTimer::Keepalive,
            LinkTimer::IdlePing => AgentTimer::IdlePing,
            LinkTimer::Stable => AgentTimer::Stable,
        }
    }
}

impl TimerKey for AgentTimer {
    type Slots = [Option<Instant>; 11];
    const ALL: &'static [Self] = &[
        AgentTimer::PongDeadline,
        AgentTimer::ConnectTimeout,
        AgentTimer::Deadlines,
        AgentTimer::VisitorGrace,
        AgentTimer::TokenRefresh,
        AgentTimer::Reconnect,
        AgentTimer::Keepalive,
        AgentTimer::IdlePing,
        AgentTimer::Stable,
        AgentTimer::VisitorUnknown,
        AgentTimer::TokenWait,
    ];

    fn index(self) -> usize {
        self as usize
    }
}
