//! The client suite: checks an agent client against the `AGT-*` requirements it can observe on
//! the wire.
//!
//! [`ClientSuite::start`] runs the reference service on loopback with its test controls on
//! (behind an admin token made for the run) and names, in [`ClientSetup`], the server, the
//! credentials and the visitor the client under test must watch. [`ClientSuite::run`] waits
//! for the client's agent socket, then plays the numbered scenarios of [`SCENARIOS`] in order
//! through the test controls (dropped socket, redirect, scaledown, injected 503 and 401 REST
//! answers, a signal to the absent visitor, invalid text frames, a slow `findvisitor`, a
//! short-lived token, a silent link, serverclose last) and reads what the client did from the
//! service's observation log (`/control/events`: agent sockets attached, with the expiry of
//! their token, and gone, keepalives, pings, REST answers, with times). The visitor never
//! connects: it stays absent. The timed verdicts are functions of that log, unit-tested on
//! recorded logs of clients that break each rule.
//!
//! The silent link follows PROTOCOL.md's 15 s and 10 s and the token lives 15 s: a run takes
//! about 25 s for the one and 13 s for the other, on top of the other scenarios.
//!
//! The client must be configured as Glance's are: credentials (so refused tokens are
//! renewed) and `serverclose` stops it. Its reconnect policy's largest early delay is
//! [`ClientSettings::reconnect_within`].

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{AdminToken, ServiceConfig, ServiceHandle};
use serde_json::{json, Value};

use crate::probe::RestProbe;
use crate::report::{Report, Status};
use crate::requirements::{requirement, Role};

/// The path of `Authorize` on the web server.
const AUTHORIZE: &str = "/services/AuthorizationService.svc/rest/Authorize";

/// One scenario: its number, what it does and the requirements it checks.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The scenario's id (`CL-1`, …).
    pub id: &'static str,
    /// What the suite does and what it expects.
    pub title: &'static str,
    /// The requirement ids it decides.
    pub checks: &'static [&'static str],
}

/// The scenarios, in the order they are played.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        id: "CL-1",
        title: "first connect: findvisitor, then one agent socket whose connect the service accepts",
        checks: &["AGT-CONNECT-1", "AGT-CONNECT-2"],
    },
    Scenario {
        id: "CL-2",
        title: "keepalive: k at the announced interval (within ±50 %)",
        checks: &["AGT-KEEP-1"],
    },
    Scenario {
        id: "CL-3",
        title: "dropped socket: a new socket within the reconnect policy's bound",
        checks: &["AGT-RECONNECT-1"],
    },
    Scenario {
        id: "CL-4",
        title: "redirect to this server under another name (localhost): reconnect at once",
        checks: &["AGT-RECONNECT-2"],
    },
    Scenario {
        id: "CL-5",
        title: "scaledown: the socket closes, findvisitor again, then a new socket at once",
        checks: &["AGT-RECONNECT-3"],
    },
    Scenario {
        id: "CL-6",
        title: "503 on findvisitor after a drop: retried after the backoff without renewing the token; 401 on findvisitor: the token is renewed (Authorize), then reconnect",
        checks: &["AGT-REST-2", "AGT-TOKEN-2"],
    },
    Scenario {
        id: "CL-7",
        title: "a signal to the absent visitor: no signalvisitor POST once findvisitor said it is not there",
        checks: &["AGT-SIGNAL-1"],
    },
    Scenario {
        id: "CL-10",
        title: "invalid frames: text that is not JSON, then a text message over the 64 KiB frame limit (below 1 MiB); the agent keeps the same socket and keeps sending k on it",
        checks: &["AGT-FRAME-1"],
    },
    Scenario {
        id: "CL-11",
        title: "a slow findvisitor after a drop (answered late, within the request timeout): the agent waits for the answer, then opens one socket",
        checks: &["AGT-CONNECT-2", "AGT-RECONNECT-5"],
    },
    Scenario {
        id: "CL-12",
        title: "token renewal: a token with a short life (401 on findvisitor makes the agent take one); the agent asks Authorize again at about 80 % of its life and replaces its socket with one made with the new token before the old expires, never two at once",
        checks: &["AGT-TOKEN-1"],
    },
    Scenario {
        id: "CL-13",
        title: "a silent link (no frame, no pong): a WebSocket ping about 15 s after the last frame, the socket given up about 10 s later, then one new socket",
        checks: &["AGT-LINK-1"],
    },
    Scenario {
        id: "CL-8",
        title: "the whole run: never two agent sockets at once; every REST call with a bearer token",
        checks: &["AGT-RECONNECT-5", "AGT-REST-1"],
    },
    Scenario {
        id: "CL-9",
        title: "serverclose: the socket closes and no new one opens",
        checks: &["AGT-RECONNECT-4"],
    },
];

/// How the suite's service is set up and how long it waits.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Where the service listens (loopback only).
    pub listen: SocketAddr,
    /// The keepalive interval announced in `connected`, in seconds.
    pub keepalive_secs: u64,
    /// The longest reconnect delay the client's policy allows for its first attempts.
    pub reconnect_within: Duration,
    /// What "at once" allows (a `findvisitor` round trip and the handshake included).
    pub immediate_within: Duration,
    /// How long to wait for the client under test to connect at first.
    pub wait_for_client: Duration,
    /// How long to watch for a socket after `serverclose`.
    pub quiet_after_serverclose: Duration,
    /// How long a silent link lasts before the client pings (PROTOCOL.md: 15 s).
    pub ping_after: Duration,
    /// How long after its ping the client gives a silent link up (PROTOCOL.md: 10 s).
    pub dead_after: Duration,
    /// How far a timed step may come later than its rule (a step may come at most a quarter of
    /// this earlier).
    pub timing_slack: Duration,
    /// The life of the short token of the renewal scenario (the client renews at 80 %; more
    /// than 12.5 s, so that 80 % of it is over the agent's shortest renewal delay of 10 s).
    pub token_lifetime: Duration,
    /// How late the slow `findvisitor` is answered (below the client's request timeout).
    pub slow_answer: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            keepalive_secs: 2,
            reconnect_within: Duration::from_secs(70),
            immediate_within: Duration::from_secs(3),
            wait_for_client: Duration::from_secs(300),
            quiet_after_serverclose: Duration::from_secs(5),
            ping_after: Duration::from_secs(15),
            dead_after: Duration::from_secs(10),
            timing_slack: Duration::from_secs(2),
            token_lifetime: Duration::from_secs(15),
            slow_answer: Duration::from_secs(3),
        }
    }
}

/// Where the client under test connects, and as whom.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    /// The presence server (`http://127.0.0.1:<port>`).
    pub server: String,
    /// The web server that answers `Authorize` (the same service).
    pub web_server: String,
    /// The group id.
    pub group: u64,
    /// The visitor to watch.
    pub visitor: String,
    /// The partner user id for the credentials.
    pub partner_user_id: String,
    /// The group's API key (the reference service's demo key).
    pub api_key: String,
}

/// What the suite can ask of the client under test beyond watching the visitor. A client run
/// by hand answers nothing, and the scenarios that need it are skipped.
pub trait ClientUnderTest {
    /// Sends the (absent) visitor a signal and returns the failure reason the client reported
    /// (`"visitornotpresent"` expected), or `None` when the client cannot be asked.
    fn signal(&mut self) -> Option<String> {
        None
    }
}

/// The scenarios as text, one line each (`--dry-run`).
pub fn plan(settings: &ClientSettings) -> Vec<String> {
    let mut lines = vec![format!(
        "start the reference service on {} with test controls (keepalive {} s); wait up to {} s for the agent under test",
        settings.listen,
        settings.keepalive_secs,
        settings.wait_for_client.as_secs()
    )];
    lines.extend(
        SCENARIOS
            .iter()
            .map(|s| format!("{}: {} [{}]", s.id, s.title, s.checks.join(", "))),
    );
    lines
}

/// One observation of the service's log.
#[derive(Debug, Clone)]
struct Ev {
    at_ms: u64,
    kind: String,
    conn: Option<u64>,
    path: Option<String>,
    status: Option<u16>,
    bearer: bool,
    mine: bool,
    token_exp: Option<u64>,
}

impl Ev {
    fn rest(&self, path: &str) -> bool {
        self.kind == "rest" && self.path.as_deref() == Some(path)
    }

    fn is(&self, kind: &str, conn: u64) -> bool {
        self.kind == kind && self.conn == Some(conn)
    }

    /// A token issued by `Authorize`: its `exp`.
    fn issued(&self) -> Option<u64> {
        (self.rest(AUTHORIZE) && self.status == Some(200))
            .then_some(self.token_exp)
            .flatten()
    }
}

/// The reference service of a client run.
#[derive(Debug)]
pub struct ClientSuite {
    service: ServiceHandle,
    admin: String,
    setup: ClientSetup,
    settings: ClientSettings,
    rest: RestProbe,
}

fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:08x}{:08x}",
        now.subsec_nanos() ^ std::process::id().rotate_left(16),
        now.as_secs() as u32
    )
}

/// A verdict: `Ok` or what was seen.
type Verdict = Result<(), String>;

impl ClientSuite {
    /// Starts the service (loopback only, test controls on behind a fresh admin token).
    pub fn start(settings: ClientSettings) -> Result<Self, String> {
        if !settings.listen.ip().is_loopback() {
            return Err(format!("{} is not a loopback address", settings.listen));
        }
        let admin = format!("gpclient-admin-{}{}", run_id(), run_id());
        let config = ServiceConfig::builder()
            .listen(settings.listen)
            .keepalive_secs(settings.keepalive_secs)
            .test_controls(AdminToken::new(admin.clone()).map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| e.to_string())?;
        let service = ServiceHandle::spawn(config).map_err(|e| e.to_string())?;
        let base = service.http_base();
        let setup = ClientSetup {
            server: base.clone(),
            web_server: base,
            group: DEMO_GROUP_ID,
            visitor: format!("gpclient-{}", run_id()),
            partner_user_id: "conformance-client".to_owned(),
            api_key: DEMO_API_KEY.to_owned(),
        };
        Ok(ClientSuite {
            service,
            admin,
            setup,
            settings,
            rest: RestProbe::new(Duration::from_secs(5)),
        })
    }

    /// Where and as whom the client under test connects.
    pub fn setup(&self) -> &ClientSetup {
        &self.setup
    }

    fn control(&self, name: &str, body: Value) -> Result<Value, String> {
        let answer = self.rest.call(
            "POST",
            &format!("{}/control/{name}", self.service.http_base()),
            &[("Authorization", &format!("Bearer {}", self.admin))],
            Some(&body.to_string()),
        )?;
        if answer.status == 200 {
            Ok(answer.json())
        } else {
            Err(format!("control {name}: {} {}", answer.status, answer.body))
        }
    }

    fn target(&self, extra: Value) -> Value {
        let mut body = json!({ "groupid": self.setup.group, "visitorid": self.setup.visitor, "role": "agent" });
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        body
    }

    /// Plays every scenario against the client and reports the `AGT-*` requirements.
    pub fn run(&self, client: &mut dyn ClientUnderTest) -> Report {
        let mut run = Run {
            suite: self,
            log: Vec::new(),
            next: 0,
            outcomes: Vec::new(),
        };
        if let Err(why) = run.play(client) {
            for scenario in SCENARIOS {
                for id in scenario.checks {
                    if !run.outcomes.iter().any(|(done, _)| done == id) {
                        run.record(id, Status::Fail(format!("not reached: {why}")));
                    }
                }
            }
        }
        let mut report = Report::default();
        for req in crate::REQUIREMENTS.iter().filter(|r| r.role == Role::Agent) {
            let status = run
                .outcomes
                .iter()
                .find(|(id, _)| *id == req.id)
                .map_or_else(
                    || Status::Skipped("not observed".into()),
                    |(_, s)| s.clone(),
                );
            report.record(req, status);
        }
        report
    }
}

struct Run<'a> {
    suite: &'a ClientSuite,
    log: Vec<Ev>,
    next: u64,
    outcomes: Vec<(&'static str, Status)>,
}

impl Run<'_> {
    /// Records an outcome. A requirement that several scenarios check keeps its first outcome
    /// unless a later one fails: it passes only if every check of it passed.
    fn record(&mut self, id: &'static str, status: Status) {
        if requirement(id).is_none() {
            return;
        }
        match self.outcomes.iter_mut().find(|(i, _)| *i == id) {
            None => self.outcomes.push((id, status)),
            Some((_, earlier)) => {
                if matches!(status, Status::Fail(_)) && !matches!(earlier, Status::Fail(_)) {
                    *earlier = status;
                }
            }
        }
    }

    fn verdict(&mut self, id: &'static str, verdict: Verdict) {
        let status = match verdict {
            Ok(()) => Status::Pass,
            Err(why) => Status::Fail(why),
        };
        self.record(id, status);
    }

    /// Reads the new observations; returns the index of the first new one.
    fn refresh(&mut self) -> Result<usize, String> {
        let start = self.log.len();
        let answer = self
            .suite
            .control("events", json!({ "since": self.next }))?;
        self.next = answer["next"].as_u64().unwrap_or(self.next);
        let empty = Vec::new();
        for e in answer["events"].as_array().unwrap_or(&empty) {
            let mine = e["visitorid"].as_str() == Some(self.suite.setup.visitor.as_str());
            let path = e["path"].as_str().map(str::to_owned);
            // Keep this visitor's events and the Authorize calls (they name no visitor).
            if !mine && path.as_deref() != Some(AUTHORIZE) {
                continue;
            }
            self.log.push(Ev {
                at_ms: e["at_ms"].as_u64().unwrap_or(0),
                kind: e["kind"].as_str().unwrap_or("").to_owned(),
                conn: e["conn"].as_u64(),
                path,
                status: e["status"].as_u64().and_then(|s| u16::try_from(s).ok()),
                bearer: e["bearer"].as_bool().unwrap_or(false),
                mine,
                token_exp: e["token_exp"].as_u64(),
            });
        }
        Ok(start)
    }

    /// Waits until `done` holds for the events from `from` on, or `within` passes; returns
    /// whether it held.
    fn wait(
        &mut self,
        from: usize,
        within: Duration,
        done: impl Fn(&[Ev]) -> bool,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + within;
        loop {
            self.refresh()?;
            if done(&self.log[from.min(self.log.len())..]) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn seen(&self, from: usize) -> String {
        let events: Vec<String> = self.log[from.min(self.log.len())..]
            .iter()
            .map(|e| match (&e.path, e.status, e.conn) {
                (Some(p), Some(s), _) => format!("{} {p} {s}", e.at_ms),
                (_, _, Some(conn)) => format!("{} {} #{conn}", e.at_ms, e.kind),
                _ => format!("{} {}", e.at_ms, e.kind),
            })
            .collect();
        let mut text = events.join(", ");
        if text.len() > 300 {
            let mut end = 300;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        format!("saw [{text}]")
    }

    /// Whether the agent has a socket open now (the last open has no close yet).
    fn open_conn(&self) -> Option<u64> {
        let mut open = None;
        for e in &self.log {
            match e.kind.as_str() {
                "open" => open = e.conn,
                "close" if e.conn == open => open = None,
                _ => {}
            }
        }
        open
    }

    /// Waits for a close of the current socket and a new open, both after `from`.
    fn reconnected(&mut self, from: usize, within: Duration) -> Result<bool, String> {
        self.wait(from, within, |evs| {
            let closed = evs.iter().position(|e| e.kind == "close");
            closed.is_some_and(|i| evs[i..].iter().any(|e| e.kind == "open"))
        })
    }

    fn play(&mut self, client: &mut dyn ClientUnderTest) -> Verdict {
        let s = self.suite.settings.clone();
        let immediate = s.immediate_within;
        // CL-1: first connect.
        let connected = self.wait(0, s.wait_for_client, |evs| {
            evs.iter().any(|e| e.kind == "open")
        })?;
        if !connected {
            return Err(format!(
                "no agent socket for the visitor within {} s",
                s.wait_for_client.as_secs()
            ));
        }
        let open_at = self.log.iter().position(|e| e.kind == "open").unwrap_or(0);
        self.record("AGT-CONNECT-1", Status::Pass);
        let found_first = self.log[..open_at]
            .iter()
            .any(|e| e.mine && e.rest("/findvisitor") && e.status == Some(200));
        let seen = self.seen(0);
        self.verdict(
            "AGT-CONNECT-2",
            if found_first {
                Ok(())
            } else {
                Err(format!("no findvisitor before the socket: {seen}"))
            },
        );
        // CL-2: keepalives.
        let interval = s.keepalive_secs * 1000;
        let from = self.log.len();
        std::thread::sleep(Duration::from_millis(interval * 7 / 2));
        self.refresh()?;
        let mut times: Vec<u64> = self.log[open_at..]
            .iter()
            .filter(|e| e.kind == "open")
            .take(1)
            .map(|e| e.at_ms)
            .collect();
        times.extend(
            self.log[open_at..]
                .iter()
                .filter(|e| e.kind == "keepalive")
                .map(|e| e.at_ms),
        );
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let in_range = |g: &u64| *g >= interval / 2 && *g <= interval * 3 / 2 + 300;
        let keep = if gaps.len() >= 2 && gaps.iter().all(in_range) {
            Ok(())
        } else {
            Err(format!(
                "keepalive every {interval} ms expected; gaps {gaps:?} ms ({})",
                self.seen(from)
            ))
        };
        self.verdict("AGT-KEEP-1", keep);
        // CL-3: a dropped socket.
        let from = self.log.len();
        self.suite.control("drop", self.suite.target(json!({})))?;
        let back = self.reconnected(from, s.reconnect_within + immediate)?;
        let seen = self.seen(from);
        self.verdict(
            "AGT-RECONNECT-1",
            if back {
                Ok(())
            } else {
                Err(format!(
                    "no new socket within {} ms of the drop: {seen}",
                    (s.reconnect_within + immediate).as_millis()
                ))
            },
        );
        // CL-4: redirect to this very server.
        self.settle(immediate)?;
        let from = self.log.len();
        // Another name for this same server: a client ignores a redirect to the server it is
        // on.
        let direct = format!("localhost:{}", self.suite.service.addr().port());
        self.suite.control(
            "send",
            self.suite
                .target(json!({"frame": {"type": "redirect", "data": {"direct": direct}}})),
        )?;
        let back = self.reconnected(from, immediate)?;
        let seen = self.seen(from);
        self.verdict(
            "AGT-RECONNECT-2",
            if back {
                Ok(())
            } else {
                Err(format!(
                    "no new socket within {} ms of redirect: {seen}",
                    immediate.as_millis()
                ))
            },
        );
        // CL-5: scaledown.
        self.settle(immediate)?;
        let from = self.log.len();
        self.suite.control(
            "send",
            self.suite.target(json!({"frame": {"type": "scaledown"}})),
        )?;
        // The client may ask findvisitor while its old socket is still closing.
        let back = self.wait(from, immediate, |evs| {
            let closed = evs.iter().position(|e| e.kind == "close");
            let found = evs.iter().position(|e| e.rest("/findvisitor"));
            let (Some(closed), Some(found)) = (closed, found) else {
                return false;
            };
            evs[closed.max(found)..].iter().any(|e| e.kind == "open")
        })?;
        let seen = self.seen(from);
        self.verdict(
            "AGT-RECONNECT-3",
            if back {
                Ok(())
            } else {
                Err(format!(
                    "no findvisitor then socket within {} ms of scaledown: {seen}",
                    immediate.as_millis()
                ))
            },
        );
        // CL-6: 503, then 401, on findvisitor after a drop.
        self.settle(immediate)?;
        let from = self.log.len();
        self.suite.control(
            "fail",
            json!({"count": 1, "status": 503, "path": "/findvisitor"}),
        )?;
        self.suite.control("drop", self.suite.target(json!({})))?;
        let back = self.wait(from, s.reconnect_within * 2 + immediate, |evs| {
            let Some(refused) = evs
                .iter()
                .position(|e| e.rest("/findvisitor") && e.status == Some(503))
            else {
                return false;
            };
            evs[refused..].iter().any(|e| e.kind == "open")
        })?;
        let renewed_on_503 = self.log[from..].iter().any(|e| e.rest(AUTHORIZE));
        let unavailable = if !back {
            Err(format!(
                "after a 503 on findvisitor no new socket: {}",
                self.seen(from)
            ))
        } else if renewed_on_503 {
            Err(format!(
                "a 503 was taken as an authorization failure (the token was renewed): {}",
                self.seen(from)
            ))
        } else {
            Ok(())
        };
        self.settle(immediate)?;
        let from = self.log.len();
        self.suite.control(
            "fail",
            json!({"count": 1, "status": 401, "path": "/findvisitor"}),
        )?;
        self.suite.control("drop", self.suite.target(json!({})))?;
        let renewed = self.wait(from, s.reconnect_within * 2 + immediate, |evs| {
            let Some(refused) = evs
                .iter()
                .position(|e| e.rest("/findvisitor") && e.status == Some(401))
            else {
                return false;
            };
            let Some(auth) = evs[refused..]
                .iter()
                .position(|e| e.rest(AUTHORIZE) && e.status == Some(200))
            else {
                return false;
            };
            evs[refused + auth..].iter().any(|e| e.kind == "open")
        })?;
        let seen = self.seen(from);
        let authorization = if renewed {
            Ok(())
        } else {
            Err(format!(
                "after a 401 on findvisitor no Authorize then socket: {seen}"
            ))
        };
        self.verdict("AGT-TOKEN-2", authorization.clone());
        self.verdict("AGT-REST-2", unavailable.and(authorization));
        // CL-7: a signal to the absent visitor.
        self.settle(immediate)?;
        let from = self.log.len();
        match client.signal() {
            None => self.record(
                "AGT-SIGNAL-1",
                Status::Skipped("the client under test cannot be asked to signal".into()),
            ),
            Some(reason) => {
                self.refresh()?;
                let evs = &self.log[from..];
                let first_find = evs.iter().position(|e| e.rest("/findvisitor"));
                let verdict = match first_find {
                    None => Err(format!(
                        "no findvisitor for the signal: {}",
                        self.seen(from)
                    )),
                    Some(i) if evs[i..].iter().any(|e| e.rest("/signalvisitor")) => Err(format!(
                        "signalvisitor posted after findvisitor said not present: {}",
                        self.seen(from)
                    )),
                    Some(_) if reason != "visitornotpresent" => {
                        Err(format!("the signal failed as {reason:?}"))
                    }
                    Some(_) => Ok(()),
                };
                self.verdict("AGT-SIGNAL-1", verdict);
            }
        }
        self.play_invalid_frames()?;
        self.play_slow_find()?;
        self.play_token_renewal()?;
        self.play_silent_link()?;
        // CL-9: serverclose (last: the client stops).
        self.settle(immediate)?;
        let from = self.log.len();
        self.suite.control(
            "send",
            self.suite.target(json!({"frame": {"type": "serverclose"}})),
        )?;
        let closed = self.wait(from, immediate, |evs| evs.iter().any(|e| e.kind == "close"))?;
        let reopened = self.wait(from, s.quiet_after_serverclose, |evs| {
            evs.iter().any(|e| e.kind == "open")
        })?;
        let seen = self.seen(from);
        self.verdict(
            "AGT-RECONNECT-4",
            if closed && !reopened {
                Ok(())
            } else if !closed {
                Err(format!("the socket stayed open after serverclose: {seen}"))
            } else {
                Err(format!("a new socket after serverclose: {seen}"))
            },
        );
        // CL-8: the whole run.
        let mut open: Option<u64> = None;
        let mut overlap = None;
        for e in &self.log {
            match e.kind.as_str() {
                "open" if open.is_some() => {
                    overlap = Some(e.at_ms);
                    break;
                }
                "open" => open = e.conn,
                "close" if e.conn == open => open = None,
                _ => {}
            }
        }
        self.verdict(
            "AGT-RECONNECT-5",
            match overlap {
                None => Ok(()),
                Some(at) => Err(format!(
                    "a second agent socket opened at {at} ms while one was open"
                )),
            },
        );
        let agent_paths = ["/lookupvisitor", "/findvisitor", "/query", "/signalvisitor"];
        let bare: Vec<String> = self
            .log
            .iter()
            .filter(|e| e.mine && agent_paths.iter().any(|p| e.rest(p)) && !e.bearer)
            .map(|e| format!("{} {}", e.at_ms, e.path.as_deref().unwrap_or("")))
            .collect();
        self.verdict(
            "AGT-REST-1",
            if bare.is_empty() {
                Ok(())
            } else {
                Err(format!("calls without a bearer token: {bare:?}"))
            },
        );
        Ok(())
    }

    /// Settles, then the socket the agent has open.
    fn settled_conn(&mut self) -> Result<u64, String> {
        self.settle(self.suite.settings.immediate_within)?;
        self.open_conn()
            .ok_or_else(|| "the agent has no socket open".to_owned())
    }

    /// Records a verdict on the events from `from` on, with what was seen when it failed.
    fn verdict_on(&mut self, id: &'static str, from: usize, verdict: Verdict) {
        let verdict = verdict.map_err(|why| format!("{why}: {}", self.seen(from)));
        self.verdict(id, verdict);
    }

    /// CL-10: text that is not JSON, then a text message over the frame limit.
    fn play_invalid_frames(&mut self) -> Verdict {
        let conn = self.settled_conn()?;
        let from = self.log.len();
        let target = |extra| self.suite.target(extra);
        self.suite
            .control("send", target(json!({ "text": "this is not JSON {" })))?;
        self.suite.control(
            "send",
            target(json!({ "text": "x", "repeat": OVERSIZED_TEXT_BYTES })),
        )?;
        let interval = Duration::from_secs(self.suite.settings.keepalive_secs);
        let watch = interval * (KEEPALIVES_AFTER_INVALID_FRAMES + 1) as u32;
        self.wait(from, watch, |evs| {
            evs.iter().any(|e| e.kind != "keepalive")
                || evs.iter().filter(|e| e.is("keepalive", conn)).count()
                    >= KEEPALIVES_AFTER_INVALID_FRAMES
        })?;
        let verdict = invalid_frames_verdict(&self.log[from..], conn);
        self.verdict_on("AGT-FRAME-1", from, verdict);
        Ok(())
    }

    /// CL-11: a drop, and the `findvisitor` after it answered late.
    fn play_slow_find(&mut self) -> Verdict {
        let s = self.suite.settings.clone();
        self.settled_conn()?;
        let from = self.log.len();
        let delay_ms = millis(s.slow_answer);
        self.suite.control(
            "delay",
            json!({"count": 1, "millis": delay_ms, "path": "/findvisitor"}),
        )?;
        self.suite.control("drop", self.suite.target(json!({})))?;
        self.wait(
            from,
            s.reconnect_within + s.slow_answer + s.immediate_within,
            |evs| evs.iter().any(|e| e.kind == "open"),
        )?;
        // A client that gives up waiting may open a second socket soon after.
        std::thread::sleep(s.immediate_within / 2);
        self.refresh()?;
        let (waited, one_socket) = slow_find_verdict(&self.log[from..], delay_ms);
        self.verdict_on("AGT-CONNECT-2", from, waited);
        self.verdict_on("AGT-RECONNECT-5", from, one_socket);
        Ok(())
    }

    /// CL-12: a short token, taken after a 401, and its renewal.
    fn play_token_renewal(&mut self) -> Verdict {
        let s = self.suite.settings.clone();
        self.settled_conn()?;
        let from = self.log.len();
        self.suite.control(
            "token_lifetime",
            json!({"secs": s.token_lifetime.as_secs(), "count": 1}),
        )?;
        self.suite.control(
            "fail",
            json!({"count": 1, "status": 401, "path": "/findvisitor"}),
        )?;
        self.suite.control("drop", self.suite.target(json!({})))?;
        let within =
            s.token_lifetime + s.reconnect_within * 2 + s.immediate_within + s.timing_slack;
        // Until a second token is issued and a socket made with it.
        self.wait(from, within, |evs| {
            let issued: Vec<u64> = evs.iter().filter_map(Ev::issued).collect();
            issued.len() >= 2
                && evs
                    .iter()
                    .any(|e| e.kind == "open" && e.token_exp == issued.get(1).copied())
        })?;
        self.suite
            .control("token_lifetime", json!({ "secs": null }))?;
        let verdict = token_renewal_verdict(&self.log[from..], s.token_lifetime);
        self.verdict_on("AGT-TOKEN-1", from, verdict);
        Ok(())
    }

    /// CL-13: a silent link.
    fn play_silent_link(&mut self) -> Verdict {
        let s = self.suite.settings.clone();
        let conn = self.settled_conn()?;
        let from = self.log.len();
        // A last frame, so that the silence starts at a known time; the silence a moment
        // later, once a ping the agent may have had under way is answered.
        let marked = self.suite.control(
            "send",
            self.suite
                .target(json!({"frame": {"type": "gpconformance_last_frame"}})),
        )?;
        std::thread::sleep(Duration::from_millis(200));
        let silenced = self
            .suite
            .control("silence", self.suite.target(json!({})))?;
        let (Some(marked_at), Some(silenced_at)) =
            (marked["at_ms"].as_u64(), silenced["at_ms"].as_u64())
        else {
            return Err("the service did not say when the silence started".into());
        };
        let rule = LinkRule {
            ping_after: s.ping_after,
            dead_after: s.dead_after,
            slack: s.timing_slack,
        };
        let within = s.ping_after + s.dead_after + s.timing_slack * 2 + s.reconnect_within;
        self.wait(from, within, |evs| {
            evs.iter()
                .position(|e| e.is("close", conn))
                .is_some_and(|closed| evs[closed..].iter().any(|e| e.kind == "open"))
        })?;
        let verdict = silent_link_verdict(&self.log[from..], conn, marked_at, silenced_at, &rule);
        self.verdict_on("AGT-LINK-1", from, verdict);
        if self.open_conn() == Some(conn) {
            // The client kept the silent socket: let the next scenarios start afresh.
            self.suite.control("drop", self.suite.target(json!({})))?;
        }
        Ok(())
    }

    /// Waits until the agent has a socket open (so each scenario starts from a live link).
    fn settle(&mut self, within: Duration) -> Verdict {
        let deadline = Instant::now() + within + self.suite.settings.reconnect_within;
        loop {
            self.refresh()?;
            if self.open_conn().is_some() {
                // Let the link finish its lookup after `connected`.
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("the agent has no socket open between scenarios".into());
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

/// The size of the oversized text message of CL-10: over the 64 KiB frame limit, below the
/// 1 MiB a client's transport accepts (and within the service's bound on injected text).
const OVERSIZED_TEXT_BYTES: u64 = 100_000;

/// How many keepalives CL-10 waits for on the socket after the invalid frames.
const KEEPALIVES_AFTER_INVALID_FRAMES: usize = 2;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The dead-link rule CL-13 checks, with its tolerance.
#[derive(Debug, Clone)]
struct LinkRule {
    ping_after: Duration,
    dead_after: Duration,
    slack: Duration,
}

/// Whether `took_ms` keeps to `rule`: at most a quarter of `slack` earlier, at most `slack`
/// later.
fn on_time(what: &str, took_ms: u64, rule: Duration, slack: Duration) -> Verdict {
    let (rule, late) = (millis(rule), millis(slack));
    let early = late / 4;
    if took_ms + early < rule || took_ms > rule + late {
        return Err(format!(
            "{what} after {took_ms} ms; {rule} ms expected (-{early} ms/+{late} ms)"
        ));
    }
    Ok(())
}

/// AGT-FRAME-1 on the events after the invalid frames: the same socket, still sending `k`.
fn invalid_frames_verdict(evs: &[Ev], conn: u64) -> Verdict {
    if let Some(close) = evs.iter().find(|e| e.is("close", conn)) {
        return Err(format!(
            "the socket closed at {} ms, after the invalid frames",
            close.at_ms
        ));
    }
    if let Some(open) = evs.iter().find(|e| e.kind == "open") {
        return Err(format!("a new socket opened at {} ms", open.at_ms));
    }
    let sent = evs.iter().filter(|e| e.is("keepalive", conn)).count();
    if sent < KEEPALIVES_AFTER_INVALID_FRAMES {
        return Err(format!(
            "{sent} keepalives on the socket after the invalid frames; \
             {KEEPALIVES_AFTER_INVALID_FRAMES} expected"
        ));
    }
    Ok(())
}

/// CL-11 on the events from the drop on: (AGT-CONNECT-2) the socket opened only once the slow
/// `findvisitor` was answered (`delay_ms` after it was logged); (AGT-RECONNECT-5) one socket.
fn slow_find_verdict(evs: &[Ev], delay_ms: u64) -> (Verdict, Verdict) {
    let Some(find) = evs.iter().find(|e| e.rest("/findvisitor")) else {
        let none = Err("no findvisitor after the drop".to_owned());
        return (none.clone(), none);
    };
    let answered_at = find.at_ms + delay_ms;
    let opens: Vec<u64> = evs
        .iter()
        .filter(|e| e.kind == "open")
        .map(|e| e.at_ms)
        .collect();
    let waited = match opens.first() {
        None => Err("no socket after the slow findvisitor".to_owned()),
        Some(&at) if at < answered_at => Err(format!(
            "the socket opened at {at} ms, before findvisitor was answered at {answered_at} ms"
        )),
        Some(_) => Ok(()),
    };
    let one_socket = if opens.len() > 1 {
        Err(format!(
            "{} sockets after one slow findvisitor (at {opens:?} ms)",
            opens.len()
        ))
    } else {
        Ok(())
    };
    (waited, one_socket)
}

/// AGT-TOKEN-1 on the events from the 401 on: the short token (life `life`) was taken, renewed
/// at about 80 % of its life, and its socket replaced by one made with the new token before it
/// expired, the old one closed first.
fn token_renewal_verdict(evs: &[Ev], life: Duration) -> Verdict {
    let life_ms = millis(life);
    let Some(first) = evs.iter().position(|e| e.issued().is_some()) else {
        return Err("no token issued after the 401".into());
    };
    let (issued_at, short_exp) = (evs[first].at_ms, evs[first].token_exp);
    let Some(short_socket) = evs
        .iter()
        .find(|e| e.kind == "open" && e.token_exp == short_exp)
        .and_then(|e| e.conn)
    else {
        return Err("no socket made with the short token".into());
    };
    let Some(second) = evs[first + 1..]
        .iter()
        .position(|e| e.issued().is_some())
        .map(|i| first + 1 + i)
    else {
        return Err("the short token was not renewed".into());
    };
    let (renewed_at, new_exp) = (evs[second].at_ms, evs[second].token_exp);
    let (earliest, latest) = (life_ms * 7 / 10, life_ms * 9 / 10);
    let after = renewed_at.saturating_sub(issued_at);
    if !(earliest..=latest).contains(&after) {
        return Err(format!(
            "the token was renewed {after} ms after it was issued; about 80 % of its {life_ms} ms \
             life expected ({earliest}-{latest} ms)"
        ));
    }
    let Some(new_socket) = evs[second..]
        .iter()
        .position(|e| e.kind == "open" && e.token_exp == new_exp)
        .map(|i| second + i)
    else {
        return Err("no socket made with the renewed token".into());
    };
    // `exp` is in whole seconds: the short token lapsed up to a second before its full life.
    let expired_at = issued_at + life_ms.saturating_sub(1000);
    if evs[new_socket].at_ms >= expired_at {
        return Err(format!(
            "the socket with the renewed token opened at {} ms, once the old token had expired \
             (at {expired_at} ms)",
            evs[new_socket].at_ms
        ));
    }
    if !evs[..new_socket]
        .iter()
        .any(|e| e.is("close", short_socket))
    {
        return Err(format!(
            "the socket with the short token was still open when the one with the renewed \
             token opened at {} ms",
            evs[new_socket].at_ms
        ));
    }
    Ok(())
}

/// AGT-LINK-1 on the events from the last frame (`marked_at`) on, the socket silenced at
/// `silenced_at`: a ping `ping_after` after the last frame, the socket given up `dead_after`
/// later, then a new socket, the silent one closed first.
fn silent_link_verdict(
    evs: &[Ev],
    conn: u64,
    marked_at: u64,
    silenced_at: u64,
    rule: &LinkRule,
) -> Verdict {
    let Some(ping) = evs
        .iter()
        .position(|e| e.is("ping", conn) && e.at_ms >= silenced_at)
    else {
        return Err("no WebSocket ping on the silent socket".into());
    };
    let pinged_at = evs[ping].at_ms;
    on_time(
        "the ping came",
        pinged_at.saturating_sub(marked_at),
        rule.ping_after,
        rule.slack,
    )?;
    let first_open = evs.iter().position(|e| e.kind == "open");
    let Some(closed) = evs.iter().position(|e| e.is("close", conn)) else {
        return match first_open {
            Some(open) => Err(format!(
                "a new socket opened at {} ms while the silent one was still open",
                evs[open].at_ms
            )),
            None => Err("the silent socket was not given up".into()),
        };
    };
    if let Some(open) = first_open.filter(|open| *open < closed) {
        return Err(format!(
            "a new socket opened at {} ms while the silent one was still open",
            evs[open].at_ms
        ));
    }
    on_time(
        "the silent socket was given up",
        evs[closed].at_ms.saturating_sub(pinged_at),
        rule.dead_after,
        rule.slack,
    )?;
    if first_open.is_none() {
        return Err("no new socket after the silent one was given up".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The verdicts of the timed scenarios on recorded observation logs: a conforming log
    //! passes, and each way of breaking the rule fails.

    use super::*;

    fn ev(at_ms: u64, kind: &str, conn: u64) -> Ev {
        Ev {
            at_ms,
            kind: kind.to_owned(),
            conn: Some(conn),
            path: None,
            status: None,
            bearer: false,
            mine: true,
            token_exp: None,
        }
    }

    fn open_with(at_ms: u64, conn: u64, exp: u64) -> Ev {
        Ev {
            token_exp: Some(exp),
            ..ev(at_ms, "open", conn)
        }
    }

    fn rest(at_ms: u64, path: &str, status: u16, token_exp: Option<u64>) -> Ev {
        Ev {
            at_ms,
            kind: "rest".to_owned(),
            conn: None,
            path: Some(path.to_owned()),
            status: Some(status),
            bearer: true,
            mine: path != AUTHORIZE,
            token_exp,
        }
    }

    fn rule() -> LinkRule {
        LinkRule {
            ping_after: Duration::from_secs(15),
            dead_after: Duration::from_secs(10),
            slack: Duration::from_secs(2),
        }
    }

    #[test]
    fn a_silent_link_needs_a_ping_at_15_s_a_close_10_s_later_then_one_new_socket() {
        let good = [
            ev(1_000, "keepalive", 7),
            ev(15_100, "ping", 7),
            ev(25_150, "close", 7),
            ev(25_400, "open", 8),
        ];
        assert_eq!(silent_link_verdict(&good, 7, 0, 200, &rule()), Ok(()));
        let bad: [(&str, Vec<Ev>); 6] = [
            // Dead-link detection off: no ping, the socket kept.
            ("no WebSocket ping", vec![ev(1_000, "keepalive", 7)]),
            // A ping only after 30 s.
            ("the ping came after 30000", vec![ev(30_000, "ping", 7)]),
            // Pinged, never gave up.
            ("not given up", vec![ev(15_000, "ping", 7)]),
            // Gave up at once.
            (
                "given up after 500",
                vec![
                    ev(15_000, "ping", 7),
                    ev(15_500, "close", 7),
                    ev(16_000, "open", 8),
                ],
            ),
            // A new socket before the silent one closed.
            (
                "while the silent one was still open",
                vec![
                    ev(15_000, "ping", 7),
                    ev(24_000, "open", 8),
                    ev(25_000, "close", 7),
                ],
            ),
            // Gave up and never came back.
            (
                "no new socket",
                vec![ev(15_000, "ping", 7), ev(25_000, "close", 7)],
            ),
        ];
        for (why, log) in bad {
            let verdict = silent_link_verdict(&log, 7, 0, 200, &rule());
            assert!(
                verdict.as_ref().is_err_and(|e| e.contains(why)),
                "{why}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_renewal_comes_at_80_percent_and_moves_the_socket_before_the_expiry() {
        let life = Duration::from_secs(15);
        let good = [
            rest(0, "/findvisitor", 401, None),
            rest(10, AUTHORIZE, 200, Some(1_015)),
            open_with(60, 3, 1_015),
            rest(12_000, AUTHORIZE, 200, Some(8_212)),
            ev(12_010, "close", 3),
            open_with(12_050, 4, 8_212),
        ];
        assert_eq!(token_renewal_verdict(&good, life), Ok(()));
        // A client that ignores renewal: the service ends its socket at the expiry, and the
        // refusal makes it take a new token only then.
        let ignores = [
            rest(0, "/findvisitor", 401, None),
            rest(10, AUTHORIZE, 200, Some(1_015)),
            open_with(60, 3, 1_015),
            ev(15_000, "close", 3),
            rest(15_020, AUTHORIZE, 200, Some(8_215)),
            open_with(15_060, 4, 8_215),
        ];
        let verdict = token_renewal_verdict(&ignores, life);
        assert!(
            verdict
                .as_ref()
                .is_err_and(|e| e.contains("renewed 15010 ms")),
            "{verdict:?}"
        );
        // Renewed in time, but the socket moved only after the expiry.
        let late_socket = [
            rest(10, AUTHORIZE, 200, Some(1_015)),
            open_with(60, 3, 1_015),
            rest(12_000, AUTHORIZE, 200, Some(8_212)),
            ev(15_000, "close", 3),
            open_with(15_100, 4, 8_212),
        ];
        let verdict = token_renewal_verdict(&late_socket, life);
        assert!(
            verdict.as_ref().is_err_and(|e| e.contains("had expired")),
            "{verdict:?}"
        );
        // The new socket before the old one closed.
        let two_sockets = [
            rest(10, AUTHORIZE, 200, Some(1_015)),
            open_with(60, 3, 1_015),
            rest(12_000, AUTHORIZE, 200, Some(8_212)),
            open_with(12_050, 4, 8_212),
            ev(12_100, "close", 3),
        ];
        let verdict = token_renewal_verdict(&two_sockets, life);
        assert!(
            verdict.as_ref().is_err_and(|e| e.contains("still open")),
            "{verdict:?}"
        );
        // Renewed, but the socket kept the old token.
        let kept = [
            rest(10, AUTHORIZE, 200, Some(1_015)),
            open_with(60, 3, 1_015),
            rest(12_000, AUTHORIZE, 200, Some(8_212)),
        ];
        let verdict = token_renewal_verdict(&kept, life);
        assert!(
            verdict
                .as_ref()
                .is_err_and(|e| e.contains("no socket made with the renewed")),
            "{verdict:?}"
        );
    }

    #[test]
    fn invalid_frames_must_leave_the_socket_up_and_its_keepalives_going() {
        let good = [ev(1_000, "keepalive", 5), ev(2_000, "keepalive", 5)];
        assert_eq!(invalid_frames_verdict(&good, 5), Ok(()));
        let reconnected = [
            ev(10, "close", 5),
            ev(300, "open", 6),
            ev(1_300, "keepalive", 6),
        ];
        assert!(invalid_frames_verdict(&reconnected, 5).is_err());
        let quiet = [ev(1_000, "keepalive", 5)];
        assert!(invalid_frames_verdict(&quiet, 5).is_err());
    }

    #[test]
    fn a_slow_findvisitor_must_be_waited_for_and_give_one_socket() {
        let good = [
            ev(0, "close", 1),
            rest(5, "/findvisitor", 200, None),
            ev(1_020, "open", 2),
        ];
        assert_eq!(slow_find_verdict(&good, 1_000), (Ok(()), Ok(())));
        // A client that opens its socket without waiting, then once more with the answer.
        let impatient = [
            ev(0, "close", 1),
            rest(5, "/findvisitor", 200, None),
            ev(40, "open", 2),
            ev(1_020, "close", 2),
            ev(1_030, "open", 3),
        ];
        let (waited, one_socket) = slow_find_verdict(&impatient, 1_000);
        assert!(waited.is_err_and(|e| e.contains("before findvisitor was answered")));
        assert!(one_socket.is_err_and(|e| e.contains("2 sockets")));
    }
}
