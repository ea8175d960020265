//! Transcript snapshots of the visitor's main scenarios, against a scripted fake peer with
//! virtual time: every command, input, timer and output with its offset from the start.
//! Each test also asserts the facts the scenario is about, so a wrong snapshot cannot be
//! accepted by accident, and that the harness saw no invariant broken.

use glance_presence_testkit::support;

use std::time::Duration;

use glance_presence_protocol::backoff::ReconnectPolicy;
use glance_presence_protocol::io::{CloseReason, Output, SansIo, TransportInput};
use glance_presence_protocol::presence::{TermsStatus, Visibility};
use glance_presence_protocol::visitor::{
    CommandError, ConnectionState, DisconnectReason, StopReason, VisitorEvent,
};
use serde_json::json;
use support::visitor::{data, Harness, UNIQUE_ANSWER};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const CONNECT_V1: &str =
    r#"{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}"#;
const PAGE: &str =
    r#"{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}"#;

fn page() -> serde_json::Value {
    serde_json::from_str(PAGE).unwrap()
}

/// Connected on socket#1 with the page's presence sent.
fn connected_with_page(h: &mut Harness) {
    h.presence(page()).unwrap();
    h.connect().unwrap();
    h.accept();
}

#[test]
fn connect_then_presence() {
    let mut h = Harness::new(|b| b.origin("https://shop.example.com")).with_auto_pong();
    h.note("presence before connect waits in the queue");
    h.presence(page()).unwrap();
    assert_eq!(h.core.queued_messages(), 1);
    h.connect().unwrap();
    assert_eq!(h.core.connection_state(), ConnectionState::Connecting);
    h.open_socket();
    h.note("connect, then the queue at once, without waiting for connected");
    assert_eq!(h.core.queued_messages(), 0);
    h.frame(r#"{"type":"connected","keepalive":30}"#);
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    h.presence(json!({"cartvalue": 42, "url": "https://shop.example.com/cart"}))
        .unwrap();
    h.terms(TermsStatus::Accepted).unwrap();
    h.session_start(None).unwrap();
    h.session_end(Some(json!({"reason": "done"}))).unwrap();
    h.visitor_error(json!({"code": "conndrop", "msg": "Connect failed"}))
        .unwrap();
    h.fire("cartupdate", Some(json!({"items": 3}))).unwrap();
    h.advance(secs(61));
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    let frames: Vec<String> = h.frames().into_iter().map(|(_, t)| t).collect();
    assert_eq!(frames[0], CONNECT_V1);
    assert_eq!(frames[1], format!(r#"{{"type":"presence","data":{PAGE}}}"#));
    assert_eq!(
        frames[2],
        r#"{"type":"presence","data":{"cartvalue":42,"url":"https://shop.example.com/cart"}}"#,
        "the data given is sent, not the merged presence"
    );
    assert_eq!(
        frames[3],
        r#"{"type":"terms","data":{"status":"accepted"}}"#
    );
    assert_eq!(frames[4], r#"{"type":"visitorsessionstart"}"#);
    assert_eq!(
        frames[5],
        r#"{"type":"visitorsessionend","data":{"reason":"done"}}"#
    );
    assert_eq!(
        frames[6],
        r#"{"type":"visitorerror","data":{"code":"conndrop","msg":"Connect failed"}}"#
    );
    assert_eq!(frames[7], r#"{"type":"cartupdate","data":{"items":3}}"#);
    assert_eq!(
        frames[8..],
        [r#"{"type":"k"}"#, r#"{"type":"k"}"#],
        "one k per 30 s from connected"
    );
    let merged = h.core.presence_data();
    let keys: Vec<&str> = merged.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["url", "browser", "browserver", "platform", "cartvalue"],
        "merged: existing keys keep their place, new ones are appended"
    );
    assert_eq!(merged.url(), Some("https://shop.example.com/cart"));
    let open = h
        .outputs
        .iter()
        .find_map(|(_, o)| match o {
            Output::OpenSocket { url, headers, .. } => Some((url.clone(), headers.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(open.0, "ws://127.0.0.1:8080/visitorws");
    assert_eq!(
        open.1,
        vec![("Origin".to_owned(), "https://shop.example.com".to_owned())]
    );
}

#[test]
fn unique_connect() {
    let mut h = Harness::with_config(
        glance_presence_protocol::visitor::VisitorConfig::builder()
            .group_id(12345)
            .unique()
            .presence_server(support::visitor::PRESENCE)
            .rng_seed(7)
            .build()
            .unwrap(),
    );
    h.presence(page()).unwrap();
    h.connect().unwrap();
    assert_eq!(h.core.visitor_id(), None);
    h.respond("/uniquevisitor", 200, UNIQUE_ANSWER);
    h.accept();
    h.note("a drop: the same unique id and guest token are used again, no new request");
    h.close_socket(CloseReason::TransportError {
        detail: "reset".into(),
    });
    h.advance(secs(2));
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    let http: Vec<String> = h
        .outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Http { request, .. } => Some(request.request_line()),
            _ => None,
        })
        .collect();
    assert_eq!(
        http,
        ["GET http://127.0.0.1:8080/uniquevisitor?groupid=12345&visitorid=undefined&&ver=6.33.0"]
    );
    let connect = r#"{"type":"connect","groupid":12345,"visitorid":"UNQ-123456789","guesttoken":"gt-secret","version":"6.33.0"}"#;
    let connects: Vec<String> = h
        .frames()
        .into_iter()
        .filter(|(_, t)| t.contains(r#""type":"connect""#))
        .map(|(_, t)| t)
        .collect();
    assert_eq!(connects, [connect, connect]);
    assert_eq!(h.core.unique_id().unwrap().as_str(), "123456789");
    assert_eq!(h.core.visitor_id().unwrap().as_str(), "UNQ-123456789");
    let unique_events: Vec<String> = h
        .event_list()
        .iter()
        .filter(|e| matches!(e, VisitorEvent::UniqueId { .. }))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(
        unique_events,
        [
            r#"{"event":"unique_id","unique_id":"123456789","visitor_id":"UNQ-123456789","timeout_secs":300}"#
        ]
    );
    assert!(
        !format!("{:?}", h.core).contains("gt-secret"),
        "the guest token is redacted in Debug"
    );
}

#[test]
fn unique_request_failure_is_retried_with_backoff() {
    let mut h = Harness::with_config(
        glance_presence_protocol::visitor::VisitorConfig::builder()
            .group_id(12345)
            .unique()
            .presence_server(support::visitor::PRESENCE)
            .rng_seed(7)
            .build()
            .unwrap(),
    );
    h.connect().unwrap();
    h.respond("/uniquevisitor", 503, "");
    h.advance(secs(2));
    h.fail_http("/uniquevisitor", "connection refused");
    h.advance(secs(3));
    h.respond("/uniquevisitor", 200, UNIQUE_ANSWER);
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    assert_eq!(
        h.count(|e| matches!(
            e,
            VisitorEvent::Disconnected {
                why: DisconnectReason::ConnectFailed { step, .. }
            } if step == "uniquevisitor"
        )),
        2
    );
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
}

#[test]
fn navigate() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    let first = h.socket();
    h.note("a page load: close, reopen at once, connect + the whole presence with the new url");
    h.navigate("https://shop.example.com/checkout").unwrap();
    let second = h.socket();
    assert_ne!(first, second);
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    assert_eq!(
        h.frames_on(second),
        [
            CONNECT_V1.to_owned(),
            r#"{"type":"presence","data":{"url":"https://shop.example.com/checkout","browser":"chrome","browserver":120,"platform":"linux"}}"#.to_owned(),
        ]
    );
    let closed_then_opened: Vec<String> = h
        .outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::CloseSocket { socket } => Some(format!("close {socket}")),
            Output::OpenSocket { socket, .. } => Some(format!("open {socket}")),
            _ => None,
        })
        .collect();
    assert_eq!(
        closed_then_opened,
        ["open socket#1", "close socket#1", "open socket#2"]
    );
    assert_eq!(
        h.count(|e| matches!(e, VisitorEvent::Reconnecting { .. })),
        0,
        "no backoff for a page load"
    );
}

#[test]
fn hide_and_show() {
    let mut h = Harness::new(|b| b).with_auto_pong();
    connected_with_page(&mut h);
    h.visibility(Visibility::Hidden).unwrap();
    assert_eq!(
        h.core.connection_state(),
        ConnectionState::Paused {
            hidden: true,
            blurred: false
        }
    );
    h.note("hidden: no socket, no reconnect, however long");
    h.advance(secs(300));
    h.presence(json!({"cartvalue": 7})).unwrap();
    h.terms(TermsStatus::Displayed).unwrap();
    h.visibility(Visibility::Hidden).unwrap();
    h.note("shown: reconnect, visibility visible, the whole presence, then the queue");
    h.visibility(Visibility::Visible).unwrap();
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    let frames: Vec<String> = h.frames().into_iter().map(|(_, t)| t).collect();
    let hidden_at = frames
        .iter()
        .position(|t| t == r#"{"type":"visibility","data":{"visibility":"hidden"}}"#)
        .unwrap();
    assert_eq!(
        h.frames_on(h.socket()),
        [
            CONNECT_V1.to_owned(),
            r#"{"type":"visibility","data":{"visibility":"visible"}}"#.to_owned(),
            r#"{"type":"presence","data":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux","cartvalue":7}}"#.to_owned(),
            r#"{"type":"terms","data":{"status":"displayed"}}"#.to_owned(),
        ]
    );
    assert_eq!(
        hidden_at,
        frames.len() - 5,
        "hidden is the last frame of socket#1"
    );
    let sockets_opened = h
        .outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::OpenSocket { .. }))
        .count();
    assert_eq!(sockets_opened, 2);
    let hidden_close = h
        .outputs
        .iter()
        .position(|(_, o)| matches!(o, Output::CloseSocket { .. }))
        .unwrap();
    let hidden_frame = h
        .outputs
        .iter()
        .position(|(_, o)| matches!(o, Output::SendFrame { text, .. } if text.contains("hidden")))
        .unwrap();
    assert!(hidden_frame < hidden_close, "visibility hidden, then close");
    assert_eq!(h.core.visibility_state(), Visibility::Visible);
}

#[test]
fn signal_received() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.frame(r#"{"type":"signal","data":{"hello":"visitor","n":1}}"#);
    h.frame(r#"{"mtype":"signal","type":"ignored","data":"plain text"}"#);
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    let signals: Vec<serde_json::Value> = h
        .event_list()
        .into_iter()
        .filter_map(|e| match e {
            VisitorEvent::Signal { data } => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(
        signals,
        [json!({"hello":"visitor","n":1}), json!("plain text")]
    );
}

#[test]
fn invoke_allowed_and_refused() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.frame(r#"{"type":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#);
    h.frame(r#"{"type":"invoke","data":{"func":"GLANCE_COBROWSE.Custom.greet"}}"#);
    h.frame(r#"{"type":"invoke","data":{"func":"window.alert","args":{"x":1}}}"#);
    h.frame(r#"{"type":"invoke","data":{"func":"GLANCE.","args":{}}}"#);
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    let events = h.event_list();
    assert!(events.contains(&VisitorEvent::Invoke {
        func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
        args: json!({"sessionKey":"1234","remote":true}),
    }));
    assert!(events.contains(&VisitorEvent::Invoke {
        func: "GLANCE_COBROWSE.Custom.greet".into(),
        args: json!({"remote":true}),
    }));
    assert!(events.contains(&VisitorEvent::InvokeRefused {
        func: "window.alert".into()
    }));
    assert!(events.contains(&VisitorEvent::InvokeRefused {
        func: "GLANCE.".into()
    }));
    assert_eq!(h.count(|e| matches!(e, VisitorEvent::Invoke { .. })), 2);
}

#[test]
fn blur_then_focus() {
    let mut h = Harness::new(|b| b).with_auto_pong();
    connected_with_page(&mut h);
    h.note("a newer socket with the same visitor id took over");
    h.frame(r#"{"type":"blur"}"#);
    assert!(h.core.is_blurred());
    h.terms(TermsStatus::Accepted).unwrap();
    h.presence(json!({"step": 2})).unwrap();
    h.advance(secs(120));
    h.note("focus: reconnect, the whole presence, then the queue");
    h.focus().unwrap();
    h.accept();
    h.note("focus again on a live socket: the whole presence is re-sent");
    h.focus().unwrap();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    assert_eq!(h.count(|e| *e == VisitorEvent::Blurred), 1);
    let full = r#"{"type":"presence","data":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux","step":2}}"#;
    assert_eq!(
        h.frames_on(h.socket()),
        [
            CONNECT_V1,
            full,
            r#"{"type":"terms","data":{"status":"accepted"}}"#,
            full
        ]
    );
    let sockets_opened = h
        .outputs
        .iter()
        .filter(|(_, o)| matches!(o, Output::OpenSocket { .. }))
        .count();
    assert_eq!(sockets_opened, 2, "no socket while blurred");
    assert!(!h.core.is_blurred());
}

#[test]
fn redirect() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.frame(r#"{"type":"redirect","data":{"direct":"bad host"}}"#);
    h.frame(r#"{"type":"redirect","data":{"direct":"127.0.0.1:9090"}}"#);
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    assert_eq!(h.core.server().unwrap().host_port(), "127.0.0.1:9090");
    let urls = h.socket_urls();
    assert_eq!(
        urls,
        [
            "ws://127.0.0.1:8080/visitorws",
            "ws://127.0.0.1:9090/visitorws"
        ]
    );
    assert_eq!(
        h.count(|e| matches!(e, VisitorEvent::ProtocolViolation { .. })),
        1
    );
    assert!(h
        .frames_on(h.socket())
        .iter()
        .any(|t| t.contains(r#""type":"presence""#)));
}

#[test]
fn drop_and_backoff_reconnect_resends_presence() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.presence(json!({"cartvalue": 42})).unwrap();
    h.close_socket(CloseReason::ClosedByPeer {
        code: Some(1001),
        reason: "going away".into(),
    });
    assert!(matches!(
        h.core.connection_state(),
        ConnectionState::Reconnecting { attempt: 1 }
    ));
    h.note("while down, presence merges without queueing: the whole presence goes out next");
    h.presence(json!({"url": "https://shop.example.com/cart"}))
        .unwrap();
    assert_eq!(h.core.queued_messages(), 0);
    h.advance(secs(1));
    h.note("the first attempt fails: the second waits longer");
    h.close_socket(CloseReason::TransportError {
        detail: "connection refused".into(),
    });
    h.advance(secs(2));
    h.accept();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    let delays = h.reconnects();
    assert_eq!(delays.len(), 2);
    assert_eq!((delays[0].0, delays[1].0), (1, 2));
    assert!(delays[0].1 <= 1000 && delays[1].1 <= 2000, "{delays:?}");
    assert_eq!(
        h.frames_on(h.socket()),
        [
            CONNECT_V1,
            r#"{"type":"presence","data":{"url":"https://shop.example.com/cart","browser":"chrome","browserver":120,"platform":"linux","cartvalue":42}}"#,
        ]
    );
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    h.note("a drop right after connected does not reset the backoff");
    h.close_socket(CloseReason::TransportError {
        detail: "reset".into(),
    });
    assert!(matches!(
        h.core.connection_state(),
        ConnectionState::Reconnecting { attempt: 3 }
    ));
    h.advance(secs(60));
    h.accept();
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    h.note("a link that stayed up for the stable time resets the backoff");
    for _ in 0..3 {
        h.advance(secs(10));
        h.frame(r#"{"type":"k"}"#);
    }
    h.close_socket(CloseReason::TransportError {
        detail: "reset".into(),
    });
    assert!(
        matches!(
            h.core.connection_state(),
            ConnectionState::Reconnecting { attempt: 1 }
        ),
        "{:?}",
        h.core.connection_state()
    );
}

#[test]
fn dead_link_is_detected_and_replaced() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.advance(secs(14));
    h.frame(r#"{"type":"signal","data":1}"#);
    h.note("15 s of silence: ping; a pong keeps the link");
    h.advance(secs(15));
    h.pong();
    h.note("15 s more: ping; nothing for 10 s: dead");
    h.advance(secs(25));
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    assert_eq!(
        h.count(|e| *e
            == VisitorEvent::Disconnected {
                why: DisconnectReason::DeadLink
            }),
        1
    );
    let pings = h.pings_sent();
    assert_eq!(pings, 2);
}

#[test]
fn disconnect() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.disconnect();
    h.note("nothing after Stopped, whatever comes in");
    h.frame(r#"{"type":"signal","data":1}"#);
    h.advance(secs(120));
    h.disconnect();
    assert_eq!(h.presence(json!({"a": 1})), Err(CommandError::Stopped));
    assert_eq!(h.connect(), Err(CommandError::Stopped));
    assert_eq!(h.focus(), Err(CommandError::Stopped));
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();

    let (_, last) = h.outputs.last().unwrap();
    assert_eq!(
        last,
        &Output::Event(VisitorEvent::Stopped {
            why: StopReason::Requested
        })
    );
    let n = h.outputs.len();
    assert!(
        matches!(h.outputs[n - 2].1, Output::CloseSocket { .. }),
        "close (1000), no goodbye frame"
    );
    assert!(matches!(
        h.outputs[n - 3].1,
        Output::Event(_) | Output::SendFrame { .. }
    ));
    assert!(
        !h.frames()
            .iter()
            .any(|(_, t)| t.contains("bye") || t.contains("disconnect")),
        "no goodbye frame"
    );
    assert_eq!(h.core.poll_timeout(), None);
    assert!(h.core.is_stopped());
}

#[test]
fn serverclose_scaledown_errors_and_garbage() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"overloaded"}}"#);
    h.frame(r#"{"type":"somethingnew","data":{"a":1}}"#);
    h.frame(r#"{"type":"visitorsock","data":{"connected":true}}"#);
    h.frame("not json");
    h.frame(r#"{"data":{}}"#);
    h.input(TransportInput::BinaryFrame {
        socket: h.socket(),
        data: vec![0xff, 0xfe],
    });
    h.frame(r#"{"type":"connected","keepalive":"soon"}"#);
    let big = format!(r#"{{"type":"signal","data":"{}"}}"#, "x".repeat(70_000));
    h.frame(&big.clone());
    h.frame(r#"{"type":"scaledown"}"#);
    h.accept();
    h.frame(r#"{"type":"serverclose"}"#);
    h.frame(r#"{"type":"signal","data":1}"#);
    let transcript = h.transcript().replace(&"x".repeat(70_000), "x…(70000)");
    insta::assert_snapshot!(transcript);
    h.assert_clean();
    assert_eq!(
        h.count(|e| matches!(e, VisitorEvent::ProtocolViolation { .. })),
        5
    );
    assert_eq!(
        h.event_list().last(),
        Some(&VisitorEvent::Stopped {
            why: StopReason::ServerClose
        })
    );
    assert_eq!(h.count(|e| matches!(e, VisitorEvent::Signal { .. })), 0);
    assert!(h.event_list().contains(&VisitorEvent::Other {
        kind: "visitorsock".into(),
        data: Some(json!({"connected": true}))
    }));
}

#[test]
fn direct_server_lookup() {
    let mut h = Harness::new(|b| b.direct_server_lookup(true));
    h.connect().unwrap();
    h.respond(
        "/presence",
        200,
        r#"{"direct":"127.0.0.1:9000","directserver":"127.0.0.1","httpsport":9000}"#,
    );
    h.accept();
    h.note("a drop: ask again, the assigned server may have gone");
    h.close_socket(CloseReason::TransportError {
        detail: "reset".into(),
    });
    h.advance(secs(1));
    h.respond("/presence", 200, "{}");
    h.open_socket();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    let urls: Vec<String> = h
        .outputs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::OpenSocket { url, .. } => Some(url.clone()),
            Output::Http { request, .. } => Some(request.request_line()),
            _ => None,
        })
        .collect();
    assert_eq!(
        urls,
        [
            "POST http://127.0.0.1:8080/presence?groupid=12345&visitorid=v1&&ver=6.33.0",
            "ws://127.0.0.1:9000/visitorws",
            "POST http://127.0.0.1:8080/presence?groupid=12345&visitorid=v1&&ver=6.33.0",
            "ws://127.0.0.1:8080/visitorws",
        ]
    );
}

#[test]
fn bounded_queue_and_command_errors() {
    let mut h = Harness::new(|b| b.outgoing_queue_bound(2).max_frame_bytes(512));
    h.terms(TermsStatus::Displayed).unwrap();
    h.terms(TermsStatus::Accepted).unwrap();
    assert_eq!(
        h.terms(TermsStatus::Declined),
        Err(CommandError::QueueFull { bound: 2 })
    );
    assert_eq!(
        h.presence(json!({"a": 1})),
        Err(CommandError::QueueFull { bound: 2 })
    );
    assert!(
        h.core.presence_data().is_empty(),
        "a refused presence is not merged"
    );
    assert!(matches!(
        h.fire("presence", None),
        Err(CommandError::InvalidKind { .. })
    ));
    assert!(matches!(
        h.fire("redirect", None),
        Err(CommandError::InvalidKind { .. })
    ));
    assert!(matches!(
        h.fire("", None),
        Err(CommandError::InvalidKind { .. })
    ));
    h.connect().unwrap();
    h.open_socket();
    h.note("a 600-byte presence value is refused at once (frame limit 512)");
    let big = data(json!({"big": "y".repeat(600)}));
    assert!(matches!(
        h.core.presence(h.now, big),
        Err(CommandError::TooLarge { limit: 512, .. })
    ));
    h.presence(json!({"a": 1})).unwrap();
    insta::assert_snapshot!(h.transcript());
    h.assert_clean();
    assert_eq!(
        h.frames_on(h.socket()),
        [
            CONNECT_V1,
            r#"{"type":"terms","data":{"status":"displayed"}}"#,
            r#"{"type":"terms","data":{"status":"accepted"}}"#,
            r#"{"type":"presence","data":{"a":1}}"#,
        ]
    );
}

#[test]
fn hidden_before_connect_waits_to_be_shown() {
    let mut h = Harness::new(|b| b);
    h.visibility(Visibility::Hidden).unwrap();
    h.presence(page()).unwrap();
    h.connect().unwrap();
    assert_eq!(
        h.core.connection_state(),
        ConnectionState::Paused {
            hidden: true,
            blurred: false
        }
    );
    assert!(h
        .outputs
        .iter()
        .all(|(_, o)| !matches!(o, Output::OpenSocket { .. })));
    h.visibility(Visibility::Visible).unwrap();
    h.accept();
    h.assert_clean();
    assert_eq!(
        h.frames_on(h.socket()),
        [
            CONNECT_V1.to_owned(),
            r#"{"type":"visibility","data":{"visibility":"visible"}}"#.to_owned(),
            format!(r#"{{"type":"presence","data":{PAGE}}}"#),
        ]
    );
}

#[test]
fn same_seed_same_transcript() {
    let run = |seed: u64| {
        let mut h = Harness::new(|b| b.rng_seed(seed));
        connected_with_page(&mut h);
        for _ in 0..4 {
            h.close_socket(CloseReason::TransportError {
                detail: "reset".into(),
            });
            h.advance(secs(20));
        }
        h.transcript()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn glance_reconnect_preset() {
    let mut h = Harness::new(|b| b.reconnect_policy(ReconnectPolicy::glance()));
    h.connect().unwrap();
    for wait in [5, 5, 5, 60] {
        h.close_socket(CloseReason::TransportError {
            detail: "refused".into(),
        });
        h.advance(secs(wait));
    }
    h.assert_clean();
    let delays = h.reconnect_delays();
    assert_eq!(delays, [5000, 5000, 5000, 60000]);
}

#[test]
fn serverclose_stops_by_default_and_reconnects_after_the_backoff_when_asked() {
    let mut h = Harness::new(|b| b);
    connected_with_page(&mut h);
    h.frame(r#"{"type":"serverclose"}"#);
    assert!(h.core.is_stopped(), "Glance's clients stop on serverclose");

    let mut h = Harness::new(|b| {
        b.after_server_close(glance_presence_protocol::link::AfterServerClose::Reconnect)
    });
    connected_with_page(&mut h);
    h.frame(r#"{"type":"serverclose"}"#);
    assert!(!h.core.is_stopped());
    let delays = h.reconnect_delays();
    assert_eq!(delays.len(), 1);
    assert!(delays[0] <= 1000, "full jitter, first attempt: {delays:?}");
    h.advance(secs(1));
    h.accept();
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
}

#[test]
fn a_unique_grant_is_renewed_with_its_id_before_it_lapses_and_when_refused() {
    let mut h = Harness::with_config(
        glance_presence_protocol::visitor::VisitorConfig::builder()
            .group_id(12345)
            .unique()
            .presence_server(support::visitor::PRESENCE)
            .rng_seed(7)
            .build()
            .unwrap(),
    )
    .with_auto_pong();
    h.connect().unwrap();
    h.respond("/uniquevisitor", 200, UNIQUE_ANSWER);
    h.accept();
    h.note("the code lives 300 s: a drop at 290 s renews it, keeping the id");
    for _ in 0..29 {
        h.advance(secs(10));
        h.frame(r#"{"type":"k"}"#);
    }
    h.close_socket(CloseReason::TransportError {
        detail: "reset".into(),
    });
    h.advance(secs(2));
    assert!(
        h.find_http("/uniquevisitor?groupid=12345&visitorid=UNQ-123456789")
            .is_some(),
        "the grant is renewed with its id before the reconnect"
    );
    h.respond("/uniquevisitor", 200, UNIQUE_ANSWER);
    h.accept();
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    h.note("the service refuses the guest token: the grant is renewed, then a reconnect");
    h.frame(r#"{"type":"error","data":{"error":"connfail","detail":"guesttoken"}}"#);
    h.advance(secs(2));
    assert!(h.find_http("/uniquevisitor").is_some());
    h.respond("/uniquevisitor", 200, UNIQUE_ANSWER);
    h.accept();
    assert_eq!(h.core.connection_state(), ConnectionState::Connected);
    assert_eq!(
        h.core.visitor_id().map(|v| v.as_str()),
        Some("UNQ-123456789")
    );
}
