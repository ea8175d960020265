//! End-to-end tests of the agent, in both transports, against a scripted server that
//! misbehaves on purpose (see the support module): an oversized frame, close frames with a code
//! a peer must never send and with an application code, a service that refuses every
//! `connected` with an authorization error, a server that accepts and then drops every socket,
//! and one that keeps sending `redirect`.
//!
//! The rate tests run the blocking agent for a fixed window with a short, jitter-free reconnect
//! schedule and bound what it did by what that schedule allows when the backoff is not reset
//! by a link that did not stay up. They print the rates per minute (reconnects, `findvisitor`
//! and Authorize calls) for the record.
//!
//! Every other wait is bounded by [`WAIT`], a guard against hangs: those tests wait for events,
//! not for time to pass.

mod misbehaving_support;

use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingAgent, TransportConfig};
use glance_presence_protocol::agent::{
    AgentConfig, AgentConfigBuilder, AgentEvent, DisconnectReason, StopReason, VisitorPresence,
};
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use misbehaving_support::{ScriptedServer, Step};
use serde_json::json;

/// Bound on every wait for an event (a guard against hangs, not a timing assertion).
const WAIT: Duration = Duration::from_secs(20);

/// The reconnect schedule of the rate tests: no jitter, so the bound is exact. Attempts 1 and
/// 2 wait 300 ms, every later one 1.5 s, until the link has stayed up for the core's stable
/// time (far longer than any link in these tests).
const POLICY: ReconnectPolicy = ReconnectPolicy::Steps {
    early: Duration::from_millis(300),
    early_attempts: 2,
    later: Duration::from_millis(1500),
};

/// How long the rate tests watch.
const WINDOW: Duration = Duration::from_secs(6);

/// A presence frame of about 200 KB: over the core's frame limit (64 KiB), under the
/// transport's ceiling (1 MiB).
fn oversized_frame() -> String {
    json!({"type": "presence", "data": {"url": "https://big.example/", "pad": "x".repeat(200_000)}})
        .to_string()
}

const AFTER_URL: &str = "https://after.example/";

fn after_frame() -> Step {
    Step::json(json!({"type": "presence", "data": {"url": AFTER_URL}}))
}

/// Script: the first socket gets the oversized frame, then a normal one; later sockets (there
/// should be none) just say `connected`.
fn oversized_script(n: usize) -> Vec<Step> {
    if n == 0 {
        vec![
            Step::AwaitConnect,
            Step::connected(),
            Step::Text(oversized_frame()),
            after_frame(),
            Step::Hold,
        ]
    } else {
        vec![Step::AwaitConnect, Step::connected(), Step::Hold]
    }
}

/// Script: the first socket is closed by the server with `code` and `reason`; later sockets
/// stay up.
fn closing_script(code: u16, reason: &'static str) -> impl Fn(usize) -> Vec<Step> {
    move |n| {
        if n == 0 {
            vec![
                Step::AwaitConnect,
                Step::connected(),
                Step::Close {
                    code,
                    reason: reason.to_owned(),
                },
            ]
        } else {
            vec![Step::AwaitConnect, Step::connected(), Step::Hold]
        }
    }
}

fn builder(server: &ScriptedServer) -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("v1")
        .presence_server(server.http_base())
        .web_server(server.http_base())
        .reconnect_policy(POLICY)
        .rng_seed(7)
}

fn token_config(server: &ScriptedServer) -> AgentConfig {
    builder(server)
        .token("stand-in-bare-token")
        .build()
        .unwrap()
}

fn blocking_agent(config: AgentConfig) -> BlockingAgent {
    BlockingAgent::new(config, TransportConfig::default()).unwrap()
}

/// Takes the agent's events until one matches `pick`; returns it and the events before it.
fn wait_blocking(
    agent: &mut BlockingAgent,
    what: &str,
    mut pick: impl FnMut(&AgentEvent) -> bool,
) -> (AgentEvent, Vec<AgentEvent>) {
    let deadline = Instant::now() + WAIT;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match agent.next_event(Some(left)) {
            Some(event) if pick(&event) => return (event, before),
            Some(event) => before.push(event),
            None => panic!("no {what} within {WAIT:?}; the agent saw {before:#?}"),
        }
    }
}

/// Every event of the agent for `window` (or until it stops), with when it came.
fn watch_blocking(agent: &mut BlockingAgent, window: Duration) -> Vec<(Duration, AgentEvent)> {
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let left = window.saturating_sub(start.elapsed());
        if left.is_zero() {
            return seen;
        }
        match agent.next_event(Some(left)) {
            Some(event) => {
                let stopped = matches!(event, AgentEvent::Stopped { .. });
                seen.push((start.elapsed(), event));
                if stopped {
                    return seen;
                }
            }
            None => return seen,
        }
    }
}

/// The page of the frame after the big one: live, or merged into the snapshot of the lookup
/// made after `connected` when the frame came before the lookup's answer.
fn is_after_page(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::Presence { data, .. } if data.url() == Some(AFTER_URL))
}

fn is_link_loss(e: &AgentEvent) -> bool {
    matches!(
        e,
        AgentEvent::Disconnected { .. } | AgentEvent::Reconnecting { .. }
    )
}

fn is_disconnected(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::Disconnected { .. })
}

/// Checks what came before the next page: one protocol violation naming the size, no lost
/// link.
fn assert_oversized_was_judged_by_the_core(before: &[AgentEvent]) {
    let violations: Vec<&String> = before
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ProtocolViolation { detail } => Some(detail),
            _ => None,
        })
        .collect();
    assert_eq!(violations.len(), 1, "{before:#?}");
    assert!(
        violations[0].contains("exceeds the limit"),
        "{}",
        violations[0]
    );
    assert!(
        !before.iter().any(is_link_loss),
        "the oversized frame cost the link: {before:#?}"
    );
}

// ---- issue 9 row 1: an oversized frame is the core's to judge ---------------------------------

#[test]
fn blocking_oversized_frame_is_a_protocol_violation_and_the_link_stays() {
    let server = ScriptedServer::start(oversized_script);
    let mut agent = blocking_agent(token_config(&server));
    agent.connect().unwrap();
    let (_, before) = wait_blocking(&mut agent, "the page after the big frame", is_after_page);
    assert_oversized_was_judged_by_the_core(&before);
    assert_eq!(server.counts().sockets, 1, "the agent reconnected");
    agent.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_oversized_frame_is_a_protocol_violation_and_the_link_stays() {
    let server = ScriptedServer::start(oversized_script);
    let mut agent =
        glance_presence_async::AsyncAgent::start(token_config(&server), TransportConfig::default())
            .unwrap();
    agent.connect().await.unwrap();
    let (_, before) =
        async_support::wait(&mut agent, "the page after the big frame", is_after_page).await;
    assert_oversized_was_judged_by_the_core(&before);
    assert_eq!(server.counts().sockets, 1, "the agent reconnected");
    agent.disconnect().await;
}

// ---- issue 9 row 5: a peer's close is reported as the peer sent it ----------------------------

fn assert_close_reported(
    before: &[AgentEvent],
    disconnected: &AgentEvent,
    expected: &DisconnectReason,
) {
    let AgentEvent::Disconnected { why } = disconnected else {
        unreachable!()
    };
    assert_eq!(why, expected, "{before:#?}");
}

fn invalid_1006() -> DisconnectReason {
    let reason = glance_presence_protocol::io::CloseReason::from_close_payload(&[0x03, 0xEE]);
    reason.into()
}

fn app_close_4001() -> DisconnectReason {
    DisconnectReason::ClosedByPeer {
        code: Some(4001),
        reason: "bye".to_owned(),
    }
}

#[test]
fn blocking_close_with_1006_is_reported_as_sent_and_invalid() {
    let server = ScriptedServer::start(closing_script(1006, ""));
    let mut agent = blocking_agent(token_config(&server));
    agent.connect().unwrap();
    let (disconnected, before) = wait_blocking(&mut agent, "disconnected", is_disconnected);
    let expected = invalid_1006();
    assert!(
        matches!(&expected, DisconnectReason::ClosedByPeerInvalid { code: Some(1006), reason, .. } if reason.is_empty()),
        "{expected:?}"
    );
    assert_close_reported(&before, &disconnected, &expected);
    // The agent goes on: the next socket stays up.
    wait_blocking(&mut agent, "connected again", |e| {
        matches!(e, AgentEvent::Connected { .. })
    });
    agent.disconnect();
}

#[test]
fn blocking_close_with_4001_bye_is_reported_as_sent() {
    let server = ScriptedServer::start(closing_script(4001, "bye"));
    let mut agent = blocking_agent(token_config(&server));
    agent.connect().unwrap();
    let (disconnected, before) = wait_blocking(&mut agent, "disconnected", is_disconnected);
    assert_close_reported(&before, &disconnected, &app_close_4001());
    agent.disconnect();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_close_with_1006_is_reported_as_sent_and_invalid() {
    let server = ScriptedServer::start(closing_script(1006, ""));
    let mut agent =
        glance_presence_async::AsyncAgent::start(token_config(&server), TransportConfig::default())
            .unwrap();
    agent.connect().await.unwrap();
    let (disconnected, before) =
        async_support::wait(&mut agent, "disconnected", is_disconnected).await;
    assert_close_reported(&before, &disconnected, &invalid_1006());
    async_support::wait(&mut agent, "connected again", |e| {
        matches!(e, AgentEvent::Connected { .. })
    })
    .await;
    agent.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_close_with_4001_bye_is_reported_as_sent() {
    let server = ScriptedServer::start(closing_script(4001, "bye"));
    let mut agent =
        glance_presence_async::AsyncAgent::start(token_config(&server), TransportConfig::default())
            .unwrap();
    agent.connect().await.unwrap();
    let (disconnected, before) =
        async_support::wait(&mut agent, "disconnected", is_disconnected).await;
    assert_close_reported(&before, &disconnected, &app_close_4001());
    agent.disconnect().await;
}

mod async_support {
    use super::*;
    use glance_presence_async::AsyncAgent;

    /// Takes the agent's events until one matches `pick`; returns it and the events before it.
    pub async fn wait(
        agent: &mut AsyncAgent,
        what: &str,
        mut pick: impl FnMut(&AgentEvent) -> bool,
    ) -> (AgentEvent, Vec<AgentEvent>) {
        let mut before = Vec::new();
        let found = tokio::time::timeout(WAIT, async {
            while let Some(event) = agent.next_event().await {
                if pick(&event) {
                    return Some(event);
                }
                before.push(event);
            }
            None
        })
        .await;
        match found {
            Ok(Some(event)) => (event, before),
            _ => panic!("no {what} within {WAIT:?}; the agent saw {before:#?}"),
        }
    }
}

// ---- issue 9 rows 2 and 3: loops slow down and stop -------------------------------------------

/// How many reconnect attempts fit in `window` when attempt `n` waits at least
/// `POLICY.bounds(n).0` and the attempt counter is never reset.
fn attempts_within(window: Duration) -> usize {
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    loop {
        let (low, _) = POLICY.bounds(attempts as u32 + 1);
        waited += low;
        if waited > window {
            return attempts;
        }
        attempts += 1;
    }
}

fn per_minute(count: usize, elapsed: Duration) -> f64 {
    count as f64 * 60.0 / elapsed.as_secs_f64().max(0.001)
}

/// What a rate test saw.
struct Rates {
    elapsed: Duration,
    reconnects: usize,
    finds: usize,
    authorizes: usize,
    events: Vec<(Duration, AgentEvent)>,
}

impl Rates {
    /// Prints the counts and their rate per minute. An agent that stopped makes no more calls,
    /// so its totals are its rate for any minute; otherwise the window's counts are
    /// extrapolated to a minute.
    fn print(&self, case: &str) {
        let stopped = matches!(self.events.last(), Some((_, AgentEvent::Stopped { .. })));
        let rate = |count: usize| {
            if stopped {
                count as f64
            } else {
                per_minute(count, self.elapsed)
            }
        };
        eprintln!(
            "{case}: {} after {:.1} s: {} reconnects, {} findvisitor, {} Authorize; per minute: {:.0} reconnects, {:.0} findvisitor, {:.0} Authorize",
            if stopped { "stopped" } else { "still running" },
            self.elapsed.as_secs_f64(),
            self.reconnects,
            self.finds,
            self.authorizes,
            rate(self.reconnects),
            rate(self.finds),
            rate(self.authorizes),
        );
    }

    fn presence_states(&self) -> Vec<VisitorPresence> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                AgentEvent::VisitorPresence { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }
}

/// Runs `agent` against `server` for [`WINDOW`] (or until it stops) and counts.
fn run_window(server: &ScriptedServer, agent: &mut BlockingAgent) -> Rates {
    run_for(server, agent, WINDOW)
}

/// Runs `agent` against `server` for `window` (or until it stops) and counts.
fn run_for(server: &ScriptedServer, agent: &mut BlockingAgent, window: Duration) -> Rates {
    let start = Instant::now();
    agent.connect().unwrap();
    let events = watch_blocking(agent, window);
    let elapsed = start.elapsed();
    let counts = server.counts();
    Rates {
        elapsed,
        reconnects: counts.sockets.saturating_sub(1),
        finds: counts.find,
        authorizes: counts.authorize,
        events,
    }
}

/// Script: every `connected` is followed by an authorization refusal (the socket stays open,
/// as Glance's service would leave it).
fn refusal_script(_: usize) -> Vec<Step> {
    vec![
        Step::AwaitConnect,
        Step::connected(),
        Step::json(
            json!({"type": "error", "data": {"error": "connfail", "detail": "authorization"}}),
        ),
        Step::Hold,
    ]
}

/// Script: every socket says `connected`, the visitor is there, and the socket drops 50 ms
/// later.
fn drop_script(_: usize) -> Vec<Step> {
    vec![
        Step::AwaitConnect,
        Step::connected(),
        Step::json(json!({"type": "visitorconn", "data": {"connected": true}})),
        Step::Pause(Duration::from_millis(50)),
        Step::Drop,
    ]
}

/// Script: every socket says `connected`, then redirects the agent to the server's other port
/// (a redirect to the server the agent is on is ignored), back and forth.
fn redirect_script(_: usize) -> Vec<Step> {
    vec![
        Step::AwaitConnect,
        Step::connected(),
        Step::json(json!({"type": "visitorconn", "data": {"connected": true}})),
        Step::json(json!({"type": "redirect", "data": {"direct": "127.0.0.1:{OTHER_PORT}"}})),
        Step::Hold,
    ]
}

#[test]
fn refusal_loop_backs_off_and_stops_with_authorization() {
    // Every `connected` is followed by an authorization refusal; Authorize itself always
    // answers with a fresh token.
    let server = ScriptedServer::start(refusal_script);
    let config = builder(&server)
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    let mut agent = blocking_agent(config);
    let rates = run_window(&server, &mut agent);
    rates.print("refusal loop");
    let last = rates.events.last().map(|(_, e)| e.clone());
    assert!(
        rates.authorizes <= 5,
        "{} Authorize calls in {:?}",
        rates.authorizes,
        rates.elapsed
    );
    assert!(
        rates.reconnects <= 5,
        "{} reconnects in {:?}",
        rates.reconnects,
        rates.elapsed
    );
    assert_eq!(
        last,
        Some(AgentEvent::Stopped {
            why: StopReason::Authorization
        }),
        "the refusals never became fatal"
    );
    // Stopped is the last word: nothing more reaches the server.
    let after = server.counts();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.counts().authorize, after.authorize);
    assert_eq!(server.counts().sockets, after.sockets);
}

#[test]
fn accept_then_drop_loop_slows_down_and_the_visitor_does_not_flip() {
    let server = ScriptedServer::start(drop_script);
    let config = builder(&server)
        .token("stand-in-bare-token")
        // Longer than the window: the agent has no reason to give up on a visitor it saw.
        .visitor_leave_grace(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut agent = blocking_agent(config);
    let rates = run_window(&server, &mut agent);
    rates.print("accept-then-drop");
    let bound = attempts_within(rates.elapsed) + 1;
    assert!(
        rates.reconnects <= bound,
        "{} reconnects in {:?}; a backoff that is not reset allows {bound}",
        rates.reconnects,
        rates.elapsed
    );
    assert!(
        rates.finds <= bound + 1,
        "{} findvisitor calls",
        rates.finds
    );
    let states = rates.presence_states();
    assert!(!states.contains(&VisitorPresence::Absent), "{states:?}");
    assert_eq!(
        states,
        [VisitorPresence::Present],
        "the visitor's state flipped while the link came and went"
    );
}

#[test]
fn redirect_loop_slows_down_and_the_visitor_does_not_flip() {
    let server = ScriptedServer::start(redirect_script);
    let config = builder(&server)
        .token("stand-in-bare-token")
        .visitor_leave_grace(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut agent = blocking_agent(config);
    let rates = run_window(&server, &mut agent);
    rates.print("redirect loop");
    let redirects = rates
        .events
        .iter()
        .filter(|(_, e)| matches!(e, AgentEvent::Redirected { .. }))
        .count();
    assert!(
        redirects >= 1,
        "no redirect was followed: {:#?}",
        rates.events
    );
    // Up to three immediate hops before the backoff applies, then the schedule.
    let bound = attempts_within(rates.elapsed) + 3 + 1;
    assert!(
        rates.reconnects <= bound,
        "{} reconnects in {:?}; a backoff that is not reset allows {bound}",
        rates.reconnects,
        rates.elapsed
    );
    let states = rates.presence_states();
    assert!(!states.contains(&VisitorPresence::Absent), "{states:?}");
    assert_eq!(
        states,
        [VisitorPresence::Present],
        "the visitor's state flipped while the agent was redirected"
    );
}

/// The three loops with the default reconnect policy (full jitter, 1 s base, 60 s cap) for a
/// minute each, in parallel, for the record: run with `--ignored --nocapture`. Nothing is
/// asserted beyond what the shorter tests check.
#[test]
#[ignore = "takes a minute; prints the rates with the default policy"]
fn rates_per_minute_with_the_default_policy() {
    const MINUTE: Duration = Duration::from_secs(60);
    type Script = fn(usize) -> Vec<Step>;
    let cases: [(&str, Script, bool); 3] = [
        ("refusal loop (default policy)", refusal_script, true),
        ("accept-then-drop (default policy)", drop_script, false),
        ("redirect loop (default policy)", redirect_script, false),
    ];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(case, script, credentials)| {
            std::thread::spawn(move || {
                let server = ScriptedServer::start(script);
                let base = AgentConfig::builder()
                    .group_id(DEMO_GROUP_ID)
                    .visitor_id("v1")
                    .presence_server(server.http_base())
                    .web_server(server.http_base());
                let config = if credentials {
                    base.credentials("agent1", DEMO_API_KEY)
                } else {
                    base.token("stand-in-bare-token")
                };
                let mut agent = blocking_agent(config.build().unwrap());
                run_for(&server, &mut agent, MINUTE).print(case);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}
