//! What the agent knows about its visitor: present / absent / unknown, with the time of the
//! last confirmed change and the leave grace.
//!
//! A visitor socket that closes starts the grace period; a socket that comes back within it
//! cancels it, so page navigation never shows as the visitor leaving. Only when the grace runs
//! out is the visitor reported absent. While the agent itself is offline the state is
//! `Unknown` (the last confirmed time is kept).

use std::time::Instant;

use super::event::VisitorPresence;

/// The visitor's presence as tracked by the agent.
#[derive(Debug, Clone)]
pub(crate) struct VisitorTracker {
    pub(crate) state: VisitorPresence,
    /// When the state was last confirmed (monotonic).
    pub(crate) since: Option<Instant>,
    /// The same, in Unix milliseconds (for events).
    pub(crate) since_unix_ms: u64,
    /// Whether a live `visitorsock`/`visitorconn` arrived since the link came up (the
    /// snapshot then does not override the state).
    pub(crate) live_seen: bool,
}

/// What the caller must do after a tracker update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GraceAction {
    /// Nothing.
    None,
    /// Arm the grace timer (if it is not armed already).
    Start,
    /// Disarm the grace timer.
    Cancel,
}

impl VisitorTracker {
    pub(crate) fn new() -> Self {
        VisitorTracker {
            state: VisitorPresence::Unknown,
            since: None,
            since_unix_ms: 0,
            live_seen: false,
        }
    }

    /// Sets the state; returns whether it changed (the caller emits the event).
    pub(crate) fn set(&mut self, state: VisitorPresence, now: Instant, unix_ms: u64) -> bool {
        if self.state == state {
            return false;
        }
        self.state = state;
        if state != VisitorPresence::Unknown {
            self.since = Some(now);
            self.since_unix_ms = unix_ms;
        }
        true
    }

    /// A live signal that the visitor is up (`visitorsock`/`visitorconn` true).
    pub(crate) fn up(&mut self) -> GraceAction {
        self.live_seen = true;
        GraceAction::Cancel
    }

    /// A live signal that the visitor's socket is down (`visitorsock` false, or `visitorconn`
    /// false).
    pub(crate) fn down(&mut self) -> GraceAction {
        self.live_seen = true;
        if self.state != VisitorPresence::Absent {
            GraceAction::Start
        } else {
            GraceAction::None
        }
    }
}
