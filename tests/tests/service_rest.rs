//! The reference service's REST answers over real HTTP: every shape snapshotted, compared with
//! the documented examples of the facts file, and parsed with the protocol crate's parsers; the
//! requests are built with the protocol crate's request builders, exactly as Glance's clients
//! send them (`?groupid=G&visitorid=V&&ver=X`, empty GET bodies).

mod service_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glance_presence_protocol::rest::{
    self, AuthorizeParams, Delivery, FindResult, LookupResult, QueryResult, RestError, RestTarget,
    SignalBody,
};
use glance_presence_protocol::{
    loginkey, ApiKey, AuthToken, GroupId, LoginKey, PartnerUserId, TermsStatus, Visibility,
    VisitorId,
};
use glance_presence_service::config::{DEMO_API_KEY, DEMO_GROUP_ID};
use glance_presence_service::{AdminToken, ServiceConfig};
use serde_json::{json, Value};
use service_support::{demo_group, Svc};

fn vid(s: &str) -> VisitorId {
    VisitorId::new(s).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Every key of the documented example is in our answer, with the same JSON type, and the
/// documented keys come in the documented order.
fn assert_documented_shape(documented: &str, ours: &Value) {
    let documented: Value = serde_json::from_str(documented).unwrap();
    let (Value::Object(doc), Value::Object(ours_map)) = (&documented, ours) else {
        panic!("objects expected: {documented} / {ours}");
    };
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    for (key, value) in doc {
        let got = ours_map
            .get(key)
            .unwrap_or_else(|| panic!("documented key {key} missing from {ours}"));
        assert_eq!(kind(got), kind(value), "type of {key} in {ours}");
    }
    let order: Vec<&String> = ours_map.keys().filter(|k| doc.contains_key(*k)).collect();
    let doc_order: Vec<&String> = doc.keys().collect();
    assert_eq!(order, doc_order, "documented key order");
}

const DOC_LOOKUP: &str = r#"{"direct":"pr0016.glance.net:443","visitorpresent":"1583953702.0","timestamp":"1583953702.0","visitorid":"example","groupid":"12345","ds":"pr0016.glance.net/0","directserver":"pr0016.glance.net","tlsport":5501,"httpsport":443}"#;
const DOC_FIND: &str = r#"{"ds":"pr0016.glance.net/0","direct":"pr0016.glance.net:443","directserver":"pr0016.glance.net","tlsport":5501,"httpsport":443,"visitorfound":true}"#;
const DOC_UNIQUE: &str =
    r#"{"visitorid":"UNQ-123456789","guesttoken":"abc","uniqueid":"123456789","timeout":300}"#;
const DOC_SETTINGS: &str =
    r#"{"presenceUrl":"presence.glance.net","isPresenceLoadBalanced":false}"#;
const DOC_PRESENCE: &str =
    r#"{"direct":"pr0016.glance.net:443","directserver":"pr0016.glance.net","httpsport":443}"#;

struct Fixture {
    svc: Svc,
    token: AuthToken,
}

impl Fixture {
    fn new(svc: Svc) -> Fixture {
        let token = AuthToken::new(svc.token());
        Fixture { svc, token }
    }

    fn target<'a>(
        &'a self,
        server: &'a rest::ServerAddr,
        visitor: &'a VisitorId,
    ) -> RestTarget<'a> {
        RestTarget {
            server,
            group: demo_group(),
            visitor,
            version: "6.25.0",
            token: Some(&self.token),
        }
    }
}

#[test]
fn every_rest_answer_has_the_documented_shape() {
    let f = Fixture::new(Svc::start(ServiceConfig::builder().seed(42)));
    let server = f.svc.server_addr();
    let v1 = vid("v1");
    let absent = vid("nobody");
    let port = f.svc.handle.addr().port();
    let authority = f.svc.handle.authority().to_owned();

    // An absent visitor.
    let r = f
        .svc
        .send(&rest::lookup_visitor(&f.target(&server, &absent)));
    assert_eq!((r.status, r.json()), (200, json!({})));
    assert_eq!(
        rest::parse_lookup(r.status, r.body.as_bytes()).unwrap(),
        LookupResult::Absent
    );
    let r = f.svc.send(&rest::find_visitor(&f.target(&server, &absent)));
    assert_eq!(r.status, 200);
    assert_documented_shape(DOC_FIND, &r.json());
    insta::assert_json_snapshot!("findvisitor_absent", r.json(), {
        ".direct" => "[host:port]", ".httpsport" => "[port]"
    });
    let found = rest::parse_find(r.status, r.body.as_bytes()).unwrap();
    assert_eq!(
        found,
        FindResult {
            found: false,
            direct_server: Some(authority.clone())
        }
    );
    let r = f.svc.send(&rest::query(&f.target(&server, &absent)));
    assert_eq!((r.status, r.json()), (200, json!({})));
    assert_eq!(
        rest::parse_query(r.status, r.body.as_bytes()).unwrap(),
        QueryResult::Absent
    );
    let r = f.svc.send(&rest::signal_visitor(
        &f.target(&server, &absent),
        &SignalBody::Signal(json!({"hello": 1})),
    ));
    assert_eq!(r.status, 404);
    insta::assert_json_snapshot!("signalvisitor_absent", r.json());
    assert_eq!(
        rest::parse_signal(r.status, r.body.as_bytes()),
        Err(RestError::VisitorNotPresent)
    );

    // A present visitor with presence data, visibility and terms.
    let mut visitor = f.svc.visitor("v1");
    visitor.send_text(r#"{"type":"presence","data":{"url":"https://shop.example.com/cart?item=42","browser":"chrome","browserver":120,"platform":"linux","custom":"field","cartvalue":42}}"#);
    visitor.send_text(r#"{"type":"visibility","data":{"visibility":"visible"}}"#);
    visitor.send_text(r#"{"type":"terms","data":{"status":"declined"}}"#);
    // Wait until the service has handled the three frames (query shows the terms).
    let mut q = Value::Null;
    for _ in 0..1000 {
        q = f.svc.send(&rest::query(&f.target(&server, &v1))).json();
        if q["terms"] == json!("declined") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(q["terms"], json!("declined"));

    let r = f.svc.send(&rest::lookup_visitor(&f.target(&server, &v1)));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let lookup = r.json();
    assert_documented_shape(DOC_LOOKUP, &lookup);
    insta::assert_json_snapshot!("lookupvisitor_present", lookup, {
        ".direct" => "[host:port]", ".httpsport" => "[port]",
        ".visitorpresent" => "[epoch]", ".timestamp" => "[epoch]"
    });
    let LookupResult::Present(record) = rest::parse_lookup(r.status, r.body.as_bytes()).unwrap()
    else {
        panic!("present expected")
    };
    // directserver + ":" + httpsport gives this service.
    assert_eq!(record.direct_server(), Some(authority.clone()));
    assert_eq!(record.httpsport, Some(port));
    assert_eq!(record.visitorid.as_deref(), Some("v1"));
    assert_eq!(record.groupid.as_deref(), Some("12345"));
    assert_eq!(
        record.presence.url(),
        Some("https://shop.example.com/cart?item=42")
    );
    assert_eq!(record.presence.get("cartvalue"), Some(&json!(42)));
    let since = record.visitorpresent.unwrap();
    assert!((since - now() as f64).abs() < 3600.0);

    let r = f.svc.send(&rest::find_visitor(&f.target(&server, &v1)));
    assert_documented_shape(DOC_FIND, &r.json());
    insta::assert_json_snapshot!("findvisitor_present", r.json(), {
        ".direct" => "[host:port]", ".httpsport" => "[port]"
    });
    assert!(rest::parse_find(r.status, r.body.as_bytes()).unwrap().found);

    let r = f.svc.send(&rest::query(&f.target(&server, &v1)));
    insta::assert_json_snapshot!("query_present", r.json(), { ".since" => "[epoch]" });
    let QueryResult::Present(state) = rest::parse_query(r.status, r.body.as_bytes()).unwrap()
    else {
        panic!("present expected")
    };
    assert!(state.present);
    assert_eq!(state.sockets, 1);
    assert_eq!(state.visibility, Some(Visibility::Visible));
    assert_eq!(state.terms, Some(TermsStatus::Declined));
    assert!(!state.in_session);
    assert_eq!(state.presence.browser(), Some("chrome"));

    let r = f.svc.send(&rest::signal_visitor(
        &f.target(&server, &v1),
        &SignalBody::Signal(json!({"hello": 1})),
    ));
    assert_eq!(r.status, 200);
    insta::assert_json_snapshot!("signalvisitor_delivered", r.json());
    assert_eq!(
        rest::parse_signal(r.status, r.body.as_bytes()).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        visitor.recv_text(),
        r#"{"type":"signal","data":{"hello":1}}"#
    );
    visitor.close();
    let mut held = None;
    for _ in 0..1000 {
        let r = f.svc.send(&rest::signal_visitor(
            &f.target(&server, &v1),
            &SignalBody::Signal(json!({"again": 2})),
        ));
        if r.json() == json!({"held": true}) {
            held = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = held.expect("the signal is held once the socket is gone");
    insta::assert_json_snapshot!("signalvisitor_held", r.json());
    assert_eq!(
        rest::parse_signal(r.status, r.body.as_bytes()).unwrap(),
        Delivery::Held
    );

    // Visitor-side endpoints (no token).
    let r = f
        .svc
        .send(&rest::unique_visitor(&server, demo_group(), None, "6.33.0"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_documented_shape(DOC_UNIQUE, &r.json());
    insta::assert_json_snapshot!("uniquevisitor", r.json(), { ".guesttoken" => "[token]" });
    let unique = rest::parse_unique_visitor(r.status, r.body.as_bytes()).unwrap();
    assert_eq!(
        unique.visitorid.as_str(),
        format!("UNQ-{}", unique.uniqueid.as_str())
    );
    assert_eq!(unique.timeout, 300);

    let r = f
        .svc
        .send(&rest::presence(&server, demo_group(), &v1, "6.33.0"));
    assert_documented_shape(DOC_PRESENCE, &r.json());
    insta::assert_json_snapshot!("presence", r.json(), {
        ".direct" => "[host:port]", ".httpsport" => "[port]"
    });
    let assigned = rest::parse_presence(r.status, r.body.as_bytes()).unwrap();
    assert_eq!(assigned.direct_server, Some(authority.clone()));

    let r = f.svc.send(&rest::get_visitor_settings(
        &server,
        demo_group(),
        "production",
    ));
    assert_documented_shape(DOC_SETTINGS, &r.json());
    insta::assert_json_snapshot!("getvisitorsettings3", r.json(), { ".presenceUrl" => "[host:port]" });
    let settings = rest::parse_visitor_settings(r.status, r.body.as_bytes()).unwrap();
    assert_eq!(settings.presence_url.as_deref(), Some(authority.as_str()));
    assert!(!settings.load_balanced);
}

#[test]
fn authorize_issues_a_bare_string_token_for_a_valid_login_key() {
    let svc = Svc::default();
    let server = svc.server_addr();
    let group = demo_group();
    let user = PartnerUserId::new("agent1").unwrap();
    let api_key = ApiKey::new(DEMO_API_KEY);
    let key = loginkey::generate(group, &user, now() + 600, &api_key, now()).unwrap();
    let params = |login_key: &LoginKey, duration: u32| {
        rest::authorize(&AuthorizeParams {
            web: &server,
            group,
            partner_user: &user,
            login_key,
            duration_minutes: duration,
            site: "production",
            service: "presence",
        })
    };
    let r = svc.send(&params(&key, 120));
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    // A bare JSON string: a JWT with three parts.
    let Value::String(jwt) = r.json() else {
        panic!("a bare string expected: {}", r.body)
    };
    assert_eq!(jwt.split('.').count(), 3);
    insta::assert_json_snapshot!("authorize", r.json(), { "." => "[token]" });
    let parsed = rest::parse_authorize(r.status, r.body.as_bytes()).unwrap();
    assert_eq!(parsed.token.expose_secret(), jwt);
    // The token works on the agent endpoints.
    let visitor = vid("v1");
    let target = RestTarget {
        server: &server,
        group,
        visitor: &visitor,
        version: "6.25.0",
        token: Some(&parsed.token),
    };
    assert_eq!(svc.send(&rest::lookup_visitor(&target)).status, 200);

    // A LoginKey signed with another API key, or for another user.
    let forged =
        loginkey::generate(group, &user, now() + 600, &ApiKey::new("wrong"), now()).unwrap();
    let r = svc.send(&params(&forged, 60));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["err"], json!("authorization"));
    assert!(matches!(
        rest::parse_authorize(r.status, r.body.as_bytes()),
        Err(RestError::Authorization { status: 401, .. })
    ));
    let expired = loginkey::sign(group, &user, now() - 10, &api_key);
    assert_eq!(svc.send(&params(&expired, 60)).status, 401);

    // Durations outside 1–120 minutes are refused (the builder clamps, so write the URL).
    let body = json!({"partnerid": DEMO_GROUP_ID, "partneruserid": "agent1", "loginkey": key.expose_secret()}).to_string();
    for duration in ["0", "121", "x"] {
        let r = svc.request(
            "POST",
            &format!("/services/AuthorizationService.svc/rest/Authorize?groupid=12345&service=presence&duration={duration}&site=production"),
            &[("Content-Type", "application/json")],
            Some(&body),
        );
        assert_eq!(r.status, 400, "duration {duration}");
        assert_eq!(r.json()["err"], json!("badrequest"));
    }
    // partnerid as a string works too; a partnerid that differs from groupid does not.
    let string_partner =
        json!({"partnerid": "12345", "partneruserid": "agent1", "loginkey": key.expose_secret()})
            .to_string();
    let r = svc.request(
        "POST",
        "/services/AuthorizationService.svc/rest/Authorize?groupid=12345&service=presence&duration=5&site=production",
        &[("Content-Type", "application/json")],
        Some(&string_partner),
    );
    assert_eq!(r.status, 200);
    let r = svc.request(
        "POST",
        "/services/AuthorizationService.svc/rest/Authorize?groupid=999&service=presence&duration=5",
        &[("Content-Type", "application/json")],
        Some(&body),
    );
    assert_eq!(r.status, 400);
    insta::assert_json_snapshot!("authorize_bad_request", r.json());
    assert_eq!(
        svc.metric("glance_presence_auth_failures_total{endpoint=\"authorize\"}"),
        6
    );
}

#[test]
fn rest_calls_need_a_valid_token_for_the_group() {
    let other = GroupId::new(777).unwrap();
    let svc = Svc::start(ServiceConfig::builder().group(other, ApiKey::new("other-key")));
    let good = svc.token();
    let expired = svc
        .handle
        .issue_token(
            demo_group(),
            &PartnerUserId::new("a").unwrap(),
            Duration::ZERO,
        )
        .unwrap();
    let other_group = svc
        .handle
        .issue_token(
            other,
            &PartnerUserId::new("a").unwrap(),
            Duration::from_secs(600),
        )
        .unwrap();
    for path in [
        "/lookupvisitor?groupid=12345&visitorid=v1&&ver=6.25.0",
        "/findvisitor?groupid=12345&visitorid=v1&&ver=6.25.0",
        "/query?groupid=12345&visitorid=v1&&ver=6.25.0",
    ] {
        assert_eq!(svc.get(path, Some(&good)).status, 200, "{path}");
        let r = svc.get(path, None);
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.json()["err"], json!("authorization"));
        assert_eq!(svc.get(path, Some("garbage")).status, 401);
        assert_eq!(svc.get(path, Some(expired.expose_secret())).status, 401);
        let r = svc.get(path, Some(other_group.expose_secret()));
        assert_eq!(r.status, 403, "{path}");
        assert!(matches!(
            rest::parse_lookup(r.status, r.body.as_bytes()),
            Err(RestError::Authorization { status: 403, .. })
        ));
    }
    let r = svc.post(
        "/signalvisitor?groupid=12345&visitorid=v1&&ver=6.25.0",
        Some("garbage"),
        r#"{"mtype":"signal","data":{}}"#,
    );
    assert_eq!(r.status, 401);
    insta::assert_json_snapshot!("unauthorized", r.json());
    assert_eq!(
        svc.metric("glance_presence_auth_failures_total{endpoint=\"rest\"}"),
        13
    );
}

#[test]
fn invalid_ids_and_parameters_are_400_with_a_reason() {
    let svc = Svc::default();
    let token = svc.token();
    let r = svc.get(
        "/lookupvisitor?groupid=12345&visitorid=bad%20id&&ver=6.25.0",
        Some(&token),
    );
    assert_eq!(r.status, 400);
    insta::assert_json_snapshot!("bad_visitor_id", r.json());
    for path in [
        "/lookupvisitor?groupid=abc&visitorid=v1",
        "/lookupvisitor?groupid=0&visitorid=v1",
        "/lookupvisitor?visitorid=v1",
        "/lookupvisitor?groupid=12345",
        &format!("/findvisitor?groupid=12345&visitorid={}", "a".repeat(63)),
        "/uniquevisitor?visitorid=undefined",
        "/presence?groupid=12345&visitorid=",
    ] {
        let method = if path.starts_with("/presence") {
            "POST"
        } else {
            "GET"
        };
        let r = svc.request(
            method,
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            Some("{}"),
        );
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.json()["err"], json!("badrequest"));
        assert!(!r.json()["msg"].as_str().unwrap().is_empty());
    }
    // Bad signal bodies.
    for body in [
        "",
        "[]",
        "{\"data\":1}",
        "{\"mtype\":\"invoke\",\"data\":{\"args\":1}}",
        "{\"mtype\":\"blur\"}",
        "not json",
    ] {
        let r = svc.post(
            "/signalvisitor?groupid=12345&visitorid=v1",
            Some(&token),
            body,
        );
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
}

#[test]
fn query_strings_are_read_as_glance_clients_write_them() {
    let svc = Svc::default();
    let token = svc.token();
    let _visitor = svc.visitor("v1");
    // Empty parts, unknown parameters, any order.
    for path in [
        "/findvisitor?groupid=12345&visitorid=v1&&ver=6.25.0",
        "/findvisitor?&&ver=6.3.1&visitorid=v1&site=production&groupid=12345&&",
        "/findvisitor?groupid=12345&visitorid=v1",
    ] {
        let r = svc.get(path, Some(&token));
        assert_eq!(r.json()["visitorfound"], json!(true), "{path}");
    }
    // `visitorid=undefined` on /uniquevisitor asks for a new id; an UNQ- id keeps its code.
    let a = svc
        .get(
            "/uniquevisitor?groupid=12345&visitorid=undefined&&ver=6.33.0",
            None,
        )
        .json();
    let b = svc
        .get(
            "/uniquevisitor?groupid=12345&visitorid=undefined&&ver=6.33.0",
            None,
        )
        .json();
    assert_ne!(a["uniqueid"], b["uniqueid"]);
    let again = svc
        .get(
            &format!(
                "/uniquevisitor?groupid=12345&visitorid={}&&ver=6.33.0",
                a["visitorid"].as_str().unwrap()
            ),
            None,
        )
        .json();
    assert_eq!(again["uniqueid"], a["uniqueid"]);
    // The guest token lets the unique visitor connect.
    let mut ws = svc.ws("/visitorws", None).unwrap();
    ws.send_json(&json!({"type":"connect","groupid":"12345","visitorid":a["visitorid"],"guesttoken":a["guesttoken"],"version":"6.33.0"}));
    assert!(matches!(
        ws.recv(),
        glance_presence_protocol::ServerFrame::Connected { .. }
    ));
}

#[test]
fn visitor_settings_answer_this_server_and_the_load_balanced_flag() {
    let svc = Svc::start(ServiceConfig::builder().load_balanced(true));
    let r = svc.get(
        "/services/authorizationservice/GetVisitorSettings3?groupid=12345&site=production&service=presence",
        None,
    );
    assert_eq!(
        r.json(),
        json!({"presenceUrl": svc.handle.authority(), "isPresenceLoadBalanced": true})
    );
    // A group this service does not serve: presence is off for it.
    let r = svc.get(
        "/services/authorizationservice/GetVisitorSettings3?groupid=999&site=production&service=presence",
        None,
    );
    assert_eq!(
        r.json(),
        json!({"presenceUrl": "", "isPresenceLoadBalanced": true})
    );
    assert_eq!(
        rest::parse_visitor_settings(r.status, r.body.as_bytes())
            .unwrap()
            .presence_url,
        None
    );
}

/// The CORS headers every answer to a caller whose origin is accepted carries.
fn assert_cors_echo(r: &service_support::HttpAnswer, origin: &str) {
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(origin),
        "{r:?}"
    );
    let vary = r.header("vary").unwrap_or_default().to_ascii_lowercase();
    assert!(vary.contains("origin"), "{r:?}");
}

#[test]
fn cors_preflights_and_allowed_agent_origins() {
    let svc = Svc::start(
        ServiceConfig::builder()
            .allowed_origins(["https://console.example.com"])
            .test_controls(AdminToken::new("admin-secret-for-tests").unwrap()),
    );
    let token = svc.token();
    let preflight = |path: &str, origin: &str| {
        svc.request(
            "OPTIONS",
            path,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "GET"),
                (
                    "Access-Control-Request-Headers",
                    "authorization,content-type",
                ),
            ],
            None,
        )
    };
    let r = preflight(
        "/lookupvisitor?groupid=12345&visitorid=v1&&ver=6.25.0",
        "https://console.example.com",
    );
    assert!((200..300).contains(&r.status), "{r:?}");
    assert_cors_echo(&r, "https://console.example.com");
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let methods = r.header("access-control-allow-methods").unwrap();
    for method in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // Another origin: refused on agent endpoints. Its preflight names no allowed origin (the
    // browser stops there)...
    let r = preflight(
        "/lookupvisitor?groupid=12345&visitorid=v1",
        "https://evil.example.com",
    );
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    // ...and its request is refused, with no allowed origin either.
    let r = svc.request(
        "GET",
        "/lookupvisitor?groupid=12345&visitorid=v1",
        &[
            ("Origin", "https://evil.example.com"),
            ("Authorization", &format!("Bearer {token}")),
        ],
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    insta::assert_json_snapshot!("origin_refused", r.json());
    let r = svc.request(
        "GET",
        "/lookupvisitor?groupid=12345&visitorid=v1",
        &[
            ("Origin", "https://console.example.com"),
            ("Authorization", &format!("Bearer {token}")),
        ],
        None,
    );
    assert_eq!(r.status, 200);
    assert_cors_echo(&r, "https://console.example.com");
    // An accepted origin's error answers carry the headers too: a refused token, and a
    // failure injected by the test controls.
    let r = svc.request(
        "GET",
        "/lookupvisitor?groupid=12345&visitorid=v1",
        &[
            ("Origin", "https://console.example.com"),
            ("Authorization", "Bearer wrong"),
        ],
        None,
    );
    assert_eq!(r.status, 401);
    assert_cors_echo(&r, "https://console.example.com");
    let injected = svc.request(
        "POST",
        "/control/fail",
        &[("Authorization", "Bearer admin-secret-for-tests")],
        Some(r#"{"count":1,"status":500,"path":"/lookupvisitor"}"#),
    );
    assert_eq!(injected.status, 200, "{injected:?}");
    let r = svc.request(
        "GET",
        "/lookupvisitor?groupid=12345&visitorid=v1",
        &[
            ("Origin", "https://console.example.com"),
            ("Authorization", &format!("Bearer {token}")),
        ],
        None,
    );
    assert_eq!(r.status, 500);
    assert_cors_echo(&r, "https://console.example.com");
    // ...and on the agent socket.
    match svc.ws("/agent", Some("https://evil.example.com")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("the agent socket must be refused"),
    }
    assert!(svc
        .ws("/agent", Some("https://console.example.com"))
        .is_ok());
    // Visitor endpoints accept every origin.
    let r = preflight(
        "/uniquevisitor?groupid=12345&visitorid=undefined",
        "https://shop.example",
    );
    assert!((200..300).contains(&r.status), "{r:?}");
    assert_cors_echo(&r, "https://shop.example");
    let r = svc.request(
        "GET",
        "/uniquevisitor?groupid=12345&visitorid=undefined",
        &[("Origin", "https://shop.example")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_cors_echo(&r, "https://shop.example");
    assert!(svc.ws("/visitorws", Some("https://shop.example")).is_ok());
    // Refused: the GET and the agent socket (a preflight is answered before the core).
    assert_eq!(svc.metric("glance_presence_origin_rejections_total"), 2);
}

#[test]
fn agent_sockets_need_a_valid_token_for_the_group() {
    let other = GroupId::new(777).unwrap();
    let svc = Svc::start(ServiceConfig::builder().group(other, ApiKey::new("other-key")));
    let user = PartnerUserId::new("agent1").unwrap();
    let expired = svc
        .handle
        .issue_token(demo_group(), &user, Duration::ZERO)
        .unwrap();
    let other_group = svc
        .handle
        .issue_token(other, &user, Duration::from_secs(600))
        .unwrap();
    let cases = [
        json!({"type":"connect","authorization":"garbage","groupid":"12345","visitorid":"v1","version":"6.25.0"}),
        json!({"type":"connect","authorization":expired.expose_secret(),"groupid":"12345","visitorid":"v1","version":"6.25.0"}),
        json!({"type":"connect","authorization":other_group.expose_secret(),"groupid":"12345","visitorid":"v1","version":"6.25.0"}),
        json!({"type":"connect","groupid":"12345","visitorid":"v1","version":"6.25.0"}),
    ];
    for case in &cases {
        let mut ws = svc.ws("/agent", None).unwrap();
        ws.send_json(case);
        assert_eq!(
            ws.recv_text(),
            r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#
        );
        assert_eq!(
            ws.expect_end(),
            service_support::Ending::Closed(Some((1008, "authorization".into())))
        );
    }
    assert_eq!(
        svc.metric("glance_presence_auth_failures_total{endpoint=\"socket\"}"),
        cases.len() as u64
    );
    // The group as a number works as well as a string.
    let mut ws = svc.ws("/agent", None).unwrap();
    ws.send_json(&json!({"type":"connect","authorization":svc.token(),"groupid":12345,"visitorid":"v1","version":"6.3.1"}));
    assert_eq!(ws.recv_text(), r#"{"type":"connected","keepalive":30}"#);
}
