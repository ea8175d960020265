//! Snapshot of every REST request the crate builds: request line, headers (token redacted),
//! body. Checked line by line against Glance's clients.

use glance_presence_protocol::rest::{
    authorize, find_visitor, get_visitor_settings, lookup_visitor, presence, query, signal_visitor,
    unique_visitor, AuthorizeParams, HttpRequest, Method, RestTarget, SignalBody,
};
use glance_presence_protocol::{
    AuthToken, GroupId, InvokeRequest, LoginKey, PartnerUserId, ServerAddr, UniqueId, VisitorId,
};
use serde_json::json;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudDEifQ.c2lnbmF0dXJl";
const LOGIN_KEY: &str = "$1$1700000000$Mkg7OYSAvgvLr3mFNThPJY-lq8wU4z3UH2RhaT8Cm5s";

fn all_requests() -> Vec<(&'static str, HttpRequest)> {
    let lb = ServerAddr::parse("presence.glance.net").unwrap();
    let direct = ServerAddr::parse("pr0016.glance.net:443").unwrap();
    let web = ServerAddr::parse("www.glance.net").unwrap();
    let group = GroupId::new(12345).unwrap();
    let visitor = VisitorId::new("v1").unwrap();
    let unique = VisitorId::from_unique(&UniqueId::new("123456789").unwrap());
    let token = AuthToken::new(TOKEN);
    let login_key = LoginKey::new(LOGIN_KEY);
    let user = PartnerUserId::new("agent1").unwrap();
    let target = |server| RestTarget {
        server,
        group,
        visitor: &visitor,
        version: "6.25.0",
        token: Some(&token),
    };
    vec![
        ("lookupvisitor", lookup_visitor(&target(&lb))),
        ("findvisitor", find_visitor(&target(&lb))),
        ("query", query(&target(&lb))),
        (
            "signalvisitor (signal)",
            signal_visitor(
                &target(&direct),
                &SignalBody::Signal(json!({"text": "hello", "n": 1})),
            ),
        ),
        (
            "signalvisitor (invoke)",
            signal_visitor(
                &target(&direct),
                &SignalBody::Invoke(InvokeRequest {
                    func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
                    args: json!({"sessionKey": "1234"}),
                }),
            ),
        ),
        (
            "lookupvisitor (unique visitor)",
            lookup_visitor(&RestTarget {
                visitor: &unique,
                ..target(&lb)
            }),
        ),
        (
            "uniquevisitor (no visitor id yet)",
            unique_visitor(&lb, group, None, "6.33.0"),
        ),
        (
            "presence (visitor)",
            presence(&lb, group, &visitor, "6.33.0"),
        ),
        (
            "GetVisitorSettings3",
            get_visitor_settings(&web, group, "production"),
        ),
        (
            "Authorize",
            authorize(&AuthorizeParams {
                web: &web,
                group,
                partner_user: &user,
                login_key: &login_key,
                duration_minutes: 120,
                site: "production",
                service: "presence",
            }),
        ),
    ]
}

#[test]
fn every_rest_request() {
    let requests = all_requests();
    let mut text = String::new();
    for (name, request) in &requests {
        let redacted = request.redacted();
        assert!(!redacted.contains(TOKEN), "{name}");
        assert!(!redacted.contains("Mkg7"), "{name}");
        assert!(!format!("{request:?}").contains(TOKEN), "{name}");
        assert!(!format!("{request:?}").contains("Mkg7"), "{name}");
        text.push_str(&format!("### {name}\n{redacted}\n\n"));
    }
    insta::assert_snapshot!("rest_requests", text);
}

#[test]
fn wire_rules_hold_for_every_request() {
    for (name, request) in all_requests() {
        // GET requests have no body and no Content-Type; POSTs have both.
        match request.method {
            Method::Get => {
                assert!(request.body.is_none(), "{name}");
                assert!(request.header("Content-Type").is_none(), "{name}");
            }
            Method::Post => {
                let body = request.body.as_deref().unwrap();
                serde_json::from_str::<serde_json::Value>(body).unwrap();
                assert!(request.header("Content-Type").is_some(), "{name}");
            }
        }
        // Presence service calls use Glance's query string with the doubled `&`.
        if request.url.starts_with("https://presence.glance.net/")
            || request.url.starts_with("https://pr0016.glance.net:443/")
        {
            assert!(
                request.url.contains("?groupid=12345&visitorid=")
                    && (request.url.ends_with("&&ver=6.25.0")
                        || request.url.ends_with("&&ver=6.33.0")),
                "{name}: {}",
                request.url
            );
        }
        // Only the agent's presence calls carry the token, and they carry it exactly.
        let agent_call = ["lookupvisitor", "findvisitor", "query", "signalvisitor"]
            .iter()
            .any(|e| name.starts_with(e));
        assert_eq!(
            request.header("Authorization"),
            agent_call.then(|| format!("Bearer {TOKEN}")).as_deref(),
            "{name}"
        );
    }
}
