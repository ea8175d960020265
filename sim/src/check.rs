//! The system's promises, checked while a run plays: it watches what every core emits and what
//! the service really holds, and records each broken promise with the time and who broke it.
//!
//! The invariants (bounds in [`crate::scenario`]):
//!
//! 1. **requests**: every request an agent accepted resolves exactly once, and by the end.
//! 2. **no false absent**: an agent that has seen a visitor present reports it absent only when
//!    that visitor has had no socket at the service for at least the leave grace (6 s) less one
//!    one-way latency, in a gap that is still open or closed at most two one-way latencies
//!    before the report; a
//!    visitor that stays connected, through crashes and restarts included, is therefore never
//!    reported absent. (An agent whose last confirmed state is absent, or that has never seen
//!    the visitor, takes the service's word, as PROTOCOL.md says: it may report absent while the
//!    visitor has no socket at the service.)
//! 3. **leave**: a visitor that leaves (after the faults have stopped) is reported absent by
//!    every agent watching it within the grace plus two one-way latencies.
//! 4. **convergence**: once the faults stop, every running agent's view equals the service's
//!    truth within [`crate::scenario::CONVERGENCE`], and at the end.
//! 5. **signals**: each visitor receives each agent's signals at most once and in order; a
//!    signal the service held is sent on the visitor's next connect when that comes within the
//!    hold window (same service incarnation), and arrives unless that socket is cut first.
//! 6. **stopped**: nothing follows `stopped`, from any core.
//! 7. **reconnects**: every reconnect delay lies within the policy's bounds for its attempt;
//!    after the last restart (when no other fault follows it) every client backs off at most
//!    once more (an attempt refused just before the restart), so it reaches the service at
//!    most twice, each attempt after a delay the policy drew: connection attempts per second
//!    at the service stay under twice the clients that lost their link, spread by the policy.
//!
//! It is not the simulation: it never feeds a core.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{
    AgentEvent, Delivery, RequestId, RequestValue, VisitorPresence,
};
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::VisitorEvent;

use crate::scenario::{GRACE, MAX_ONE_WAY};
use crate::service::Node;

/// A gap that justifies an absent report: the grace, less one one-way latency (the agent
/// times its grace from when it hears of the close, and hears of the return a latency after
/// it; the two latencies may differ by up to one).
pub const LONG_GAP: Duration = GRACE.saturating_sub(MAX_ONE_WAY);

/// Which promise a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1.
    RequestsResolveOnce,
    /// 2.
    NoFalseAbsent,
    /// 3.
    LeaveReported,
    /// 4.
    Convergence,
    /// 5.
    SignalsOnceInOrder,
    /// 6.
    NothingAfterStopped,
    /// 7.
    ReconnectBound,
}

impl Invariant {
    /// Every invariant, in order.
    pub const ALL: [Invariant; 7] = [
        Invariant::RequestsResolveOnce,
        Invariant::NoFalseAbsent,
        Invariant::LeaveReported,
        Invariant::Convergence,
        Invariant::SignalsOnceInOrder,
        Invariant::NothingAfterStopped,
        Invariant::ReconnectBound,
    ];
}

/// One broken promise.
#[derive(Debug, Clone)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// When, from the start of the run.
    pub at: Duration,
    /// What happened.
    pub detail: String,
}

/// A visitor's sockets at the service, as the truth the agents are held to.
#[derive(Debug, Default)]
struct Truth {
    attached: usize,
    ever: bool,
    last_attach: Option<Instant>,
    /// Since when it has had no socket (`None` while it has one); the start of the run counts
    /// as "never had one".
    empty_since: Option<Instant>,
    /// The end of the last gap of at least the grace.
    last_long_gap_end: Option<Instant>,
}

/// A signal the service held.
#[derive(Debug, Clone)]
struct HeldSignal {
    visitor: usize,
    key: (u64, u64),
    at: Instant,
    incarnation: u32,
    sent: bool,
}

/// The watcher of one run.
#[derive(Debug)]
pub struct Checker {
    t0: Instant,
    policy: ReconnectPolicy,
    violations: Vec<Violation>,
    truth: Vec<Truth>,
    stopped: HashMap<Node, Instant>,
    issued: Vec<BTreeMap<RequestId, u32>>,
    last_signal: Vec<HashMap<u64, u64>>,
    held: Vec<HeldSignal>,
    /// Held signals sent on a socket and not yet received: (visitor, key) → socket number.
    in_flight: HashMap<(usize, (u64, u64)), u64>,
    /// Backoff attempts per client since the last restart.
    attempts_since_restart: HashMap<Node, u32>,
    /// Whether the reconnect bound after the last restart is checked in this run.
    pub storm_checked: bool,
    last_restart: Option<Instant>,
    /// Agents whose last confirmed state of their visitor is present.
    knew: std::collections::HashSet<usize>,
    /// Since when each client's link has been up (absent while it is down).
    up_since: HashMap<Node, Instant>,
    /// Socket opens at the service since the last restart, by whole second after it.
    opens_per_second: BTreeMap<u64, u32>,
}

impl Checker {
    /// A checker for a run starting at `t0` with these visitors and agents.
    pub fn new(t0: Instant, visitors: usize, agents: usize, policy: ReconnectPolicy) -> Self {
        Checker {
            t0,
            policy,
            violations: Vec::new(),
            truth: (0..visitors)
                .map(|_| Truth {
                    attached: 0,
                    ever: false,
                    last_attach: None,
                    empty_since: Some(t0),
                    last_long_gap_end: Some(t0),
                })
                .collect(),
            stopped: HashMap::new(),
            issued: vec![BTreeMap::new(); agents],
            last_signal: vec![HashMap::new(); visitors],
            held: Vec::new(),
            in_flight: HashMap::new(),
            attempts_since_restart: HashMap::new(),
            storm_checked: false,
            last_restart: None,
            up_since: HashMap::new(),
            knew: std::collections::HashSet::new(),
            opens_per_second: BTreeMap::new(),
        }
    }

    /// Records a broken promise.
    pub fn fail(&mut self, invariant: Invariant, now: Instant, detail: String) {
        self.violations.push(Violation {
            invariant,
            at: now.saturating_duration_since(self.t0),
            detail,
        });
    }

    /// The broken promises so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    // ------------------------------------------------------------------ truth

    /// Visitor `v` got a socket at the service (its `connected` was sent).
    pub fn attached(&mut self, now: Instant, v: usize) {
        let t = &mut self.truth[v];
        if t.attached == 0 {
            // Before its first socket, a visitor has been gone for ever.
            let first = !std::mem::replace(&mut t.ever, true);
            if let Some(since) = t.empty_since.take() {
                if first || now.saturating_duration_since(since) >= LONG_GAP {
                    t.last_long_gap_end = Some(now);
                }
            }
        }
        t.attached += 1;
        t.last_attach = Some(now);
    }

    /// Visitor `v` lost a socket at the service.
    pub fn detached(&mut self, now: Instant, v: usize) {
        let t = &mut self.truth[v];
        t.attached = t.attached.saturating_sub(1);
        if t.attached == 0 && t.empty_since.is_none() {
            t.empty_since = Some(now);
        }
    }

    /// Whether visitor `v` may be reported absent at `now` by an agent that has (`knew`) or
    /// has not reported it present before.
    fn absence_justified(&self, now: Instant, v: usize, knew: bool) -> bool {
        let t = &self.truth[v];
        if !knew {
            // An agent that never saw the visitor takes the service's word: the visitor has
            // no socket there now (or got one within the last two latencies).
            let gone = t.empty_since.is_some()
                || t.last_attach
                    .is_some_and(|at| now.saturating_duration_since(at) <= MAX_ONE_WAY * 2);
            if gone {
                return true;
            }
        }
        let open_gap = !t.ever
            || t.empty_since
                .is_some_and(|since| now.saturating_duration_since(since) >= LONG_GAP);
        let recent_gap = t
            .last_long_gap_end
            .is_some_and(|end| now.saturating_duration_since(end) <= MAX_ONE_WAY * 2);
        open_gap || recent_gap
    }

    // ------------------------------------------------------------------ events

    /// Agent `a`, watching visitor `v`, accepted request `id`.
    pub fn issued(&mut self, a: usize, id: RequestId) {
        self.issued[a].insert(id, 0);
    }

    /// Any output of a client (for invariant 6).
    pub fn output(&mut self, now: Instant, node: Node, what: &str) {
        if let Some(at) = self.stopped.get(&node) {
            let at = at.saturating_duration_since(self.t0);
            self.fail(
                Invariant::NothingAfterStopped,
                now,
                format!("{node:?} emitted {what} after stopping at {at:?}"),
            );
        }
    }

    /// Agent `a` (watching visitor `v`) emitted `event`.
    pub fn agent_event(&mut self, now: Instant, a: usize, v: usize, event: &AgentEvent) {
        let node = Node::Agent(a);
        self.output(now, node, &format!("{event:?}"));
        match event {
            AgentEvent::Stopped { .. } => {
                self.stopped.insert(node, now);
            }
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Present,
                ..
            } => {
                self.knew.insert(a);
            }
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Absent,
                ..
            } => {
                // `knew`: the agent's last confirmed state was present.
                let knew = self.knew.remove(&a);
                if self.absence_justified(now, v, knew) {
                    return;
                }
                let t = &self.truth[v];
                let detail = format!(
                    "agent {a} reported visitor {v} absent; sockets at the service: {}, empty since {:?}, last gap of 6 s ended {:?}",
                    t.attached,
                    t.empty_since.map(|s| s.saturating_duration_since(self.t0)),
                    t.last_long_gap_end.map(|s| s.saturating_duration_since(self.t0)),
                );
                self.fail(Invariant::NoFalseAbsent, now, detail);
            }
            AgentEvent::RequestOutcome { id, result, .. } => {
                match self.issued[a].get_mut(id) {
                    Some(count) => {
                        *count += 1;
                        if *count > 1 {
                            let detail = format!("agent {a}: request {id:?} resolved twice");
                            self.fail(Invariant::RequestsResolveOnce, now, detail);
                        }
                    }
                    None => {
                        let detail = format!("agent {a}: outcome of unknown request {id:?}");
                        self.fail(Invariant::RequestsResolveOnce, now, detail);
                    }
                }
                let _ = matches!(result, Ok(RequestValue::Sent(Delivery::Held)));
            }
            AgentEvent::Disconnected { .. } => {
                self.up_since.remove(&node);
            }
            AgentEvent::Connected { .. } => {
                self.up_since.insert(node, now);
            }
            AgentEvent::Reconnecting { attempt, delay_ms } => {
                self.backoff_attempt(node);
                self.delay_in_bounds(now, node, *attempt, *delay_ms)
            }
            _ => {}
        }
    }

    /// Visitor `v` emitted `event`.
    pub fn visitor_event(&mut self, now: Instant, v: usize, event: &VisitorEvent) {
        let node = Node::Visitor(v);
        self.output(now, node, &format!("{event:?}"));
        match event {
            VisitorEvent::Stopped { .. } => {
                self.stopped.insert(node, now);
            }
            VisitorEvent::Signal { data } => {
                let (Some(a), Some(n)) = (
                    data.get("a").and_then(|x| x.as_u64()),
                    data.get("n").and_then(|x| x.as_u64()),
                ) else {
                    return;
                };
                self.in_flight.remove(&(v, (a, n)));
                let last = self.last_signal[v].insert(a, n);
                if last.is_some_and(|last| last >= n) {
                    let detail = format!(
                        "visitor {v} received agent {a}'s signal {n} after signal {last:?}"
                    );
                    self.fail(Invariant::SignalsOnceInOrder, now, detail);
                }
            }
            VisitorEvent::Reconnecting { attempt, delay_ms } => {
                self.backoff_attempt(node);
                self.delay_in_bounds(now, node, *attempt, *delay_ms)
            }
            _ => {}
        }
    }

    fn delay_in_bounds(&mut self, now: Instant, node: Node, attempt: u32, delay_ms: u64) {
        let (low, high) = self.policy.bounds(attempt);
        let delay = Duration::from_millis(delay_ms);
        // The event rounds to whole milliseconds.
        if delay + Duration::from_millis(1) < low || delay > high + Duration::from_millis(1) {
            let detail = format!(
                "{node:?}: attempt {attempt} waits {delay:?}, outside the policy's {low:?}..={high:?}"
            );
            self.fail(Invariant::ReconnectBound, now, detail);
        }
    }

    fn backoff_attempt(&mut self, node: Node) {
        if self.last_restart.is_some() {
            *self.attempts_since_restart.entry(node).or_default() += 1;
        }
    }

    /// Whether the client's link has been up since `since` or earlier, without a break.
    pub fn up_throughout(&self, node: Node, since: Instant) -> bool {
        self.up_since.get(&node).is_some_and(|at| *at <= since)
    }

    // ------------------------------------------------------------------ the service

    /// The service came back up (after a crash or a graceful stop).
    pub fn restarted(&mut self, now: Instant) {
        self.last_restart = Some(now);
        self.attempts_since_restart.clear();
        self.opens_per_second.clear();
    }

    /// A socket opened at the service.
    pub fn socket_opened(&mut self, now: Instant) {
        if let Some(at) = self.last_restart {
            let second = now.saturating_duration_since(at).as_secs();
            *self.opens_per_second.entry(second).or_default() += 1;
        }
    }

    /// The most socket opens at the service in one second after the last restart.
    pub fn peak_opens_per_second(&self) -> u32 {
        self.opens_per_second.values().copied().max().unwrap_or(0)
    }

    /// The service answered `held` to a signal (agent `a`'s `n`) for visitor `v`.
    pub fn held(&mut self, now: Instant, v: usize, key: (u64, u64), incarnation: u32) {
        self.held.push(HeldSignal {
            visitor: v,
            key,
            at: now,
            incarnation,
            sent: false,
        });
    }

    /// The service sent a signal frame (agent `a`'s `n`) to visitor `v` on socket `socket`.
    pub fn signal_sent(&mut self, v: usize, key: (u64, u64), socket: u64) {
        for h in self
            .held
            .iter_mut()
            .filter(|h| h.visitor == v && h.key == key)
        {
            if !h.sent {
                h.sent = true;
                self.in_flight.insert((v, key), socket);
            }
        }
    }

    /// A signal frame for visitor `v` was lost with its socket.
    pub fn signal_lost(&mut self, v: usize, key: (u64, u64)) {
        self.in_flight.remove(&(v, key));
    }

    /// Visitor `v` has just been attached at the service (incarnation `incarnation`) and the
    /// service's outputs for it are drained: every signal held for it within the hold window
    /// must have been sent.
    pub fn after_attach(&mut self, now: Instant, v: usize, incarnation: u32, window: Duration) {
        let mut late = Vec::new();
        for h in self.held.iter_mut().filter(|h| h.visitor == v && !h.sent) {
            if h.incarnation == incarnation && now < h.at + window {
                late.push(h.key);
            }
            // Either sent now or never: it no longer waits.
            h.sent = true;
        }
        for key in late {
            let detail =
                format!("visitor {v}'s held signal {key:?} was not sent on its next connect");
            self.fail(Invariant::SignalsOnceInOrder, now, detail);
        }
    }

    /// Held signals of an incarnation that crashed are gone with it.
    pub fn crashed(&mut self) {
        for h in &mut self.held {
            h.sent = true;
        }
    }

    // ------------------------------------------------------------------ the end

    /// Checks the end-of-run promises: every request resolved, no held signal left in flight,
    /// and (when `storm` says the last restart had no fault after it) at most one backoff
    /// attempt per client after it.
    pub fn finish(&mut self, now: Instant, storm: bool) {
        for a in 0..self.issued.len() {
            let open: Vec<RequestId> = self.issued[a]
                .iter()
                .filter(|(_, n)| **n == 0)
                .map(|(id, _)| *id)
                .collect();
            if !open.is_empty() {
                let detail = format!("agent {a}: requests never resolved: {open:?}");
                self.fail(Invariant::RequestsResolveOnce, now, detail);
            }
        }
        let in_flight: Vec<_> = self.in_flight.keys().cloned().collect();
        for (v, key) in in_flight {
            let detail = format!("visitor {v}: held signal {key:?} sent but never received");
            self.fail(Invariant::SignalsOnceInOrder, now, detail);
        }
        if storm && self.last_restart.is_some() {
            self.storm_checked = true;
            let many: Vec<(Node, u32)> = self
                .attempts_since_restart
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(node, n)| (*node, *n))
                .collect();
            for (node, n) in many {
                let detail = format!("{node:?} backed off {n} times after the last restart");
                self.fail(Invariant::ReconnectBound, now, detail);
            }
        }
    }
}
