//! REST decisions of the core with virtual time: the monotonic `now` and the wall time are both
//! arguments, so token and LoginKey expiry are checked to the second without a clock.

use std::time::{Duration, Instant};

use glance_presence_protocol::rest::{self, LookupResult, QueryResult};
use glance_presence_protocol::{loginkey, ApiKey, GroupId, PartnerUserId, ServerFrame};
use serde_json::{json, Value};

use super::{HttpAnswer, HttpMethod, RestRequest, RestResponse, AUTHORIZE_PATH};
use crate::auth::TokenKeys;
use crate::core::tests::settings;
use crate::core::{Admission, CloseCause, Output, Role, ServiceCore};

const EPOCH: u64 = 1_700_000_000;
const SECRET: &[u8] = b"test secret test secret test secret!";
const API_KEY: &str = "the group's api key";

fn group() -> GroupId {
    GroupId::new(12345).unwrap()
}

/// A core, its virtual monotonic time and its virtual wall time (seconds since the epoch).
struct Rest {
    core: ServiceCore,
    keys: TokenKeys,
    t0: Instant,
    now: Instant,
}

impl Rest {
    fn new() -> Self {
        let t0 = Instant::now();
        let keys = TokenKeys::new(SECRET);
        Rest {
            core: ServiceCore::new(settings(), keys.clone(), t0, EPOCH as f64),
            keys,
            t0,
            now: t0,
        }
    }

    fn wall(&self) -> Duration {
        Duration::from_secs(EPOCH) + (self.now - self.t0)
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        self.core.handle_timeout(self.now);
        while self.core.poll_output().is_some() {}
    }

    fn token(&self, lifetime: u64) -> String {
        let (token, _) = self
            .keys
            .issue_agent(
                group(),
                &PartnerUserId::new("agent1").unwrap(),
                self.wall().as_secs(),
                lifetime,
            )
            .unwrap();
        token.expose_secret().to_owned()
    }

    fn call(
        &mut self,
        method: HttpMethod,
        target: &str,
        bearer: Option<&str>,
        origin: Option<&str>,
        body: Option<&[u8]>,
    ) -> HttpAnswer {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let authorization = bearer.map(|t| format!("Bearer {t}"));
        let request = RestRequest {
            method,
            path,
            query,
            authorization: authorization.as_deref(),
            origin,
            body,
        };
        let wall = self.wall();
        self.core.handle_http(self.now, wall, &request)
    }

    fn get(&mut self, target: &str, bearer: Option<&str>) -> RestResponse {
        respond(self.call(HttpMethod::Get, target, bearer, None, Some(b"")))
    }

    fn post(&mut self, target: &str, bearer: Option<&str>, body: &str) -> RestResponse {
        respond(self.call(
            HttpMethod::Post,
            target,
            bearer,
            None,
            Some(body.as_bytes()),
        ))
    }

    fn visitor(&mut self, id: &str) -> crate::core::ConnId {
        let conn = self.core.open(self.now, Role::Visitor);
        self.core.handle_text(
            self.now,
            conn,
            &json!({"type":"connect","groupid":12345,"visitorid":id}).to_string(),
        );
        while self.core.poll_output().is_some() {}
        conn
    }
}

fn respond(answer: HttpAnswer) -> RestResponse {
    match answer {
        HttpAnswer::Respond(response) => response,
        HttpAnswer::RespondAfter(delay, _) => panic!("an answer delayed {delay:?}"),
        HttpAnswer::Upgrade(role) => panic!("an upgrade to {role:?}"),
    }
}

fn body(response: &RestResponse) -> Value {
    serde_json::from_str(&response.body).unwrap()
}

const Q: &str = "groupid=12345&visitorid=v1&&ver=6.25.0";

#[test]
fn bearer_tokens_are_checked_against_the_wall_time_passed_in() {
    let mut r = Rest::new();
    let token = r.token(60);
    let lookup = format!("/lookupvisitor?{Q}");
    assert_eq!(r.get(&lookup, Some(&token)).status, 200);
    r.advance(59);
    assert_eq!(r.get(&lookup, Some(&token)).status, 200);
    r.advance(1);
    let refused = r.get(&lookup, Some(&token));
    assert_eq!(refused.status, 401);
    assert_eq!(
        body(&refused),
        json!({"err":"authorization","msg":"token expired"})
    );
    assert_eq!(r.get(&lookup, None).status, 401);
    assert_eq!(r.get(&lookup, Some("garbage")).status, 401);
    let fresh = r.token(60);
    let other = r.get(
        "/lookupvisitor?groupid=777&visitorid=v1",
        Some(fresh.as_str()),
    );
    assert_eq!(other.status, 403);
    assert_eq!(
        rest::parse_lookup(other.status, other.body.as_bytes()),
        Err(rest::RestError::Authorization {
            status: 403,
            detail: Some("token is for another group".into())
        })
    );
    assert_eq!(r.core.stats().rest_auth_failures, 4);
}

#[test]
fn answers_have_the_shapes_the_client_parses() {
    let mut r = Rest::new();
    let token = r.token(600);
    let t = Some(token.as_str());
    let absent = r.get(&format!("/lookupvisitor?{Q}"), t);
    assert_eq!((absent.status, body(&absent)), (200, json!({})));
    assert_eq!(
        absent.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let found = r.get(&format!("/findvisitor?{Q}"), t);
    let parsed = rest::parse_find(found.status, found.body.as_bytes()).unwrap();
    assert!(!parsed.found);
    assert_eq!(parsed.direct_server.as_deref(), Some("127.0.0.1:8080"));
    let visitor = r.visitor("v1");
    r.core.handle_text(
        r.now,
        visitor,
        r#"{"type":"presence","data":{"url":"https://a.example/","groupid":"shadow"}}"#,
    );
    let present = r.get(&format!("/lookupvisitor?{Q}"), t);
    let LookupResult::Present(record) =
        rest::parse_lookup(present.status, present.body.as_bytes()).unwrap()
    else {
        panic!("{}", present.body)
    };
    assert_eq!(record.visitorid.as_deref(), Some("v1"));
    assert_eq!(record.groupid.as_deref(), Some("12345"));
    assert_eq!(record.visitorpresent, Some(EPOCH as f64));
    assert_eq!(
        record.presence.get("url"),
        Some(&json!("https://a.example/"))
    );
    assert_eq!(record.presence.get("groupid"), None, "no shadowing");
    let q = r.get(&format!("/query?{Q}"), t);
    let QueryResult::Present(state) = rest::parse_query(q.status, q.body.as_bytes()).unwrap()
    else {
        panic!("{}", q.body)
    };
    assert_eq!(state.sockets, 1);
    let unique = r.get(
        "/uniquevisitor?groupid=12345&visitorid=undefined&&ver=6.33.0",
        None,
    );
    let u = rest::parse_unique_visitor(unique.status, unique.body.as_bytes()).unwrap();
    assert!(u.guesttoken.is_some());
    assert_eq!(u.timeout, 300);
    let settings = r.get(
        "/services/authorizationservice/GetVisitorSettings3?groupid=12345&site=production",
        None,
    );
    assert_eq!(
        body(&settings),
        json!({"presenceUrl":"127.0.0.1:8080","isPresenceLoadBalanced":false})
    );
    let off = r.get(
        "/services/authorizationservice/GetVisitorSettings3?groupid=9",
        None,
    );
    assert_eq!(body(&off)["presenceUrl"], json!(""));
    let assigned = r.post("/presence?groupid=12345&visitorid=v1", None, "{}");
    assert_eq!(
        rest::parse_presence(assigned.status, assigned.body.as_bytes())
            .unwrap()
            .direct_server
            .as_deref(),
        Some("127.0.0.1:8080")
    );
}

#[test]
fn parameters_are_read_as_glance_writes_them_and_refused_with_a_reason() {
    let mut r = Rest::new();
    let token = r.token(600);
    let t = Some(token.as_str());
    for target in [
        "/findvisitor?&&groupid=12345&&visitorid=v1&&ver=6.25.0&",
        "/findvisitor?visitorid=v1&groupid=12345&site=x&groupid=9",
    ] {
        assert_eq!(r.get(target, t).status, 200, "{target}");
    }
    for (target, why) in [
        ("/findvisitor?visitorid=v1", "groupid is missing"),
        ("/findvisitor?groupid=0&visitorid=v1", ""),
        ("/findvisitor?groupid=12345", "visitorid is missing"),
        ("/findvisitor?groupid=12345&visitorid=bad%20id", ""),
        ("/uniquevisitor?groupid=9", "group 9 is not served here"),
    ] {
        let answer = r.get(target, t);
        assert_eq!(answer.status, 400, "{target}");
        assert_eq!(body(&answer)["err"], json!("badrequest"));
        assert!(
            body(&answer)["msg"].as_str().unwrap().contains(why),
            "{target}"
        );
    }
}

#[test]
fn signal_bodies_and_outcomes() {
    let mut r = Rest::new();
    let token = r.token(600);
    let t = Some(token.as_str());
    let signal = format!("/signalvisitor?{Q}");
    let absent = r.post(&signal, t, r#"{"mtype":"signal","data":{"n":1}}"#);
    assert_eq!(absent.status, 404);
    assert_eq!(
        rest::parse_signal(absent.status, absent.body.as_bytes()),
        Err(rest::RestError::VisitorNotPresent)
    );
    let visitor = r.visitor("v1");
    let delivered = r.post(&signal, t, r#"{"mtype":"signal","data":{"n":1}}"#);
    assert_eq!(body(&delivered), json!({"delivered":true}));
    assert_eq!(
        r.core.poll_output(),
        Some(Output::Send {
            conn: visitor,
            frame: ServerFrame::Signal(json!({"n":1}))
        })
    );
    let invoke = r.post(
        &signal,
        t,
        r#"{"type":"invoke","data":{"func":"GLANCE.x","args":{"a":1}}}"#,
    );
    assert_eq!(invoke.status, 200);
    r.core.handle_closed(r.now, visitor);
    while r.core.poll_output().is_some() {}
    for _ in 0..3 {
        assert_eq!(
            body(&r.post(&signal, t, r#"{"mtype":"signal"}"#)),
            json!({"held":true})
        );
    }
    let full = r.post(&signal, t, r#"{"mtype":"signal"}"#);
    assert_eq!(
        (full.status, body(&full)["err"].clone()),
        (429, json!("holdqueuefull"))
    );
    for bad in [
        "not json",
        "[1]",
        r#"{"data":1}"#,
        r#"{"mtype":"invoke"}"#,
        r#"{"mtype":"invoke","data":{"args":1}}"#,
        r#"{"mtype":"blur"}"#,
    ] {
        assert_eq!(r.post(&signal, t, bad).status, 400, "{bad}");
    }
}

#[test]
fn authorize_checks_the_login_key_against_the_wall_time_passed_in() {
    let mut r = Rest::new();
    let user = PartnerUserId::new("agent1").unwrap();
    let key = ApiKey::new(API_KEY);
    let expiry = EPOCH + 300;
    let login = loginkey::sign(group(), &user, expiry, &key);
    let ask = json!({"partnerid":12345,"partneruserid":"agent1","loginkey":login.expose_secret()})
        .to_string();
    let path = format!("{AUTHORIZE_PATH}?groupid=12345&service=presence&duration=2&site=x");
    let ok = r.post(&path, None, &ask);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = rest::parse_authorize(ok.status, ok.body.as_bytes()).unwrap();
    let claims = r
        .keys
        .verify_agent(token.token.expose_secret(), Some(group()), EPOCH)
        .unwrap();
    assert_eq!(claims.exp, EPOCH + 120);
    assert!(!format!("{ok:?}").contains(token.token.expose_secret()));
    // The same LoginKey once the wall time passes its expiry.
    r.advance(300);
    let late = r.post(&path, None, &ask);
    assert_eq!(
        (late.status, body(&late)["err"].clone()),
        (401, json!("authorization"))
    );
    for (query, body_text, status) in [
        ("duration=0", ask.as_str(), 400),
        ("duration=121", ask.as_str(), 400),
        ("service=guest", ask.as_str(), 400),
        ("groupid=1", ask.as_str(), 400),
        ("", "[]", 400),
        ("", "{", 400),
        ("", r#"{"partnerid":12345,"partneruserid":"agent1"}"#, 400),
        (
            "",
            r#"{"partnerid":"777","partneruserid":"a","loginkey":"$1$1$x"}"#,
            401,
        ),
    ] {
        let answer = r.post(&format!("{AUTHORIZE_PATH}?{query}"), None, body_text);
        assert_eq!(
            answer.status, status,
            "{query} {body_text}: {}",
            answer.body
        );
    }
    assert_eq!(r.core.stats().authorize_failures, 9);
}

#[test]
fn origins_methods_limits_and_shutdown() {
    let mut r = Rest::new();
    let token = r.token(600);
    let lookup = format!("/lookupvisitor?{Q}");
    // A plain OPTIONS (the server answers CORS preflights before the core sees them) is 204,
    // with no header of the core's: the CORS headers are the server's.
    let options = respond(r.call(
        HttpMethod::Options,
        &lookup,
        None,
        Some("https://console.example"),
        Some(b""),
    ));
    assert_eq!(options.status, 204);
    assert!(options.headers.is_empty());
    let foreign = respond(r.call(
        HttpMethod::Get,
        &lookup,
        Some(&token),
        Some("https://evil.example"),
        Some(b""),
    ));
    assert_eq!(
        (foreign.status, body(&foreign)["err"].clone()),
        (403, json!("origin"))
    );
    // Visitor endpoints take every origin.
    let unique = respond(r.call(
        HttpMethod::Get,
        "/uniquevisitor?groupid=12345",
        None,
        Some("https://evil.example"),
        Some(b""),
    ));
    assert_eq!(unique.status, 200);
    assert_eq!(
        r.call(
            HttpMethod::Get,
            "/agent",
            None,
            Some("https://evil.example"),
            None
        ),
        HttpAnswer::Respond(RestResponse::error(403, "origin", "origin not allowed"))
    );
    assert_eq!(
        r.call(
            HttpMethod::Get,
            "/visitorws",
            None,
            Some("https://evil.example"),
            None
        ),
        HttpAnswer::Upgrade(Role::Visitor)
    );
    assert_eq!(r.core.stats().origin_rejections, 2);
    let too_big = respond(r.call(HttpMethod::Post, &lookup, Some(&token), None, None));
    assert_eq!(too_big.status, 405, "the method is checked first");
    let too_big = respond(r.call(
        HttpMethod::Post,
        &format!("/signalvisitor?{Q}"),
        Some(&token),
        None,
        None,
    ));
    assert_eq!(too_big.status, 413);
    assert_eq!(r.get("/nothing", None).status, 404);
    let metrics = r.get("/metrics", None);
    assert!(metrics
        .body
        .contains("glance_presence_origin_rejections_total 2"));
    r.core.shutdown(r.now);
    assert_eq!(r.get(&lookup, Some(&token)).status, 503);
    assert_eq!(
        respond(r.call(HttpMethod::Get, "/agent", None, None, None)).status,
        503
    );
    assert_eq!(r.get("/metrics", None).status, 200);
}

#[test]
fn the_connection_cap_refuses_and_then_drops() {
    let mut r = Rest::new();
    assert_eq!(r.core.admit_connection(0), Admission::Accept);
    assert_eq!(r.core.admit_connection(0), Admission::Accept);
    let Admission::Refuse(refusal) = r.core.admit_connection(0) else {
        panic!("not refused")
    };
    assert_eq!(refusal.status, 503);
    assert_eq!(refusal.header("retry-after"), Some("1"));
    assert_eq!(body(&refusal)["err"], json!("serviceunavailable"));
    assert_eq!(r.core.admit_connection(1), Admission::Drop);
    r.core.connection_ended();
    assert_eq!(r.core.admit_connection(1), Admission::Accept);
    let stats = r.core.stats();
    assert_eq!((stats.open_connections, stats.refused_connections), (2, 2));
}

#[test]
fn a_consumer_that_does_not_read_is_let_go_and_its_visitor_leaves_as_usual() {
    let mut r = Rest::new();
    let visitor = r.visitor("v1");
    r.core.handle_send_queue_full(r.now, visitor);
    assert_eq!(
        r.core.poll_output(),
        Some(Output::Close {
            conn: visitor,
            reason: CloseCause::SlowConsumer
        })
    );
    r.core.handle_send_queue_full(r.now, visitor);
    assert_eq!(r.core.poll_output(), None, "once");
    assert_eq!(r.core.stats().slow_consumers, 1);
    assert!(r.core.is_present(group(), &"v1".parse().unwrap()));
    r.advance(6);
    assert!(!r.core.is_present(group(), &"v1".parse().unwrap()));
}

/// The core with its test controls on, and an agent socket of visitor `v1` attached.
fn with_controls() -> (Rest, crate::core::ConnId) {
    let mut r = Rest::new();
    r.core
        .enable_controls(&crate::core::AdminToken::new("admin-token-for-tests").unwrap());
    let token = r.token(600);
    let agent = r.core.open(r.now, Role::Agent);
    r.core.handle_text(
        r.now,
        agent,
        &json!({"type":"connect","authorization":token,"groupid":"12345","visitorid":"v1"})
            .to_string(),
    );
    while r.core.poll_output().is_some() {}
    (r, agent)
}

fn control(r: &mut Rest, name: &str, body: Value) -> RestResponse {
    respond(r.call(
        HttpMethod::Post,
        &format!("/control/{name}"),
        Some("admin-token-for-tests"),
        None,
        Some(body.to_string().as_bytes()),
    ))
}

fn events(r: &mut Rest) -> Vec<Value> {
    let answer = control(r, "events", json!({"since":0}));
    body(&answer)["events"].as_array().unwrap().clone()
}

#[test]
fn the_delay_control_delays_the_next_answers_of_a_path_within_its_bound() {
    let (mut r, _) = with_controls();
    for bad in [
        json!({"count":1,"millis":0}),
        json!({"count":1,"millis":30_001}),
        json!({"count":0,"millis":10}),
        json!({"count":1}),
        json!({"count":1,"millis":10,"path":7}),
    ] {
        assert_eq!(control(&mut r, "delay", bad.clone()).status, 400, "{bad}");
    }
    let ok = control(
        &mut r,
        "delay",
        json!({"count":2,"millis":1500,"path":"/findvisitor"}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = r.token(600);
    let lookup = r.call(
        HttpMethod::Get,
        "/lookupvisitor?groupid=12345&visitorid=v1",
        Some(&token),
        None,
        Some(b""),
    );
    assert!(matches!(lookup, HttpAnswer::Respond(_)), "{lookup:?}");
    for _ in 0..2 {
        let find = r.call(
            HttpMethod::Get,
            "/findvisitor?groupid=12345&visitorid=v1",
            Some(&token),
            None,
            Some(b""),
        );
        let HttpAnswer::RespondAfter(delay, answer) = find else {
            panic!("not delayed: {find:?}");
        };
        assert_eq!((delay, answer.status), (Duration::from_millis(1500), 200));
    }
    let third = r.get("/findvisitor?groupid=12345&visitorid=v1", Some(&token));
    assert_eq!(third.status, 200);
    // A reset clears a delay still due.
    control(&mut r, "delay", json!({"count":1,"millis":10}));
    control(&mut r, "reset", json!({}));
    assert_eq!(
        r.get("/query?groupid=12345&visitorid=v1", Some(&token))
            .status,
        200
    );
}

#[test]
fn the_token_lifetime_control_sets_the_life_of_the_next_tokens_and_logs_only_their_expiry() {
    let (mut r, _) = with_controls();
    for bad in [
        json!({}),
        json!({"secs":0}),
        json!({"secs":7201}),
        json!({"secs":"10"}),
        json!({"secs":10,"count":0}),
    ] {
        assert_eq!(
            control(&mut r, "token_lifetime", bad.clone()).status,
            400,
            "{bad}"
        );
    }
    let user = PartnerUserId::new("agent1").unwrap();
    let login = loginkey::sign(group(), &user, EPOCH + 300, &ApiKey::new(API_KEY));
    let ask = json!({"partnerid":12345,"partneruserid":"agent1","loginkey":login.expose_secret()})
        .to_string();
    let path = format!("{AUTHORIZE_PATH}?groupid=12345&duration=120");
    let authorize = |r: &mut Rest| {
        let answer = r.post(&path, None, &ask);
        let token = rest::parse_authorize(answer.status, answer.body.as_bytes()).unwrap();
        let claims = r
            .keys
            .verify_agent(token.token.expose_secret(), Some(group()), EPOCH)
            .unwrap();
        (claims.exp - EPOCH, token.token.expose_secret().to_owned())
    };
    assert_eq!(
        control(&mut r, "token_lifetime", json!({"secs":15,"count":1})).status,
        200
    );
    let (short, short_token) = authorize(&mut r);
    let (usual, _) = authorize(&mut r);
    assert_eq!((short, usual), (15, 7200));
    assert_eq!(
        control(&mut r, "token_lifetime", json!({"secs":20})).status,
        200
    );
    assert_eq!((authorize(&mut r).0, authorize(&mut r).0), (20, 20));
    assert_eq!(
        control(&mut r, "token_lifetime", json!({"secs":null})).status,
        200
    );
    assert_eq!(authorize(&mut r).0, 7200);
    // The log names the expiry of each token issued, never the token.
    let log = events(&mut r);
    let issued: Vec<u64> = log
        .iter()
        .filter(|e| e["path"] == AUTHORIZE_PATH)
        .map(|e| e["token_exp"].as_u64().unwrap() - EPOCH)
        .collect();
    assert_eq!(issued, [15, 7200, 20, 20, 7200]);
    assert!(!Value::Array(log).to_string().contains(&short_token));
}

#[test]
fn the_send_control_sends_raw_text_within_its_bound() {
    let (mut r, agent) = with_controls();
    let target = json!({"groupid":12345,"visitorid":"v1","role":"agent"});
    let with = |extra: Value| {
        let mut body = target.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // The test settings' frame limit is 1 KiB: at most 2 KiB of text.
    for bad in [
        json!({"text":"x","repeat":2049}),
        json!({"text":"","repeat":1}),
        json!({"text":"x","repeat":0}),
        json!({"text":7}),
        json!({"text":"x","frame":{"type":"scaledown"}}),
        json!({}),
    ] {
        assert_eq!(
            control(&mut r, "send", with(bad.clone())).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        control(&mut r, "send", with(json!({"text":"not json {"}))).status,
        200
    );
    assert_eq!(
        r.core.poll_output(),
        Some(Output::SendText {
            conn: agent,
            text: "not json {".to_owned()
        })
    );
    assert_eq!(
        control(&mut r, "send", with(json!({"text":"ab","repeat":1024}))).status,
        200
    );
    let Some(Output::SendText { conn, text }) = r.core.poll_output() else {
        panic!("no text sent");
    };
    assert_eq!((conn, text.len()), (agent, 2048));
}

#[test]
fn a_silenced_agent_socket_gets_nothing_and_its_pings_are_logged_and_not_answered() {
    let (mut r, agent) = with_controls();
    let target = json!({"groupid":12345,"visitorid":"v1","role":"agent"});
    assert_eq!(
        r.core.handle_ping(r.now, agent),
        crate::core::PingAnswer::Pong
    );
    assert_eq!(control(&mut r, "silence", target).status, 200);
    // The visitor arrives: the silenced agent is not told.
    let visitor = r.visitor("v1");
    assert!(r.core.poll_output().is_none());
    assert_eq!(
        r.core.handle_ping(r.now, agent),
        crate::core::PingAnswer::Withhold
    );
    let kinds: Vec<String> = events(&mut r)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["open", "ping", "ping"]);
    // A close of the service's own is a drop, without a close frame or `serverclose`; the
    // visitor, not silenced, gets both.
    r.core.shutdown(r.now);
    let outs: Vec<Output> = std::iter::from_fn(|| r.core.poll_output()).collect();
    assert!(
        outs.contains(&Output::Close {
            conn: agent,
            reason: CloseCause::Dropped
        }),
        "{outs:?}"
    );
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Send { conn, .. } if *conn == visitor)));
}
