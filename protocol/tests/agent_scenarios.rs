//! Transcript snapshots of the agent's main scenarios, against a scripted fake peer with
//! virtual time: every command, input, timer and output with its offset from the start.
//! Each test also asserts the facts the scenario is about, so a wrong snapshot cannot be
//! accepted by accident.

use glance_presence_testkit::support;

use std::time::Duration;

use glance_presence_protocol::agent::{
    AgentEvent, CommandError, ConnectionState, Delivery, DisconnectReason, RequestFailure,
    RequestValue, StopReason, VisitorPresence,
};
use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::io::{CloseReason, Output, SansIo};
use serde_json::json;
use support::agent::ops::jwt_with_exp;
use support::agent::{Harness, FIND_FOUND};

const LOOKUP_PRESENT: &str = r#"{"direct":"127.0.0.1:8080","visitorpresent":"1699999990.0","timestamp":"1699999990.0","visitorid":"v1","groupid":"12345","ds":"127.0.0.1/0","directserver":"127.0.0.1","tlsport":0,"httpsport":8080,"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn count(h: &Harness, pred: impl Fn(&AgentEvent) -> bool) -> usize {
    h.event_list().iter().filter(|e| pred(e)).count()
}

fn outcome(
    h: &Harness,
    id: glance_presence_protocol::agent::RequestId,
) -> Result<RequestValue, RequestFailure> {
    let found: Vec<_> = h
        .event_list()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::RequestOutcome {
                id: got, result, ..
            } if got == id => Some(result),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "{id} must resolve exactly once");
    found.into_iter().next().unwrap()
}

#[test]
fn happy_path() {
    let mut h = Harness::new(|b| b.origin("https://console.example.com"));
    h.connect().unwrap();
    assert_eq!(h.core.connection_state(), ConnectionState::Connecting);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    h.note("a live presence frame arrives before the snapshot: it is applied after it");
    h.frame(r#"{"type":"presence","data":{"url":"https://shop.example.com/cart","cartvalue":42}}"#);
    h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.frame(r#"{"type":"presence","data":{"url":"https://shop.example.com/checkout"}}"#);
    h.frame(r#"{"type":"terms","data":{"status":"accepted"}}"#);
    h.frame(r#"{"type":"visibility","data":{"visibility":"hidden"}}"#);
    h.frame(r#"{"type":"visitorsessionstart"}"#);
    h.frame(r#"{"type":"visitorsessionend"}"#);
    h.frame(r#"{"mtype":"somethingnew","data":{"a":1}}"#);
    h.advance(secs(30));
    h.advance(secs(30));
    insta::assert_snapshot!(h.transcript());

    let data = h.core.presence_data();
    assert_eq!(data.url(), Some("https://shop.example.com/checkout"));
    assert_eq!(data.get("cartvalue"), Some(&json!(42)));
    let keys: Vec<&String> = data.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys[0], "url",
        "the snapshot's order is kept, live keys appended"
    );
    assert_eq!(keys.last().unwrap().as_str(), "cartvalue");
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    let keepalives = h
        .outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::SendFrame { text, .. } if text == r#"{"type":"k"}"#))
        .count();
    assert_eq!(keepalives, 2, "one k per 30 s");
    let connect_frame = h
        .outputs
        .iter()
        .find_map(|(_, o)| match o {
            Output::SendFrame { text, .. } if text.contains("connect") => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        connect_frame.contains(r#""groupid":"12345""#),
        "{connect_frame}"
    );
    assert!(connect_frame.contains(r#""version":"6.25.0""#));
}

#[test]
fn page_navigation_does_not_flicker() {
    let mut h = Harness::new(|b| b);
    h.connect_happy(LOOKUP_PRESENT);
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.note("the visitor navigates: its socket closes and a new one opens 3 s later");
    h.frame(r#"{"type":"visitorsock","data":{"connected":false}}"#);
    h.advance(secs(3));
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.frame(r#"{"type":"presence","data":{"url":"https://shop.example.com/next"}}"#);
    h.advance(secs(10));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        count(&h, |e| matches!(
            e,
            AgentEvent::VisitorPresence {
                state: VisitorPresence::Absent,
                ..
            }
        )),
        0
    );
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
}

#[test]
fn visitor_leaves_after_the_grace_period() {
    let mut h = Harness::new(|b| b);
    h.connect_happy(LOOKUP_PRESENT);
    h.frame(r#"{"type":"visitorsock","data":{"connected":false}}"#);
    h.advance(Duration::from_millis(5999));
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Absent);
    h.frame(r#"{"type":"visitorconn","data":{"connected":false}}"#);
    h.advance(secs(1));
    insta::assert_snapshot!(h.transcript());
    let absent_at: Vec<Duration> = h
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                AgentEvent::VisitorPresence {
                    state: VisitorPresence::Absent,
                    ..
                }
            )
        })
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(absent_at, vec![secs(6)]);
}

#[test]
fn link_drops_and_comes_back_with_backoff() {
    let mut h = Harness::new(|b| b.reconnect_policy(ReconnectPolicy::glance()));
    h.connect_happy(LOOKUP_PRESENT);
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.advance(secs(1));
    h.close_socket(CloseReason::ClosedByPeer {
        code: Some(1001),
        reason: "going away".to_owned(),
    });
    // The last known state is kept for the leave grace while the link is down...
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    h.note("first reconnect attempt fails at findvisitor");
    h.advance(secs(5));
    h.fail_http("/findvisitor", "connection refused");
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    h.note("second attempt: the socket cannot be opened");
    h.advance(secs(5));
    // ...then (6 s after the drop) it is no longer vouched for.
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Unknown);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.close_socket(CloseReason::TransportError {
        detail: "connection refused".to_owned(),
    });
    h.note("third attempt succeeds");
    h.advance(secs(5));
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
    h.note(
        "a drop right after connected does not reset the backoff: the fourth attempt waits 60 s",
    );
    h.close_socket(CloseReason::ClosedByPeer {
        code: None,
        reason: String::new(),
    });
    h.advance(secs(60));
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
    h.note("the link stays up for the stable time (30 s): the next drop waits 5 s again");
    h.advance(secs(30));
    h.close_socket(CloseReason::ClosedByPeer {
        code: None,
        reason: String::new(),
    });
    insta::assert_snapshot!(h.transcript());
    let delays = h.reconnects();
    assert_eq!(
        delays,
        vec![(1, 5000), (2, 5000), (3, 5000), (4, 60000), (1, 5000)]
    );
    assert_eq!(h.max_open_sockets, 1);
}

#[test]
fn full_jitter_backoff_delays_stay_within_bounds_and_grow() {
    let mut h = Harness::new(|b| b);
    h.connect().unwrap();
    for _ in 0..8 {
        h.fail_http("/findvisitor", "unreachable");
        let deadline = h.core.poll_timeout().unwrap();
        h.advance(deadline - h.now);
    }
    let policy = ReconnectPolicy::default();
    for event in h.event_list() {
        if let AgentEvent::Reconnecting { attempt, delay_ms } = event {
            let (lo, hi) = policy.bounds(attempt);
            assert!(delay_ms >= lo.as_millis() as u64 && delay_ms <= hi.as_millis() as u64);
        }
    }
    assert_eq!(
        h.core.connection_state(),
        ConnectionState::Reconnecting { attempt: 8 }
    );
}

#[test]
fn dead_link_is_detected_and_replaced() {
    let mut h = Harness::new(|b| b.reconnect_policy(ReconnectPolicy::glance()));
    h.auto_pong = false;
    h.connect_happy(LOOKUP_PRESENT);
    h.note("an answered ping keeps the link");
    h.advance(secs(15));
    h.pong();
    h.note("then silence: ping at 15 s, dead 10 s later");
    h.advance(secs(15));
    h.advance(secs(10));
    h.advance(secs(5));
    insta::assert_snapshot!(h.transcript());
    let pings = h.pings_sent();
    assert_eq!(pings, 2);
    assert!(h.event_list().contains(&AgentEvent::Disconnected {
        why: DisconnectReason::DeadLink
    }));
    assert!(h.open_sockets.len() <= 1);
}

#[test]
fn token_refresh_with_credentials() {
    let mut h =
        Harness::with_credentials(|b| b.authorize_duration_minutes(10).idle_ping_after(secs(600)));
    h.connect().unwrap();
    let first = jwt_with_exp(support::agent::UNIX_START + 600);
    h.respond("Authorize", 200, &format!("{first:?}"));
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":240}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.note("80% of the 600 s life: renewed, and the socket moves to the new token before the old one lapses");
    h.advance(secs(479));
    assert!(h.find_http("Authorize").is_none());
    h.advance(secs(1));
    assert!(h.find_http("Authorize").is_some());
    h.respond("Authorize", 200, r#""renewed-token""#);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":240}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.note("a 401 on a request: the token is renewed and the request retried once");
    let id = h.lookup().unwrap();
    h.respond(
        "/lookupvisitor",
        401,
        r#"{"err":"authorization","msg":"expired"}"#,
    );
    h.respond("Authorize", 200, r#""third-token""#);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":240}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.respond("/lookupvisitor", 200, "{}");
    h.note("the service refuses the token on the socket: renew and reconnect at once");
    h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#);
    h.respond("Authorize", 200, r#""fourth-token""#);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, id), Ok(RequestValue::Lookup { visitor: None }));
    let last_connect = h
        .outputs
        .iter()
        .rev()
        .find_map(|(_, o)| match o {
            Output::SendFrame { text, .. } if text.contains(r#""type":"connect""#) => {
                Some(text.clone())
            }
            _ => None,
        })
        .unwrap();
    assert!(last_connect.contains("fourth-token"), "{last_connect}");
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    assert!(!h.core.is_stopped());
}

#[test]
fn expired_bare_token_stops_at_once() {
    let mut h = Harness::new(|b| b.token(jwt_with_exp(support::agent::UNIX_START - 60)));
    h.connect().unwrap();
    h.advance(secs(120));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        h.event_list(),
        vec![
            AgentEvent::Error {
                error: "connfail".into(),
                detail: "authorization".into()
            },
            AgentEvent::Stopped {
                why: StopReason::Authorization
            }
        ]
    );
    assert!(
        h.outputs.iter().all(|(_, o)| matches!(o, Output::Event(_))),
        "no IO at all"
    );
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.core.connect(h.now), Err(CommandError::Stopped));
}

#[test]
fn bare_token_refused_by_the_service_is_reported_once() {
    let mut h = Harness::new(|b| b);
    h.connect().unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#);
    h.close_socket(CloseReason::ClosedByPeer {
        code: Some(1008),
        reason: "authorization".to_owned(),
    });
    h.advance(secs(600));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        count(
            &h,
            |e| matches!(e, AgentEvent::Error { detail, .. } if detail == "authorization")
        ),
        1
    );
    assert_eq!(
        h.event_list().last(),
        Some(&AgentEvent::Stopped {
            why: StopReason::Authorization
        })
    );
    assert_eq!(
        h.outputs
            .iter()
            .filter(|(_, o)| matches!(o, Output::OpenSocket { .. }))
            .count(),
        1,
        "no retry storm"
    );
}

#[test]
fn redirect_moves_the_socket() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    h.frame(r#"{"type":"redirect","data":{"direct":"127.0.0.1:9090"}}"#);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.note("a redirect to a non-loopback plain-text host is refused");
    h.frame(r#"{"type":"redirect","data":{"direct":"evil.example.com:80"}}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(h.core.server().unwrap().host_port(), "127.0.0.1:9090");
    assert!(h.event_list().contains(&AgentEvent::Redirected {
        server: "127.0.0.1:9090".into()
    }));
    assert_eq!(h.max_open_sockets, 1);
    assert!(h
        .event_list()
        .iter()
        .any(|e| matches!(e, AgentEvent::ProtocolViolation { detail } if detail.contains("evil"))));
}

#[test]
fn scaledown_and_serverclose() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    h.frame(r#"{"type":"scaledown"}"#);
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected"}"#);
    let id = h.lookup().unwrap();
    h.frame(r#"{"type":"serverclose"}"#);
    h.advance(secs(60));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, id), Err(RequestFailure::Cancelled));
    assert_eq!(
        h.event_list().last(),
        Some(&AgentEvent::Stopped {
            why: StopReason::ServerClose
        })
    );
}

#[test]
fn lookup_of_an_absent_visitor() {
    let mut h = Harness::new(|b| b);
    h.note("REST commands work without connect()");
    let id = h.lookup().unwrap();
    h.respond("/lookupvisitor", 200, "{}");
    let present = h.lookup().unwrap();
    h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, id), Ok(RequestValue::Lookup { visitor: None }));
    match outcome(&h, present) {
        Ok(RequestValue::Lookup {
            visitor: Some(record),
        }) => {
            assert_eq!(record.direct_server.as_deref(), Some("127.0.0.1:8080"));
            assert_eq!(record.presence.browser(), Some("chrome"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn signal_delivered_held_and_visitor_absent() {
    // Glance's way: findvisitor before every signal.
    let mut h = Harness::new(|b| b.find_before_every_signal(true));
    h.connect_happy(LOOKUP_PRESENT);
    let delivered = h.signal(json!({"hello": "world"})).unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.respond("/signalvisitor", 200, r#"{"delivered":true}"#);
    let held = h.signal(json!({"n": 2})).unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.respond("/signalvisitor", 200, r#"{"held":true}"#);
    let absent = h.signal(json!({"n": 3})).unwrap();
    h.respond("/findvisitor", 200, r#"{"visitorfound":false}"#);
    let gone = h
        .invoke(
            "GLANCE.Cobrowse.VisitorUI.showTerms",
            json!({"sessionKey": "1234"}),
        )
        .unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.respond(
        "/signalvisitor",
        404,
        r#"{"err":"visitornotpresent","msg":"visitor not present"}"#,
    );
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        outcome(&h, delivered),
        Ok(RequestValue::Sent(Delivery::Delivered))
    );
    assert_eq!(outcome(&h, held), Ok(RequestValue::Sent(Delivery::Held)));
    assert_eq!(outcome(&h, absent), Err(RequestFailure::VisitorNotPresent));
    assert_eq!(outcome(&h, gone), Err(RequestFailure::VisitorNotPresent));
    let posts = h
        .outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::Http { request, .. } if request.url.contains("/signalvisitor")))
        .count();
    assert_eq!(posts, 3, "no signalvisitor after visitorfound:false");
}

#[test]
fn invoke_with_a_bad_func_is_refused_before_anything_is_sent() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    let before = h.outputs.len();
    for func in [
        "alert",
        "window.GLANCE.x",
        "GLANCE.",
        "GLANCE_COBROWSE.Other.x",
        "",
    ] {
        let result = h.invoke(func, json!({}));
        assert_eq!(
            result,
            Err(CommandError::InvokeNotAllowed {
                func: func.to_owned()
            })
        );
    }
    assert_eq!(h.outputs.len(), before, "nothing sent");
    let ok = h
        .invoke("GLANCE_COBROWSE.Custom.doThing", json!([1]))
        .unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.respond("/signalvisitor", 200, r#"{"delivered":true}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, ok), Ok(RequestValue::Sent(Delivery::Delivered)));
}

#[test]
fn request_timeout() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    let id = h.query().unwrap();
    h.advance(Duration::from_millis(9_999));
    assert_eq!(h.core.pending_requests(), 1);
    h.advance(Duration::from_millis(1));
    h.note("a late answer is ignored");
    h.respond("/query", 200, "{}");
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, id), Err(RequestFailure::TimedOut));
}

#[test]
fn disconnect_with_requests_pending() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    let lookup = h.lookup().unwrap();
    let signal = h.signal(json!("ping")).unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.disconnect();
    h.note("answers after the stop are ignored; nothing follows stopped");
    h.respond("/lookupvisitor", 200, "{}");
    h.respond("/signalvisitor", 200, r#"{"delivered":true}"#);
    h.advance(secs(60));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, lookup), Err(RequestFailure::Cancelled));
    assert_eq!(outcome(&h, signal), Err(RequestFailure::Cancelled));
    assert_eq!(
        h.event_list().last(),
        Some(&AgentEvent::Stopped {
            why: StopReason::Requested
        })
    );
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.core.lookup(h.now), Err(CommandError::Stopped));
    assert!(h.core.poll_output().is_none());
    assert!(h.open_sockets.is_empty());
}

#[test]
fn commands_wait_while_reconnecting_in_a_bounded_queue() {
    let mut h = Harness::new(|b| b.command_queue_bound(2));
    h.connect().unwrap();
    let a = h.lookup().unwrap();
    let b = h.query().unwrap();
    assert_eq!(h.lookup(), Err(CommandError::QueueFull { bound: 2 }));
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, "{}"); // the snapshot
    h.respond("/lookupvisitor", 200, "{}");
    h.respond("/query", 200, "{}");
    insta::assert_snapshot!(h.transcript());
    assert_eq!(outcome(&h, a), Ok(RequestValue::Lookup { visitor: None }));
    assert_eq!(outcome(&h, b), Ok(RequestValue::Query { visitor: None }));
}

#[test]
fn findvisitor_absent_with_and_without_a_direct_server() {
    let mut h = Harness::new(|b| b.presence_server("http://127.0.0.1:7000"));
    h.connect().unwrap();
    h.note("visitorfound:false with a direct server: connect there");
    h.respond(
        "/findvisitor",
        200,
        r#"{"visitorfound":false,"directserver":"127.0.0.1","httpsport":8443}"#,
    );
    h.close_socket(CloseReason::TransportError {
        detail: "refused".to_owned(),
    });
    h.advance(secs(2));
    h.note("visitorfound:false without one: fall back to the presence server, never hang");
    h.respond("/findvisitor", 200, r#"{"visitorfound":false}"#);
    insta::assert_snapshot!(h.transcript());
    let urls = h.socket_urls();
    assert_eq!(
        urls,
        vec!["ws://127.0.0.1:8443/agent", "ws://127.0.0.1:7000/agent"]
    );
}

#[test]
fn discovery_through_visitor_settings() {
    let mut h = Harness::new(|b| b.discovery(true));
    h.connect().unwrap();
    h.respond(
        "GetVisitorSettings3",
        200,
        r#"{"presenceUrl":"127.0.0.1:9443","isPresenceLoadBalanced":true}"#,
    );
    h.note("load balanced: the socket goes to presenceUrl, no findvisitor");
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(h.core.server().unwrap().host_port(), "127.0.0.1:9443");
    assert!(h.find_http("/findvisitor").is_none());
}

#[test]
fn garbage_frames_become_protocol_violations() {
    let mut h = Harness::new(|b| b.max_frame_bytes(256));
    h.connect_happy("{}");
    h.frame("not json");
    h.frame("[1,2,3]");
    h.frame(r#"{"data":{}}"#);
    h.frame(r#"{"type":"visitorsock","data":{"connected":"yes"}}"#);
    h.frame(&format!(
        r#"{{"type":"presence","data":{{"x":"{}"}}}}"#,
        "a".repeat(300)
    ));
    h.input(glance_presence_protocol::io::TransportInput::BinaryFrame {
        socket: h.last_socket.unwrap(),
        data: vec![0xff, 0xfe],
    });
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        count(&h, |e| matches!(e, AgentEvent::ProtocolViolation { .. })),
        6
    );
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
}

#[test]
fn socket_route_signals_are_sent_unconfirmed() {
    let mut h =
        Harness::new(|b| b.signal_route(glance_presence_protocol::agent::SignalRoute::Socket));
    assert_eq!(h.signal(json!(1)), Err(CommandError::NotConnected));
    h.connect().unwrap();
    let queued = h.signal(json!({"queued": true})).unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    let id = h
        .invoke(
            "GLANCE.Cobrowse.VisitorUI.showTerms",
            json!({"sessionKey": "1"}),
        )
        .unwrap();
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        outcome(&h, queued),
        Ok(RequestValue::Sent(Delivery::SentUnconfirmed))
    );
    assert_eq!(
        outcome(&h, id),
        Ok(RequestValue::Sent(Delivery::SentUnconfirmed))
    );
}

#[test]
fn spurious_timeouts_do_nothing() {
    let mut h = Harness::new(|b| b);
    h.connect_happy("{}");
    let before = h.outputs.len();
    for _ in 0..3 {
        h.spurious_timeout();
    }
    assert_eq!(h.outputs.len(), before);
    assert!(h.core.poll_timeout().unwrap() > h.now);
}

/// The states the agent reported, in order.
fn presence_states(h: &Harness) -> Vec<VisitorPresence> {
    h.event_list()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::VisitorPresence { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// Reconnects after a service crash: findvisitor, socket, `connected`, and the snapshot.
fn reconnect_with_snapshot(h: &mut Harness, lookup_body: &str) {
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, lookup_body);
}

#[test]
fn restarted_service_with_an_empty_lookup_does_not_report_a_present_visitor_absent() {
    let mut h = Harness::new(|b| b.reconnect_policy(ReconnectPolicy::glance()));
    h.connect_happy(LOOKUP_PRESENT);
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.note("the service is killed and restarted: it knows nobody yet");
    h.close_socket(CloseReason::TransportError {
        detail: "connection reset".into(),
    });
    h.advance(secs(5));
    reconnect_with_snapshot(&mut h, "{}");
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    h.note("the visitor reconnects to the restarted service 3 s later");
    h.advance(secs(3));
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.advance(secs(30));
    insta::assert_snapshot!(h.transcript());
    assert_eq!(presence_states(&h), vec![VisitorPresence::Present]);
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
}

#[test]
fn restarted_service_reports_a_visitor_that_never_comes_back_absent_after_the_grace() {
    let mut h = Harness::new(|b| b.reconnect_policy(ReconnectPolicy::glance()));
    h.connect_happy(LOOKUP_PRESENT);
    h.close_socket(CloseReason::TransportError {
        detail: "connection reset".into(),
    });
    h.advance(secs(5));
    reconnect_with_snapshot(&mut h, "{}");
    h.advance(Duration::from_millis(5999));
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Absent);
    assert_eq!(
        presence_states(&h),
        vec![VisitorPresence::Present, VisitorPresence::Absent]
    );
}

#[test]
fn visitorconn_before_connected_then_an_empty_lookup_keeps_the_visitor_present() {
    // The six steps the fuzzer found: open, visitorconn true before connected, connected,
    // the snapshot answers {} — no present-then-absent at the same instant.
    let mut h = Harness::new(|b| b);
    h.connect().unwrap();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"visitorconn","data":{"connected":true}}"#);
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.advance(secs(20));
    assert_eq!(presence_states(&h), vec![VisitorPresence::Present]);
    assert_eq!(h.core.visitor_presence(), VisitorPresence::Present);
}

#[test]
fn repeated_token_refusals_back_off_and_stop_with_authorization() {
    let mut h = Harness::with_credentials(|b| b);
    h.connect().unwrap();
    let mut authorize_calls = 0;
    for _ in 0..10 {
        if h.core.is_stopped() {
            break;
        }
        // Wait for whatever the agent waits for (the backoff), then answer its steps.
        while h.find_http("Authorize").is_none() {
            let Some(deadline) = h.core.poll_timeout() else {
                break;
            };
            h.advance(deadline - h.now);
        }
        if h.find_http("Authorize").is_none() {
            break;
        }
        authorize_calls += 1;
        h.respond("Authorize", 200, r#""a-token""#);
        h.respond("/findvisitor", 200, FIND_FOUND);
        h.open_socket();
        h.frame(r#"{"type":"connected","keepalive":30}"#);
        h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#);
    }
    insta::assert_snapshot!(h.transcript());
    assert!(h.core.is_stopped());
    assert_eq!(authorize_calls, 4, "the first token and three renewals");
    let stops: Vec<_> = h
        .event_list()
        .into_iter()
        .filter(|e| matches!(e, AgentEvent::Stopped { .. }))
        .collect();
    assert_eq!(
        stops,
        vec![AgentEvent::Stopped {
            why: StopReason::Authorization
        }]
    );
    // The first renewal is at once, the next ones wait for the backoff.
    let reconnecting = count(&h, |e| matches!(e, AgentEvent::Reconnecting { .. }));
    assert_eq!(reconnecting, 2);
}

#[test]
fn token_refusals_are_forgotten_once_the_link_is_stable() {
    let mut h = Harness::with_credentials(|b| b.idle_ping_after(secs(600)));
    h.connect().unwrap();
    for round in 0..6 {
        h.respond("Authorize", 200, r#""a-token""#);
        h.respond("/findvisitor", 200, FIND_FOUND);
        h.open_socket();
        h.frame(r#"{"type":"connected","keepalive":300}"#);
        h.respond("/lookupvisitor", 200, "{}");
        h.note("the link stays up for the stable time, then the token is refused");
        h.advance(secs(31));
        h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#);
        assert!(!h.core.is_stopped(), "stopped in round {round}");
    }
}

/// How many sockets the agent asked for so far.
fn sockets_asked(h: &Harness) -> usize {
    h.outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::OpenSocket { .. }))
        .count()
}

/// Plays a server that accepts the socket, says `connected`, and drops it at once, for
/// `window`; returns how many sockets the agent opened.
fn accept_then_drop(h: &mut Harness, window: Duration) -> usize {
    let start = h.elapsed();
    let first = sockets_asked(h);
    let mut served = first;
    while h.elapsed() - start < window {
        if h.find_http("/findvisitor").is_some() {
            h.respond("/findvisitor", 200, FIND_FOUND);
        }
        if sockets_asked(h) > served {
            served += 1;
            h.open_socket();
            h.frame(r#"{"type":"connected","keepalive":30}"#);
            if h.find_http("/lookupvisitor").is_some() {
                h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
            }
            h.close_socket(CloseReason::ClosedByPeer {
                code: Some(1000),
                reason: String::new(),
            });
            continue;
        }
        match h.core.poll_timeout() {
            Some(deadline) => h.advance(deadline.saturating_duration_since(h.now)),
            None => break,
        }
    }
    served - first
}

/// The agent never reported the visitor absent, and it read `unknown` only while its own
/// link stayed down longer than the leave grace (6 s): no flip per reconnect.
fn assert_no_flip_per_reconnect(h: &Harness) {
    let states = presence_states(h);
    assert!(!states.contains(&VisitorPresence::Absent), "{states:?}");
    let unknown = states
        .iter()
        .filter(|s| **s == VisitorPresence::Unknown)
        .count();
    let long_waits = h
        .event_list()
        .into_iter()
        .filter(|e| matches!(e, AgentEvent::Reconnecting { delay_ms, .. } if *delay_ms >= 6000))
        .count();
    assert!(
        unknown <= long_waits,
        "{unknown} unknown for {long_waits} long waits"
    );
}

#[test]
fn accept_then_drop_server_meets_a_growing_backoff_and_the_state_does_not_flip() {
    let mut h = Harness::new(|b| b).quiet();
    h.connect_happy(LOOKUP_PRESENT);
    h.close_socket(CloseReason::ClosedByPeer {
        code: Some(1000),
        reason: String::new(),
    });
    let sockets = accept_then_drop(&mut h, secs(600));
    // Full jitter, 1 s base, 60 s cap, never reset: attempt n waits at most min(60, 2^(n-1)) s,
    // so 10 minutes hold at least 6 + 540/60 = 15 attempts... and on average far fewer than
    // a reset-every-time loop (which would make ~1,200 at a 0.5 s mean).
    eprintln!("accept-then-drop server: {sockets} sockets in 10 virtual minutes");
    assert!(sockets <= 60, "{sockets} sockets in 10 minutes");
    let delays = h.reconnects();
    let attempts: Vec<u32> = delays.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, (1..=attempts.len() as u32).collect::<Vec<_>>());
    assert_no_flip_per_reconnect(&h);
}

#[test]
fn redirect_loop_slows_to_the_backoff() {
    let mut h = Harness::new(|b| b).quiet();
    h.connect_happy(LOOKUP_PRESENT);
    let mut served = sockets_asked(&h);
    let mut target = 9000;
    let start = h.elapsed();
    while h.elapsed() - start < secs(120) {
        if matches!(h.core.connection_state(), ConnectionState::Connected) {
            target += 1;
            h.frame(&format!(
                r#"{{"type":"redirect","data":{{"direct":"127.0.0.1:{target}"}}}}"#
            ));
        }
        if h.find_http("/findvisitor").is_some() {
            h.respond("/findvisitor", 200, FIND_FOUND);
        }
        if sockets_asked(&h) > served {
            served += 1;
            h.open_socket();
            h.frame(r#"{"type":"connected","keepalive":30}"#);
            if h.find_http("/lookupvisitor").is_some() {
                h.respond("/lookupvisitor", 200, LOOKUP_PRESENT);
            }
            continue;
        }
        match h.core.poll_timeout() {
            Some(deadline) => h.advance(deadline.saturating_duration_since(h.now)),
            None => break,
        }
    }
    let sockets = served;
    // Three hops at once, then the backoff (never reset: the link is never stable).
    eprintln!("redirect loop: {sockets} sockets in 2 virtual minutes");
    assert!(sockets < 20, "{sockets} sockets in 2 minutes");
    assert_no_flip_per_reconnect(&h);
}

#[test]
fn serverclose_with_the_reconnect_policy_comes_back_after_a_jittered_delay() {
    use glance_presence_protocol::link::AfterServerClose;
    let mut h = Harness::new(|b| b.after_server_close(AfterServerClose::Reconnect));
    h.connect_happy(LOOKUP_PRESENT);
    h.frame(r#"{"type":"serverclose"}"#);
    assert!(!h.core.is_stopped());
    let delays = h.reconnect_delays();
    assert_eq!(delays.len(), 1);
    assert!(delays[0] <= 1000, "{delays:?}");
    assert!(h.event_list().contains(&AgentEvent::Disconnected {
        why: DisconnectReason::ServerClose
    }));
    h.advance(secs(1));
    reconnect_with_snapshot(&mut h, LOOKUP_PRESENT);
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    assert_eq!(presence_states(&h), vec![VisitorPresence::Present]);
}

#[test]
fn entropy_reseeds_the_jitter_unless_the_application_chose_a_seed() {
    use glance_presence_protocol::agent::AgentConfig;
    let build = |seed: Option<u64>| {
        let b = AgentConfig::builder()
            .group_id(12345)
            .visitor_id("v1")
            .token("t");
        match seed {
            Some(seed) => b.rng_seed(seed),
            None => b,
        }
        .build()
        .unwrap()
    };
    let default = build(None);
    assert!(!default.has_chosen_seed());
    assert_eq!(default.clone().with_entropy(7).rng_seed(), 7);
    assert_ne!(
        default.clone().with_entropy(7).rng_seed(),
        default.with_entropy(8).rng_seed()
    );
    let chosen = build(Some(42));
    assert!(chosen.has_chosen_seed());
    assert_eq!(chosen.with_entropy(7).rng_seed(), 42);
}

#[test]
fn a_token_provider_is_asked_before_connecting_before_expiry_after_a_refusal_and_on_silence() {
    use glance_presence_protocol::agent::AgentConfig;
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token_provider()
        .presence_server(support::agent::PRESENCE)
        .rng_seed(7)
        .idle_ping_after(secs(600))
        .build()
        .unwrap();
    let mut h = Harness::with_config(config, std::time::Instant::now());
    let asked = |h: &Harness| count(h, |e| matches!(e, AgentEvent::TokenNeeded));
    h.connect().unwrap();
    assert_eq!(asked(&h), 1, "asked before anything is sent");
    assert!(h.find_http("/findvisitor").is_none());
    let now = h.now;
    let first = jwt_with_exp(support::agent::UNIX_START + 600);
    h.core
        .provide_token(now, Ok(first.as_str().into()))
        .unwrap();
    h.drain();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":300}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.note("80% of the token's 600 s: the application is asked again, the socket moves to the new token");
    h.advance(secs(480));
    assert_eq!(asked(&h), 2);
    let now = h.now;
    h.core.provide_token(now, Ok("second".into())).unwrap();
    h.drain();
    assert!(h.event_list().contains(&AgentEvent::Disconnected {
        why: DisconnectReason::TokenRenewed
    }));
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":300}"#);
    h.respond("/lookupvisitor", 200, "{}");
    h.note("the service refuses the token: asked again; the application stays silent");
    h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#);
    assert_eq!(asked(&h), 3);
    h.advance(secs(10));
    assert!(h.event_list().iter().any(|e| matches!(
        e,
        AgentEvent::Disconnected {
            why: DisconnectReason::ConnectFailed { step, .. }
        } if step == "token provider"
    )));
    h.note("after the backoff it asks once more; a late answer to the old question was ignored");
    let deadline = h.core.poll_timeout().unwrap();
    h.advance(deadline - h.now);
    assert_eq!(asked(&h), 4);
    let now = h.now;
    h.core.provide_token(now, Ok("third".into())).unwrap();
    h.drain();
    h.respond("/findvisitor", 200, FIND_FOUND);
    h.open_socket();
    h.frame(r#"{"type":"connected","keepalive":300}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    assert!(!h.core.is_stopped());
}

#[test]
fn signals_go_straight_to_the_visitors_known_server_and_find_again_only_when_told_it_is_gone() {
    let mut h = Harness::new(|b| b);
    h.connect_happy(LOOKUP_PRESENT);
    let http_count = |h: &Harness, path: &str| {
        h.outputs
            .iter()
            .filter(
                |(_, o)| matches!(o, Output::Http { request, .. } if request.url.contains(path)),
            )
            .count()
    };
    let finds_at_connect = http_count(&h, "/findvisitor");
    h.note("the visitor's server is known from the socket's findvisitor: one round trip");
    let first = h.signal(json!({"n": 1})).unwrap();
    assert!(h.find_http("/findvisitor").is_none());
    h.respond("/signalvisitor", 200, r#"{"delivered":true}"#);
    let second = h.signal(json!({"n": 2})).unwrap();
    h.respond("/signalvisitor", 200, r#"{"held":true}"#);
    assert_eq!(http_count(&h, "/findvisitor"), finds_at_connect);
    h.note("the server says the visitor is not there: find once, then post again");
    let moved = h.signal(json!({"n": 3})).unwrap();
    h.respond(
        "/signalvisitor",
        404,
        r#"{"err":"visitornotpresent","msg":"visitor not present"}"#,
    );
    h.respond(
        "/findvisitor",
        200,
        r#"{"visitorfound":true,"direct":"127.0.0.1:9090","directserver":"127.0.0.1","httpsport":9090}"#,
    );
    let post = h.find_http("/signalvisitor").unwrap();
    let url = h
        .outputs
        .iter()
        .find_map(|(_, o)| match o {
            Output::Http { id, request } if *id == post => Some(request.url.clone()),
            _ => None,
        })
        .unwrap();
    assert!(url.starts_with("http://127.0.0.1:9090/"), "{url}");
    h.respond("/signalvisitor", 200, r#"{"delivered":true}"#);
    h.note("the visitor left: the post says so, the find confirms, and the signal fails");
    let gone = h.signal(json!({"n": 4})).unwrap();
    h.respond(
        "/signalvisitor",
        404,
        r#"{"err":"visitornotpresent","msg":"visitor not present"}"#,
    );
    h.respond("/findvisitor", 200, r#"{"visitorfound":false}"#);
    h.note("with no known server, the next signal finds first");
    let after = h.signal(json!({"n": 5})).unwrap();
    h.respond("/findvisitor", 200, r#"{"visitorfound":false}"#);
    insta::assert_snapshot!(h.transcript());
    assert_eq!(
        outcome(&h, first),
        Ok(RequestValue::Sent(Delivery::Delivered))
    );
    assert_eq!(outcome(&h, second), Ok(RequestValue::Sent(Delivery::Held)));
    assert_eq!(
        outcome(&h, moved),
        Ok(RequestValue::Sent(Delivery::Delivered))
    );
    assert_eq!(outcome(&h, gone), Err(RequestFailure::VisitorNotPresent));
    assert_eq!(outcome(&h, after), Err(RequestFailure::VisitorNotPresent));
}
