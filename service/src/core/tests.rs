//! Service core tests with virtual time: no sockets, no clock.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use glance_presence_protocol::{GroupId, PartnerUserId, ServerFrame, VisitorId};
use serde_json::json;

use super::*;
use crate::auth::TokenKeys;
use crate::config::ServiceConfig;

const EPOCH_UNIX: f64 = 1_700_000_000.0;
const SECRET: &[u8] = b"test secret test secret test secret!";
const API_KEY: &str = "the group's api key";

fn group() -> GroupId {
    GroupId::new(12345).unwrap()
}

fn vid(s: &str) -> VisitorId {
    VisitorId::new(s).unwrap()
}

/// The service's default windows (6 s, see `config::DEFAULT_PRESENCE_WINDOW`), small limits.
pub(super) fn settings() -> CoreSettings {
    CoreSettings {
        keepalive_secs: 30,
        presence_window: crate::config::DEFAULT_PRESENCE_WINDOW,
        hold_window: crate::config::DEFAULT_HOLD_WINDOW,
        idle_timeout: Duration::from_secs(90),
        held_signals_per_visitor: 3,
        max_frame_bytes: 1024,
        max_presence_bytes: 512,
        max_presence_keys: 16,
        unique_timeout_secs: 300,
        groups: [(
            group(),
            vec![glance_presence_protocol::ApiKey::new(API_KEY)],
        )]
        .into_iter()
        .collect(),
        seed: 1,
        allowed_origins: vec!["https://console.example".to_owned()],
        load_balanced: false,
        advertised_host: "127.0.0.1".to_owned(),
        advertised_port: 8080,
        max_body_bytes: 4096,
        max_connections: 2,
        refusals_at_once: 1,
    }
}

/// A core plus virtual time, recording a transcript of every input and output.
struct Harness {
    core: ServiceCore,
    keys: TokenKeys,
    t0: Instant,
    now: Instant,
    log: String,
}

impl Harness {
    fn new() -> Self {
        Self::with(settings())
    }

    fn with(settings: CoreSettings) -> Self {
        let t0 = Instant::now();
        let keys = TokenKeys::new(SECRET);
        Harness {
            core: ServiceCore::new(settings, keys.clone(), t0, EPOCH_UNIX),
            keys,
            t0,
            now: t0,
            log: String::new(),
        }
    }

    fn stamp(&self) -> String {
        format!("{:>7.3}s", (self.now - self.t0).as_secs_f64())
    }

    fn token(&self, exp_in: u64) -> String {
        let (t, _) = self
            .keys
            .issue_agent(
                group(),
                &PartnerUserId::new("agent1").unwrap(),
                EPOCH_UNIX as u64,
                exp_in,
            )
            .unwrap();
        t.expose_secret().to_owned()
    }

    /// Advances virtual time, firing timers as a driver would, and drains outputs.
    fn advance(&mut self, d: Duration) -> Vec<Output> {
        let end = self.now + d;
        let mut outs = Vec::new();
        while let Some(at) = self.core.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.core.handle_timeout(self.now);
            outs.extend(self.drain());
        }
        self.now = end;
        let _ = writeln!(self.log, "{} (time passes)", self.stamp());
        outs
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut outs = Vec::new();
        while let Some(o) = self.core.poll_output() {
            let line = match &o {
                Output::Send { conn, frame } => format!("{conn} <- {}", frame.encode()),
                Output::SendText { conn, text } => format!("{conn} <- text {text}"),
                Output::Close { conn, reason } => {
                    format!("{conn} close {} {}", reason.code(), reason.text())
                }
            };
            let _ = writeln!(self.log, "{}   {line}", self.stamp());
            outs.push(o);
        }
        outs
    }

    fn open(&mut self, role: Role) -> ConnId {
        let c = self.core.open(self.now, role);
        let _ = writeln!(self.log, "{} {c} opens {}", self.stamp(), role.path());
        c
    }

    fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        let shown = if text.contains("\"authorization\"") {
            "<connect with token>".to_owned()
        } else {
            text.to_owned()
        };
        let _ = writeln!(self.log, "{} {conn} -> {shown}", self.stamp());
        self.core.handle_text(self.now, conn, text);
        self.drain()
    }

    fn closed(&mut self, conn: ConnId) -> Vec<Output> {
        let _ = writeln!(self.log, "{} {conn} socket closed", self.stamp());
        self.core.handle_closed(self.now, conn);
        self.drain()
    }

    fn agent(&mut self, visitor: &str) -> ConnId {
        let token = self.token(3600);
        let c = self.open(Role::Agent);
        let outs = self.text(
            c,
            &json!({"type":"connect","authorization":token,"groupid":"12345","visitorid":visitor,"version":"6.25.0"}).to_string(),
        );
        assert_eq!(
            frames(&outs, c).first(),
            Some(&ServerFrame::Connected {
                keepalive: Some(30),
                data: None
            })
        );
        c
    }

    fn visitor(&mut self, visitor: &str) -> (ConnId, Vec<Output>) {
        let c = self.open(Role::Visitor);
        let outs = self.text(
            c,
            &json!({"type":"connect","groupid":12345,"visitorid":visitor,"version":"6.33.0"})
                .to_string(),
        );
        assert_eq!(
            frames(&outs, c).first(),
            Some(&ServerFrame::Connected {
                keepalive: Some(30),
                data: None
            })
        );
        (c, outs)
    }

    fn signal(
        &mut self,
        visitor: &str,
        data: serde_json::Value,
    ) -> Result<Delivery, SignalRefused> {
        let outcome = self
            .core
            .signal(self.now, group(), &vid(visitor), ServerFrame::Signal(data));
        let _ = writeln!(
            self.log,
            "{} REST signal {visitor}: {outcome:?}",
            self.stamp()
        );
        self.drain();
        outcome
    }
}

fn frames(outs: &[Output], conn: ConnId) -> Vec<ServerFrame> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, frame } if *c == conn => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

fn closes(outs: &[Output], conn: ConnId) -> Vec<CloseCause> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Close { conn: c, reason } if *c == conn => Some(*reason),
            _ => None,
        })
        .collect()
}

fn sock(connected: bool) -> ServerFrame {
    ServerFrame::VisitorSock { connected }
}

fn vconn(connected: bool) -> ServerFrame {
    ServerFrame::VisitorConn { connected }
}

#[test]
fn visitor_connect_and_presence_reach_the_agent() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    assert!(h.core.lookup(group(), &vid("v1")).is_none());
    let (v, outs) = h.visitor("v1");
    assert_eq!(frames(&outs, a), vec![sock(true), vconn(true)]);
    let outs = h.text(
        v,
        r#"{"type":"presence","data":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}}"#,
    );
    let got = frames(&outs, a);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].encode(),
        r#"{"type":"presence","data":{"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}}"#
    );
    h.text(
        v,
        r#"{"type":"presence","data":{"url":"https://shop.example.com/cart","cart":3}}"#,
    );
    let snap = h.core.lookup(group(), &vid("v1")).unwrap();
    assert_eq!(snap.sockets, 1);
    assert_eq!(snap.since_unix, EPOCH_UNIX);
    assert_eq!(
        serde_json::to_value(&snap.presence).unwrap(),
        json!({"url":"https://shop.example.com/cart","browser":"chrome","browserver":120,"platform":"linux","cart":3})
    );
    assert!(h.core.is_present(group(), &vid("v1")));
    assert_eq!(h.core.stats().visitors_present, 1);
    assert_eq!(h.core.stats().frames_forwarded, 2);
    insta::assert_snapshot!(h.log);
}

#[test]
fn navigation_gives_visitorsock_only() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    h.text(
        v,
        r#"{"type":"presence","data":{"url":"https://a.example/1"}}"#,
    );
    let outs = h.closed(v);
    assert_eq!(frames(&outs, a), vec![sock(false)]);
    let outs = h.advance(Duration::from_secs(3));
    assert!(outs.is_empty());
    assert!(h.core.is_present(group(), &vid("v1")));
    let (v2, outs) = h.visitor("v1");
    assert_eq!(frames(&outs, a), vec![sock(true)]);
    // The presence period goes on: data and start time are kept.
    let snap = h.core.lookup(group(), &vid("v1")).unwrap();
    assert_eq!(snap.since_unix, EPOCH_UNIX);
    assert_eq!(snap.presence.url(), Some("https://a.example/1"));
    let outs = h.advance(Duration::from_secs(10));
    assert!(frames(&outs, a).is_empty());
    assert!(frames(&outs, v2).is_empty());
    insta::assert_snapshot!(h.log);
}

#[test]
fn leaving_gives_visitorconn_false_after_the_window() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    h.text(v, r#"{"type":"terms","data":{"status":"accepted"}}"#);
    h.closed(v);
    let outs = h.advance(Duration::from_millis(5_999));
    assert!(outs.is_empty());
    assert!(h.core.is_present(group(), &vid("v1")));
    let outs = h.advance(Duration::from_millis(1));
    assert_eq!(frames(&outs, a), vec![vconn(false)]);
    assert!(!h.core.is_present(group(), &vid("v1")));
    assert!(h.core.lookup(group(), &vid("v1")).is_none());
    assert_eq!(h.core.stats().visitors_present, 0);
    // The next visit is a new presence period with fresh state.
    h.advance(Duration::from_secs(1));
    let (_, outs) = h.visitor("v1");
    assert_eq!(frames(&outs, a), vec![sock(true), vconn(true)]);
    let snap = h.core.lookup(group(), &vid("v1")).unwrap();
    assert_eq!(snap.terms, None);
    assert_eq!(snap.since_unix, EPOCH_UNIX + 7.0);
    insta::assert_snapshot!(h.log);
}

#[test]
fn records_are_forgotten_when_nobody_needs_them() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    let a = h.agent("v1");
    h.closed(a);
    h.closed(v);
    assert_eq!(h.core.stats().visitors_tracked, 1);
    h.advance(Duration::from_secs(6));
    assert_eq!(h.core.stats().visitors_tracked, 0);
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.core.connection_count(), 0);
}

#[test]
fn held_signals_are_delivered_once_in_order_on_the_next_connect() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    assert_eq!(h.signal("v1", json!({"n":0})), Ok(Delivery::Delivered));
    h.closed(v);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.signal("v1", json!({"n":1})), Ok(Delivery::Held));
    h.advance(Duration::from_secs(1));
    assert_eq!(h.signal("v1", json!({"n":2})), Ok(Delivery::Held));
    h.advance(Duration::from_secs(2));
    let (v2, outs) = h.visitor("v1");
    assert_eq!(
        frames(&outs, v2),
        vec![
            ServerFrame::Connected {
                keepalive: Some(30),
                data: None
            },
            ServerFrame::Signal(json!({"n":1})),
            ServerFrame::Signal(json!({"n":2})),
        ]
    );
    h.closed(v2);
    h.advance(Duration::from_secs(1));
    let (v3, outs) = h.visitor("v1");
    assert_eq!(frames(&outs, v3).len(), 1, "delivered exactly once");
    let stats = h.core.stats();
    assert_eq!(stats.signals_delivered, 3);
    assert_eq!(stats.signals_held, 2);
    assert_eq!(stats.signals_dropped, 0);
    insta::assert_snapshot!(h.log);
}

#[test]
fn held_signals_expire_after_the_hold_window() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    h.closed(v);
    assert_eq!(h.signal("v1", json!({"n":1})), Ok(Delivery::Held));
    h.advance(Duration::from_secs(3));
    assert_eq!(h.signal("v1", json!({"n":2})), Ok(Delivery::Held));
    // At 6 s the visitor stops being present and the first signal expires.
    h.advance(Duration::from_secs(3));
    assert_eq!(h.core.stats().signals_dropped, 1);
    assert_eq!(
        h.signal("v1", json!({"n":3})),
        Err(SignalRefused::NotPresent)
    );
    // The second signal is still within its own window when the visitor returns at 7 s.
    h.advance(Duration::from_secs(1));
    let (v2, outs) = h.visitor("v1");
    assert_eq!(
        frames(&outs, v2)[1..],
        [ServerFrame::Signal(json!({"n":2}))]
    );
    h.closed(v2);
    assert_eq!(h.signal("v1", json!({"n":4})), Ok(Delivery::Held));
    h.advance(Duration::from_secs(6));
    let stats = h.core.stats();
    assert_eq!(stats.signals_dropped, 2);
    assert_eq!(stats.signals_not_present, 1);
    assert_eq!(stats.signals_delivered, 1);
    let (v3, outs) = h.visitor("v1");
    assert_eq!(
        frames(&outs, v3).len(),
        1,
        "an expired signal is never delivered"
    );
    insta::assert_snapshot!(h.log);
}

#[test]
fn hold_queue_is_bounded() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    h.closed(v);
    for n in 0..3 {
        assert_eq!(h.signal("v1", json!(n)), Ok(Delivery::Held));
    }
    assert_eq!(h.signal("v1", json!(3)), Err(SignalRefused::HoldQueueFull));
    assert_eq!(h.core.stats().signals_queue_full, 1);
}

#[test]
fn signal_to_an_unknown_visitor_is_not_present() {
    let mut h = Harness::new();
    assert_eq!(
        h.signal("nobody", json!({})),
        Err(SignalRefused::NotPresent)
    );
    // An agent waiting for its visitor does not make the visitor present.
    h.agent("v1");
    assert_eq!(h.signal("v1", json!({})), Err(SignalRefused::NotPresent));
    assert!(!h.core.is_present(group(), &vid("v1")));
}

#[test]
fn a_newer_socket_blurs_the_older_and_gets_the_signals() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (old, _) = h.visitor("v1");
    let (new, outs) = h.visitor("v1");
    assert_eq!(frames(&outs, old), vec![ServerFrame::Blur]);
    assert!(
        frames(&outs, a).is_empty(),
        "no visitorsock churn for agents"
    );
    let signal = ServerFrame::Signal(json!({"go":1}));
    let _ = h.core.signal(h.now, group(), &vid("v1"), signal.clone());
    let outs = h.drain();
    assert_eq!(frames(&outs, new), vec![signal.clone()]);
    assert!(frames(&outs, old).is_empty());
    // Frames from either socket reach the agent.
    let outs = h.text(
        old,
        r#"{"type":"visibility","data":{"visibility":"hidden"}}"#,
    );
    assert_eq!(frames(&outs, a).len(), 1);
    // The newest closes: the older one gets the signals again; the agent sees nothing.
    let outs = h.closed(new);
    assert!(frames(&outs, a).is_empty());
    let _ = h.core.signal(h.now, group(), &vid("v1"), signal.clone());
    let outs = h.drain();
    assert_eq!(frames(&outs, old), vec![signal]);
    assert_eq!(h.core.stats().blurs, 1);
    assert_eq!(h.core.lookup(group(), &vid("v1")).unwrap().sockets, 1);
    insta::assert_snapshot!(h.log);
}

#[test]
fn an_agent_joining_a_present_visitor_is_told_at_once() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    let a = h.agent("v1");
    assert_eq!(h.drain(), vec![]);
    let token = h.token(3600);
    let a2 = h.open(Role::Agent);
    let outs = h.text(
        a2,
        &json!({"type":"connect","authorization":token,"groupid":"12345","visitorid":"v1","version":"6.3.1"}).to_string(),
    );
    assert_eq!(frames(&outs, a2)[1..], [sock(true), vconn(true)]);
    // In the presence window without a socket: only visitorconn.
    h.closed(v);
    let a3 = h.agent("v1");
    let _ = a;
    let log = h.log.clone();
    assert!(log.contains(&format!("{a3} <- {{\"type\":\"visitorconn\"")));
    assert!(!log.contains(&format!("{a3} <- {{\"type\":\"visitorsock\"")));
}

#[test]
fn visitor_frames_go_to_every_agent_with_type_and_data_kept() {
    let mut h = Harness::new();
    let a1 = h.agent("v1");
    let a2 = h.agent("v1");
    let other = h.agent("v2");
    let (v, _) = h.visitor("v1");
    for text in [
        r#"{"type":"visibility","data":{"visibility":"visible"}}"#,
        r#"{"type":"terms","data":{"status":"displayed"}}"#,
        r#"{"type":"visitorsessionstart","data":{"sessionkey":"1234"}}"#,
        r#"{"type":"visitorerror","data":{"code":"conndrop","msg":"Connect failed"}}"#,
        r#"{"type":"mycustom","data":{"x":[1,2]}}"#,
        r#"{"type":"visitorsessionend"}"#,
    ] {
        let outs = h.text(v, text);
        for a in [a1, a2] {
            let got = frames(&outs, a);
            assert_eq!(got.len(), 1, "{text}");
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&got[0].encode()).unwrap(),
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            );
        }
        assert!(frames(&outs, other).is_empty());
    }
    let snap = h.core.lookup(group(), &vid("v1")).unwrap();
    assert_eq!(
        snap.visibility,
        Some(glance_presence_protocol::Visibility::Visible)
    );
    assert_eq!(
        snap.terms,
        Some(glance_presence_protocol::TermsStatus::Displayed)
    );
    assert!(!snap.in_session);
    h.text(v, r#"{"type":"visitorsessionstart"}"#);
    assert!(h.core.lookup(group(), &vid("v1")).unwrap().in_session);
    // Keepalives and visitor-sent signal frames are not forwarded.
    let outs = h.text(v, r#"{"type":"k"}"#);
    assert!(outs.is_empty());
    let outs = h.text(v, r#"{"type":"signal","data":{}}"#);
    assert!(outs.is_empty());
}

#[test]
fn agent_socket_route_signals_and_invokes() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    let outs = h.text(
        a,
        r#"{"type":"signal","mtype":"signal","data":{"hello":1}}"#,
    );
    assert_eq!(
        frames(&outs, v),
        vec![ServerFrame::Signal(json!({"hello":1}))]
    );
    let outs = h.text(
        a,
        r#"{"type":"invoke","mtype":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1"}}}"#,
    );
    let got = frames(&outs, v);
    assert_eq!(
        got[0].encode(),
        r#"{"type":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1"}}}"#
    );
    // Presence-type frames from an agent are ignored.
    let outs = h.text(a, r#"{"type":"presence","data":{"url":"x"}}"#);
    assert!(outs.is_empty());
}

#[test]
fn idle_sockets_are_closed_and_keepalives_keep_them() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    for _ in 0..4 {
        h.advance(Duration::from_secs(30));
        h.text(a, r#"{"type":"k"}"#);
    }
    // The visitor said nothing for 90 s (it was closed at 90 s); the agent is still open.
    let log = h.log.clone();
    assert!(log.contains(&format!("{v} close 1001 idle timeout")));
    assert!(!log.contains(&format!("{a} close")));
    assert!(log.contains(&format!(
        "{a} <- {{\"type\":\"visitorsock\",\"data\":{{\"connected\":false}}}}"
    )));
    h.advance(Duration::from_secs(91));
    assert!(h.log.contains(&format!("{a} close 1001 idle timeout")));
    assert_eq!(h.core.stats().idle_timeouts, 2);
    // A socket that never sends connect is closed too.
    let c = h.open(Role::Visitor);
    let outs = h.advance(Duration::from_secs(90));
    assert_eq!(closes(&outs, c), vec![CloseCause::IdleTimeout]);
    insta::assert_snapshot!(h.log);
}

#[test]
fn pings_count_as_activity() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    for _ in 0..3 {
        h.advance(Duration::from_secs(60));
        h.core.handle_activity(h.now, v);
    }
    assert!(!h.log.contains("idle timeout"));
    h.advance(Duration::from_secs(90));
    assert!(h.log.contains(&format!("{v} close 1001 idle timeout")));
}

#[test]
fn bad_tokens_get_connfail_authorization_then_close() {
    let mut h = Harness::new();
    let expected = ServerFrame::Error {
        error: "connfail".into(),
        detail: Some("authorization".into()),
    };
    let expired = h.token(0);
    let other_group = {
        let (t, _) = h
            .keys
            .issue_agent(
                GroupId::new(999).unwrap(),
                &PartnerUserId::new("agent1").unwrap(),
                EPOCH_UNIX as u64,
                3600,
            )
            .unwrap();
        t.expose_secret().to_owned()
    };
    let foreign = {
        let (t, _) = TokenKeys::new(b"another secret, another secret!!!")
            .issue_agent(
                group(),
                &PartnerUserId::new("agent1").unwrap(),
                EPOCH_UNIX as u64,
                3600,
            )
            .unwrap();
        t.expose_secret().to_owned()
    };
    let cases = [
        json!({"type":"connect","authorization":expired,"groupid":"12345","visitorid":"v1","version":"1.0.0"}),
        json!({"type":"connect","authorization":other_group,"groupid":"12345","visitorid":"v1","version":"1.0.0"}),
        json!({"type":"connect","authorization":foreign,"groupid":"12345","visitorid":"v1","version":"1.0.0"}),
        json!({"type":"connect","authorization":"not.a.jwt","groupid":"12345","visitorid":"v1","version":"1.0.0"}),
        json!({"type":"connect","groupid":"12345","visitorid":"v1","version":"1.0.0"}),
    ];
    for case in &cases {
        let a = h.open(Role::Agent);
        let outs = h.text(a, &case.to_string());
        assert_eq!(frames(&outs, a), vec![expected.clone()], "{case}");
        assert_eq!(closes(&outs, a), vec![CloseCause::Unauthorized]);
        // Nothing more is sent on a closed socket, and its frames are ignored.
        assert!(h.text(a, r#"{"type":"k"}"#).is_empty());
        h.closed(a);
    }
    assert_eq!(h.core.stats().auth_failures, cases.len() as u64);
    // An unknown group is refused for visitors and agents alike.
    let v = h.open(Role::Visitor);
    let outs = h.text(
        v,
        r#"{"type":"connect","groupid":777,"visitorid":"v1","version":"6.33.0"}"#,
    );
    assert_eq!(
        frames(&outs, v),
        vec![ServerFrame::Error {
            error: "connfail".into(),
            detail: Some("group".into())
        }]
    );
    assert_eq!(closes(&outs, v), vec![CloseCause::Unauthorized]);
    assert_eq!(h.core.stats().visitors_tracked, 0);
}

#[test]
fn an_agent_token_expiring_later_is_checked_against_virtual_time() {
    let mut h = Harness::new();
    let token = h.token(60);
    h.advance(Duration::from_secs(61));
    let a = h.open(Role::Agent);
    let outs = h.text(
        a,
        &json!({"type":"connect","authorization":token,"groupid":12345,"visitorid":"v1","version":"1.0.0"}).to_string(),
    );
    assert_eq!(closes(&outs, a), vec![CloseCause::Unauthorized]);
}

#[test]
fn malformed_and_out_of_order_frames_get_the_error_frame_then_close() {
    let mut h = Harness::new();
    for (text, reason) in [
        ("not json", CloseCause::ProtocolError),
        ("[1,2]", CloseCause::ProtocolError),
        (r#"{"type":"k"}"#, CloseCause::ProtocolError),
        (
            r#"{"type":"connect","groupid":12345,"visitorid":"bad id!","version":"1"}"#,
            CloseCause::ProtocolError,
        ),
        (&"x".repeat(2000), CloseCause::TooLarge),
    ] {
        let c = h.open(Role::Visitor);
        let outs = h.text(c, text);
        let got = frames(&outs, c);
        assert!(
            matches!(&got[..], [ServerFrame::Error { error, detail: Some(_) }] if error == "badframe"),
            "{text}: {got:?}"
        );
        assert_eq!(closes(&outs, c), vec![reason]);
        h.closed(c);
    }
    let (v, _) = h.visitor("v1");
    let outs = h.text(
        v,
        r#"{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}"#,
    );
    assert_eq!(closes(&outs, v), vec![CloseCause::ProtocolError]);
    assert_eq!(h.core.stats().malformed_frames, 6);
    // The closed visitor socket was detached at once.
    assert_eq!(h.core.lookup(group(), &vid("v1")).unwrap().sockets, 0);
}

#[test]
fn shutdown_sends_serverclose_everywhere() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    let pending = h.open(Role::Visitor);
    h.core.shutdown(h.now);
    let outs = h.drain();
    for c in [a, v, pending] {
        assert_eq!(frames(&outs, c), vec![ServerFrame::ServerClose]);
        assert_eq!(closes(&outs, c), vec![CloseCause::Shutdown]);
    }
    assert!(h.core.is_shutting_down());
    insta::assert_snapshot!(h.log);
}

#[test]
fn unique_visitors_and_guest_tokens() {
    let mut h = Harness::new();
    let u = h.core.unique_visitor(h.now, group(), None);
    assert_eq!(u.unique.as_str().len(), 9);
    assert!(u.unique.as_str().bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(u.visitor.as_str(), format!("UNQ-{}", u.unique.as_str()));
    assert_eq!(u.timeout_secs, 300);
    let again = h.core.unique_visitor(h.now, group(), Some(&u.visitor));
    assert_eq!(again.unique, u.unique);
    let fresh = h
        .core
        .unique_visitor(h.now, group(), Some(&vid("undefined")));
    assert_ne!(fresh.unique, u.unique);
    // The guest token is accepted for its visitor only.
    let c = h.open(Role::Visitor);
    let outs = h.text(
        c,
        &json!({"type":"connect","groupid":12345,"visitorid":u.visitor.as_str(),"guesttoken":u.guest_token,"version":"6.33.0"}).to_string(),
    );
    assert!(matches!(frames(&outs, c)[0], ServerFrame::Connected { .. }));
    let c = h.open(Role::Visitor);
    let outs = h.text(
        c,
        &json!({"type":"connect","groupid":12345,"visitorid":fresh.visitor.as_str(),"guesttoken":u.guest_token,"version":"6.33.0"}).to_string(),
    );
    assert_eq!(
        frames(&outs, c),
        vec![ServerFrame::Error {
            error: "connfail".into(),
            detail: Some("guesttoken".into())
        }]
    );
    // Same seed, same ids.
    let mut other = Harness::new();
    assert_eq!(
        other.core.unique_visitor(other.now, group(), None).unique,
        u.unique
    );
}

#[test]
fn spurious_timeouts_do_nothing() {
    let mut h = Harness::new();
    let (_v, _) = h.visitor("v1");
    h.core.handle_timeout(h.now);
    h.core.handle_timeout(h.now + Duration::from_secs(1));
    assert!(h.drain().is_empty());
    // A timeout in the past of the table's deadlines never fires early.
    let next = h.core.poll_timeout().unwrap();
    assert!(next > h.now);
}

#[test]
fn counts_sockets_by_role() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    let (_v2, _) = h.visitor("v2");
    let s = h.core.stats();
    assert_eq!(
        (s.agent_sockets, s.visitor_sockets, s.visitors_present),
        (1, 2, 2)
    );
    h.closed(a);
    h.closed(v);
    let s = h.core.stats();
    assert_eq!(
        (s.agent_sockets, s.visitor_sockets, s.visitors_present),
        (0, 1, 2)
    );
    assert_eq!(s.connections_total, 3);
}

// ---------------------------------------------------------------- presence record bounds

fn presence_text(data: serde_json::Value) -> String {
    json!({"type":"presence","data":data}).to_string()
}

fn too_large(frames: &[ServerFrame]) -> bool {
    matches!(frames, [ServerFrame::Error { error, detail: Some(_) }] if error == "presencetoolarge")
}

fn accounted(h: &Harness, visitor: &str) -> usize {
    h.core
        .lookup(group(), &vid(visitor))
        .map_or(0, |s| record::record_bytes(&s.presence))
}

#[test]
fn presence_over_the_byte_bound_is_refused_whole() {
    // The harness bounds a record at 512 bytes and 16 keys.
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    h.text(
        v,
        &presence_text(json!({"url":"https://a.example/","blob":"x".repeat(300)})),
    );
    let before = h.core.lookup(group(), &vid("v1")).unwrap().presence;
    // 200 more bytes under a new key, plus a change of `url`: over 512 bytes in all.
    let outs = h.text(
        v,
        &presence_text(json!({"url":"https://a.example/2","blob2":"y".repeat(200)})),
    );
    assert!(too_large(&frames(&outs, v)), "{outs:?}");
    assert!(
        frames(&outs, a).is_empty(),
        "a refused frame is not forwarded"
    );
    assert!(
        closes(&outs, v).is_empty(),
        "the visitor's socket stays open"
    );
    // Nothing of the frame was merged, not even the change of an existing key.
    assert_eq!(h.core.lookup(group(), &vid("v1")).unwrap().presence, before);
    assert_eq!(h.core.stats().presence_refused, 1);
    assert_eq!(h.core.stats().presence_bytes as usize, accounted(&h, "v1"));
    // A frame that fits is still merged and forwarded.
    let outs = h.text(v, &presence_text(json!({"url":"https://a.example/3"})));
    assert_eq!(frames(&outs, a).len(), 1);
    assert_eq!(
        h.core.lookup(group(), &vid("v1")).unwrap().presence.url(),
        Some("https://a.example/3")
    );
    insta::assert_snapshot!(h.log);
}

#[test]
fn a_record_can_be_filled_exactly_to_the_byte_bound() {
    let mut h = Harness::new();
    let (v, _) = h.visitor("v1");
    // `"k":"…",` is 7 bytes plus the value's length: 512 bytes in all.
    let outs = h.text(v, &presence_text(json!({"k":"x".repeat(505)})));
    assert!(frames(&outs, v).is_empty(), "{outs:?}");
    assert_eq!(accounted(&h, "v1"), 512);
    assert_eq!(h.core.stats().presence_bytes, 512);
    // One byte more is refused; a same-size replacement is not.
    let outs = h.text(v, &presence_text(json!({"k":"x".repeat(506)})));
    assert!(too_large(&frames(&outs, v)));
    let outs = h.text(v, &presence_text(json!({"k":"y".repeat(505)})));
    assert!(frames(&outs, v).is_empty());
    assert_eq!(h.core.stats().presence_refused, 1);
}

#[test]
fn presence_over_the_key_bound_is_refused_whole() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    let mut first = serde_json::Map::new();
    for n in 0..16 {
        first.insert(format!("k{n}"), json!(n));
    }
    let outs = h.text(v, &presence_text(serde_json::Value::Object(first)));
    assert_eq!(frames(&outs, a).len(), 1);
    // Changing existing keys at the bound is fine.
    let outs = h.text(v, &presence_text(json!({"k0":"changed"})));
    assert_eq!(frames(&outs, a).len(), 1);
    // A 17th key is refused, and the change to k1 in the same frame with it.
    let outs = h.text(v, &presence_text(json!({"k1":"changed","k16":16})));
    assert!(too_large(&frames(&outs, v)));
    assert!(frames(&outs, a).is_empty());
    let snap = h.core.lookup(group(), &vid("v1")).unwrap();
    assert_eq!(snap.presence.len(), 16);
    assert_eq!(snap.presence.get("k0"), Some(&json!("changed")));
    assert_eq!(snap.presence.get("k1"), Some(&json!(1)));
    assert_eq!(h.core.stats().presence_refused, 1);
}

#[test]
fn presence_accounting_goes_back_to_zero_when_the_record_is_dropped() {
    let mut h = Harness::new();
    let (v1, _) = h.visitor("v1");
    let (v2, _) = h.visitor("v2");
    h.text(
        v1,
        &presence_text(json!({"url":"https://a.example/","n":1})),
    );
    h.text(v2, &presence_text(json!({"url":"https://b.example/"})));
    h.text(
        v1,
        &presence_text(json!({"url":"https://a.example/longer/path","m":true})),
    );
    let total = accounted(&h, "v1") + accounted(&h, "v2");
    assert!(total > 0);
    assert_eq!(h.core.stats().presence_bytes as usize, total);
    // v1 leaves: its record is released when its presence window ends.
    h.closed(v1);
    assert_eq!(h.core.stats().presence_bytes as usize, total);
    h.advance(crate::config::DEFAULT_PRESENCE_WINDOW);
    assert_eq!(h.core.stats().presence_bytes as usize, accounted(&h, "v2"));
    // v2 leaves while an agent still watches it: the record is kept for the agent, but empty.
    let a = h.agent("v2");
    h.closed(v2);
    h.advance(crate::config::DEFAULT_PRESENCE_WINDOW);
    assert_eq!(h.core.stats().presence_bytes, 0);
    assert_eq!(h.core.stats().visitors_tracked, 1);
    h.closed(a);
    assert_eq!(h.core.stats().visitors_tracked, 0);
    // A new presence period starts from an empty record.
    let (v3, _) = h.visitor("v1");
    assert_eq!(h.core.stats().presence_bytes, 0);
    h.text(v3, &presence_text(json!({"n":2})));
    assert_eq!(h.core.stats().presence_bytes as usize, accounted(&h, "v1"));
}

// ---------------------------------------------------------------- token expiry

#[test]
fn an_agent_socket_is_closed_at_its_token_expiry() {
    let mut h = Harness::new();
    let token = h.token(60);
    let a = h.open(Role::Agent);
    h.text(
        a,
        &json!({"type":"connect","authorization":token,"groupid":"12345","visitorid":"v1","version":"6.25.0"}).to_string(),
    );
    let (v, _) = h.visitor("v1");
    let outs = h.advance(Duration::from_millis(59_999));
    assert!(closes(&outs, a).is_empty());
    // Visitor frames still reach the agent before the expiry.
    let outs = h.text(v, r#"{"type":"visibility","data":{"visibility":"hidden"}}"#);
    assert_eq!(frames(&outs, a).len(), 1);
    let outs = h.advance(Duration::from_millis(1));
    assert_eq!(
        frames(&outs, a),
        vec![ServerFrame::Error {
            error: "connfail".into(),
            detail: Some("authorization".into())
        }]
    );
    assert_eq!(closes(&outs, a), vec![CloseCause::Unauthorized]);
    assert_eq!(h.core.stats().tokens_expired, 1);
    // The expired socket gets nothing more.
    let outs = h.text(
        v,
        r#"{"type":"visibility","data":{"visibility":"visible"}}"#,
    );
    assert!(frames(&outs, a).is_empty());
    h.closed(a);
    insta::assert_snapshot!(h.log);
}

#[test]
fn a_socket_closed_before_its_token_expiry_leaves_no_timer() {
    let mut h = Harness::new();
    let a = h.agent("v1");
    h.closed(a);
    assert_eq!(h.core.poll_timeout(), None);
    let outs = h.advance(Duration::from_secs(7200));
    assert!(outs.is_empty());
    assert_eq!(h.core.stats().tokens_expired, 0);
}

#[test]
fn guest_tokens_are_checked_for_expiry_at_connect() {
    let mut h = Harness::new();
    let u = h.core.unique_visitor(h.now, group(), None);
    let connect = |token: &str| {
        json!({"type":"connect","groupid":12345,"visitorid":u.visitor.as_str(),"guesttoken":token,"version":"6.33.0"}).to_string()
    };
    // Valid until its timeout (300 s)...
    h.advance(Duration::from_secs(299));
    let c = h.open(Role::Visitor);
    let outs = h.text(c, &connect(&u.guest_token));
    assert!(matches!(frames(&outs, c)[0], ServerFrame::Connected { .. }));
    h.closed(c);
    // ...refused after it.
    h.advance(Duration::from_secs(1));
    let c = h.open(Role::Visitor);
    let outs = h.text(c, &connect(&u.guest_token));
    assert_eq!(
        frames(&outs, c),
        vec![ServerFrame::Error {
            error: "connfail".into(),
            detail: Some("guesttoken".into())
        }]
    );
    assert_eq!(closes(&outs, c), vec![CloseCause::Unauthorized]);
    // Asking again with the unique id (Glance's extendUnique) keeps the id with a fresh token.
    let again = h.core.unique_visitor(h.now, group(), Some(&u.visitor));
    assert_eq!(again.visitor, u.visitor);
    let c = h.open(Role::Visitor);
    let outs = h.text(c, &connect(&again.guest_token));
    assert!(matches!(frames(&outs, c)[0], ServerFrame::Connected { .. }));
}

// ---------------------------------------------------------------- presence window

#[test]
fn a_hidden_glance_visitor_reopening_after_5_s_does_not_flap() {
    // The default configuration: Glance's visitor script (load-balanced mode) closes its socket
    // when its tab is hidden and opens a new one exactly 5.0 s later.
    let settings = CoreSettings::from_config(&ServiceConfig::default(), 1);
    let mut h = Harness::with(settings);
    let a = h.agent("v1");
    let (v, _) = h.visitor("v1");
    let mut seen = Vec::new();
    let outs = h.closed(v);
    seen.extend(frames(&outs, a));
    seen.extend(frames(&h.advance(Duration::from_millis(5_000)), a));
    let (v2, outs) = h.visitor("v1");
    seen.extend(frames(&outs, a));
    assert_eq!(seen, vec![sock(false), sock(true)], "no visitorconn false");
    // The same with the network's delay on top of the 5 s.
    let outs = h.closed(v2);
    seen = frames(&outs, a);
    seen.extend(frames(&h.advance(Duration::from_millis(5_250)), a));
    let (v3, outs) = h.visitor("v1");
    seen.extend(frames(&outs, a));
    assert_eq!(seen, vec![sock(false), sock(true)], "no visitorconn false");
    // A visitor that does not come back is reported gone when the 6 s window ends.
    h.closed(v3);
    let outs = h.advance(Duration::from_millis(5_999));
    assert!(frames(&outs, a).is_empty());
    let outs = h.advance(Duration::from_millis(1));
    assert_eq!(frames(&outs, a), vec![vconn(false)]);
    insta::assert_snapshot!(h.log);
}

#[test]
fn held_signals_wait_as_long_as_the_visitor_is_present_by_default() {
    let settings = CoreSettings::from_config(&ServiceConfig::default(), 1);
    assert_eq!(settings.hold_window, settings.presence_window);
    let mut h = Harness::with(settings);
    let (v, _) = h.visitor("v1");
    h.closed(v);
    assert_eq!(h.signal("v1", json!({"n":1})), Ok(Delivery::Held));
    // The visitor reopens just before its presence window ends: the signal is still there.
    h.advance(Duration::from_millis(5_999));
    let (v2, outs) = h.visitor("v1");
    assert_eq!(
        frames(&outs, v2)[1..],
        [ServerFrame::Signal(json!({"n":1}))]
    );
}

mod properties {
    //! Random input sequences (garbage frames and arbitrary timings included): the core never
    //! panics and keeps its invariants.

    use std::collections::{HashMap, HashSet};

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Agent(u8),
        Visitor(u8),
        Text(u8, u8),
        Close(u8),
        Advance(u16),
        Signal(u8),
        Shutdown,
        /// A `presence` frame on a connection: one of 24 keys, a value of up to 399 bytes.
        Presence(u8, u8, u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4).prop_map(Op::Agent),
            4 => (0u8..4).prop_map(Op::Visitor),
            6 => (any::<u8>(), any::<u8>()).prop_map(|(c, t)| Op::Text(c, t)),
            3 => any::<u8>().prop_map(Op::Close),
            4 => (0u16..8000).prop_map(Op::Advance),
            4 => (0u8..4).prop_map(Op::Signal),
            1 => Just(Op::Shutdown),
            4 => (any::<u8>(), any::<u8>(), 0u16..400).prop_map(|(c, k, n)| Op::Presence(c, k, n)),
        ]
    }

    const TEXTS: &[&str] = &[
        r#"{"type":"k"}"#,
        r#"{"type":"presence","data":{"url":"https://a.example/","n":1}}"#,
        r#"{"type":"visibility","data":{"visibility":"hidden"}}"#,
        r#"{"type":"terms","data":{"status":"accepted"}}"#,
        r#"{"type":"visitorsessionstart"}"#,
        r#"{"type":"visitorsessionend","data":null}"#,
        r#"{"type":"custom","data":[1,2,3]}"#,
        r#"{"type":"signal","mtype":"signal","data":{"from":"agent"}}"#,
        r#"{"type":"invoke","data":{"func":"GLANCE.x","args":{}}}"#,
        r#"{"type":"connect","groupid":12345,"visitorid":"v0","version":"1.0.0"}"#,
        r#"{"type":"connect","groupid":"12345","visitorid":"v1","authorization":"x","version":"1"}"#,
        "",
        "{",
        "[]",
        "null",
        r#"{"type":7}"#,
        r#"{"mtype":"","type":"k"}"#,
        "\u{0}\u{ffff}",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_inputs_keep_the_invariants(ops in proptest::collection::vec(op(), 1..80)) {
            let mut h = Harness::new();
            let mut open: Vec<ConnId> = Vec::new();
            let mut closed: HashSet<ConnId> = HashSet::new();
            let mut next_signal = 0u64;
            let mut seen: HashMap<String, Vec<u64>> = HashMap::new();
            let mut delivered_seen = 0u64;
            let mut conn_visitor: HashMap<ConnId, String> = HashMap::new();
            for op in ops {
                let outs = match op.clone() {
                    Op::Agent(v) => {
                        let token = h.token(3600);
                        let c = h.open(Role::Agent);
                        open.push(c);
                        h.text(c, &json!({"type":"connect","authorization":token,"groupid":"12345","visitorid":format!("v{v}"),"version":"1.0.0"}).to_string())
                    }
                    Op::Visitor(v) => {
                        let c = h.open(Role::Visitor);
                        open.push(c);
                        conn_visitor.insert(c, format!("v{v}"));
                        h.text(c, &json!({"type":"connect","groupid":12345,"visitorid":format!("v{v}"),"version":"1.0.0"}).to_string())
                    }
                    Op::Text(c, t) if !open.is_empty() => {
                        let c = open[c as usize % open.len()];
                        h.text(c, TEXTS[t as usize % TEXTS.len()])
                    }
                    Op::Presence(c, k, n) if !open.is_empty() => {
                        let c = open[c as usize % open.len()];
                        let key = format!("k{}", k % 24);
                        h.text(c, &presence_text(json!({ key: "x".repeat(usize::from(n)) })))
                    }
                    Op::Close(c) if !open.is_empty() => {
                        let c = open.remove(c as usize % open.len());
                        let outs = h.closed(c);
                        closed.insert(c);
                        outs
                    }
                    Op::Advance(ms) => h.advance(Duration::from_millis(u64::from(ms))),
                    Op::Signal(v) => {
                        next_signal += 1;
                        let _ = h.core.signal(h.now, group(), &vid(&format!("v{v}")), ServerFrame::Signal(json!({"seq": next_signal})));
                        h.drain()
                    }
                    Op::Shutdown => {
                        h.core.shutdown(h.now);
                        h.drain()
                    }
                    _ => Vec::new(),
                };
                for out in &outs {
                    match out {
                        Output::Send { conn, frame } => {
                            prop_assert!(!closed.contains(conn), "frame to a closed socket: {out:?}");
                            if let ServerFrame::Signal(data) = frame {
                                if let Some(seq) = data.get("seq").and_then(|s| s.as_u64()) {
                                    delivered_seen += 1;
                                    let who = conn_visitor.get(conn).cloned().unwrap_or_default();
                                    let list = seen.entry(who).or_default();
                                    prop_assert!(list.last().is_none_or(|last| *last < seq), "out of order or twice: {list:?} then {seq}");
                                    list.push(seq);
                                }
                            }
                        }
                        Output::SendText { conn, .. } => {
                            prop_assert!(!closed.contains(conn), "text to a closed socket: {out:?}");
                        }
                        Output::Close { conn, .. } => {
                            prop_assert!(!closed.contains(conn), "closed twice: {out:?}");
                            closed.insert(*conn);
                        }
                    }
                }
                let stats = h.core.stats();
                prop_assert_eq!(stats.agent_sockets + stats.visitor_sockets, h.core.connection_count() as u64);
                let present = (0..4).filter(|v| h.core.is_present(group(), &vid(&format!("v{v}")))).count() as u64;
                prop_assert_eq!(stats.visitors_present, present);
                // The presence byte gauge is the sum of the records' sizes.
                let bytes: usize = (0..4).map(|v| accounted(&h, &format!("v{v}"))).sum();
                prop_assert_eq!(stats.presence_bytes as usize, bytes);
                if matches!(op, Op::Advance(_)) {
                    // Every due timer has fired: the next deadline is in the future.
                    prop_assert!(h.core.poll_timeout().is_none_or(|t| t > h.now));
                }
                // Agent socket-route signals carry no seq; REST signals are counted exactly.
                prop_assert!(stats.signals_delivered >= delivered_seen);
            }
            // Time runs out: every held signal is dropped, every record forgotten once sockets close.
            for c in open.drain(..) {
                h.closed(c);
            }
            h.advance(Duration::from_secs(3600));
            let stats = h.core.stats();
            prop_assert_eq!(stats.visitors_present, 0);
            prop_assert_eq!(stats.visitors_tracked, 0);
            prop_assert_eq!(stats.presence_bytes, 0);
            prop_assert_eq!(h.core.poll_timeout(), None);
            // Every held signal was delivered once or dropped.
            prop_assert_eq!(stats.signals_held, stats.held_delivered + stats.signals_dropped);
        }
    }
}

#[test]
fn a_signal_that_would_reach_the_visitor_over_the_frame_limit_is_refused() {
    let mut h = Harness::with(CoreSettings {
        max_frame_bytes: 1024,
        ..settings()
    });
    let (v, _) = h.visitor("v1");
    // A body within the REST limit that grows past the frame limit once written as a frame.
    let big = serde_json::Value::String("x".repeat(2000));
    let refused = h
        .core
        .signal(h.now, group(), &vid("v1"), ServerFrame::Signal(big));
    assert!(
        matches!(refused, Err(SignalRefused::TooLarge { limit: 1024, .. })),
        "{refused:?}"
    );
    assert!(
        frames(&h.drain(), v).is_empty(),
        "nothing was sent to the visitor"
    );
    let small = h.core.signal(
        h.now,
        group(),
        &vid("v1"),
        ServerFrame::Signal(json!({"n": 1})),
    );
    assert_eq!(small, Ok(Delivery::Delivered));
}
