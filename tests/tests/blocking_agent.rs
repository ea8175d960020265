//! End-to-end tests of the blocking transport (`BlockingAgent`, `BlockingVisitor`) against the
//! reference service started by each test on loopback (plain, and TLS with a certificate made
//! here): credentials and token auth, presence without flicker across a navigation, lookup,
//! query, find, signals delivered / held / refused, invokes, a wrong API key and a bad token.
//!
//! Every wait is bounded by [`WAIT`], a guard against hangs, not a timing assertion: the tests
//! wait for events, never for time to pass.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use glance_presence_blocking::{AgentError, BlockingAgent, BlockingVisitor, TlsRoots};
use glance_presence_blocking::{TransportConfig, TransportError};
use glance_presence_protocol::agent::{
    AgentConfig, AgentConfigBuilder, AgentEvent, CommandError, Delivery, PresenceSource,
    RequestFailure, StopReason, VisitorPresence,
};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{GroupId, PartnerUserId, PresenceData};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{ServiceConfig, ServiceConfigBuilder, ServiceHandle, TlsConfig};
use rustls_pki_types::CertificateDer;
use serde_json::{json, Value};

/// Bound on every wait (a guard against hangs; nothing asserts on how long things take).
const WAIT: Duration = Duration::from_secs(20);

fn loopback() -> ServiceConfigBuilder {
    ServiceConfig::builder().listen("127.0.0.1:0".parse().unwrap())
}

fn service() -> ServiceHandle {
    ServiceHandle::spawn(loopback().build().unwrap()).unwrap()
}

/// An agent builder for `visitor` on `svc` with no auth set yet.
fn agent_builder(svc: &ServiceHandle, visitor: &str) -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(visitor)
        .presence_server(svc.http_base())
        .web_server(svc.http_base())
}

fn credentials_agent(svc: &ServiceHandle, visitor: &str) -> BlockingAgent {
    let config = agent_builder(svc, visitor)
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    BlockingAgent::new(config, TransportConfig::default()).unwrap()
}

fn token(svc: &ServiceHandle) -> String {
    svc.issue_token(
        GroupId::new(DEMO_GROUP_ID).unwrap(),
        &PartnerUserId::new("agent1").unwrap(),
        Duration::from_secs(3600),
    )
    .unwrap()
    .expose_secret()
    .to_owned()
}

fn token_agent(svc: &ServiceHandle, visitor: &str) -> BlockingAgent {
    let config = agent_builder(svc, visitor)
        .token(token(svc))
        .build()
        .unwrap();
    BlockingAgent::new(config, TransportConfig::default()).unwrap()
}

/// A visitor on `server`, connected (past `connected`).
fn visitor_on(server: &str, id: &str, transport: TransportConfig) -> BlockingVisitor {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(id)
        .presence_server(server)
        .build()
        .unwrap();
    let mut visitor = BlockingVisitor::new(config, transport).unwrap();
    visitor.connect().unwrap();
    let connected = visitor.wait_for(WAIT, |e| match e {
        VisitorEvent::Connected { server, .. } => Some(server.clone()),
        _ => None,
    });
    assert!(connected.is_some(), "the visitor did not connect");
    visitor
}

fn visitor(svc: &ServiceHandle, id: &str) -> BlockingVisitor {
    visitor_on(&svc.http_base(), id, TransportConfig::default())
}

fn page(url: &str) -> PresenceData {
    let mut data = PresenceData::new();
    data.insert("url", url);
    data
}

/// Takes the agent's events until one matches `pick`; returns it and the events before it.
/// Fails (listing what came) if none comes within [`WAIT`].
fn wait_agent(
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

fn is_connected(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::Connected { .. })
}

fn is_presence_with_url(e: &AgentEvent, url: &str) -> bool {
    // A frame that arrives while the lookup made after `connected` is still out is merged
    // into that snapshot (and reported with it), so either source counts.
    matches!(e, AgentEvent::Presence { source: PresenceSource::Live | PresenceSource::Snapshot, data, .. } if data.url() == Some(url))
}

fn is_presence_change(e: &AgentEvent) -> bool {
    matches!(e, AgentEvent::VisitorPresence { .. })
}

/// The next signal or invoke the visitor receives.
fn next_message(visitor: &mut BlockingVisitor) -> VisitorEvent {
    visitor
        .wait_for(WAIT, |e| match e {
            VisitorEvent::Signal { .. }
            | VisitorEvent::Invoke { .. }
            | VisitorEvent::InvokeRefused { .. } => Some(e.clone()),
            _ => None,
        })
        .expect("the visitor received nothing")
}

fn signal_text(event: &VisitorEvent) -> String {
    match event {
        VisitorEvent::Signal { data } => serde_json::to_string(data).unwrap(),
        other => panic!("expected a signal, got {other:?}"),
    }
}

#[test]
fn credentials_agent_sees_presence_and_a_navigation_without_flicker() {
    let svc = service();
    let mut agent = credentials_agent(&svc, "nav1");
    agent.connect().unwrap();
    let (connected, _) = wait_agent(&mut agent, "connected", is_connected);
    let AgentEvent::Connected { server, .. } = connected else {
        unreachable!()
    };
    assert_eq!(server, svc.authority());
    // A LoginKey was made and Authorize answered: the service refused nothing.
    assert_eq!(svc.stats().authorize_failures, 0);

    let mut visitor = visitor(&svc, "nav1");
    let mut first = page("https://shop.example/");
    first.insert("browser", "chrome");
    first.insert("cart", 3);
    visitor.command(|v, now| v.presence(now, first)).unwrap();
    let (presence, before) = wait_agent(&mut agent, "the first page", |e| {
        is_presence_with_url(e, "https://shop.example/")
    });
    let AgentEvent::Presence { data, changed, .. } = presence else {
        unreachable!()
    };
    assert_eq!(
        serde_json::to_string(&data).unwrap(),
        r#"{"url":"https://shop.example/","browser":"chrome","cart":3}"#
    );
    assert_eq!(changed, ["url", "browser", "cart"]);
    let socket_open = before
        .iter()
        .position(|e| matches!(e, AgentEvent::VisitorSocket { connected: true }));
    let present = before.iter().position(|e| {
        matches!(
            e,
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Present,
                ..
            }
        )
    });
    assert!(socket_open.is_some(), "no visitor socket open: {before:#?}");
    assert!(present.is_some(), "no present: {before:#?}");
    assert_eq!(agent.core().visitor_presence(), VisitorPresence::Present);

    // A page load: the socket closes and reopens; the visitor never stops being present.
    visitor
        .command(|v, now| v.navigate(now, "https://shop.example/cart"))
        .unwrap();
    let (presence, between) = wait_agent(&mut agent, "the second page", |e| {
        is_presence_with_url(e, "https://shop.example/cart")
    });
    let AgentEvent::Presence { changed, .. } = presence else {
        unreachable!()
    };
    assert_eq!(changed, ["url"]);
    let sockets: Vec<bool> = between
        .iter()
        .filter_map(|e| match e {
            AgentEvent::VisitorSocket { connected } => Some(*connected),
            _ => None,
        })
        .collect();
    assert_eq!(sockets, [false, true], "{between:#?}");
    assert!(
        !between.iter().any(is_presence_change),
        "a navigation changed the visitor's presence: {between:#?}"
    );
    assert_eq!(agent.core().visitor_presence(), VisitorPresence::Present);
    // The merged view keeps the first page's other fields.
    assert_eq!(
        serde_json::to_string(agent.core().presence_data()).unwrap(),
        r#"{"url":"https://shop.example/cart","browser":"chrome","cart":3}"#
    );

    // The one-shot requests agree, on the same (connected) agent.
    let snapshot = agent.lookup().unwrap().expect("present");
    assert_eq!(snapshot.direct_server.as_deref(), Some(svc.authority()));
    assert_eq!(
        snapshot.presence.url(),
        Some("https://shop.example/cart"),
        "{snapshot:?}"
    );
    assert_eq!(snapshot.presence.get("cart"), Some(&json!(3)));
    let status = agent.query().unwrap().expect("present");
    assert!(status.present);
    assert_eq!(status.sockets, 1);
    assert_eq!(status.presence.get("browser"), Some(&json!("chrome")));
    assert_eq!(
        agent.find().unwrap(),
        (true, Some(svc.authority().to_owned()))
    );

    agent.disconnect();
    let (stopped, _) = wait_agent(&mut agent, "stopped", |e| {
        matches!(e, AgentEvent::Stopped { .. })
    });
    assert_eq!(
        stopped,
        AgentEvent::Stopped {
            why: StopReason::Requested
        }
    );
    assert_eq!(
        agent.lookup().unwrap_err(),
        AgentError::Command(CommandError::Stopped)
    );
}

/// Asks `lookup` and `query` until both say the visitor is absent. The agent's own leave grace
/// and the service's presence window are two timers that may end in either order; a test
/// waits for the service's word instead of betting on the order.
fn until_the_service_says_absent(agent: &mut BlockingAgent) {
    let deadline = Instant::now() + WAIT;
    loop {
        let lookup = agent.lookup().unwrap();
        let query = agent.query().unwrap();
        if lookup.is_none() && query.is_none() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the service still says present after {WAIT:?}: {lookup:?} {query:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn token_agent_sees_a_visitor_leave_and_lookup_says_absent() {
    // Short windows so that leaving is reported quickly.
    let svc = ServiceHandle::spawn(
        loopback()
            .presence_window(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .unwrap();
    let config = agent_builder(&svc, "leaver")
        .token(token(&svc))
        .visitor_leave_grace(Duration::from_millis(500))
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    // Before anyone is there, without connecting.
    assert_eq!(agent.lookup().unwrap(), None);
    assert_eq!(agent.query().unwrap(), None);
    let (found, direct) = agent.find().unwrap();
    assert!(!found);
    assert_eq!(direct.as_deref(), Some(svc.authority()));

    agent.connect().unwrap();
    wait_agent(&mut agent, "connected", is_connected);
    let mut visitor = visitor(&svc, "leaver");
    visitor
        .command(|v, now| v.presence(now, page("https://shop.example/bye")))
        .unwrap();
    wait_agent(&mut agent, "the page", |e| {
        is_presence_with_url(e, "https://shop.example/bye")
    });
    assert!(agent.lookup().unwrap().is_some());

    visitor.disconnect();
    let (_, before) = wait_agent(&mut agent, "absent", |e| {
        matches!(
            e,
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Absent,
                ..
            }
        )
    });
    assert!(
        before
            .iter()
            .any(|e| matches!(e, AgentEvent::VisitorSocket { connected: false })),
        "{before:#?}"
    );
    assert_eq!(agent.core().visitor_presence(), VisitorPresence::Absent);
    until_the_service_says_absent(&mut agent);
    assert_eq!(agent.core().visitor_presence(), VisitorPresence::Absent);
}

#[test]
fn signals_are_delivered_held_across_a_page_load_or_refused_when_absent() {
    let svc = service();
    let mut agent = token_agent(&svc, "sig1");
    agent.connect().unwrap();
    wait_agent(&mut agent, "connected", is_connected);
    let mut page1 = visitor(&svc, "sig1");
    wait_agent(&mut agent, "visitor socket", |e| {
        matches!(e, AgentEvent::VisitorSocket { connected: true })
    });

    // Delivered, byte for byte (key order kept).
    let message = json!({"text": "hello", "n": 1.5, "list": [1, {"b": null}], "a": true});
    assert_eq!(agent.signal(message).unwrap(), Delivery::Delivered);
    assert_eq!(
        signal_text(&next_message(&mut page1)),
        r#"{"text":"hello","n":1.5,"list":[1,{"b":null}],"a":true}"#
    );
    // Any JSON value, not only objects.
    assert_eq!(agent.signal(json!("plain")).unwrap(), Delivery::Delivered);
    assert_eq!(signal_text(&next_message(&mut page1)), r#""plain""#);

    // The page unloads; until the next page connects the service holds the signal.
    page1.disconnect();
    wait_agent(&mut agent, "visitor socket closed", |e| {
        matches!(e, AgentEvent::VisitorSocket { connected: false })
    });
    assert_eq!(
        agent.signal(json!({"held": 1})).unwrap(),
        Delivery::Held,
        "the visitor is between two pages"
    );
    assert_eq!(svc.stats().core.signals_held, 1);
    let mut page2 = visitor(&svc, "sig1");
    assert_eq!(signal_text(&next_message(&mut page2)), r#"{"held":1}"#);
    // Delivered once: the next message the page gets is the next signal.
    assert_eq!(
        agent.signal(json!({"after": 2})).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(signal_text(&next_message(&mut page2)), r#"{"after":2}"#);
    assert_eq!(svc.stats().core.held_delivered, 1);

    // A visitor nobody has seen: refused, nothing delivered or held.
    let before = svc.stats().core;
    let mut other = token_agent(&svc, "nobody-here");
    assert_eq!(
        other.signal(json!({"x": 1})).unwrap_err(),
        AgentError::Failed(RequestFailure::VisitorNotPresent)
    );
    assert_eq!(
        other.invoke("GLANCE.Cobrowse.VisitorUI.showTerms", json!({})),
        Err(AgentError::Failed(RequestFailure::VisitorNotPresent))
    );
    let after = svc.stats().core;
    assert_eq!(after.signals_delivered, before.signals_delivered);
    assert_eq!(after.signals_held, before.signals_held);
}

#[test]
fn invokes_are_delivered_and_a_bad_func_is_refused_before_anything_is_sent() {
    let svc = service();
    let mut agent = credentials_agent(&svc, "inv1");
    let mut visitor = visitor(&svc, "inv1");
    // Without connect: the REST route needs no socket.
    assert_eq!(
        agent
            .invoke(
                "GLANCE.Cobrowse.VisitorUI.showTerms",
                json!({"sessionKey": "inv1"})
            )
            .unwrap(),
        Delivery::Delivered
    );
    match next_message(&mut visitor) {
        VisitorEvent::Invoke { func, args } => {
            assert_eq!(func, "GLANCE.Cobrowse.VisitorUI.showTerms");
            assert_eq!(args, json!({"sessionKey": "inv1", "remote": true}));
        }
        other => panic!("expected an invoke, got {other:?}"),
    }
    assert_eq!(
        agent
            .invoke("GLANCE_COBROWSE.Custom.highlight", json!([1, 2]))
            .unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        next_message(&mut visitor),
        VisitorEvent::Invoke {
            func: "GLANCE_COBROWSE.Custom.highlight".into(),
            args: json!([1, 2])
        }
    );

    let before = svc.stats().core;
    for bad in [
        "alert",
        "window.location",
        "GLANCE.",
        "glance.Cobrowse.x",
        "",
    ] {
        assert_eq!(
            agent.invoke(bad, json!({})),
            Err(AgentError::Command(CommandError::InvokeNotAllowed {
                func: bad.to_owned()
            })),
            "{bad:?}"
        );
    }
    assert_eq!(agent.core().pending_requests(), 0);
    let after = svc.stats().core;
    assert_eq!(after.signals_delivered, before.signals_delivered);
    assert_eq!(after.signals_held, before.signals_held);
    assert_eq!(after.signals_not_present, before.signals_not_present);
    // The next thing the page gets is the next real message: nothing was sent in between.
    assert_eq!(
        agent.signal(json!({"marker": true})).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        signal_text(&next_message(&mut visitor)),
        r#"{"marker":true}"#
    );
}

#[test]
fn a_wrong_api_key_or_a_bad_token_is_an_authorization_failure() {
    let svc = service();
    let wrong_key = |visitor: &str| {
        let config = agent_builder(&svc, visitor)
            .credentials("agent1", "not-the-demo-key")
            .build()
            .unwrap();
        BlockingAgent::new(config, TransportConfig::default()).unwrap()
    };

    // Watching: connfail/authorization once, then the agent stops.
    let mut agent = wrong_key("v1");
    agent.connect().unwrap();
    let (stopped, before) = wait_agent(&mut agent, "stopped", |e| {
        matches!(e, AgentEvent::Stopped { .. })
    });
    assert_eq!(
        stopped,
        AgentEvent::Stopped {
            why: StopReason::Authorization
        }
    );
    assert!(
        before.contains(&AgentEvent::Error {
            error: "connfail".into(),
            detail: "authorization".into()
        }),
        "{before:#?}"
    );
    assert!(
        !before.iter().any(is_connected),
        "connected without a token: {before:#?}"
    );
    assert!(svc.stats().authorize_failures >= 1);
    assert_eq!(agent.next_event(Some(Duration::ZERO)), None);
    assert_eq!(
        agent.signal(json!({})).unwrap_err(),
        AgentError::Command(CommandError::Stopped)
    );

    // A one-shot request fails, and the agent says why it stopped.
    let mut agent = wrong_key("v1");
    let err = agent.lookup().unwrap_err();
    // When Authorize refuses the key the agent stops, and the waiting request fails for that
    // reason (not as merely cancelled).
    assert!(
        matches!(
            err,
            AgentError::Failed(RequestFailure::Authorization { .. })
        ),
        "{err:?}"
    );
    let (stopped, _) = wait_agent(&mut agent, "stopped", |e| {
        matches!(e, AgentEvent::Stopped { .. })
    });
    assert_eq!(
        stopped,
        AgentEvent::Stopped {
            why: StopReason::Authorization
        }
    );

    // A token the service did not issue: the REST call is refused with 401.
    let config = agent_builder(&svc, "v1")
        .token("not-a-valid-token")
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config.clone(), TransportConfig::default()).unwrap();
    assert_eq!(
        agent.lookup().unwrap_err(),
        AgentError::Failed(RequestFailure::Authorization {
            status: Some(401),
            detail: Some("invalid token".into()),
        })
    );
    assert_eq!(agent.lookup().unwrap_err().reason(), "authorization");
    // And on the socket: it cannot be renewed, so the agent stops.
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    agent.connect().unwrap();
    let (stopped, before) = wait_agent(&mut agent, "stopped", |e| {
        matches!(e, AgentEvent::Stopped { .. })
    });
    assert_eq!(
        stopped,
        AgentEvent::Stopped {
            why: StopReason::Authorization
        },
        "{before:#?}"
    );
    assert!(!before.iter().any(is_connected), "{before:#?}");
}

#[test]
fn the_events_iterator_ends_after_disconnect() {
    let svc = service();
    let agent = token_agent(&svc, "iter1");
    let (tx, rx) = mpsc::channel();
    // On a thread, so that an iterator that never ends fails the test instead of hanging it.
    std::thread::spawn(move || {
        let mut agent = agent;
        agent.connect().unwrap();
        let mut events = Vec::new();
        for event in agent.events() {
            let connected = is_connected(&event);
            events.push(event);
            if connected {
                agent.disconnect();
                break;
            }
        }
        events.extend(agent.events());
        let _ = tx.send(events);
    });
    let events = rx.recv_timeout(WAIT).expect("the iterator did not end");
    assert_eq!(events.first(), Some(&AgentEvent::Connecting { attempt: 0 }));
    assert!(events.iter().any(is_connected), "{events:#?}");
    assert_eq!(
        events.last(),
        Some(&AgentEvent::Stopped {
            why: StopReason::Requested
        })
    );
}

/// A TLS service with a certificate for 127.0.0.1 made here, and that certificate.
fn tls_service() -> (ServiceHandle, CertificateDer<'static>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let tls = TlsConfig::from_pem(certified.cert.pem(), certified.signing_key.serialize_pem());
    let svc = ServiceHandle::spawn(loopback().tls(tls).build().unwrap()).unwrap();
    (svc, certified.cert.der().clone())
}

fn trusting(root: &CertificateDer<'static>) -> TransportConfig {
    TransportConfig {
        tls_roots: TlsRoots::only([root.clone()]),
        ..TransportConfig::default()
    }
}

#[test]
fn wss_and_https_work_end_to_end_with_a_test_certificate() {
    let (svc, root) = tls_service();
    assert!(svc.http_base().starts_with("https://127.0.0.1:"));
    let config = agent_builder(&svc, "secure")
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, trusting(&root)).unwrap();
    agent.connect().unwrap();
    let (connected, _) = wait_agent(&mut agent, "connected", is_connected);
    assert_eq!(
        connected,
        AgentEvent::Connected {
            server: svc.authority().to_owned(),
            keepalive_secs: 30
        }
    );
    let mut visitor = visitor_on(&svc.http_base(), "secure", trusting(&root));
    visitor
        .command(|v, now| v.presence(now, page("https://shop.example/tls")))
        .unwrap();
    wait_agent(&mut agent, "the page", |e| {
        is_presence_with_url(e, "https://shop.example/tls")
    });
    let snapshot = agent.lookup().unwrap().expect("present");
    assert_eq!(snapshot.presence.url(), Some("https://shop.example/tls"));
    assert_eq!(
        agent.signal(json!({"over": "tls"})).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        signal_text(&next_message(&mut visitor)),
        r#"{"over":"tls"}"#
    );

    // The public roots do not vouch for a certificate made here: a connection failure.
    let config = agent_builder(&svc, "secure")
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    let mut untrusting = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    let err = untrusting.lookup().unwrap_err();
    assert_eq!(err.reason(), "connection", "{err:?}");
}

/// Extra roots on top of the public ones are honoured on both paths: `Authorize` and the
/// lookup over HTTPS (a list of certificates: the public ones plus the test certificate) and
/// the socket over WSS (a rustls root store).
#[test]
fn extra_roots_on_top_of_the_public_ones_are_trusted() {
    let (svc, root) = tls_service();
    let transport = TransportConfig {
        tls_roots: TlsRoots::webpki().with_extra_roots([root]),
        ..TransportConfig::default()
    };
    assert!(transport.tls_roots.trusts_webpki());
    let config = agent_builder(&svc, "extended")
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, transport).unwrap();
    agent.connect().unwrap();
    wait_agent(&mut agent, "connected", is_connected);
    assert!(agent.lookup().unwrap().is_none());
}

#[test]
fn a_root_rustls_refuses_is_a_transport_error() {
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("v1")
        .token("t")
        .build()
        .unwrap();
    let transport = TransportConfig {
        tls_roots: TlsRoots::only([CertificateDer::from(b"not DER at all".to_vec())]),
        ..TransportConfig::default()
    };
    let err = BlockingAgent::new(config, transport).unwrap_err();
    assert!(matches!(err, TransportError::Tls(_)), "{err}");
}

/// Guards the helper above against matching nothing: a `Value` comparison ignores key order,
/// the text comparison the tests use does not.
#[test]
fn signal_text_keeps_key_order() {
    let event = VisitorEvent::Signal {
        data: serde_json::from_str::<Value>(r#"{"b":1,"a":2}"#).unwrap(),
    };
    assert_eq!(signal_text(&event), r#"{"b":1,"a":2}"#);
}
