//! End-to-end tests of the reference presence service over real loopback sockets: visitors and
//! agents on real WebSockets, signals over real HTTP.

mod service_support;

use std::time::Duration;

use glance_presence_protocol::{ServerFrame, TermsStatus, Visibility};
use glance_presence_service::{Limits, ServiceConfig};
use serde_json::json;
use service_support::{Ending, Svc};

fn sock(connected: bool) -> ServerFrame {
    ServerFrame::VisitorSock { connected }
}

fn vconn(connected: bool) -> ServerFrame {
    ServerFrame::VisitorConn { connected }
}

fn presence_frame() -> &'static str {
    r#"{"type":"presence","data":{"url":"https://shop.example.com/cart?item=42","browser":"chrome","browserver":120,"platform":"linux","custom":"field","cartvalue":42}}"#
}

#[test]
fn visitor_connect_and_presence_reach_the_agent() {
    let svc = Svc::default();
    let mut agent = svc.agent("v1");
    let mut visitor = svc.visitor("v1");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    visitor.send_text(presence_frame());
    // Forwarded with type and data kept, byte for byte.
    assert_eq!(agent.recv_text(), presence_frame());
    visitor.send_text(r#"{"type":"visibility","data":{"visibility":"hidden"}}"#);
    assert_eq!(agent.recv(), ServerFrame::Visibility(Visibility::Hidden));
    visitor.send_text(r#"{"type":"terms","data":{"status":"accepted"}}"#);
    assert_eq!(agent.recv(), ServerFrame::Terms(TermsStatus::Accepted));
    visitor.send_text(r#"{"type":"visitorsessionstart"}"#);
    assert_eq!(agent.recv(), ServerFrame::VisitorSessionStart(None));
    visitor.send_text(r#"{"type":"customthing","data":{"a":[1,{"b":null}]}}"#);
    assert_eq!(
        agent.recv_text(),
        r#"{"type":"customthing","data":{"a":[1,{"b":null}]}}"#
    );
    // The REST view agrees.
    let token = svc.token();
    let q = svc
        .get(
            "/query?groupid=12345&visitorid=v1&&ver=6.25.0",
            Some(&token),
        )
        .json();
    assert_eq!(q["present"], json!(true));
    assert_eq!(q["sockets"], json!(1));
    assert_eq!(q["visibility"], json!("hidden"));
    assert_eq!(q["terms"], json!("accepted"));
    assert_eq!(q["insession"], json!(true));
    assert_eq!(q["presence"]["cartvalue"], json!(42));
}

#[test]
fn navigation_produces_visitorsock_only() {
    let svc = Svc::default();
    let mut agent = svc.agent("nav");
    let visitor = svc.visitor("nav");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    // Page 1 closes, page 2 connects at once (well within the 6 s window).
    visitor.close();
    assert_eq!(agent.recv(), sock(false));
    let mut visitor = svc.visitor("nav");
    assert_eq!(agent.recv(), sock(true));
    visitor.send_text(r#"{"type":"presence","data":{"url":"https://shop.example.com/page2"}}"#);
    // The next frame is the presence: no visitorconn in between.
    assert!(
        matches!(agent.recv(), ServerFrame::Presence(p) if p.url() == Some("https://shop.example.com/page2"))
    );
}

#[test]
fn leaving_reports_visitorconn_false_after_the_presence_window() {
    let svc = Svc::start(ServiceConfig::builder().presence_window(Duration::from_millis(200)));
    let mut agent = svc.agent("leaver");
    let visitor = svc.visitor("leaver");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    visitor.close();
    assert_eq!(agent.recv(), sock(false));
    assert_eq!(agent.recv(), vconn(false));
    let token = svc.token();
    let lookup = svc.get(
        "/lookupvisitor?groupid=12345&visitorid=leaver",
        Some(&token),
    );
    assert_eq!(lookup.json(), json!({}));
}

#[test]
fn held_signals_are_delivered_in_order_on_the_next_connect() {
    let svc = Svc::default();
    let token = svc.token();
    let visitor = svc.visitor("held");
    visitor.close();
    // Wait until the service has seen the close (the visitor record shows no socket).
    for _ in 0..1000 {
        let q = svc
            .get("/query?groupid=12345&visitorid=held", Some(&token))
            .json();
        if q["sockets"] == json!(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for n in 1..=3 {
        let r = svc.post(
            "/signalvisitor?groupid=12345&visitorid=held&&ver=6.25.0",
            Some(&token),
            &json!({"mtype":"signal","data":{"n":n}}).to_string(),
        );
        assert_eq!((r.status, r.json()), (200, json!({"held": true})));
    }
    let mut visitor = svc.visitor("held");
    for n in 1..=3 {
        assert_eq!(visitor.recv(), ServerFrame::Signal(json!({"n": n})));
    }
    // Delivered once: a new signal is the next frame, and delivered at once.
    let r = svc.post(
        "/signalvisitor?groupid=12345&visitorid=held",
        Some(&token),
        r#"{"mtype":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#,
    );
    assert_eq!((r.status, r.json()), (200, json!({"delivered": true})));
    assert_eq!(
        visitor.recv_text(),
        r#"{"type":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#
    );
    visitor.close();
    assert_eq!(
        svc.metric("glance_presence_signals_total{outcome=\"held\"}"),
        3
    );
    assert_eq!(
        svc.metric("glance_presence_signals_total{outcome=\"delivered\"}"),
        4
    );
}

#[test]
fn held_signals_expire_and_are_counted() {
    let svc = Svc::start(ServiceConfig::builder().hold_window(Duration::from_millis(100)));
    let token = svc.token();
    let visitor = svc.visitor("late");
    visitor.close();
    let signal = |n: u32| {
        svc.post(
            "/signalvisitor?groupid=12345&visitorid=late",
            Some(&token),
            &json!({"mtype":"signal","data":{"n":n}}).to_string(),
        )
    };
    // Until the close has been seen the signal may still be delivered to the old socket.
    let mut held = false;
    for _ in 0..1000 {
        if signal(0).json() == json!({"held": true}) {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(held);
    // Wait longer than the hold window (still within the 6 s presence window).
    std::thread::sleep(Duration::from_millis(400));
    let mut visitor = svc.visitor("late");
    assert_eq!(signal(1).json(), json!({"delivered": true}));
    // The expired signal never arrives: the first signal the visitor sees is the new one.
    assert_eq!(visitor.recv(), ServerFrame::Signal(json!({"n": 1})));
    assert_eq!(
        svc.metric("glance_presence_signals_total{outcome=\"dropped\"}"),
        1
    );
}

#[test]
fn signal_to_an_absent_visitor_is_404_visitornotpresent() {
    let svc = Svc::default();
    let token = svc.token();
    let r = svc.post(
        "/signalvisitor?groupid=12345&visitorid=nobody&&ver=6.25.0",
        Some(&token),
        r#"{"mtype":"signal","data":{}}"#,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"err":"visitornotpresent","msg":"visitor not present"})
    );
}

#[test]
fn a_second_socket_blurs_the_first_and_gets_the_signals() {
    let svc = Svc::default();
    let token = svc.token();
    let mut agent = svc.agent("twice");
    let mut first = svc.visitor("twice");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    let mut second = svc.visitor("twice");
    assert_eq!(first.recv(), ServerFrame::Blur);
    let r = svc.post(
        "/signalvisitor?groupid=12345&visitorid=twice",
        Some(&token),
        r#"{"mtype":"signal","data":{"to":"newest"}}"#,
    );
    assert_eq!(r.json(), json!({"delivered": true}));
    assert_eq!(second.recv(), ServerFrame::Signal(json!({"to":"newest"})));
    // The agent saw no socket churn: its next frame is the presence sent now.
    first.send_text(r#"{"type":"presence","data":{"url":"u"}}"#);
    assert!(matches!(agent.recv(), ServerFrame::Presence(_)));
    assert_eq!(svc.metric("glance_presence_blurs_total"), 1);
}

#[test]
fn agent_socket_route_signal_reaches_the_visitor() {
    let svc = Svc::default();
    let mut agent = svc.agent("lb");
    let mut visitor = svc.visitor("lb");
    assert_eq!(agent.recv(), sock(true));
    agent.send_text(r#"{"type":"signal","mtype":"signal","data":{"hi":1}}"#);
    assert_eq!(visitor.recv(), ServerFrame::Signal(json!({"hi":1})));
}

#[test]
fn malformed_frames_get_the_error_frame_then_close() {
    let svc = Svc::default();
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_text("{not json");
    match ws.recv() {
        ServerFrame::Error { error, detail } => {
            assert_eq!(error, "badframe");
            assert!(detail.unwrap().contains("not valid JSON"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        ws.expect_end(),
        Ending::Closed(Some((1002, "protocol error".into())))
    );
    // An invalid visitor id in connect.
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_text(
        r#"{"type":"connect","groupid":12345,"visitorid":"has space","version":"6.33.0"}"#,
    );
    assert!(matches!(ws.recv(), ServerFrame::Error { error, .. } if error == "badframe"));
    assert!(matches!(ws.expect_end(), Ending::Closed(Some((1002, _)))));
    assert_eq!(svc.metric("glance_presence_malformed_frames_total"), 2);
}

#[test]
fn oversized_frames_are_refused() {
    let svc = Svc::start(ServiceConfig::builder().limits(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    }));
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_text(&format!(
        r#"{{"type":"presence","data":{{"x":"{}"}}}}"#,
        "a".repeat(1500)
    ));
    assert!(
        matches!(ws.recv(), ServerFrame::Error { error, detail: Some(d) } if error == "badframe" && d.contains("exceeds"))
    );
    assert_eq!(
        ws.expect_end(),
        Ending::Closed(Some((1009, "frame too large".into())))
    );
    // Far over the limit: the WebSocket layer itself refuses it.
    let mut ws = svc.ws("/visitorws", None).unwrap();
    let _ = ws.0.send(tungstenite::Message::text("b".repeat(10_000)));
    assert!(matches!(
        ws.expect_end(),
        Ending::Closed(_) | Ending::Dropped
    ));
}

#[test]
fn idle_sockets_are_closed() {
    let svc = Svc::start(ServiceConfig::builder().keepalive_secs(1));
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_json(&json!({"type":"connect","groupid":12345,"visitorid":"idle","version":"6.33.0"}));
    assert_eq!(
        ws.recv(),
        ServerFrame::Connected {
            keepalive: Some(1),
            data: None
        }
    );
    // Say nothing: closed after 3 × keepalive.
    assert_eq!(
        ws.expect_end(),
        Ending::Closed(Some((1001, "idle timeout".into())))
    );
    assert_eq!(
        svc.metric("glance_presence_disconnects_total{reason=\"idle\"}"),
        1
    );
}

#[test]
fn a_consumer_that_does_not_read_is_disconnected() {
    let svc = Svc::start(ServiceConfig::builder().limits(Limits {
        send_queue_frames: 4,
        ..Limits::default()
    }));
    let agent = svc.agent("flood");
    let mut visitor = svc.visitor("flood");
    let big = format!(
        r#"{{"type":"presence","data":{{"blob":"{}"}}}}"#,
        "x".repeat(60_000)
    );
    // The agent never reads; the service must drop it rather than buffer without bound.
    for _ in 0..2000 {
        if visitor
            .0
            .send(tungstenite::Message::text(big.as_str()))
            .is_err()
        {
            break;
        }
        if svc.handle.stats().slow_consumers > 0 {
            break;
        }
    }
    let mut dropped = false;
    for _ in 0..2000 {
        if svc.handle.stats().slow_consumers == 1 {
            dropped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(dropped);
    assert_eq!(
        svc.metric("glance_presence_disconnects_total{reason=\"slowconsumer\"}"),
        1
    );
    drop(agent);
}

#[test]
fn graceful_shutdown_sends_serverclose_to_every_socket() {
    let svc = Svc::default();
    let mut agent = svc.agent("bye");
    let mut visitor = svc.visitor("bye");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    let Svc { handle, .. } = svc;
    let stopper = std::thread::spawn(move || handle.shutdown());
    assert_eq!(visitor.recv(), ServerFrame::ServerClose);
    assert_eq!(agent.recv(), ServerFrame::ServerClose);
    assert_eq!(
        visitor.expect_end(),
        Ending::Closed(Some((1001, "server shutting down".into())))
    );
    assert!(matches!(
        agent.expect_end(),
        Ending::Closed(Some((1001, _)))
    ));
    stopper.join().unwrap();
}

#[test]
fn metrics_are_openmetrics_text() {
    let svc = Svc::default();
    let _agent = svc.agent("m");
    let _visitor = svc.visitor("m");
    let r = svc.get("/metrics", None);
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(r.body.ends_with("# EOF\n"));
    assert!(r.body.contains("# TYPE glance_presence_connections gauge"));
    assert_eq!(svc.metric("glance_presence_connections{role=\"agent\"}"), 1);
    assert_eq!(
        svc.metric("glance_presence_connections{role=\"visitor\"}"),
        1
    );
    assert_eq!(svc.metric("glance_presence_visitors_present"), 1);
    for line in r.body.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        if name.ends_with("_sum") {
            value.parse::<f64>().unwrap();
        } else {
            value.parse::<u64>().unwrap();
        }
    }
}

/// The latency histograms are fed by the server: a REST request by endpoint, and a visitor
/// frame relayed to an agent.
#[test]
fn metrics_carry_request_and_relay_latency_histograms() {
    let svc = Svc::default();
    let mut agent = svc.agent("v1");
    let mut visitor = svc.visitor("v1");
    assert_eq!(agent.recv(), sock(true));
    assert_eq!(agent.recv(), vconn(true));
    visitor.send_text(presence_frame());
    assert_eq!(agent.recv_text(), presence_frame());
    let token = svc.token();
    for _ in 0..2 {
        let answer = svc.get(
            "/query?groupid=12345&visitorid=v1&&ver=6.25.0",
            Some(&token),
        );
        assert_eq!(answer.status, 200);
    }
    assert_eq!(
        svc.metric("glance_presence_rest_request_duration_seconds_count{endpoint=\"query\"}"),
        2
    );
    // The relay is counted once the agent socket's write completed: very soon after the agent
    // read it.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while svc.metric("glance_presence_relay_duration_seconds_count") < 1 {
        assert!(std::time::Instant::now() < deadline, "no relay observed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(svc.metric("glance_presence_relay_duration_seconds_bucket{le=\"+Inf\"}") >= 1);
}
