//! The server suite: checks a presence service against the `SRV-*` requirements it can
//! observe from outside, with raw agent and visitor sockets (every frame sent and received is
//! exactly what the suite chose and saw) and REST calls.
//!
//! Load is bounded: one run opens at most eight sockets, one at a time or two or three at once,
//! and makes about thirty requests; every visitor id is `gpconf-<run>-<n>`, so nothing it does
//! touches another visitor. It takes about the presence window plus a few seconds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glance_presence_protocol::{loginkey, ApiKey, GroupId, PartnerUserId};
use serde_json::{json, Value};

use crate::probe::{frame_type, Answer, Endpoint, Received, RestProbe, WsProbe};
use crate::report::{Report, Status};
use crate::requirements::requirement;

/// How the suite gets an agent token.
#[derive(Clone)]
pub enum Auth {
    /// A token given as is.
    Token(String),
    /// Credentials: the suite makes a LoginKey and calls `Authorize` on the web server.
    Credentials {
        /// The partner user id.
        partner_user_id: String,
        /// The group's API key.
        api_key: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::Credentials {
                partner_user_id, ..
            } => write!(f, "Credentials({partner_user_id}, <redacted>)"),
        }
    }
}

/// The service under test.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    /// The presence server.
    pub server: Endpoint,
    /// The web server that answers `Authorize` (often the presence server itself).
    pub web_server: Endpoint,
    /// The group.
    pub group: GroupId,
    /// How to get a token.
    pub auth: Auth,
    /// The service's presence window (the suite waits a little longer for a leave).
    pub presence_window: Duration,
    /// How long to wait for any one answer or frame.
    pub timeout: Duration,
}

/// What a run would do, one line per step, without doing it (`--dry-run`).
pub fn plan(target: &ServerTarget) -> Vec<String> {
    let base = target.server.http_base();
    let mut steps = Vec::new();
    match &target.auth {
        Auth::Credentials { .. } => steps.push(format!(
            "POST {}/services/AuthorizationService.svc/rest/Authorize (one LoginKey, valid 5 minutes)",
            target.web_server.http_base()
        )),
        Auth::Token(_) => steps.push("use the given token (no Authorize call)".to_owned()),
    }
    steps.push(format!(
        "about 30 REST calls to {base} (lookupvisitor, findvisitor, query, signalvisitor, OPTIONS) for visitor ids gpconf-<run>-1..4 only"
    ));
    steps.push(format!(
        "at most 8 WebSocket connections to {base}/agent and /visitorws, at most 3 open at once"
    ));
    steps.push(
        "one frame of 70 KiB and one REST body of 70 KiB (the limit checks), 4 signals".to_owned(),
    );
    steps.push(format!(
        "about {} s in all (the presence window plus a few seconds)",
        target.presence_window.as_secs() + 6
    ));
    steps
}

struct Run<'a> {
    t: &'a ServerTarget,
    rest: RestProbe,
    token: Option<String>,
    run: String,
    report: Report,
}

/// A check's verdict, with what was seen when it fails.
type Verdict = Result<(), String>;

fn ensure(ok: bool, seen: impl FnOnce() -> String) -> Verdict {
    if ok {
        Ok(())
    } else {
        Err(seen())
    }
}

fn short(v: &impl ToString) -> String {
    let mut s = v.to_string();
    if s.len() > 160 {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

fn types(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f.get("data").and_then(|d| d.get("connected")) {
            Some(c) => format!("{} {c}", frame_type(f)),
            None => frame_type(f).to_owned(),
        })
        .collect()
}

impl Run<'_> {
    fn record(&mut self, id: &str, verdict: Verdict) {
        let status = match verdict {
            Ok(()) => Status::Pass,
            Err(why) => Status::Fail(why),
        };
        self.record_status(id, status);
    }

    fn record_status(&mut self, id: &str, status: Status) {
        if let Some(req) = requirement(id) {
            if !self.report.outcomes.iter().any(|o| o.id == id) {
                self.report.record(req, status);
            }
        }
    }

    fn visitor_id(&self, n: u32) -> String {
        format!("gpconf-{}-{n}", self.run)
    }

    fn url(&self, endpoint: &str, visitor: &str) -> String {
        format!(
            "{}/{endpoint}?groupid={}&visitorid={visitor}&&ver=6.25.0",
            self.t.server.http_base(),
            self.t.group
        )
    }

    fn agent_call(
        &self,
        method: &str,
        endpoint: &str,
        visitor: &str,
        body: Option<&str>,
    ) -> Result<Answer, String> {
        let bearer = format!("Bearer {}", self.token.as_deref().unwrap_or(""));
        let mut headers = vec![("Authorization", bearer.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json; charset=utf-8"));
        }
        self.rest
            .call(method, &self.url(endpoint, visitor), &headers, body)
    }

    fn signal(&self, visitor: &str, data: &Value) -> Result<Answer, String> {
        let body = json!({ "mtype": "signal", "data": data }).to_string();
        self.agent_call("POST", "signalvisitor", visitor, Some(&body))
    }

    fn open(&self, path: &str) -> Result<WsProbe, String> {
        WsProbe::open(&self.t.server, path, self.t.timeout)
    }

    /// An agent socket for `visitor`, after `connected`; returns it with the `connected` frame.
    fn agent(&self, visitor: &str) -> Result<(WsProbe, Value), String> {
        let mut ws = self.open("/agent")?;
        ws.send(&json!({
            "type": "connect",
            "authorization": self.token.as_deref().unwrap_or(""),
            "groupid": self.t.group.to_string(),
            "visitorid": visitor,
            "version": "6.25.0",
        }))?;
        let connected = ws
            .next_frame(self.t.timeout)
            .ok_or("the agent socket got no frame after connect")?;
        Ok((ws, connected))
    }

    /// A visitor socket for `visitor`, after `connected`.
    fn visitor(&self, visitor: &str) -> Result<(WsProbe, Value), String> {
        let mut ws = self.open("/visitorws")?;
        ws.send(&json!({
            "type": "connect",
            "groupid": self.t.group.get(),
            "visitorid": visitor,
            "version": "6.33.0",
        }))?;
        let connected = ws
            .next_frame(self.t.timeout)
            .ok_or("the visitor socket got no frame after connect")?;
        Ok((ws, connected))
    }

    fn authorize(&mut self) {
        match self.t.auth.clone() {
            Auth::Token(token) => {
                self.token = Some(token);
                self.record_status(
                    "SRV-AUTH-4",
                    Status::Skipped("a token was given, no credentials".into()),
                );
            }
            Auth::Credentials {
                partner_user_id,
                api_key,
            } => {
                let verdict = self.authorize_with(&partner_user_id, &api_key);
                self.record("SRV-AUTH-4", verdict);
            }
        }
    }

    fn authorize_with(&mut self, user: &str, key: &str) -> Verdict {
        let user = PartnerUserId::new(user).map_err(|e| e.to_string())?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let login = loginkey::generate(self.t.group, &user, now + 300, &ApiKey::new(key), now)
            .map_err(|e| e.to_string())?;
        let url = format!(
            "{}/services/AuthorizationService.svc/rest/Authorize?groupid={}&service=presence&duration=10&site=production",
            self.t.web_server.http_base(),
            self.t.group
        );
        let body = json!({
            "partnerid": self.t.group.get(),
            "partneruserid": user.to_string(),
            "loginkey": login.expose_secret(),
        })
        .to_string();
        let answer = self.rest.call(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            Some(&body),
        )?;
        match answer.json() {
            Value::String(token) if answer.status == 200 && !token.is_empty() => {
                self.token = Some(token);
                Ok(())
            }
            Value::Object(map) if answer.status == 200 => {
                if let Some(Value::String(token)) = map.get("authToken") {
                    self.token = Some(token.clone());
                }
                Err("Authorize answered an object, not a bare JSON string".into())
            }
            _ => Err(format!("Authorize answered {} (no token)", answer.status)),
        }
    }

    fn rest_absent(&mut self) {
        let v = self.visitor_id(1);
        let lookup = self.agent_call("GET", "lookupvisitor", &v, None);
        let verdict = lookup.as_ref().map_err(Clone::clone).and_then(|a| {
            ensure(a.status == 200 && a.json() == json!({}), || {
                format!("{} {}", a.status, short(&a.body))
            })
        });
        self.record("SRV-REST-1", verdict);
        let bearer = format!("Bearer {}", self.token.as_deref().unwrap_or(""));
        let cross_origin = self.rest.call(
            "GET",
            &self.url("lookupvisitor", &v),
            &[
                ("Authorization", bearer.as_str()),
                ("Origin", "https://agent.example"),
            ],
            None,
        );
        let cors = cross_origin.and_then(|a| {
            ensure(a.header("access-control-allow-origin").is_some(), || {
                "no Access-Control-Allow-Origin on a lookupvisitor answer to a caller with an Origin"
                    .into()
            })
        });
        let find = self.agent_call("GET", "findvisitor", &v, None);
        let verdict = find.and_then(|a| {
            let body = a.json();
            let named = ["directserver", "direct"].iter().any(|k| {
                body.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            });
            ensure(a.status == 200 && named, || {
                format!("{} {}", a.status, short(&a.body))
            })
        });
        self.record("SRV-REST-3", verdict);
        let signal = self.signal(&v, &json!({"gpconf": "absent"}));
        let verdict = signal.and_then(|a| {
            let err = a
                .json()
                .get("err")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            ensure(
                a.status == 404 && err.as_deref() == Some("visitornotpresent"),
                || format!("{} {}", a.status, short(&a.body)),
            )
        });
        self.record("SRV-REST-5", verdict);
        let query = self.agent_call("GET", "query", &v, None);
        if let Ok(a) = &query {
            if a.status != 200 || a.json() != json!({}) {
                self.record(
                    "SRV-REST-6",
                    Err(format!("absent: {} {}", a.status, short(&a.body))),
                );
            }
        }
        let bad = self.agent_call("GET", "lookupvisitor", "bad!id", None);
        let verdict = bad.and_then(|a| {
            let err = a
                .json()
                .get("err")
                .and_then(Value::as_str)
                .map(str::to_owned);
            ensure(
                a.status == 400 && err.as_deref() == Some("badrequest"),
                || format!("{} {}", a.status, short(&a.body)),
            )
        });
        self.record("SRV-REST-7", verdict);
        let unauth = self
            .rest
            .call("GET", &self.url("lookupvisitor", &v), &[], None);
        let verdict = unauth.and_then(|a| {
            ensure(a.status == 401, || {
                format!("{} {}", a.status, short(&a.body))
            })
        });
        self.record("SRV-AUTH-1", verdict);
        let preflight = self.rest.call(
            "OPTIONS",
            &self.url("lookupvisitor", &v),
            &[
                ("Origin", "https://agent.example"),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "authorization"),
            ],
            None,
        );
        let verdict = preflight.and_then(|a| {
            let has = |h: &str| a.header(h).is_some();
            ensure(
                (200..300).contains(&a.status)
                    && has("access-control-allow-origin")
                    && has("access-control-allow-methods")
                    && has("access-control-allow-headers"),
                || format!("{} with headers {:?}", a.status, a.headers),
            )
        });
        self.record("SRV-CORS-1", verdict);
        self.record("SRV-CORS-2", cors);
        let big = format!(
            "{{\"mtype\":\"signal\",\"data\":\"{}\"}}",
            "x".repeat(70 * 1024)
        );
        let verdict = self
            .agent_call("POST", "signalvisitor", &v, Some(&big))
            .and_then(|a| {
                ensure(a.status == 413, || {
                    format!("{} {}", a.status, short(&a.body))
                })
            });
        self.record("SRV-LIMIT-2", verdict);
    }

    fn refusals(&mut self) {
        let v = self.visitor_id(1);
        let verdict = (|| {
            let mut ws = self.open("/agent")?;
            ws.send(&json!({
                "type": "connect",
                "authorization": "not-a-token",
                "groupid": self.t.group.to_string(),
                "visitorid": v,
                "version": "6.25.0",
            }))?;
            let deadline = Instant::now() + self.t.timeout;
            let first = ws.recv_until(deadline);
            let error_ok = matches!(&first, Some(Received::Frame(f))
                if frame_type(f) == "error"
                    && f["data"]["error"] == "connfail"
                    && f["data"]["detail"] == "authorization");
            let close = ws.recv_until(deadline);
            ensure(
                error_ok && close == Some(Received::Close(Some(1008))),
                || format!("saw {first:?} then {close:?}"),
            )
        })();
        self.record("SRV-AUTH-2", verdict);
        let verdict = (|| {
            let mut ws = self.open("/visitorws")?;
            ws.send(&json!({"type": "k"}))?;
            let deadline = Instant::now() + self.t.timeout;
            let first = ws.recv_until(deadline);
            let error_ok = matches!(&first, Some(Received::Frame(f))
                if frame_type(f) == "error" && f["data"]["error"] == "badframe");
            let close = ws.recv_until(deadline);
            ensure(
                error_ok && close == Some(Received::Close(Some(1002))),
                || format!("saw {first:?} then {close:?}"),
            )
        })();
        self.record("SRV-WS-2", verdict);
        let verdict = (|| {
            let (mut ws, _) = self.visitor(&self.visitor_id(3))?;
            let big = json!({"type": "presence", "data": {"blob": "x".repeat(70 * 1024)}});
            ws.send(&big)?;
            let deadline = Instant::now() + self.t.timeout;
            let first = ws.recv_until(deadline);
            let error_ok = matches!(&first, Some(Received::Frame(f))
                if frame_type(f) == "error" && f["data"]["error"] == "badframe");
            let close = ws.recv_until(deadline);
            ensure(
                error_ok && close == Some(Received::Close(Some(1009))),
                || format!("saw {} then {close:?}", short(&format!("{first:?}"))),
            )
        })();
        self.record("SRV-LIMIT-1", verdict);
    }

    /// Presence, forwarding, signals, navigation, hold, close handshake and leave, on one
    /// visitor id.
    fn lifecycle(&mut self) -> Verdict {
        let v = self.visitor_id(2);
        let quiet = Duration::from_millis(700);
        let (mut agent, connected) = self.agent(&v)?;
        let keepalive = |f: &Value| {
            frame_type(f) == "connected" && f.get("keepalive").is_some_and(Value::is_u64)
        };
        let agent_connected = keepalive(&connected);
        let (mut visitor, vconnected) = self.visitor(&v)?;
        self.record(
            "SRV-WS-1",
            ensure(agent_connected && keepalive(&vconnected), || {
                format!(
                    "agent got {}, visitor got {}",
                    short(&connected),
                    short(&vconnected)
                )
            }),
        );
        if !agent_connected {
            return Err(format!(
                "the agent socket was not connected: {}",
                short(&connected)
            ));
        }
        let first = agent.frames_for(quiet);
        self.record(
            "SRV-PRES-1",
            ensure(
                types(&first) == ["visitorsock true", "visitorconn true"],
                || format!("agent saw {:?}", types(&first)),
            ),
        );
        visitor.send(&json!({"type": "k"}))?;
        visitor.send(&json!({"type": "presence", "data": {"url": "https://conformance.example/1", "gpconf": 1}}))?;
        visitor.send(&json!({"type": "gpconfping", "data": {"n": 1}}))?;
        visitor.send(&json!({"type": "redirect", "data": {"direct": "elsewhere.example:443"}}))?;
        let forwarded = agent.frames_for(quiet);
        let seen = types(&forwarded);
        let presence_ok = forwarded.iter().any(|f| {
            frame_type(f) == "presence" && f["data"]["url"] == "https://conformance.example/1"
        });
        let custom_ok = forwarded
            .iter()
            .any(|f| frame_type(f) == "gpconfping" && f["data"]["n"] == 1);
        self.record(
            "SRV-FWD-1",
            ensure(presence_ok && custom_ok, || format!("agent saw {seen:?}")),
        );
        self.record(
            "SRV-FWD-2",
            ensure(!seen.iter().any(|t| t == "redirect"), || {
                format!("agent saw {seen:?}")
            }),
        );
        self.record(
            "SRV-KEEP-1",
            ensure(!seen.iter().any(|t| t == "k"), || {
                format!("agent saw {seen:?}")
            }),
        );
        let lookup = self.agent_call("GET", "lookupvisitor", &v, None)?;
        let body = lookup.json();
        let flat = body.get("visitorid").and_then(Value::as_str) == Some(v.as_str())
            && ["directserver", "direct"].iter().any(|k| {
                body.get(*k)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            })
            && body.get("url").and_then(Value::as_str) == Some("https://conformance.example/1");
        self.record(
            "SRV-REST-2",
            ensure(lookup.status == 200 && flat, || {
                format!("{} {}", lookup.status, short(&lookup.body))
            }),
        );
        let find = self.agent_call("GET", "findvisitor", &v, None)?;
        self.record(
            "SRV-REST-4",
            ensure(
                find.status == 200 && find.json()["visitorfound"] == true,
                || format!("{} {}", find.status, short(&find.body)),
            ),
        );
        let query = self.agent_call("GET", "query", &v, None)?;
        self.record(
            "SRV-REST-6",
            ensure(
                query.status == 200 && query.json()["present"] == true,
                || format!("present: {} {}", query.status, short(&query.body)),
            ),
        );
        // A second agent while the visitor is present.
        let verdict = (|| {
            let (mut late, connected) = self.agent(&v)?;
            let frames = late.frames_for(quiet);
            let _ = late.close(1000);
            ensure(
                frame_type(&connected) == "connected"
                    && types(&frames) == ["visitorsock true", "visitorconn true"],
                || {
                    format!(
                        "late agent saw {} then {:?}",
                        frame_type(&connected),
                        types(&frames)
                    )
                },
            )
        })();
        self.record("SRV-PRES-4", verdict);
        // A signal to the connected visitor.
        let answer = self.signal(&v, &json!({"gpconf": "s0"}))?;
        let got = visitor.next_frame(self.t.timeout);
        self.record(
            "SRV-SIGNAL-1",
            ensure(
                answer.status == 200
                    && answer.json()["delivered"] == true
                    && got
                        .as_ref()
                        .is_some_and(|f| frame_type(f) == "signal" && f["data"]["gpconf"] == "s0"),
                || {
                    format!(
                        "{} {}; visitor got {got:?}",
                        answer.status,
                        short(&answer.body)
                    )
                },
            ),
        );
        // A newer socket takes the signals; the older one is blurred.
        let verdict = (|| {
            let (mut newer, _) = self.visitor(&v)?;
            let blur = visitor.next_frame(self.t.timeout);
            self.signal(&v, &json!({"gpconf": "s1"}))?;
            let to_newer = newer.next_frame(self.t.timeout);
            let _ = newer.close(1000);
            let _ = newer.frames_for(Duration::from_millis(200));
            ensure(
                blur.as_ref().is_some_and(|f| frame_type(f) == "blur")
                    && to_newer
                        .as_ref()
                        .is_some_and(|f| f["data"]["gpconf"] == "s1"),
                || format!("older got {blur:?}, newer got {to_newer:?}"),
            )
        })();
        self.record("SRV-SIGNAL-3", verdict);
        let _ = agent.frames_for(Duration::from_millis(300));
        // Navigation: close (checking the close handshake), reconnect at once.
        visitor.close(1000)?;
        let answer = visitor.recv_until(Instant::now() + self.t.timeout);
        let mut answered = matches!(answer, Some(Received::Close(_)));
        while let Some(Received::Frame(_)) = visitor.recv_until(Instant::now() + self.t.timeout) {
            answered = true;
        }
        self.record(
            "SRV-CLOSE-1",
            ensure(answered, || {
                format!("after our Close the service sent {answer:?}")
            }),
        );
        // Signals while the visitor has no socket are held.
        std::thread::sleep(Duration::from_millis(200));
        let held: Vec<Answer> = ["h1", "h2"]
            .iter()
            .map(|n| self.signal(&v, &json!({ "gpconf": n })))
            .collect::<Result<_, _>>()?;
        let (mut back, _) = self.visitor(&v)?;
        let delivered = back.frames_for(quiet);
        let held_ok = held
            .iter()
            .all(|a| a.status == 200 && a.json()["held"] == true);
        let order: Vec<Value> = delivered
            .iter()
            .filter(|f| frame_type(f) == "signal")
            .map(|f| f["data"]["gpconf"].clone())
            .collect();
        self.record(
            "SRV-SIGNAL-2",
            ensure(held_ok && order == [json!("h1"), json!("h2")], || {
                format!(
                    "answers {:?}, then the visitor got {}",
                    held.iter()
                        .map(|a| format!("{} {}", a.status, short(&a.body)))
                        .collect::<Vec<_>>(),
                    short(&Value::Array(delivered.clone()))
                )
            }),
        );
        let nav = agent.frames_for(quiet);
        self.record(
            "SRV-PRES-2",
            ensure(
                types(&nav) == ["visitorsock false", "visitorsock true"],
                || format!("agent saw {:?}", types(&nav)),
            ),
        );
        // Leave.
        back.close(1000)?;
        let wait = self.t.presence_window + Duration::from_secs(2);
        let left = agent.frames_for(wait);
        self.record(
            "SRV-PRES-3",
            ensure(
                types(&left) == ["visitorsock false", "visitorconn false"],
                || format!("agent saw {:?} within {} s", types(&left), wait.as_secs()),
            ),
        );
        let _ = agent.close(1000);
        Ok(())
    }
}

fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Runs the suite and returns its report (every observed `SRV-*` requirement, in list order).
pub fn run(target: &ServerTarget) -> Report {
    let mut run = Run {
        t: target,
        rest: RestProbe::new(target.timeout),
        token: None,
        run: run_id(),
        report: Report::default(),
    };
    run.authorize();
    if run.token.is_none() {
        let mut report = Report::default();
        for req in crate::REQUIREMENTS
            .iter()
            .filter(|r| r.id.starts_with("SRV-"))
        {
            let status = match run.report.outcomes.iter().find(|o| o.id == req.id) {
                Some(o) => o.status.clone(),
                None => Status::Skipped("no token".into()),
            };
            report.record(req, status);
        }
        return report;
    }
    run.rest_absent();
    run.refusals();
    if let Err(why) = run.lifecycle() {
        for req in crate::REQUIREMENTS
            .iter()
            .filter(|r| r.id.starts_with("SRV-"))
        {
            run.record_status(req.id, Status::Fail(format!("not reached: {why}")));
        }
    }
    // Requirement order.
    let mut report = Report::default();
    for req in crate::REQUIREMENTS
        .iter()
        .filter(|r| r.id.starts_with("SRV-"))
    {
        let status = run
            .report
            .outcomes
            .iter()
            .find(|o| o.id == req.id)
            .map_or_else(
                || Status::Skipped("not observed".into()),
                |o| o.status.clone(),
            );
        report.record(req, status);
    }
    report
}
