//! End-to-end tests of the reference service's promises under hostile or long-lived clients,
//! over real loopback sockets: a visitor's presence record is bounded, a full record stays
//! readable by the client's own parsers, and tokens are enforced at their expiry.

mod service_support;

use std::time::{Duration, Instant};

use glance_presence_protocol::rest::{
    parse_lookup, parse_query, LookupResult, QueryResult, DEFAULT_MAX_BODY_BYTES,
};
use glance_presence_protocol::{PartnerUserId, ServerFrame};
use glance_presence_service::config::{DEFAULT_MAX_PRESENCE_BYTES, MAX_PRESENCE_BYTES_LIMIT};
use glance_presence_service::{Limits, ServiceConfig};
use serde_json::{json, Map, Value};
use service_support::{demo_group, Ending, Svc, Ws};

/// Waits (polling, bounded) until `done` holds; a guard against hangs, not a timing assertion.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + service_support::READ_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A presence frame whose record entries (`"key":value,` each) take exactly `bytes` bytes:
/// string values of plain letters under keys `{prefix}{n}`, each entry about `per_entry`.
fn presence_of_size(prefix: &str, bytes: usize, per_entry: usize) -> Value {
    let mut map = Map::new();
    let mut left = bytes;
    let mut n = 0;
    while left > 0 {
        let key = format!("{prefix}{n}");
        // `"key":"value",` = key + value + 6 bytes.
        let overhead = key.len() + 6;
        // The last entry takes a small remainder with it.
        let take = if left <= per_entry + 32 {
            left
        } else {
            per_entry
        };
        assert!(take > overhead, "entry too small");
        map.insert(key, Value::String("v".repeat(take - overhead)));
        left -= take;
        n += 1;
    }
    Value::Object(map)
}

fn send_presence(visitor: &mut Ws, data: Value) {
    visitor.send_json(&json!({"type":"presence","data":data}));
}

fn lookup_and_query(svc: &Svc, visitor: &str) -> (String, String) {
    let token = svc.token();
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str())];
    // By the bound address: the advertised host name need not resolve here.
    let base = format!("http://{}", svc.handle.addr());
    let lookup = svc.request_url(
        "GET",
        &format!("{base}/lookupvisitor?groupid=12345&visitorid={visitor}&&ver=6.25.0"),
        &headers,
        None,
    );
    let query = svc.request_url(
        "GET",
        &format!("{base}/query?groupid=12345&visitorid={visitor}"),
        &headers,
        None,
    );
    assert_eq!((lookup.status, query.status), (200, 200));
    (lookup.body, query.body)
}

#[test]
fn a_presence_frame_over_the_record_bound_is_refused_whole() {
    let svc = Svc::start(ServiceConfig::builder().presence_window(Duration::from_millis(200)));
    let mut agent = svc.agent("big");
    let mut visitor = svc.visitor("big");
    assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: true });
    assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: true });
    // Two frames of 40 KB, each with new keys: the second would take the record over 64 KiB.
    send_presence(&mut visitor, presence_of_size("a", 40_000, 1_000));
    assert!(matches!(agent.recv(), ServerFrame::Presence(p) if p.len() == 40));
    send_presence(&mut visitor, presence_of_size("b", 40_000, 1_000));
    match visitor.recv() {
        ServerFrame::Error { error, detail } => {
            assert_eq!(error, "presencetoolarge");
            assert!(detail.is_some_and(|d| d.contains("65536 bytes")));
        }
        other => panic!("expected the presencetoolarge error, got {other:?}"),
    }
    // The socket stays open and later frames that fit go through; the refused one never
    // reached the agent.
    send_presence(
        &mut visitor,
        json!({"url":"https://shop.example.com/after"}),
    );
    assert!(
        matches!(agent.recv(), ServerFrame::Presence(p) if p.url() == Some("https://shop.example.com/after"))
    );
    let (lookup, _) = lookup_and_query(&svc, "big");
    match parse_lookup(200, lookup.as_bytes()).unwrap() {
        LookupResult::Present(record) => {
            assert_eq!(record.presence.len(), 41);
            assert!(record.presence.get("b0").is_none());
        }
        LookupResult::Absent => panic!("the visitor is present"),
    }
    let stats = svc.handle.stats().core;
    assert_eq!(stats.presence_refused, 1);
    assert!(stats.presence_bytes > 40_000);
    assert_eq!(svc.metric("glance_presence_presence_refused_total"), 1);
    assert!(svc.metric("glance_presence_presence_bytes") > 40_000);
    // The record's memory is accounted back when the visitor has gone.
    visitor.close();
    assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: false });
    assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: false });
    wait_until("the record is released", || {
        svc.handle.stats().core.presence_bytes == 0
    });
}

#[test]
fn a_full_record_stays_readable_by_the_client() {
    let svc = Svc::default();
    let mut visitor = svc.visitor("full");
    // Fill the default bound exactly, with values that need escaping among them.
    let mut escaped = Map::new();
    escaped.insert("quoted".into(), json!("\"\\\u{1}\u{e9}"));
    let escaped_bytes = serde_json::to_string(&escaped).unwrap().len() - 1;
    send_presence(&mut visitor, Value::Object(escaped));
    let half = (DEFAULT_MAX_PRESENCE_BYTES - escaped_bytes) / 2;
    send_presence(&mut visitor, presence_of_size("a", half, 2_000));
    send_presence(
        &mut visitor,
        presence_of_size(
            "b",
            DEFAULT_MAX_PRESENCE_BYTES - escaped_bytes - half,
            2_000,
        ),
    );
    // One byte more is refused.
    send_presence(&mut visitor, json!({"c": ""}));
    assert!(
        matches!(visitor.recv(), ServerFrame::Error { error, .. } if error == "presencetoolarge")
    );
    let (lookup, query) = lookup_and_query(&svc, "full");
    assert!(lookup.len() > DEFAULT_MAX_PRESENCE_BYTES);
    assert!(lookup.len() < DEFAULT_MAX_BODY_BYTES, "{}", lookup.len());
    assert!(query.len() < DEFAULT_MAX_BODY_BYTES, "{}", query.len());
    match parse_lookup(200, lookup.as_bytes()).unwrap() {
        LookupResult::Present(record) => {
            assert_eq!(
                record.presence.get("quoted"),
                Some(&json!("\"\\\u{1}\u{e9}"))
            );
        }
        LookupResult::Absent => panic!("the visitor is present"),
    }
    assert!(matches!(
        parse_query(200, query.as_bytes()).unwrap(),
        QueryResult::Present(_)
    ));
}

#[test]
fn the_largest_configurable_record_stays_readable_by_the_client() {
    // The largest record the configuration allows, with the longest host name it allows in the
    // record fields of the answers.
    let svc = Svc::start(
        ServiceConfig::builder()
            .advertise_host("h".repeat(253))
            .limits(Limits {
                max_presence_bytes: MAX_PRESENCE_BYTES_LIMIT,
                max_presence_keys: 100_000,
                ..Limits::default()
            }),
    );
    let mut visitor = svc.visitor("largest");
    let frame_share = 60_000;
    let mut left = MAX_PRESENCE_BYTES_LIMIT;
    let mut part = 0;
    while left > 0 {
        let take = left.min(frame_share);
        send_presence(
            &mut visitor,
            presence_of_size(&format!("p{part}k"), take, 500),
        );
        left -= take;
        part += 1;
    }
    send_presence(&mut visitor, json!({"x": ""}));
    assert!(
        matches!(visitor.recv(), ServerFrame::Error { error, .. } if error == "presencetoolarge")
    );
    assert_eq!(
        svc.handle.stats().core.presence_bytes as usize,
        MAX_PRESENCE_BYTES_LIMIT
    );
    let (lookup, query) = lookup_and_query(&svc, "largest");
    assert!(lookup.len() < DEFAULT_MAX_BODY_BYTES, "{}", lookup.len());
    assert!(query.len() < DEFAULT_MAX_BODY_BYTES, "{}", query.len());
    assert!(matches!(
        parse_lookup(200, lookup.as_bytes()).unwrap(),
        LookupResult::Present(_)
    ));
    assert!(matches!(
        parse_query(200, query.as_bytes()).unwrap(),
        QueryResult::Present(_)
    ));
}

#[test]
fn an_agent_socket_is_closed_when_its_token_expires() {
    let svc = Svc::default();
    // A token with two or three seconds left (expiry is in whole Unix seconds).
    let token = svc
        .handle
        .issue_token(
            demo_group(),
            &PartnerUserId::new("agent1").unwrap(),
            Duration::from_secs(3),
        )
        .unwrap();
    let mut agent = svc.ws("/agent", None).unwrap();
    agent.send_json(&json!({
        "type": "connect", "authorization": token.expose_secret(), "groupid": "12345",
        "visitorid": "exp", "version": "6.25.0"
    }));
    assert!(matches!(agent.recv(), ServerFrame::Connected { .. }));
    let _visitor = svc.visitor("exp");
    assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: true });
    assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: true });
    assert_eq!(
        agent.recv_text(),
        r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#
    );
    assert_eq!(
        agent.expect_end(),
        Ending::Closed(Some((1008, "authorization".into())))
    );
    assert_eq!(svc.handle.stats().core.tokens_expired, 1);
}

#[test]
fn an_expired_guest_token_is_refused_at_connect() {
    let svc = Svc::start(ServiceConfig::builder().unique_timeout_secs(1));
    let granted = svc
        .get("/uniquevisitor?groupid=12345&visitorid=undefined", None)
        .json();
    let visitor = granted["visitorid"].as_str().unwrap().to_owned();
    let guest = granted["guesttoken"].as_str().unwrap().to_owned();
    // Expiry is in whole Unix seconds: wait past it.
    std::thread::sleep(Duration::from_millis(2_100));
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_json(&json!({
        "type": "connect", "groupid": 12345, "visitorid": visitor, "guesttoken": guest,
        "version": "6.33.0"
    }));
    assert_eq!(
        ws.recv_text(),
        r#"{"type":"error","data":{"error":"connfail","detail":"guesttoken"}}"#
    );
    // Asking again with the unique id gives a fresh token for the same id.
    let again = svc
        .get(
            &format!("/uniquevisitor?groupid=12345&visitorid={visitor}"),
            None,
        )
        .json();
    assert_eq!(again["visitorid"].as_str(), Some(visitor.as_str()));
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_json(&json!({
        "type": "connect", "groupid": 12345, "visitorid": visitor,
        "guesttoken": again["guesttoken"], "version": "6.33.0"
    }));
    assert!(matches!(ws.recv(), ServerFrame::Connected { .. }));
}
