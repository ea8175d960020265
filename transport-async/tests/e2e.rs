//! End-to-end tests of the async transport (`AsyncAgent`, `AsyncVisitor`) against the
//! reference service, started by each test on loopback: credentials, presence, lookup,
//! signals, a refused invoke, disconnect, a dropped request future, and 200 agents on one
//! runtime.
//!
//! Every wait is bounded by [`WAIT`], a guard against hangs, not a timing assertion.

use std::time::Duration;

use futures_util::SinkExt;
use glance_presence_async::{AgentError, AsyncAgent, AsyncVisitor, TransportConfig};
use glance_presence_protocol::agent::{
    AgentConfig, AgentEvent, CommandError, Delivery, RequestKind, StopReason, VisitorPresence,
};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{GroupId, PartnerUserId, PresenceData};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{RunningService, Service, ServiceConfig};
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Bound on every wait (a guard against hangs; nothing asserts on how long things take).
const WAIT: Duration = Duration::from_secs(15);

async fn service() -> RunningService {
    let config = ServiceConfig::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    Service::start(config).await.unwrap()
}

fn credentials_agent(svc: &RunningService, visitor: &str) -> AsyncAgent {
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(visitor)
        .presence_server(svc.http_base())
        .web_server(svc.http_base())
        .credentials("agent1", DEMO_API_KEY)
        .build()
        .unwrap();
    AsyncAgent::start(config, TransportConfig::default()).unwrap()
}

/// Takes the agent's events until one matches `pick`; fails (listing what came) otherwise.
async fn wait_agent(
    agent: &mut AsyncAgent,
    what: &str,
    mut pick: impl FnMut(&AgentEvent) -> bool,
) -> AgentEvent {
    let mut seen = Vec::new();
    let found = timeout(WAIT, async {
        while let Some(event) = agent.next_event().await {
            if pick(&event) {
                return Some(event);
            }
            seen.push(event);
        }
        None
    })
    .await;
    match found {
        Ok(Some(event)) => event,
        _ => panic!("no {what} within {WAIT:?}; the agent saw {seen:#?}"),
    }
}

async fn wait_visitor<T>(
    visitor: &mut AsyncVisitor,
    what: &str,
    mut pick: impl FnMut(&VisitorEvent) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let found = timeout(WAIT, async {
        while let Some(event) = visitor.next_event().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
            seen.push(event);
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        _ => panic!("no {what} within {WAIT:?}; the visitor saw {seen:#?}"),
    }
}

fn page(url: &str) -> PresenceData {
    let mut data = PresenceData::new();
    data.insert("url", url);
    data
}

/// A visitor on `svc`, connected (past `connected`), that has reported `url`.
async fn visitor(svc: &RunningService, id: &str, url: &str) -> AsyncVisitor {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(id)
        .presence_server(svc.http_base())
        .build()
        .unwrap();
    let mut visitor = AsyncVisitor::start(config, TransportConfig::default()).unwrap();
    visitor.connect().await.unwrap();
    wait_visitor(&mut visitor, "visitor connected", |e| {
        matches!(e, VisitorEvent::Connected { .. }).then_some(())
    })
    .await;
    let data = page(url);
    let frames = svc.stats().core.frames_received;
    visitor
        .command(move |v, now| v.presence(now, data))
        .await
        .unwrap()
        .unwrap();
    // The frame is sent by the visitor's task: wait until the service has taken it, so that
    // a lookup made next sees the page.
    timeout(WAIT, async {
        while svc.stats().core.frames_received == frames {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    visitor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_connect_sees_the_visitor_and_its_page() {
    let svc = service().await;
    let _visitor = visitor(&svc, "v1", "https://shop.example/cart").await;
    let mut agent = credentials_agent(&svc, "v1");
    agent.connect().await.unwrap();
    wait_agent(&mut agent, "connected", |e| {
        matches!(e, AgentEvent::Connected { .. })
    })
    .await;
    // Presence and the page come in either order (live frame or snapshot): wait for both.
    let (mut present, mut page_seen) = (false, false);
    wait_agent(&mut agent, "the visitor present, with its page", |e| {
        match e {
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Present,
                ..
            } => present = true,
            AgentEvent::Presence { data, .. } => {
                page_seen |= data.url() == Some("https://shop.example/cart")
            }
            _ => {}
        }
        present && page_seen
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_present_and_absent() {
    let svc = service().await;
    let _visitor = visitor(&svc, "here", "https://shop.example/here").await;

    let absent = credentials_agent(&svc, "nobody");
    assert_eq!(timeout(WAIT, absent.lookup()).await.unwrap().unwrap(), None);
    let status = timeout(WAIT, absent.query()).await.unwrap().unwrap();
    assert!(status.is_none(), "{status:?}");

    let present = credentials_agent(&svc, "here");
    let snapshot = timeout(WAIT, present.lookup())
        .await
        .unwrap()
        .unwrap()
        .expect("the visitor is present");
    assert_eq!(
        snapshot.presence.url(),
        Some("https://shop.example/here"),
        "{snapshot:?}"
    );
    let (found, direct) = timeout(WAIT, present.find()).await.unwrap().unwrap();
    assert!(found);
    assert_eq!(direct.as_deref(), Some(svc.authority().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_reaches_the_visitor_exactly_and_a_bad_invoke_sends_nothing() {
    let svc = service().await;
    let mut visitor = visitor(&svc, "v2", "https://shop.example/").await;
    let agent = credentials_agent(&svc, "v2");

    let data = json!({"text": "hello", "n": [1, 2.5, null], "nested": {"ok": true}});
    let delivery = timeout(WAIT, agent.signal(data.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery, Delivery::Delivered);
    let got = wait_visitor(&mut visitor, "the signal", |e| match e {
        VisitorEvent::Signal { data } => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, data);

    let refused = timeout(WAIT, agent.invoke("alert", json!({"x": 1})))
        .await
        .unwrap();
    assert!(
        matches!(
            refused,
            Err(AgentError::Command(CommandError::InvokeNotAllowed { ref func })) if func == "alert"
        ),
        "{refused:?}"
    );
    // The next invoke the visitor sees is the allowed one: the refused one never left.
    let func = "GLANCE.Cobrowse.VisitorUI.showTerms";
    timeout(WAIT, agent.invoke(func, json!({"sessionKey": "v2"})))
        .await
        .unwrap()
        .unwrap();
    let first = wait_visitor(&mut visitor, "an invoke", |e| match e {
        VisitorEvent::Invoke { func, .. } | VisitorEvent::InvokeRefused { func } => {
            Some(func.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(first, func);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_ends_with_stopped_and_then_nothing() {
    let svc = service().await;
    let mut agent = credentials_agent(&svc, "v3");
    agent.connect().await.unwrap();
    wait_agent(&mut agent, "connected", |e| {
        matches!(e, AgentEvent::Connected { .. })
    })
    .await;
    timeout(WAIT, agent.disconnect()).await.unwrap();
    let mut last = None;
    while let Some(event) = timeout(WAIT, agent.next_event()).await.unwrap() {
        last = Some(event);
    }
    assert_eq!(
        last,
        Some(AgentEvent::Stopped {
            why: StopReason::Requested
        })
    );
    let after = timeout(WAIT, agent.lookup()).await.unwrap();
    assert_eq!(after, Err(AgentError::Command(CommandError::Stopped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_lookup_future_does_not_break_the_agent() {
    let svc = service().await;
    let _visitor = visitor(&svc, "v4", "https://shop.example/4").await;
    let mut agent = credentials_agent(&svc, "v4");
    // Poll a lookup once (its command is queued), then drop it.
    tokio::select! {
        biased;
        _ = agent.lookup() => panic!("a lookup cannot resolve on its first poll"),
        () = std::future::ready(()) => {}
    }
    let snapshot = timeout(WAIT, agent.lookup()).await.unwrap().unwrap();
    assert!(snapshot.is_some_and(|s| s.presence.url() == Some("https://shop.example/4")));
    // The abandoned lookup's outcome is not lost: it comes out of `next_event`.
    let orphan = wait_agent(&mut agent, "the dropped lookup's outcome", |e| {
        matches!(
            e,
            AgentEvent::RequestOutcome {
                request: RequestKind::Lookup,
                result: Ok(_),
                ..
            }
        )
    })
    .await;
    assert!(matches!(orphan, AgentEvent::RequestOutcome { .. }));
    agent.connect().await.unwrap();
    wait_agent(&mut agent, "connected", |e| {
        matches!(e, AgentEvent::Connected { .. })
    })
    .await;
}

/// 200 raw visitors (tokio-tungstenite clients speaking the visitor frames) and 200 agents on
/// one runtime; every agent must see its own visitor's page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_agents_each_see_their_own_visitor() {
    const N: usize = 200;
    let svc = service().await;
    let url = format!("{}/visitorws", svc.ws_base());
    let mut visitors = Vec::with_capacity(N);
    for n in 0..N {
        let (mut ws, _) = timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
            .await
            .unwrap()
            .unwrap();
        let connect = json!({"type":"connect","groupid":12345,"visitorid":format!("v{n}"),"version":"6.33.0"});
        ws.send(Message::text(connect.to_string())).await.unwrap();
        let presence =
            json!({"type":"presence","data":{"url":format!("https://shop.example/v{n}")}});
        ws.send(Message::text(presence.to_string())).await.unwrap();
        visitors.push(ws);
    }
    let token = svc
        .issue_token(
            GroupId::new(DEMO_GROUP_ID).unwrap(),
            &PartnerUserId::new("agent1").unwrap(),
            Duration::from_secs(3600),
        )
        .unwrap()
        .expose_secret()
        .to_owned();
    let mut agents = tokio::task::JoinSet::new();
    for n in 0..N {
        let config = AgentConfig::builder()
            .group_id(DEMO_GROUP_ID)
            .visitor_id(format!("v{n}"))
            .presence_server(svc.http_base())
            .token(token.clone())
            .build()
            .unwrap();
        let mut agent = AsyncAgent::start(config, TransportConfig::default()).unwrap();
        agents.spawn(async move {
            agent.connect().await.unwrap();
            let mine = format!("https://shop.example/v{n}");
            while let Some(event) = agent.next_event().await {
                if let AgentEvent::Presence { data, .. } = &event {
                    if let Some(url) = data.url() {
                        assert_eq!(url, mine, "agent {n} saw another visitor's page");
                        return n;
                    }
                }
            }
            panic!("agent {n} stopped before seeing its visitor");
        });
    }
    let mut seen = [false; N];
    let all = timeout(WAIT, async {
        while let Some(done) = agents.join_next().await {
            seen[done.unwrap()] = true;
        }
    })
    .await;
    let missing: Vec<usize> = (0..N).filter(|&n| !seen[n]).collect();
    assert!(
        all.is_ok() && missing.is_empty(),
        "agents that did not see their visitor in time: {missing:?}"
    );
    drop(visitors);
}

/// `wss://` and `https://` for real: a service with a certificate made here, an agent and a
/// visitor that trust only that certificate, and an agent that trusts the public roots and so
/// cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_work_with_a_test_certificate() {
    use glance_presence_async::TlsRoots;
    use glance_presence_service::TlsConfig;

    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let tls = TlsConfig::from_pem(certified.cert.pem(), certified.signing_key.serialize_pem());
    let config = ServiceConfig::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .tls(tls)
        .build()
        .unwrap();
    let svc = Service::start(config).await.unwrap();
    assert!(svc.http_base().starts_with("https://127.0.0.1:"));
    let trusting = TransportConfig {
        tls_roots: TlsRoots::only([certified.cert.der().clone()]),
        ..TransportConfig::default()
    };

    let visitor_config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id("secure")
        .presence_server(svc.http_base())
        .build()
        .unwrap();
    let mut visitor = AsyncVisitor::start(visitor_config, trusting.clone()).unwrap();
    visitor.connect().await.unwrap();
    wait_visitor(&mut visitor, "the visitor connected over wss", |e| {
        matches!(e, VisitorEvent::Connected { .. }).then_some(())
    })
    .await;

    let agent_config = |transport: TransportConfig| {
        let config = AgentConfig::builder()
            .group_id(DEMO_GROUP_ID)
            .visitor_id("secure")
            .presence_server(svc.http_base())
            .web_server(svc.http_base())
            .credentials("agent1", DEMO_API_KEY)
            .build()
            .unwrap();
        AsyncAgent::start(config, transport).unwrap()
    };
    // Authorize and findvisitor over https, the socket over wss.
    let mut agent = agent_config(trusting);
    agent.connect().await.unwrap();
    wait_agent(&mut agent, "connected over wss", |e| {
        matches!(e, AgentEvent::Connected { .. })
    })
    .await;
    let delivery = agent.signal(json!({"over": "tls"})).await.unwrap();
    assert_eq!(delivery, Delivery::Delivered);
    let data = wait_visitor(&mut visitor, "the signal over wss", |e| match e {
        VisitorEvent::Signal { data } => Some(data.clone()),
        _ => None,
    })
    .await;
    assert_eq!(data, json!({"over": "tls"}));

    // The public roots do not trust the test certificate: the request fails as a connection
    // failure, never as a success.
    let doubting = agent_config(TransportConfig::default());
    let err = doubting.lookup().await.unwrap_err();
    assert_eq!(err.reason(), "connection", "{err:?}");
}
