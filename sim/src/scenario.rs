//! A run's script, drawn from its seed: who takes part, how their links behave, what the
//! visitors and agents do and when, and which faults strike until the faults stop.
//!
//! A run has three phases. Until `faults_end` faults strike (dropped sockets, service crashes
//! and graceful restarts, failed, refused and late HTTP requests) while visitors navigate,
//! hide and show their tab and agents signal and look up. Then nothing fails: at `converged_at`
//! every agent's view must equal the service's truth, the leaving visitors leave, and the run
//! ends at `end`. It is data only: the simulation plays it (see [`crate::world`]).

use std::time::Duration;

use glance_presence_protocol::backoff::ReconnectPolicy;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The agent's leave grace and the service's presence window (both 6 s by default).
pub const GRACE: Duration = Duration::from_secs(6);
/// How long after the faults stop every agent's view must equal the service's truth: a
/// request timeout (10 s) that may still be running, the reconnect cap (60 s), the connect
/// steps, the leave grace (6 s), the service's presence window (6 s) and 2 s of margin.
pub const CONVERGENCE: Duration = Duration::from_secs(10 + 60 + 6 + 6 + 2);
/// The largest one-way latency plus jitter a link is given.
pub const MAX_ONE_WAY: Duration = Duration::from_millis(200);

/// How an agent proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAuth {
    /// Credentials: `Authorize` with a LoginKey, tokens of this many minutes, renewed.
    Credentials {
        /// Token lifetime asked for.
        minutes: u32,
    },
    /// A bare token that lives this long (a short one expires during the run: the agent stops).
    Token {
        /// Lifetime.
        lifetime: Duration,
    },
}

/// One agent.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    /// The visitor it watches.
    pub visitor: usize,
    /// How it authenticates.
    pub auth: AgentAuth,
}

/// What a visitor or agent does at a time.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Visitor `i` loads another page.
    Navigate(usize),
    /// Visitor `i` hides its tab.
    Hide(usize),
    /// Visitor `i` shows its tab again.
    Show(usize),
    /// Visitor `i` reports presence data.
    Presence(usize),
    /// Visitor `i` leaves for good.
    Leave(usize),
    /// Agent `i` signals its visitor.
    Signal(usize),
    /// Agent `i` looks its visitor up.
    Lookup(usize),
    /// Agent `i` asks its visitor's state.
    Query(usize),
    /// Visitor `i`'s socket is cut (a fault).
    DropVisitorSocket(usize),
    /// Agent `i`'s socket is cut (a fault).
    DropAgentSocket(usize),
    /// The service crashes (its state is lost) and comes back after the duration.
    Crash(Duration),
    /// The service stops gracefully (`serverclose`) and comes back after the duration.
    Restart(Duration),
}

/// A run's script.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed it was drawn from (also seeds the network and the cores).
    pub seed: u64,
    /// Visitors: whether each leaves once the faults have stopped.
    pub leavers: Vec<bool>,
    /// Agents.
    pub agents: Vec<AgentPlan>,
    /// The reconnect policy of every client.
    pub policy: ReconnectPolicy,
    /// One-way latency and jitter of each link: visitors first, then agents.
    pub links: Vec<(Duration, Duration)>,
    /// Acts in time order (offsets from the start).
    pub acts: Vec<(Duration, Act)>,
    /// Chance that an HTTP request fails without an answer while faults strike.
    pub http_fail: f64,
    /// Chance that it is answered 503.
    pub http_503: f64,
    /// Chance that its answer comes after the client's request timeout.
    pub http_late: f64,
    /// When the faults stop.
    pub faults_end: Duration,
    /// When every agent's view must equal the service's truth (the leavers leave then).
    pub converged_at: Duration,
    /// When the run ends.
    pub end: Duration,
}

fn secs(rng: &mut ChaCha8Rng, low: f64, high: f64) -> Duration {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    Duration::from_secs_f64(low + (high - low) * unit)
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
}

impl Scenario {
    /// The scenario of `seed`, with Glance's preset reconnect policy for a quarter of the seeds
    /// and the default policy for the others.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let policy = if below(&mut rng, 4) == 0 {
            ReconnectPolicy::glance()
        } else {
            ReconnectPolicy::default()
        };
        let visitors = 1 + below(&mut rng, 2) as usize;
        let leavers: Vec<bool> = (0..visitors).map(|_| chance(&mut rng, 0.5)).collect();
        let mut agents = Vec::new();
        for v in 0..visitors {
            for _ in 0..1 + below(&mut rng, 3) {
                let auth = match below(&mut rng, 6) {
                    0 => AgentAuth::Token {
                        lifetime: secs(&mut rng, 20.0, 80.0),
                    },
                    1 => AgentAuth::Token {
                        lifetime: Duration::from_secs(3600),
                    },
                    _ => AgentAuth::Credentials {
                        minutes: 1 + below(&mut rng, 2) as u32,
                    },
                };
                agents.push(AgentPlan { visitor: v, auth });
            }
        }
        let links = (0..visitors + agents.len())
            .map(|_| (secs(&mut rng, 0.001, 0.150), secs(&mut rng, 0.0, 0.050)))
            .collect();
        let faults_end = secs(&mut rng, 20.0, 70.0);
        let mut acts = Vec::new();
        // Visitors: pages, presence, hidden tabs (shown again before the faults stop).
        for v in 0..visitors {
            let mut t = secs(&mut rng, 0.5, 5.0);
            while t < faults_end {
                match below(&mut rng, 6) {
                    0..=2 => acts.push((t, Act::Navigate(v))),
                    3 | 4 => acts.push((t, Act::Presence(v))),
                    _ => {
                        let back = t + secs(&mut rng, 0.5, 10.0);
                        if back + Duration::from_secs(1) < faults_end {
                            acts.push((t, Act::Hide(v)));
                            acts.push((back, Act::Show(v)));
                            t = back;
                        }
                    }
                }
                t += secs(&mut rng, 2.0, 15.0);
            }
        }
        // Agents: signals, lookups, queries, until shortly before the end.
        for a in 0..agents.len() {
            let mut t = secs(&mut rng, 1.0, 6.0);
            let stop = faults_end + CONVERGENCE + Duration::from_secs(5);
            while t < stop {
                let act = match below(&mut rng, 5) {
                    0..=2 => Act::Signal(a),
                    3 => Act::Lookup(a),
                    _ => Act::Query(a),
                };
                acts.push((t, act));
                t += secs(&mut rng, 2.0, 12.0);
            }
        }
        // Faults.
        let drops = below(&mut rng, 6);
        for _ in 0..drops {
            let t = secs(&mut rng, 1.0, faults_end.as_secs_f64());
            if chance(&mut rng, 0.5) {
                acts.push((
                    t,
                    Act::DropVisitorSocket(below(&mut rng, visitors as u64) as usize),
                ));
            } else {
                acts.push((
                    t,
                    Act::DropAgentSocket(below(&mut rng, agents.len() as u64) as usize),
                ));
            }
        }
        let mut t = secs(&mut rng, 3.0, 20.0);
        for _ in 0..below(&mut rng, 3) {
            let down = secs(&mut rng, 0.2, 8.0);
            if t + down >= faults_end {
                break;
            }
            let act = if chance(&mut rng, 0.5) {
                Act::Crash(down)
            } else {
                Act::Restart(down)
            };
            acts.push((t, act));
            t += down + secs(&mut rng, 2.0, 20.0);
        }
        let converged_at = faults_end + CONVERGENCE;
        for (v, leaves) in leavers.iter().enumerate() {
            if *leaves {
                acts.push((converged_at + Duration::from_millis(1), Act::Leave(v)));
            }
        }
        acts.sort_by_key(|a| a.0);
        Scenario {
            seed,
            leavers,
            agents,
            policy,
            links,
            acts,
            http_fail: if chance(&mut rng, 0.5) { 0.05 } else { 0.0 },
            http_503: if chance(&mut rng, 0.5) { 0.05 } else { 0.0 },
            http_late: if chance(&mut rng, 0.3) { 0.03 } else { 0.0 },
            faults_end,
            converged_at,
            end: converged_at + Duration::from_secs(30),
        }
    }
}
