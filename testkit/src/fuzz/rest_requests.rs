//! REST request checks, between what the client library sends and what the service reads:
//!
//! * query strings (`QueryParams`): never panic; Glance's `&&` and empty parts change nothing;
//!   appending parameters never changes a value already there (the first occurrence wins);
//!   percent-encoded names and values read back exactly; and the query of every request the
//!   client builds (`lookupvisitor`, `findvisitor`, `query`, `signalvisitor`, `uniquevisitor`,
//!   `presence`, `GetVisitorSettings3`, `Authorize`) reads back as the group, visitor id,
//!   version, site, service and duration it was built from;
//! * bearer tokens (`TokenKeys`): arbitrary text never verifies; an issued token verifies for
//!   its group until its expiry, never for another group, never as a guest token, and never
//!   after any change to its text; the client's `Authorization` header carries it as
//!   `Bearer <token>`;
//! * `Authorize` bodies: the client's body holds the partner id, partner user id and LoginKey
//!   it was built from, and the service's reading of it (the partner id as text or number, the
//!   partner user id, the LoginKey verified against the API key) accepts it; arbitrary bodies
//!   are read without a panic;
//! * signal bodies: the client's `signalvisitor` body holds its `mtype` and `data`; read by the
//!   service's rule (`mtype` or `type`, `data`, `invoke` data as `{func, args}`), the frame the
//!   service would send the visitor encodes and decodes back to itself.
//!
//! * the service's whole HTTP face (`ServiceCore::handle_http`): every request the client
//!   builds is answered 200 (404 for a signal to an absent visitor) with a body the client's
//!   parser reads; arbitrary requests (method, path, query, `Authorization`, `Origin`, body)
//!   never panic and get a status from 100 to 599 and, when JSON, a body that parses.
//!
//! The reading of `Authorize` bodies' fields is private to the service; its rule is written
//! out here and applied to the public pieces it uses.

use glance_presence_protocol::loginkey;
use glance_presence_protocol::rest::{
    self, AuthorizeParams, RestTarget, Scheme, ServerAddr, SignalBody,
};
use glance_presence_protocol::wire::{InvokeRequest, ServerFrame, DEFAULT_MAX_FRAME_BYTES};
use glance_presence_protocol::{ApiKey, AuthToken, GroupId, LoginKey, PartnerUserId, VisitorId};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::core::rest::agent::{bearer_token, signal_frame};
use glance_presence_service::core::rest::{HttpAnswer, HttpMethod, RestRequest};
use glance_presence_service::core::{CoreSettings, ServiceCore};
use glance_presence_service::query::QueryParams;
use glance_presence_service::ServiceConfig;
use serde_json::Value;

use super::input::Input;

const NAMES: &[&str] = &[
    "groupid",
    "visitorid",
    "ver",
    "duration",
    "service",
    "site",
    "",
    "a b",
    "%",
    "=",
];

/// Percent-encodes everything but the unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query of a URL (after the first `?`).
fn query_of(url: &str) -> Option<&str> {
    url.split_once('?').map(|(_, q)| q)
}

/// Which cases an input reached: bit 0 query round trip, bit 1 client URLs, bit 2 token
/// verified, bit 3 Authorize body, bit 4 signal frame, bit 5 invoke, bit 6 refused signal body,
/// bit 7 a client request answered by the service, bit 8 an arbitrary request answered.
pub fn check(data: &[u8]) -> u32 {
    let mut u = Input::new(data);
    // One part per input (the first byte picks it), so the cheap parsers run often.
    match u.below(6) {
        0 => query_strings(&mut u),
        1 => client_urls(&mut u),
        2 => tokens(&mut u),
        3 => authorize_bodies(&mut u),
        4 => signal_bodies(&mut u),
        _ => http(&mut u),
    }
}

fn query_strings(u: &mut Input<'_>) -> u32 {
    // Raw text, often built from names, values, `&`, `&&`, `=`, `+` and escapes.
    let raw = if u.bool() {
        u.text(200)
    } else {
        let mut s = String::new();
        for _ in 0..u.below(6) {
            s.push_str(&u.word(NAMES, 10));
            if u.below(4) != 0 {
                s.push('=');
            }
            match u.below(4) {
                0 => s.push_str(&format!("%{:02x}", u.u8())),
                1 => s.push_str(
                    u.pick(&["%", "%g1", "%4", "+", "%2B", "%26", "%3D", "%C3%A9", "%FF"]),
                ),
                _ => {}
            }
            s.push_str(&u.text(12));
            s.push_str(u.pick(&["&", "&&", "&&&", ""]));
        }
        s
    };
    let q = QueryParams::parse(Some(&raw));
    assert_eq!(QueryParams::parse(None), QueryParams::default());
    // Empty parts are ignored, wherever they are.
    let doubled = raw.replace('&', "&&");
    assert_eq!(
        QueryParams::parse(Some(&doubled)),
        q,
        "{raw:?} vs {doubled:?}"
    );
    assert_eq!(QueryParams::parse(Some(&format!("&{raw}&"))), q, "{raw:?}");
    // Appending never changes a value already there.
    let extra = u.text(40);
    let longer = QueryParams::parse(Some(&format!("{raw}&{extra}")));
    for name in NAMES {
        if let Some(value) = q.get(name) {
            assert_eq!(longer.get(name), Some(value), "{raw:?} + {extra:?}: {name}");
        }
    }
    // Encoded names and values read back exactly; the first occurrence wins.
    let mut pairs = Vec::new();
    for _ in 0..u.below(5) + 1 {
        pairs.push((u.word(NAMES, 12), u.text(40)));
    }
    let text = pairs
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join(u.pick(&["&", "&&"]));
    let read = QueryParams::parse(Some(&text));
    for (name, _) in &pairs {
        let first = pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        if !name.is_empty() {
            assert_eq!(read.get(name), first, "{text:?}: {name:?}");
        }
    }
    1
}

fn visitor_id(u: &mut Input<'_>) -> VisitorId {
    const ALPHABET: &[u8] = b"abcXYZ0189_~-";
    let text = if u.below(4) == 0 {
        format!("UNQ-{}", 100_000_000 + u.u32() % 900_000_000)
    } else {
        let n = u.below(62) + 1;
        (0..n).map(|_| char::from(u.pick(ALPHABET))).collect()
    };
    VisitorId::new(text).unwrap_or_else(|_| VisitorId::new("v1").expect("valid"))
}

fn group(u: &mut Input<'_>) -> GroupId {
    GroupId::new(1 + (u.u64() >> u.below(64)) % u64::MAX).expect("non-zero")
}

fn client_urls(u: &mut Input<'_>) -> u32 {
    let server = ServerAddr::new(Scheme::Https, "presence.example.com").expect("valid");
    let group = group(u);
    let visitor = visitor_id(u);
    let version = u.word(&["6.25.0", ""], 24);
    let token = AuthToken::new(u.word(&["tok"], 60));
    let target = RestTarget {
        server: &server,
        group,
        visitor: &visitor,
        version: &version,
        token: Some(&token),
    };
    let signal = SignalBody::Signal(Value::Null);
    let requests = [
        rest::lookup_visitor(&target),
        rest::find_visitor(&target),
        rest::query(&target),
        rest::signal_visitor(&target, &signal),
        rest::presence(&server, group, &visitor, &version),
        rest::unique_visitor(&server, group, Some(&visitor), &version),
    ];
    for request in &requests {
        let q = QueryParams::parse(query_of(&request.url));
        assert_eq!(
            q.get("groupid").map(str::parse::<GroupId>),
            Some(Ok(group)),
            "{}",
            request.url
        );
        assert_eq!(
            q.get("visitorid"),
            Some(visitor.as_str()),
            "{}",
            request.url
        );
        assert_eq!(q.get("ver"), Some(version.as_str()), "{}", request.url);
    }
    for request in &requests[..4] {
        assert_eq!(
            request.header("Authorization"),
            Some(format!("Bearer {}", token.expose_secret()).as_str())
        );
    }
    let unique = rest::unique_visitor(&server, group, None, &version);
    let q = QueryParams::parse(query_of(&unique.url));
    assert_eq!(q.get("visitorid"), Some("undefined"));
    assert_eq!(q.get("ver"), Some(version.as_str()));
    let site = u.word(&["production", "staging"], 20);
    let settings = rest::get_visitor_settings(&server, group, &site);
    let q = QueryParams::parse(query_of(&settings.url));
    assert_eq!(q.get("site"), Some(site.as_str()), "{}", settings.url);
    assert_eq!(q.get("groupid"), Some(group.to_string().as_str()));
    2
}

fn tokens(u: &mut Input<'_>) -> u32 {
    let mut reached = 0;
    let secret = u.blob(40).to_vec();
    let keys = TokenKeys::new(&secret);
    let group = group(u);
    let now = u.u64() >> u.below(64);
    // Arbitrary bearer text never verifies; the header reader takes `Bearer ` or `bearer `
    // and trims.
    let raw = u.text(300);
    let _ = bearer_token(Some(&raw));
    assert_eq!(
        bearer_token(Some(&format!("Bearer {raw}"))),
        Some(raw.trim())
    );
    assert_eq!(
        bearer_token(Some(&format!("bearer {raw}"))),
        Some(raw.trim())
    );
    assert_eq!(bearer_token(None), None);
    assert!(
        keys.verify_agent(&raw, None, now).is_err(),
        "{raw:?} verified"
    );
    assert!(keys.verify_agent(raw.trim(), Some(group), now).is_err());
    let user_text = u.word(&["agent1"], 30);
    let Ok(user) = PartnerUserId::new(user_text) else {
        return reached;
    };
    let life = u64::from(u.u16());
    let Ok((token, exp)) = keys.issue_agent(group, &user, now, life) else {
        return reached;
    };
    assert_eq!(exp, now.saturating_add(life));
    let text = token.expose_secret().to_owned();
    let at = now.saturating_add(u64::from(u.u16()) % (life + 2));
    match keys.verify_agent(&text, Some(group), at) {
        Ok(claims) => {
            reached |= 4;
            assert!(at < exp, "verified at {at}, expiry {exp}");
            assert_eq!(claims.group, group.get());
            assert_eq!(claims.partneruserid, user.as_str());
            assert_eq!(claims.exp, exp);
        }
        Err(e) => assert!(at >= exp, "refused at {at} before its expiry {exp}: {e:?}"),
    }
    if at < exp {
        let other = GroupId::new(group.get() % u64::MAX + 1).expect("non-zero");
        if other != group {
            assert!(keys.verify_agent(&text, Some(other), at).is_err());
        }
        let visitor = VisitorId::new("v1").expect("valid");
        assert!(keys.verify_guest(&text, group, &visitor, at).is_err());
        let mut other_secret = secret.clone();
        other_secret.push(1);
        assert!(TokenKeys::new(&other_secret)
            .verify_agent(&text, Some(group), at)
            .is_err());
        // Any change to the text is refused (one change per input: verifying is the slow part).
        {
            let mut bytes = text.clone().into_bytes();
            let i = u.below(bytes.len() + 1);
            match u.below(3) {
                0 if i < bytes.len() => bytes[i] = u.u8(),
                1 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, u.pick(b"A=.-_ +/0")),
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            if mutated != text {
                assert!(
                    keys.verify_agent(&mutated, Some(group), at).is_err(),
                    "{mutated:?}, a change of {text:?}, verified"
                );
            }
        }
    }
    reached
}

/// The service's reading of a partner id or partner user id (`Authorize` bodies): a string, or
/// a number as text.
fn text_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn authorize_bodies(u: &mut Input<'_>) -> u32 {
    let web = ServerAddr::new(Scheme::Http, "127.0.0.1:8081").expect("valid");
    let group = group(u);
    let Ok(user) = PartnerUserId::new(u.word(&["agent1", "UserId"], 40)) else {
        return 0;
    };
    let api_key_text = u.word(&["secret"], 30);
    if api_key_text.is_empty() {
        return 0;
    }
    let api_key = ApiKey::new(api_key_text);
    let now = 1_000_000 + (u.u64() >> 20);
    let key = loginkey::generate(group, &user, now + 60, &api_key, now).expect("in the window");
    let site = u.word(&["production", "staging"], 20);
    let service = u.word(&["presence"], 20);
    let duration = u.u32();
    let request = rest::authorize(&AuthorizeParams {
        web: &web,
        group,
        partner_user: &user,
        login_key: &key,
        duration_minutes: duration,
        site: &site,
        service: &service,
    });
    let q = QueryParams::parse(query_of(&request.url));
    assert_eq!(q.get("groupid"), Some(group.to_string().as_str()));
    assert_eq!(q.get("service"), Some(service.as_str()), "{}", request.url);
    assert_eq!(q.get("site"), Some(site.as_str()), "{}", request.url);
    assert_eq!(
        q.get("duration").map(str::parse::<u32>),
        Some(Ok(duration.clamp(1, 120)))
    );
    let body: Value =
        serde_json::from_str(request.body.as_deref().expect("a body")).expect("JSON body");
    let partner = text_or_number(body.get("partnerid")).map(|p| p.parse::<GroupId>());
    assert_eq!(partner, Some(Ok(group)), "{body}");
    let body_user = text_or_number(body.get("partneruserid")).map(PartnerUserId::new);
    assert_eq!(body_user, Some(Ok(user.clone())));
    let Some(Value::String(body_key)) = body.get("loginkey") else {
        panic!("no loginkey in {body}");
    };
    let body_key = LoginKey::new(body_key.clone());
    assert_eq!(
        loginkey::verify(&body_key, group, &user, &api_key, now),
        Ok(now + 60)
    );

    // An arbitrary body, read the same way, never panics.
    let arbitrary = if u.bool() {
        u.json(3)
    } else {
        serde_json::from_slice(u.blob(200)).unwrap_or(Value::Null)
    };
    if let Value::Object(map) = &arbitrary {
        let partner = text_or_number(map.get("partnerid")).map(|p| p.parse::<GroupId>());
        let user = text_or_number(map.get("partneruserid")).map(PartnerUserId::new);
        if let (Some(Ok(g)), Some(Ok(usr)), Some(Value::String(k))) =
            (partner, user, map.get("loginkey"))
        {
            let _ = loginkey::verify(&LoginKey::new(k.clone()), g, &usr, &api_key, now);
        }
    }
    8
}

/// The frame the service sends the visitor for a `signalvisitor` body, or `None` when the
/// service answers 400.
fn service_signal_frame(body: Value) -> Option<ServerFrame> {
    signal_frame(body).ok()
}

/// The visitor reads back exactly the frame the service sends.
fn visitor_reads_back(frame: &ServerFrame) {
    let text = frame.encode();
    let again = ServerFrame::decode(&text, usize::MAX);
    assert_eq!(again.as_ref(), Ok(frame), "sent as {text}");
    if text.len() <= DEFAULT_MAX_FRAME_BYTES {
        assert!(ServerFrame::decode(&text, DEFAULT_MAX_FRAME_BYTES).is_ok());
    }
}

fn signal_bodies(u: &mut Input<'_>) -> u32 {
    let mut reached = 0;
    let server = ServerAddr::new(Scheme::Https, "presence.example.com").expect("valid");
    let visitor = VisitorId::new("v1").expect("valid");
    let target = RestTarget {
        server: &server,
        group: GroupId::new(12345).expect("valid"),
        visitor: &visitor,
        version: "6.25.0",
        token: None,
    };
    let body = if u.bool() {
        SignalBody::Signal(u.json(3))
    } else {
        SignalBody::Invoke(InvokeRequest {
            func: u.word(&["GLANCE.Cobrowse.VisitorUI.showTerms", "alert"], 40),
            args: u.json(2),
        })
    };
    let request = rest::signal_visitor(&target, &body);
    let sent: Value =
        serde_json::from_str(request.body.as_deref().expect("a body")).expect("JSON body");
    assert_eq!(sent, body.to_json());
    assert_eq!(sent.get("mtype"), Some(&Value::from(body.mtype())));
    match (&body, service_signal_frame(sent.clone())) {
        (SignalBody::Signal(data), Some(ServerFrame::Signal(got))) => {
            reached |= 16;
            assert_eq!(&got, data);
            visitor_reads_back(&ServerFrame::Signal(got));
        }
        (SignalBody::Invoke(invoke), Some(ServerFrame::Invoke(got))) => {
            reached |= 32;
            assert_eq!(&got, invoke);
            visitor_reads_back(&ServerFrame::Invoke(got));
        }
        (body, frame) => panic!("the service reads {sent} ({body:?}) as {frame:?}"),
    }
    // Arbitrary bodies: whatever the service accepts, the visitor reads back.
    let arbitrary = match u.below(3) {
        0 => u.json(3),
        1 => serde_json::from_slice(u.blob(300)).unwrap_or(Value::Null),
        _ => {
            let mut map = serde_json::Map::new();
            let key = u.pick(&["mtype", "type"]).to_owned();
            map.insert(
                key,
                Value::String(u.word(
                    &[
                        "signal", "invoke", "custom", "presence", "redirect", "k", "connect",
                    ],
                    20,
                )),
            );
            if u.bool() {
                map.insert("data".to_owned(), u.json(3));
            }
            Value::Object(map)
        }
    };
    match service_signal_frame(arbitrary) {
        Some(frame) => visitor_reads_back(&frame),
        None => reached |= 64,
    }
    reached
}

const GROUP: u64 = 12345;
const PATHS: &[&str] = &[
    "/lookupvisitor",
    "/findvisitor",
    "/query",
    "/signalvisitor",
    "/uniquevisitor",
    "/presence",
    "/services/AuthorizationService.svc/rest/Authorize",
    "/services/authorizationservice/GetVisitorSettings3",
    "/metrics",
    "/agent",
    "/visitorws",
    "/",
];

fn http(u: &mut Input<'_>) -> u32 {
    let mut reached = 0;
    let config = ServiceConfig::builder()
        .group(GroupId::new(GROUP).expect("valid"), ApiKey::new("api-key"))
        .build()
        .expect("valid configuration");
    let settings = CoreSettings::from_config(&config, 7);
    let keys = TokenKeys::new(b"rest-secret");
    let now = std::time::Instant::now();
    let unix = std::time::Duration::from_secs(1_700_000_000);
    let mut core = ServiceCore::new(settings, keys.clone(), now, unix.as_secs_f64());
    let group = GroupId::new(GROUP).expect("valid");
    let user = PartnerUserId::new("agent1").expect("valid");
    let (token, _) = keys
        .issue_agent(group, &user, unix.as_secs(), 3600)
        .expect("issued");

    // The client's requests are answered, and the client reads the answers.
    let server = ServerAddr::new(Scheme::Http, "127.0.0.1:8080").expect("valid");
    let visitor = visitor_id(u);
    let target = RestTarget {
        server: &server,
        group,
        visitor: &visitor,
        version: "6.25.0",
        token: Some(&token),
    };
    let body = SignalBody::Signal(u.json(2));
    let pick = u.below(4);
    let request = match pick {
        0 => rest::lookup_visitor(&target),
        1 => rest::find_visitor(&target),
        2 => rest::query(&target),
        _ => rest::signal_visitor(&target, &body),
    };
    let path_and_query = request
        .url
        .strip_prefix(&server.http_base())
        .expect("the server's URL");
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let answer = core.handle_http(
        now,
        unix,
        &RestRequest {
            method: if pick == 3 {
                HttpMethod::Post
            } else {
                HttpMethod::Get
            },
            path,
            query,
            authorization: request.header("Authorization"),
            origin: None,
            body: Some(request.body.as_deref().unwrap_or("").as_bytes()),
        },
    );
    let HttpAnswer::Respond(response) = answer else {
        panic!("{} answered with an upgrade", request.url);
    };
    let b = response.body.as_bytes();
    let status = response.status;
    match pick {
        0 => assert!(
            rest::parse_lookup(status, b).is_ok(),
            "{status} {}",
            response.body
        ),
        1 => assert!(
            rest::parse_find(status, b).is_ok(),
            "{status} {}",
            response.body
        ),
        2 => assert!(
            rest::parse_query(status, b).is_ok(),
            "{status} {}",
            response.body
        ),
        _ => assert!(
            status == 404 || rest::parse_signal(status, b).is_ok(),
            "{status} {}",
            response.body
        ),
    }
    while core.poll_output().is_some() {}
    reached |= 128;

    // Arbitrary requests.
    let method = u.pick(&[
        HttpMethod::Get,
        HttpMethod::Post,
        HttpMethod::Options,
        HttpMethod::Other,
    ]);
    let path = if u.below(8) == 0 {
        u.text(40)
    } else {
        u.pick(PATHS).to_owned()
    };
    let query = u.bool().then(|| {
        if u.bool() {
            format!(
                "groupid={GROUP}&visitorid={}&&ver=1.0.0",
                u.word(&["v1"], 20)
            )
        } else {
            u.text(100)
        }
    });
    let authorization = match u.below(4) {
        0 => None,
        1 => Some(format!("Bearer {}", token.expose_secret())),
        _ => Some(u.text(60)),
    };
    let origin = u
        .bool()
        .then(|| u.word(&["https://example.com", "null"], 30));
    let body: Option<Vec<u8>> = match u.below(4) {
        0 => None,
        1 => Some(u.json(3).to_string().into_bytes()),
        _ => Some(u.blob(600).to_vec()),
    };
    let answer = core.handle_http(
        now,
        unix,
        &RestRequest {
            method,
            path: &path,
            query: query.as_deref(),
            authorization: authorization.as_deref(),
            origin: origin.as_deref(),
            body: body.as_deref(),
        },
    );
    if let HttpAnswer::Respond(response) = answer {
        assert!(
            (100..600).contains(&response.status),
            "status {}",
            response.status
        );
        if response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("application/json"))
        {
            assert!(
                serde_json::from_str::<Value>(&response.body).is_ok(),
                "not JSON: {}",
                response.body
            );
        }
        reached |= 256;
    }
    while core.poll_output().is_some() {}
    reached
}
