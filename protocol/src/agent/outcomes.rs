//! Matching request outcomes to whoever waits for them: the one way a driver hands a
//! request's result to its caller.
//!
//! Every command that starts a request returns a [`RequestId`], and the core reports the
//! result exactly once as an [`AgentEvent::RequestOutcome`]. A driver that lets a caller wait
//! for one request (a blocking `lookup()`, an async `signal().await`) registers the caller
//! with [`Outcomes::wait`] and passes every event through [`Outcomes::route`]: the outcome goes
//! to its waiter, everything else (and outcomes nobody waits for) to the application, in
//! order. This module does no IO and holds no waiter longer than its request lives in the
//! core.

use std::collections::HashMap;

use super::event::{AgentEvent, RequestFailure, RequestId, RequestKind, RequestValue};

/// The result of one request.
pub type Outcome = Result<RequestValue, RequestFailure>;

/// Waiters for request outcomes, by request id. `W` is whatever the driver hands a result
/// to: a oneshot sender, a slot, `()`.
#[derive(Debug)]
pub struct Outcomes<W> {
    waiting: HashMap<RequestId, W>,
}

impl<W> Default for Outcomes<W> {
    fn default() -> Self {
        Outcomes {
            waiting: HashMap::new(),
        }
    }
}

/// Where [`Outcomes::route`] sends an event.
#[derive(Debug)]
pub enum Routed<W> {
    /// The outcome of a request someone waits for: hand `result` to `waiter`.
    Claimed {
        /// The waiter registered for the request.
        waiter: W,
        /// The request.
        id: RequestId,
        /// Its kind.
        request: RequestKind,
        /// Its result.
        result: Outcome,
    },
    /// Any other event, or an outcome nobody waits for: for the application.
    Event(AgentEvent),
}

impl<W> Outcomes<W> {
    /// No waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// `waiter` waits for the outcome of request `id` (a second waiter replaces the first).
    pub fn wait(&mut self, id: RequestId, waiter: W) {
        self.waiting.insert(id, waiter);
    }

    /// Nobody waits for `id` any more; returns its waiter if there was one.
    pub fn forget(&mut self, id: RequestId) -> Option<W> {
        self.waiting.remove(&id)
    }

    /// How many requests have a waiter.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether no request has a waiter.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Sends an event that left the core to its waiter or to the application.
    pub fn route(&mut self, event: AgentEvent) -> Routed<W> {
        match event {
            AgentEvent::RequestOutcome {
                id,
                request,
                result,
            } => match self.waiting.remove(&id) {
                Some(waiter) => Routed::Claimed {
                    waiter,
                    id,
                    request,
                    result,
                },
                None => Routed::Event(AgentEvent::RequestOutcome {
                    id,
                    request,
                    result,
                }),
            },
            other => Routed::Event(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_go_to_their_waiter_and_everything_else_to_the_application() {
        let mut outcomes = Outcomes::new();
        outcomes.wait(RequestId(1), "first");
        let claimed = outcomes.route(AgentEvent::RequestOutcome {
            id: RequestId(1),
            request: RequestKind::Lookup,
            result: Err(RequestFailure::Cancelled),
        });
        assert!(matches!(
            claimed,
            Routed::Claimed {
                waiter: "first",
                id: RequestId(1),
                ..
            }
        ));
        // Resolved once: the waiter is gone.
        assert!(outcomes.is_empty());
        let unclaimed = outcomes.route(AgentEvent::RequestOutcome {
            id: RequestId(2),
            request: RequestKind::Query,
            result: Err(RequestFailure::Cancelled),
        });
        assert!(matches!(
            unclaimed,
            Routed::Event(AgentEvent::RequestOutcome { .. })
        ));
        let other = outcomes.route(AgentEvent::Stopped {
            why: super::super::StopReason::Requested,
        });
        assert!(matches!(other, Routed::Event(AgentEvent::Stopped { .. })));
        outcomes.wait(RequestId(3), "third");
        assert_eq!(outcomes.forget(RequestId(3)), Some("third"));
    }
}
