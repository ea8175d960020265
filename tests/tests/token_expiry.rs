//! End to end over loopback: what happens when an agent's token expires while its socket is
//! open. The reference service closes the socket at the token's `exp` with
//! `error {connfail, authorization}`; an agent with credentials renews its token before that
//! (at 80 % of its life) and moves its socket to the new one, so it keeps watching without a
//! false absent; an agent with a bare token gets one error and stops.
//!
//! Every wait is bounded (a guard against hangs); nothing asserts how long things take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingAgent, BlockingVisitor, TransportConfig};
use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, DisconnectReason, StopReason, VisitorPresence,
};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{GroupId, PartnerUserId};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{ServiceConfig, ServiceHandle};

const WAIT: Duration = Duration::from_secs(20);

fn service() -> ServiceHandle {
    ServiceHandle::spawn(
        ServiceConfig::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .build()
            .unwrap(),
    )
    .unwrap()
}

/// A visitor kept serviced on its own thread until the flag drops.
fn visitor_thread(svc: &ServiceHandle, id: &str) -> (Arc<AtomicBool>, thread::JoinHandle<()>) {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(id)
        .presence_server(svc.http_base())
        .build()
        .unwrap();
    let running = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&running);
    let handle = thread::spawn(move || {
        let mut visitor = BlockingVisitor::new(config, TransportConfig::default()).unwrap();
        visitor.connect().unwrap();
        while flag.load(Ordering::SeqCst) {
            if let Some(VisitorEvent::Stopped { .. }) =
                visitor.next_event(Some(Duration::from_millis(50)))
            {
                return;
            }
        }
        visitor.disconnect();
    });
    (running, handle)
}

/// Every event of `agent` for `span`.
fn events_for(agent: &mut BlockingAgent, span: Duration) -> Vec<AgentEvent> {
    let until = Instant::now() + span;
    let mut events = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return events;
        }
        if let Some(event) = agent.next_event(Some(left)) {
            events.push(event);
        }
    }
}

fn wait_for(agent: &mut BlockingAgent, what: &str, pick: impl Fn(&AgentEvent) -> bool) {
    let until = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match agent.next_event(Some(left)) {
            Some(event) if pick(&event) => return,
            Some(event) => seen.push(event),
            None => panic!("no {what} within {WAIT:?}: {seen:#?}"),
        }
    }
}

#[test]
fn credentials_agent_keeps_watching_across_its_token_expiry_without_a_false_absent() {
    let svc = service();
    let (running, visitor) = visitor_thread(&svc, "exp1");
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("exp1")
        .presence_server(svc.http_base())
        .web_server(svc.http_base())
        .credentials("agent1", DEMO_API_KEY)
        .authorize_duration_minutes(1)
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    agent.connect().unwrap();
    wait_for(&mut agent, "the visitor present", |e| {
        matches!(
            e,
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Present,
                ..
            }
        )
    });
    // The token lives 60 s: renewed at 48 s, the old one expires at 60 s.
    let events = events_for(&mut agent, Duration::from_secs(68));
    assert!(
        events.contains(&AgentEvent::Disconnected {
            why: DisconnectReason::TokenRenewed
        }),
        "{events:#?}"
    );
    let after_renewal = events
        .iter()
        .skip_while(|e| !matches!(e, AgentEvent::Disconnected { .. }))
        .any(|e| matches!(e, AgentEvent::Connected { .. }));
    assert!(after_renewal, "{events:#?}");
    for event in &events {
        match event {
            AgentEvent::VisitorPresence { state, .. } => {
                assert_eq!(*state, VisitorPresence::Present, "{events:#?}")
            }
            AgentEvent::Error { .. } | AgentEvent::Stopped { .. } => {
                panic!("{event:?} in {events:#?}")
            }
            AgentEvent::Disconnected { why } => {
                assert_eq!(*why, DisconnectReason::TokenRenewed, "{events:#?}")
            }
            _ => {}
        }
    }
    running.store(false, Ordering::SeqCst);
    visitor.join().unwrap();
}

#[test]
fn bare_token_agent_gets_one_error_and_stops_when_its_token_expires() {
    let svc = service();
    let token = svc
        .issue_token(
            GroupId::new(DEMO_GROUP_ID).unwrap(),
            &PartnerUserId::new("agent1").unwrap(),
            Duration::from_secs(3),
        )
        .unwrap();
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("exp2")
        .presence_server(svc.http_base())
        .token(token.expose_secret())
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    agent.connect().unwrap();
    wait_for(&mut agent, "connected", |e| {
        matches!(e, AgentEvent::Connected { .. })
    });
    let until = Instant::now() + WAIT;
    let mut events = Vec::new();
    while !matches!(events.last(), Some(AgentEvent::Stopped { .. })) {
        let left = until.saturating_duration_since(Instant::now());
        match agent.next_event(Some(left)) {
            Some(event) => events.push(event),
            None => panic!("no stop within {WAIT:?}: {events:#?}"),
        }
    }
    let errors: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::Error { .. }))
        .collect();
    assert_eq!(
        errors,
        vec![&AgentEvent::Error {
            error: "connfail".into(),
            detail: "authorization".into()
        }],
        "{events:#?}"
    );
    assert_eq!(
        events.last(),
        Some(&AgentEvent::Stopped {
            why: StopReason::Authorization
        })
    );
    assert!(agent.next_event(Some(Duration::from_millis(200))).is_none());
}
