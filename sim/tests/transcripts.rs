//! Whole-system transcripts: agents, visitors and the service core in one log, in virtual
//! time, snapshotted. Each line is `<time> <who> <what>`; tokens are redacted.

use std::time::Duration;

use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_sim::scenario::{Act, AgentAuth, AgentPlan, Scenario};
use glance_presence_sim::World;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A quiet scenario: `agents` watch visitor 0, every link 20 ms, no faults.
fn quiet(agents: Vec<AgentAuth>, acts: Vec<(Duration, Act)>, end: f64) -> Scenario {
    let links = (0..1 + agents.len())
        .map(|i| (Duration::from_millis(20 + 5 * i as u64), Duration::ZERO))
        .collect();
    Scenario {
        seed: 1,
        leavers: vec![false],
        agents: agents
            .into_iter()
            .map(|auth| AgentPlan { visitor: 0, auth })
            .collect(),
        policy: ReconnectPolicy::default(),
        links,
        acts,
        http_fail: 0.0,
        http_503: 0.0,
        http_late: 0.0,
        faults_end: Duration::ZERO,
        converged_at: secs(end - 0.5),
        end: secs(end),
    }
}

fn transcript(scenario: Scenario) -> String {
    let outcome = World::new(scenario, true).run();
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    outcome.transcript.unwrap_or_default()
}

const TOKEN: AgentAuth = AgentAuth::Token {
    lifetime: Duration::from_secs(3600),
};

#[test]
fn a_visitor_navigates_while_two_agents_watch() {
    let acts = vec![
        (secs(2.0), Act::Presence(0)),
        (secs(4.0), Act::Navigate(0)),
        (secs(6.0), Act::Signal(0)),
        (secs(8.0), Act::Navigate(0)),
        (secs(9.0), Act::Lookup(1)),
    ];
    insta::assert_snapshot!(transcript(quiet(vec![TOKEN, TOKEN], acts, 12.0)));
}

#[test]
fn the_service_restarts_under_a_watched_visitor() {
    let acts = vec![
        (secs(3.0), Act::Restart(secs(2.0))),
        (secs(20.0), Act::Signal(0)),
    ];
    insta::assert_snapshot!(transcript(quiet(vec![TOKEN], acts, 24.0)));
}

#[test]
fn an_agent_renews_its_token_and_moves_its_socket() {
    let acts = vec![(secs(50.0), Act::Signal(0))];
    let credentials = AgentAuth::Credentials { minutes: 1 };
    insta::assert_snapshot!(transcript(quiet(vec![credentials], acts, 52.0)));
}
