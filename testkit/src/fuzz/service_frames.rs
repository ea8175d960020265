//! Service core checks: arbitrary sequences of socket opens, text frames (valid templates,
//! arbitrary `type`s and `data`, arbitrary text of any length, oversized frames), transport
//! closes, activity, REST signals, lookups, unique ids, virtual time and shutdown, played
//! against `ServiceCore`. After every step:
//!
//! * no output for a connection that was never opened, whose transport has closed, or after
//!   the core asked to close it; at most one close per connection;
//! * the first frame on a socket is `connected`, `error` or `serverclose`, and `connected` comes
//!   at most once; after `serverclose` nothing but the close;
//! * every frame sent encodes within the core's own frame limit and decodes back to itself;
//! * per agent socket, `visitorconn` and `visitorsock` alternate, starting with `true`;
//! * at shutdown, every open socket gets `serverclose` before any other frame;
//! * a visitor's merged presence record stays within the byte and key bounds, and the
//!   `presence_bytes` gauge is the size of the records of present visitors (0 once nobody is);
//! * the connection count is opens − transport closes; the socket gauges add up to it;
//!   cumulative counters never go down; held signals delivered + dropped ≤ held; the
//!   `visitors_present` gauge equals the number of visitors `is_present` says are present,
//!   and `lookup` agrees with `is_present`;
//! * a REST signal is delivered or held only for a present visitor, and a delivered one is
//!   sent to one of the visitor's sockets;
//! * no deadline in the past after `handle_timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use glance_presence_protocol::rest::Delivery;
use glance_presence_protocol::wire::{ClientFrame, ServerFrame};
use glance_presence_protocol::{ApiKey, GroupId, PartnerUserId, VisitorId};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::core::{
    ConnId, CoreSettings, CoreStats, Output, Role, ServiceCore, SignalRefused,
};
use glance_presence_service::ServiceConfig;
use serde_json::{json, Value};

use super::input::Input;

/// Whether a signal given to `ServiceCore::signal` (the REST route) must also encode within
/// the frame limit. Off: found by this target, the core sends a REST signal whatever its
/// encoded size, so a `signalvisitor` body within `max_body_bytes` can become a frame over the
/// visitor's (and the service's own) frame limit, either because `max_body_bytes` is larger or
/// because numbers re-encode longer (`1e5` is sent as `100000.0`).
const REST_SIGNALS_WITHIN_FRAME_LIMIT: bool = true;

/// Unix time at the core's epoch.
const EPOCH_UNIX: u64 = 1_700_000_000;
const SECRET: &[u8] = b"fuzz-token-secret";
const GROUP: u64 = 12345;
const OTHER_GROUP: u64 = 777;
const VISITORS: [&str; 3] = ["v1", "v2", "UNQ-123456789"];

/// Agent tokens: valid for the group, expired, for another group (issued once).
fn tokens() -> &'static [String; 3] {
    static TOKENS: OnceLock<[String; 3]> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let keys = TokenKeys::new(SECRET);
        let user = PartnerUserId::new("agent1").expect("valid");
        let group = GroupId::new(GROUP).expect("valid");
        let other = GroupId::new(OTHER_GROUP).expect("valid");
        let issue = |g, now, life| {
            keys.issue_agent(g, &user, now, life)
                .expect("issued")
                .0
                .expose_secret()
                .to_owned()
        };
        [
            issue(group, EPOCH_UNIX, 100_000),
            issue(group, EPOCH_UNIX - 100, 50),
            issue(other, EPOCH_UNIX, 100_000),
        ]
    })
}

/// Frame types worth naming (client and server kinds, custom ones).
const TYPES: &[&str] = &[
    "connect",
    "k",
    "presence",
    "visibility",
    "terms",
    "visitorsessionstart",
    "visitorsessionend",
    "visitorerror",
    "signal",
    "invoke",
    "custom",
    "blur",
    "connected",
    "",
];

/// What a run reached (for the seed corpus).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reached {
    pub connected: u8,
    pub present: u8,
    pub forwarded: u8,
    pub signals: u8,
    pub closes: u8,
}

struct Conn {
    role: Role,
    /// The transport closed (`handle_closed` was called).
    gone: bool,
    /// The core asked to close it.
    closed: bool,
    frames: usize,
    connected: bool,
    server_close: bool,
    /// Last `visitorconn` / `visitorsock` value seen (agents).
    conn_state: bool,
    sock_state: bool,
    /// Open when `shutdown` was called, and no frame since.
    awaiting_server_close: bool,
}

struct Run {
    core: ServiceCore,
    now: Instant,
    conns: BTreeMap<ConnId, Conn>,
    max_frame_bytes: usize,
    /// The bounds of a visitor's merged presence record: bytes, keys.
    presence_bounds: (usize, usize),
    visitors: BTreeSet<(GroupId, VisitorId)>,
    last_stats: CoreStats,
    reached: Reached,
    shut_down: bool,
    /// Signals sent by the last step, per connection.
    signals_sent: Vec<ConnId>,
    /// The encodings of the frames given to `ServiceCore::signal` (the REST route, see
    /// [`REST_SIGNALS_WITHIN_FRAME_LIMIT`]), sent at once or later from the hold queue.
    rest_frames: BTreeSet<String>,
}

fn bump(n: &mut u8) {
    *n = n.saturating_add(1);
}

impl Run {
    fn new(u: &mut Input<'_>) -> Self {
        let group = GroupId::new(GROUP).expect("valid");
        let config = ServiceConfig::builder()
            .group(group, ApiKey::new("api-key"))
            .build()
            .expect("valid configuration");
        let mut settings = CoreSettings::from_config(&config, u.u64());
        settings.max_frame_bytes = 256 + usize::from(u.u16() % 4096);
        settings.held_signals_per_visitor = 1 + u.below(4);
        settings.idle_timeout = Duration::from_secs(5 + u64::from(u.u8() % 120));
        settings.presence_window = Duration::from_millis(500 + 100 * u64::from(u.u8() % 100));
        settings.hold_window = Duration::from_millis(500 + 100 * u64::from(u.u8() % 100));
        // Small presence bounds, so refusals happen.
        settings.max_presence_bytes = 16 + usize::from(u.u16() % 2048);
        settings.max_presence_keys = 1 + u.below(16);
        let max_frame_bytes = settings.max_frame_bytes;
        let presence_bounds = (settings.max_presence_bytes, settings.max_presence_keys);
        let now = Instant::now();
        let core = ServiceCore::new(settings, TokenKeys::new(SECRET), now, EPOCH_UNIX as f64);
        Run {
            core,
            now,
            conns: BTreeMap::new(),
            max_frame_bytes,
            presence_bounds,
            visitors: BTreeSet::new(),
            last_stats: CoreStats::default(),
            reached: Reached::default(),
            shut_down: false,
            signals_sent: Vec::new(),
            rest_frames: BTreeSet::new(),
        }
    }

    fn pick_conn(&self, u: &mut Input<'_>) -> ConnId {
        let n = u.u8();
        if self.conns.is_empty() || n == 255 {
            return ConnId(u64::from(n) + 1000);
        }
        // Mostly the newest connections.
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        let back = usize::from(n) % ids.len().min(if n < 200 { 3 } else { 64 });
        ids[ids.len() - 1 - back]
    }

    fn open(&mut self, role: Role) -> ConnId {
        let id = self.core.open(self.now, role);
        let fresh = self.conns.insert(
            id,
            Conn {
                role,
                gone: false,
                closed: false,
                frames: 0,
                connected: false,
                server_close: false,
                conn_state: false,
                sock_state: false,
                awaiting_server_close: false,
            },
        );
        assert!(fresh.is_none(), "{id} handed out twice");
        id
    }

    fn text(&mut self, conn: ConnId, text: &str) {
        if let Ok(ClientFrame::Connect(c)) = ClientFrame::decode(text, usize::MAX) {
            self.visitors.insert((c.group, c.visitor));
        }
        self.core.handle_text(self.now, conn, text);
    }

    fn drain(&mut self) {
        self.signals_sent.clear();
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { conn, frame } => self.sent(conn, frame),
                Output::SendText { conn, .. } => {
                    panic!("raw text to {conn}: no test control is on")
                }
                Output::Close { conn, .. } => {
                    let c = self
                        .conns
                        .get_mut(&conn)
                        .unwrap_or_else(|| panic!("close for {conn}, never opened"));
                    assert!(!c.gone, "close for {conn}, whose transport closed");
                    assert!(!c.closed, "{conn} closed twice");
                    c.closed = true;
                    bump(&mut self.reached.closes);
                }
            }
        }
    }

    fn sent(&mut self, conn: ConnId, frame: ServerFrame) {
        let max = self.max_frame_bytes;
        let c = self
            .conns
            .get_mut(&conn)
            .unwrap_or_else(|| panic!("{frame:?} for {conn}, never opened"));
        assert!(!c.gone, "{frame:?} for {conn}, whose transport closed");
        assert!(!c.closed, "{frame:?} for {conn} after the core closed it");
        assert!(!c.server_close, "{frame:?} for {conn} after serverclose");
        if c.awaiting_server_close {
            assert_eq!(
                frame,
                ServerFrame::ServerClose,
                "{conn} got {frame:?} at shutdown before serverclose"
            );
            c.awaiting_server_close = false;
        }
        if c.frames == 0 {
            assert!(
                matches!(
                    frame,
                    ServerFrame::Connected { .. }
                        | ServerFrame::Error { .. }
                        | ServerFrame::ServerClose
                ),
                "the first frame on {conn} is {frame:?}"
            );
        }
        c.frames += 1;
        let text = frame.encode();
        let rest_signal = c.role == Role::Visitor && self.rest_frames.contains(&text);
        assert!(
            text.len() <= max || (rest_signal && !REST_SIGNALS_WITHIN_FRAME_LIMIT),
            "{conn} is sent {} bytes, over the service's own frame limit {max}: {}",
            text.len(),
            &text[..text.len().min(300)]
        );
        assert_eq!(
            ServerFrame::decode(&text, usize::MAX).as_ref(),
            Ok(&frame),
            "sent as {text}"
        );
        match &frame {
            ServerFrame::Connected { .. } => {
                assert!(!c.connected, "connected twice on {conn}");
                c.connected = true;
                bump(&mut self.reached.connected);
            }
            ServerFrame::ServerClose => c.server_close = true,
            ServerFrame::VisitorConn { connected } => {
                assert_eq!(c.role, Role::Agent, "visitorconn to a visitor");
                assert_ne!(
                    *connected, c.conn_state,
                    "visitorconn {connected} twice in a row on {conn}"
                );
                c.conn_state = *connected;
                bump(&mut self.reached.present);
            }
            ServerFrame::VisitorSock { connected } => {
                assert_eq!(c.role, Role::Agent, "visitorsock to a visitor");
                assert_ne!(
                    *connected, c.sock_state,
                    "visitorsock {connected} twice in a row on {conn}"
                );
                c.sock_state = *connected;
            }
            ServerFrame::Presence(_)
            | ServerFrame::Visibility(_)
            | ServerFrame::Terms(_)
            | ServerFrame::VisitorSessionStart(_)
            | ServerFrame::VisitorSessionEnd(_)
            | ServerFrame::VisitorError(_) => {
                assert_eq!(c.role, Role::Agent, "{frame:?} forwarded to a visitor");
                bump(&mut self.reached.forwarded);
            }
            ServerFrame::Signal(_) | ServerFrame::Invoke(_) => {
                assert_eq!(c.role, Role::Visitor, "{frame:?} sent to an agent");
                self.signals_sent.push(conn);
                bump(&mut self.reached.signals);
            }
            ServerFrame::Other { .. } if c.role == Role::Visitor => {
                self.signals_sent.push(conn);
                bump(&mut self.reached.signals);
            }
            _ => {}
        }
    }

    fn check_state(&mut self) {
        let stats = self.core.stats();
        let live = self.conns.values().filter(|c| !c.gone);
        let (mut agents, mut visitors) = (0u64, 0u64);
        for c in live {
            match c.role {
                Role::Agent => agents += 1,
                Role::Visitor => visitors += 1,
            }
        }
        assert_eq!(
            self.core.connection_count() as u64,
            agents + visitors,
            "connection count"
        );
        assert_eq!(stats.agent_sockets, agents, "agent socket gauge");
        assert_eq!(stats.visitor_sockets, visitors, "visitor socket gauge");
        assert_eq!(stats.connections_total, self.conns.len() as u64);
        let last = &self.last_stats;
        let monotonic = [
            (
                "signals_delivered",
                last.signals_delivered,
                stats.signals_delivered,
            ),
            ("signals_held", last.signals_held, stats.signals_held),
            ("held_delivered", last.held_delivered, stats.held_delivered),
            (
                "signals_dropped",
                last.signals_dropped,
                stats.signals_dropped,
            ),
            (
                "signals_not_present",
                last.signals_not_present,
                stats.signals_not_present,
            ),
            (
                "signals_queue_full",
                last.signals_queue_full,
                stats.signals_queue_full,
            ),
            ("auth_failures", last.auth_failures, stats.auth_failures),
            (
                "frames_received",
                last.frames_received,
                stats.frames_received,
            ),
            (
                "frames_forwarded",
                last.frames_forwarded,
                stats.frames_forwarded,
            ),
            (
                "malformed_frames",
                last.malformed_frames,
                stats.malformed_frames,
            ),
            ("idle_timeouts", last.idle_timeouts, stats.idle_timeouts),
            ("blurs", last.blurs, stats.blurs),
            (
                "connections_total",
                last.connections_total,
                stats.connections_total,
            ),
            (
                "presence_refused",
                last.presence_refused,
                stats.presence_refused,
            ),
        ];
        for (name, before, after) in monotonic {
            assert!(after >= before, "{name} went down: {before} → {after}");
        }
        assert!(stats.held_delivered <= stats.signals_delivered);
        assert!(
            stats.held_delivered + stats.signals_dropped <= stats.signals_held,
            "held signals: {} delivered + {} dropped > {} held",
            stats.held_delivered,
            stats.signals_dropped,
            stats.signals_held
        );
        let present = self
            .visitors
            .iter()
            .filter(|(g, v)| self.core.is_present(*g, v))
            .count() as u64;
        assert_eq!(stats.visitors_present, present, "visitors_present gauge");
        assert!(stats.visitors_tracked >= present);
        let (max_bytes, max_keys) = self.presence_bounds;
        let mut record_bytes = 0;
        for (g, v) in &self.visitors {
            let snapshot = self.core.lookup(*g, v);
            assert_eq!(snapshot.is_some(), self.core.is_present(*g, v));
            if let Some(s) = snapshot {
                assert_eq!((&s.group, &s.visitor), (g, v));
                assert!(s.updated_unix >= s.since_unix);
                // The merged record stays within its bounds, counted as `"key":value,`.
                let bytes: usize = s
                    .presence
                    .iter()
                    .map(|(k, v)| {
                        Value::from(k.as_str()).to_string().len() + v.to_string().len() + 2
                    })
                    .sum();
                assert!(
                    bytes <= max_bytes && s.presence.len() <= max_keys,
                    "{v}'s record holds {bytes} bytes in {} keys; the bounds are {max_bytes} \
                     and {max_keys}",
                    s.presence.len()
                );
                let encoded = Value::Object(s.presence.clone().into_map()).to_string();
                assert!(encoded.len() <= max_bytes + 1);
                record_bytes += bytes;
            }
        }
        assert_eq!(
            stats.presence_bytes, record_bytes as u64,
            "the presence_bytes gauge and the records of present visitors differ"
        );
        self.last_stats = stats;
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.core.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.core.handle_timeout(self.now);
            self.drain();
            if let Some(next) = self.core.poll_timeout() {
                assert!(
                    next > self.now,
                    "a deadline at or before now after handle_timeout"
                );
            }
        }
        self.now = target;
    }
}

fn connect_frame(u: &mut Input<'_>, role: Role) -> String {
    let group = match u.below(8) {
        0 => json!(OTHER_GROUP),
        1 => json!(OTHER_GROUP.to_string()),
        2 | 3 => json!(GROUP),
        _ => json!(GROUP.to_string()),
    };
    let visitor = VISITORS[u.below(VISITORS.len())];
    let mut map = serde_json::Map::new();
    map.insert("type".into(), json!("connect"));
    match role {
        Role::Agent => match u.below(6) {
            0 => {}
            1 => {
                map.insert("authorization".into(), json!(tokens()[1]));
            }
            2 => {
                map.insert("authorization".into(), json!(tokens()[2]));
            }
            3 => {
                map.insert("authorization".into(), json!(u.text(40)));
            }
            _ => {
                map.insert("authorization".into(), json!(tokens()[0]));
            }
        },
        Role::Visitor => {
            if u.below(4) == 0 {
                map.insert("guesttoken".into(), json!(u.text(20)));
            }
        }
    }
    map.insert("groupid".into(), group);
    map.insert("visitorid".into(), json!(visitor));
    map.insert("version".into(), json!("6.25.0"));
    Value::Object(map).to_string()
}

fn template(u: &mut Input<'_>, role: Role) -> String {
    match u.below(12) {
        0..=2 => connect_frame(u, role),
        3 => r#"{"type":"k"}"#.to_owned(),
        4 => json!({"type": "presence", "data": u.json(2)}).to_string(),
        5 => {
            let mut data = serde_json::Map::new();
            for _ in 0..u.below(6) {
                data.insert(u.word(&["url", "browser", "k1", "k2"], 8), u.json(1));
            }
            json!({"type": "presence", "data": data}).to_string()
        }
        6 => json!({"type": "visibility", "data": {"visibility": u.pick(&["hidden", "visible", "x"])}})
            .to_string(),
        7 => json!({"type": "terms", "data": {"status": u.pick(&["accepted", "declined", "displayed", "bogus"])}})
            .to_string(),
        8 => json!({"type": u.pick(&["visitorsessionstart", "visitorsessionend", "visitorerror"]), "data": u.json(1)})
            .to_string(),
        9 => json!({"type": "signal", "mtype": "signal", "data": u.json(2)}).to_string(),
        10 => json!({"type": "invoke", "mtype": "invoke", "data": {"func": u.pick(&["GLANCE.x", "alert"]), "args": u.json(1)}})
            .to_string(),
        _ => {
            // An arbitrary type with arbitrary data and extra fields.
            let mut map = serde_json::Map::new();
            map.insert(u.pick(&["type", "mtype", "type"]).to_owned(), json!(u.word(TYPES, 16)));
            if u.bool() {
                map.insert("data".into(), u.json(3));
            }
            for _ in 0..u.below(3) {
                map.insert(u.word(&["keepalive", "direct", "x"], 8), u.json(1));
            }
            Value::Object(map).to_string()
        }
    }
}

/// Plays one input; returns what it reached.
pub fn run(data: &[u8]) -> Reached {
    let mut u = Input::new(data);
    let mut r = Run::new(&mut u);
    let mut steps = 0;
    while !u.is_empty() && steps < 48 {
        steps += 1;
        match u.below(16) {
            0 | 1 => {
                let role = if u.bool() { Role::Agent } else { Role::Visitor };
                let conn = r.open(role);
                // Usually the connect frame follows at once.
                if u.below(4) != 0 {
                    let text = connect_frame(&mut u, role);
                    r.text(conn, &text);
                }
            }
            2..=5 => {
                let conn = r.pick_conn(&mut u);
                let role = r.conns.get(&conn).map_or(Role::Visitor, |c| c.role);
                let text = template(&mut u, role);
                r.text(conn, &text);
            }
            6 => {
                // Arbitrary text of any length (up to 4 KiB), now and then oversized.
                let conn = r.pick_conn(&mut u);
                let mut text = u.text(4096);
                if u.below(8) == 0 {
                    text.push_str(&" ".repeat(r.max_frame_bytes));
                }
                r.text(conn, &text);
            }
            7 | 8 => {
                let conn = r.pick_conn(&mut u);
                if let Some(c) = r.conns.get_mut(&conn) {
                    c.gone = true;
                }
                r.core.handle_closed(r.now, conn);
            }
            9 => {
                let conn = r.pick_conn(&mut u);
                r.core.handle_activity(r.now, conn);
            }
            10 | 11 => {
                let n = u.u8();
                let by = if n < 128 {
                    Duration::from_millis(100 * u64::from(n))
                } else {
                    Duration::from_secs(u64::from(n - 128))
                };
                r.advance(by);
            }
            12 => {
                let group =
                    GroupId::new(if u.below(4) == 0 { OTHER_GROUP } else { GROUP }).expect("valid");
                let visitor = VisitorId::new(VISITORS[u.below(VISITORS.len())]).expect("valid");
                let present = r.core.is_present(group, &visitor);
                let frame = match u.below(3) {
                    0 => ServerFrame::Signal(u.json(2)),
                    // As the service's REST body reader builds it: a `null` data is no data.
                    1 => ServerFrame::Other {
                        kind: "custom".to_owned(),
                        data: Some(u.json(1)).filter(|v| !v.is_null()),
                    },
                    _ => ServerFrame::Invoke(glance_presence_protocol::InvokeRequest {
                        func: "GLANCE.x".to_owned(),
                        args: u.json(1),
                    }),
                };
                r.rest_frames.insert(frame.encode());
                let outcome = r.core.signal(r.now, group, &visitor, frame);
                r.drain();
                match outcome {
                    Ok(Delivery::Delivered) => {
                        assert!(present, "delivered to an absent visitor");
                        assert_eq!(r.signals_sent.len(), 1, "a delivered signal is sent once");
                    }
                    Ok(_) | Err(SignalRefused::HoldQueueFull) => {
                        assert!(present, "held for an absent visitor");
                        assert!(r.signals_sent.is_empty());
                    }
                    Err(SignalRefused::TooLarge { len, limit }) => {
                        assert!(
                            len > limit,
                            "refused as too large at {len} of {limit} bytes"
                        );
                        assert!(r.signals_sent.is_empty(), "a refused signal was sent");
                    }
                    Err(SignalRefused::NotPresent) => assert!(!present),
                }
                r.visitors.insert((group, visitor));
            }
            13 => {
                let group = GroupId::new(GROUP).expect("valid");
                let requested = VisitorId::new(VISITORS[u.below(VISITORS.len())]).ok();
                let a = r.core.unique_visitor(r.now, group, requested.as_ref());
                assert_eq!(a.visitor, VisitorId::from_unique(&a.unique));
                if let Some(v) = requested.filter(|v| v.unique_id().is_some()) {
                    assert_eq!(a.visitor, v, "an existing unique id is kept");
                }
                // Connect with the guest token now and then.
                if u.bool() {
                    let conn = r.open(Role::Visitor);
                    let text = json!({
                        "type": "connect",
                        "groupid": GROUP,
                        "visitorid": a.visitor.as_str(),
                        "guesttoken": a.guest_token,
                    })
                    .to_string();
                    r.text(conn, &text);
                }
            }
            14 => {
                if u.below(8) == 0 && !r.shut_down {
                    r.shut_down = true;
                    for c in r.conns.values_mut() {
                        c.awaiting_server_close = !c.gone && !c.closed;
                    }
                    r.core.shutdown(r.now);
                    r.drain();
                    for (id, c) in &r.conns {
                        assert!(c.gone || c.closed, "{id} is still open after shutdown");
                    }
                }
            }
            _ => r.core.handle_timeout(r.now),
        }
        r.drain();
        r.check_state();
    }
    // The end: every transport closes; nothing is left.
    let ids: Vec<ConnId> = r.conns.keys().copied().collect();
    for id in ids {
        if let Some(c) = r.conns.get_mut(&id) {
            c.gone = true;
        }
        r.core.handle_closed(r.now, id);
        r.drain();
    }
    // Let every presence window pass: nobody is present, and the records' memory is back.
    r.advance(Duration::from_secs(3600));
    r.check_state();
    assert_eq!(r.core.connection_count(), 0);
    assert_eq!(r.core.stats().presence_bytes, 0);
    assert_eq!(r.core.stats().visitors_present, 0);
    r.reached
}

/// The fuzz target's body.
pub fn check(data: &[u8]) -> Reached {
    run(data)
}
