//! What the agent knows about its visitor: present / absent / unknown, with the time of the
//! last confirmed change, the leave grace, and how that knowledge survives the agent's own
//! reconnects.
//!
//! Rules (all with the leave grace `G`, [`AgentTimers::visitor_leave_grace`]):
//!
//! * A live "up" (`visitorsock`/`visitorconn` true) makes the visitor present at once and
//!   cancels any pending leave.
//! * A live "down" starts the grace; only when it runs out with no "up" is the visitor
//!   reported absent, so page navigation never shows as a leave.
//! * When the agent's own link goes down, the last known state is kept; only if the link is
//!   not back (with the service's word on the visitor) within `G` does the state read
//!   `unknown`. A brief drop or a reconnect loop therefore does not make the state flip.
//! * The lookup made after `connected` (the snapshot) sets the state unless a live frame
//!   already spoke since the socket opened, whatever the order in which they arrive. An empty
//!   snapshot for a visitor last known present starts the grace instead of reporting absent:
//!   a restarted service knows nobody until the visitors reconnect, and a visitor that stayed
//!   connected through the restart is never reported absent.
//!
//! [`AgentTimers::visitor_leave_grace`]: super::AgentTimers::visitor_leave_grace

use std::time::Instant;

use super::event::{AgentEvent, VisitorPresence};
use super::{AgentProtocol, AgentTimer};

/// The visitor's presence as tracked by the agent.
#[derive(Debug, Clone)]
pub(crate) struct VisitorTracker {
    /// The state last reported.
    pub(crate) state: VisitorPresence,
    /// When the state was last confirmed (monotonic).
    pub(crate) since: Option<Instant>,
    /// The same, in Unix milliseconds (for events).
    pub(crate) since_unix_ms: u64,
    /// The last state the service confirmed (present or absent), kept while `state` reads
    /// unknown; `Unknown` before the first confirmation.
    last_known: VisitorPresence,
    /// Whether a live `visitorsock`/`visitorconn` arrived since the current socket opened
    /// (the snapshot then does not override the state).
    live_seen: bool,
}

impl VisitorTracker {
    pub(crate) fn new() -> Self {
        VisitorTracker {
            state: VisitorPresence::Unknown,
            since: None,
            since_unix_ms: 0,
            last_known: VisitorPresence::Unknown,
            live_seen: false,
        }
    }

    /// Sets the state; returns whether it changed (the caller emits the event).
    fn set(&mut self, state: VisitorPresence, now: Instant, unix_ms: u64) -> bool {
        if state != VisitorPresence::Unknown {
            self.last_known = state;
        }
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
}

impl AgentProtocol {
    /// Sets the visitor's state and reports a change.
    fn set_visitor(&mut self, state: VisitorPresence, unix_ms: u64) {
        if self.visitor.set(state, self.link.now, unix_ms) {
            self.link.emit(AgentEvent::VisitorPresence {
                state,
                since_unix_ms: self.visitor.since_unix_ms,
            });
        }
    }

    /// A new socket opened: live frames on it speak afresh.
    pub(crate) fn visitor_socket_opened(&mut self) {
        self.visitor.live_seen = false;
    }

    /// `visitorsock` / `visitorconn`: up makes the visitor present and cancels the leave
    /// grace; down starts the grace.
    pub(crate) fn visitor_signal(&mut self, up: bool) {
        self.visitor.live_seen = true;
        self.link.timers.stop(AgentTimer::VisitorUnknown);
        if up {
            self.link.timers.stop(AgentTimer::VisitorGrace);
            let unix_ms = self.unix_ms();
            self.set_visitor(VisitorPresence::Present, unix_ms);
        } else if self.visitor.state != VisitorPresence::Absent {
            self.start_leave_grace();
        }
    }

    /// The snapshot lookup answered: `Some(present)` with the service's word, and the time
    /// the visitor became present when the service gave it.
    pub(crate) fn visitor_snapshot(&mut self, present: bool, since_unix_ms: Option<u64>) {
        self.link.timers.stop(AgentTimer::VisitorUnknown);
        if self.visitor.live_seen {
            return;
        }
        if present {
            self.link.timers.stop(AgentTimer::VisitorGrace);
            let unix_ms = since_unix_ms.unwrap_or_else(|| self.unix_ms());
            self.set_visitor(VisitorPresence::Present, unix_ms);
        } else if self.visitor.last_known == VisitorPresence::Present {
            // Maybe a restarted service that has not seen the visitor again yet.
            self.start_leave_grace();
        } else {
            let unix_ms = self.unix_ms();
            self.set_visitor(VisitorPresence::Absent, unix_ms);
        }
    }

    /// The agent's own link went down: keep the last known state for the grace.
    pub(crate) fn visitor_link_down(&mut self) {
        self.link.timers.stop(AgentTimer::VisitorGrace);
        if self.visitor.state != VisitorPresence::Unknown
            && !self.link.timers.is_set(AgentTimer::VisitorUnknown)
        {
            self.link.timers.set(
                AgentTimer::VisitorUnknown,
                self.link.now + self.config.timers.visitor_leave_grace,
            );
        }
    }

    /// The leave grace ran out with no sign of the visitor: absent.
    pub(crate) fn on_leave_grace_over(&mut self) {
        let unix_ms = self.unix_ms();
        self.set_visitor(VisitorPresence::Absent, unix_ms);
    }

    /// The link stayed down for the grace: the last known state is no longer vouched for.
    pub(crate) fn on_visitor_unknown(&mut self) {
        let unix_ms = self.unix_ms();
        self.set_visitor(VisitorPresence::Unknown, unix_ms);
    }

    fn start_leave_grace(&mut self) {
        if !self.link.timers.is_set(AgentTimer::VisitorGrace) {
            self.link.timers.set(
                AgentTimer::VisitorGrace,
                self.link.now + self.config.timers.visitor_leave_grace,
            );
        }
    }
}
