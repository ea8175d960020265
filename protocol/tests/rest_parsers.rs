//! Response parsers against the documented examples, the status mapping and malformed bodies.

use glance_presence_protocol::rest::{
    check_response, parse_authorize, parse_find, parse_lookup, parse_presence, parse_query,
    parse_signal, parse_unique_visitor, parse_visitor_settings, Delivery, FindResult, LookupResult,
    PresenceAssignment, QueryResult, RestError, Scheme, VisitorRecord, VisitorSettings,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_UNIQUE_TIMEOUT_SECS,
};
use glance_presence_protocol::{TermsStatus, Visibility};
use serde_json::json;

/// Runs every parser on one response; returns the error of each (or `None` on success).
fn all_errors(status: u16, body: &[u8]) -> Vec<(&'static str, Option<RestError>)> {
    vec![
        ("lookup", parse_lookup(status, body).err()),
        ("find", parse_find(status, body).err()),
        ("signal", parse_signal(status, body).err()),
        ("query", parse_query(status, body).err()),
        ("unique", parse_unique_visitor(status, body).err()),
        ("presence", parse_presence(status, body).err()),
        ("settings", parse_visitor_settings(status, body).err()),
        ("authorize", parse_authorize(status, body).err()),
    ]
}

fn error_detail(result: Option<RestError>) -> String {
    match result {
        Some(RestError::Error { detail, .. }) => detail,
        other => panic!("expected RestError::Error, got {other:?}"),
    }
}

// --- lookupvisitor ------------------------------------------------------------------------

#[test]
fn lookup_documented_example() {
    let body = br#"{"direct":"pr0016.glance.net:443","visitorpresent":"1583953702.0","timestamp":"1583953702.0","visitorid":"example","groupid":"12345","ds":"pr0016.glance.net/0","directserver":"pr0016.glance.net","tlsport":5501,"httpsport":443}"#;
    let LookupResult::Present(record) = parse_lookup(200, body).unwrap() else {
        panic!("absent")
    };
    assert_eq!(
        record,
        VisitorRecord {
            direct: Some("pr0016.glance.net:443".into()),
            directserver: Some("pr0016.glance.net".into()),
            ds: Some("pr0016.glance.net/0".into()),
            visitorpresent: Some(1583953702.0),
            timestamp: Some(1583953702.0),
            visitorid: Some("example".into()),
            groupid: Some("12345".into()),
            tlsport: Some(5501),
            httpsport: Some(443),
            presence: Default::default(),
        }
    );
    assert_eq!(
        record.direct_server().as_deref(),
        Some("pr0016.glance.net:443")
    );
    // The record writes back the same JSON.
    assert_eq!(
        record.to_json(),
        serde_json::from_slice::<serde_json::Value>(body).unwrap()
    );
}

#[test]
fn lookup_absent_is_an_empty_object() {
    assert_eq!(parse_lookup(200, b"{}").unwrap(), LookupResult::Absent);
    assert_eq!(parse_lookup(200, b" { } \n").unwrap(), LookupResult::Absent);
}

#[test]
fn lookup_keeps_presence_fields_in_order_and_parses_python_dicts() {
    let body = br#"{"direct":"127.0.0.1:4000","visitorpresent":"1583953702.5","timestamp":1583953703,"visitorid":"v1","groupid":12345,"ds":"127.0.0.1/0","directserver":"127.0.0.1","tlsport":0,"httpsport":"4000","url":"https://shop.example/cart","browser":"chrome","browserver":120,"platform":"win","cart":"{'items': 2, 'total': '9.90'}","note":"{'broken': True}","vip":true}"#;
    let LookupResult::Present(record) = parse_lookup(200, body).unwrap() else {
        panic!("absent")
    };
    assert_eq!(record.visitorpresent, Some(1583953702.5));
    assert_eq!(record.timestamp, Some(1583953703.0), "numbers are accepted");
    assert_eq!(
        record.groupid.as_deref(),
        Some("12345"),
        "a number becomes text"
    );
    assert_eq!(record.httpsport, Some(4000), "numeric strings are accepted");
    assert_eq!(record.tlsport, Some(0));
    assert_eq!(record.direct_server().as_deref(), Some("127.0.0.1:4000"));
    let presence = &record.presence;
    assert_eq!(presence.url(), Some("https://shop.example/cart"));
    assert_eq!(presence.browser(), Some("chrome"));
    assert_eq!(presence.platform(), Some("win"));
    assert_eq!(presence.browserver(), Some(&json!(120)));
    assert_eq!(
        presence.get("cart"),
        Some(&json!({"items": 2, "total": "9.90"}))
    );
    assert_eq!(presence.get("note"), Some(&json!("{'broken': True}")));
    let keys: Vec<&str> = presence.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "url",
            "browser",
            "browserver",
            "platform",
            "cart",
            "note",
            "vip"
        ]
    );
    assert!(presence.get("direct").is_none() && presence.get("groupid").is_none());
}

#[test]
fn lookup_nulls_and_empty_strings_count_as_absent() {
    let LookupResult::Present(record) = parse_lookup(
        200,
        br#"{"visitorid":"v1","direct":null,"timestamp":"","httpsport":null,"tlsport":""}"#,
    )
    .unwrap() else {
        panic!("absent")
    };
    assert_eq!(record.direct, None);
    assert_eq!(record.timestamp, None);
    assert_eq!(record.httpsport, None);
    assert_eq!(record.tlsport, None);
    assert_eq!(record.direct_server(), None);
}

#[test]
fn lookup_wrong_types_name_the_field() {
    for (body, field) in [
        (r#"{"direct":5}"#, "`direct`"),
        (r#"{"directserver":["a"]}"#, "`directserver`"),
        (r#"{"ds":{}}"#, "`ds`"),
        (r#"{"timestamp":"yesterday"}"#, "`timestamp`"),
        (r#"{"timestamp":"NaN"}"#, "`timestamp`"),
        (r#"{"timestamp":"inf"}"#, "`timestamp`"),
        (r#"{"visitorpresent":true}"#, "`visitorpresent`"),
        (r#"{"groupid":[12345]}"#, "`groupid`"),
        (r#"{"visitorid":{}}"#, "`visitorid`"),
        (r#"{"httpsport":70000}"#, "`httpsport`"),
        (r#"{"httpsport":-1}"#, "`httpsport`"),
        (r#"{"httpsport":443.5}"#, "`httpsport`"),
        (r#"{"tlsport":"55x"}"#, "`tlsport`"),
        (r#"{"tlsport":false}"#, "`tlsport`"),
    ] {
        let detail = error_detail(parse_lookup(200, body.as_bytes()).err());
        assert!(detail.contains(field), "{body}: {detail}");
    }
    for body in ["[]", "\"x\"", "12", "null", "true"] {
        let detail = error_detail(parse_lookup(200, body.as_bytes()).err());
        assert_eq!(detail, "body is not a JSON object", "{body}");
    }
    assert_eq!(error_detail(parse_lookup(200, b"").err()), "body is empty");
}

// --- findvisitor --------------------------------------------------------------------------

#[test]
fn find_documented_examples() {
    let found = br#"{"ds":"pr0016.glance.net/0","direct":"pr0016.glance.net:443","directserver":"pr0016.glance.net","tlsport":5501,"httpsport":443,"visitorfound":true}"#;
    assert_eq!(
        parse_find(200, found).unwrap(),
        FindResult {
            found: true,
            direct_server: Some("pr0016.glance.net:443".into())
        }
    );
    assert_eq!(
        parse_find(200, br#"{"visitorfound": false}"#).unwrap(),
        FindResult {
            found: false,
            direct_server: None
        }
    );
    // The older documented shape.
    assert_eq!(
        parse_find(
            200,
            br#"{"visitorfound":{"direct":"pr0016.glance.net:443"}}"#
        )
        .unwrap(),
        FindResult {
            found: true,
            direct_server: Some("pr0016.glance.net:443".into())
        }
    );
}

#[test]
fn find_other_shapes() {
    // The reference service names the node even for an absent visitor.
    assert_eq!(
        parse_find(
            200,
            br#"{"ds":"127.0.0.1/0","direct":"127.0.0.1:5000","directserver":"127.0.0.1","tlsport":0,"httpsport":5000,"visitorfound":false}"#
        )
        .unwrap(),
        FindResult {
            found: false,
            direct_server: Some("127.0.0.1:5000".into())
        }
    );
    assert_eq!(
        parse_find(200, b"{}").unwrap(),
        FindResult {
            found: false,
            direct_server: None
        }
    );
    assert_eq!(
        parse_find(200, br#"{"visitorfound":null,"direct":"h"}"#).unwrap(),
        FindResult {
            found: false,
            direct_server: Some("h".into())
        }
    );
    assert!(parse_find(200, br#"{"visitorfound":1}"#).unwrap().found);
    assert!(!parse_find(200, br#"{"visitorfound":0}"#).unwrap().found);
    // Nested shape without a server falls back to the top level.
    assert_eq!(
        parse_find(
            200,
            br#"{"visitorfound":{},"directserver":"d","httpsport":9}"#
        )
        .unwrap(),
        FindResult {
            found: true,
            direct_server: Some("d:9".into())
        }
    );
    assert_eq!(
        parse_find(
            200,
            br#"{"visitorfound":{"directserver":"n","httpsport":8443},"direct":"top"}"#
        )
        .unwrap()
        .direct_server
        .as_deref(),
        Some("n:8443")
    );
    for (body, field) in [
        (r#"{"visitorfound":"true"}"#, "`visitorfound`"),
        (r#"{"visitorfound":[true]}"#, "`visitorfound`"),
        (r#"{"visitorfound":true,"httpsport":"x"}"#, "`httpsport`"),
        (r#"{"visitorfound":{"direct":1}}"#, "`visitorfound.direct`"),
    ] {
        let detail = error_detail(parse_find(200, body.as_bytes()).err());
        assert!(detail.contains(field), "{body}: {detail}");
    }
}

// --- signalvisitor ------------------------------------------------------------------------

#[test]
fn signal_outcomes() {
    assert_eq!(
        parse_signal(200, br#"{"delivered":true}"#).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        parse_signal(200, br#"{"held":true}"#).unwrap(),
        Delivery::Held
    );
    assert_eq!(
        parse_signal(200, br#"{"delivered":true,"held":true}"#).unwrap(),
        Delivery::Delivered
    );
    assert_eq!(
        parse_signal(200, br#"{"delivered":false,"ok":1}"#).unwrap(),
        Delivery::Accepted {
            body: json!({"delivered": false, "ok": 1})
        }
    );
    assert_eq!(
        parse_signal(200, b"[1,2]").unwrap(),
        Delivery::Accepted {
            body: json!([1, 2])
        }
    );
    assert_eq!(
        parse_signal(204, b"").unwrap(),
        Delivery::Accepted {
            body: serde_json::Value::Null
        }
    );
    assert_eq!(
        parse_signal(
            404,
            br#"{"err":"visitornotpresent","msg":"visitor not present"}"#
        ),
        Err(RestError::VisitorNotPresent)
    );
    assert_eq!(
        parse_signal(
            200,
            br#"{"err":"visitornotpresent","msg":"visitor not present"}"#
        ),
        Err(RestError::VisitorNotPresent)
    );
    assert!(matches!(
        parse_signal(200, b"OK"),
        Err(RestError::Error { status: 200, .. })
    ));
    for outcome in [Delivery::Delivered, Delivery::Held] {
        let body = outcome.to_json().to_string();
        assert_eq!(parse_signal(200, body.as_bytes()).unwrap(), outcome);
    }
}

// --- status mapping -----------------------------------------------------------------------

#[test]
fn status_mapping_is_the_same_for_every_parser() {
    let bodies: [&[u8]; 4] = [
        b"",
        br#"{"err":"authorization","msg":"token expired"}"#,
        b"<html>oops</html>",
        br#"{"visitorfound":true}"#,
    ];
    for body in bodies {
        for status in [401, 403] {
            for (name, err) in all_errors(status, body) {
                assert!(
                    matches!(err, Some(RestError::Authorization { status: s, .. }) if s == status),
                    "{name}: {err:?}"
                );
            }
        }
        for (name, err) in all_errors(503, body) {
            assert_eq!(err, Some(RestError::ServiceUnavailable), "{name}");
        }
        for status in [500, 404, 400, 302, 100, 502] {
            for (name, err) in all_errors(status, body) {
                match err {
                    Some(RestError::Error { status: s, detail }) => {
                        assert_eq!(s, status, "{name}");
                        assert!(detail.starts_with("unexpected HTTP status"), "{detail}");
                    }
                    other => panic!("{name} {status}: {other:?}"),
                }
            }
        }
        for (name, err) in all_errors(0, body) {
            assert!(
                matches!(err, Some(RestError::Connection { .. })),
                "{name}: {err:?}"
            );
        }
    }
    let err = parse_lookup(
        400,
        br#"{"err":"badrequest","msg":"visitor id \"a b\" has the character ' ' at position 1"}"#,
    )
    .unwrap_err();
    assert_eq!(err.reason(), "error");
    assert_eq!(
        err.to_string(),
        "request failed (HTTP 400): unexpected HTTP status 400; the service reported badrequest: visitor id \"a b\" has the character ' ' at position 1"
    );
    assert_eq!(
        parse_lookup(401, b"").unwrap_err().reason(),
        "authorization"
    );
    assert_eq!(
        parse_lookup(503, b"").unwrap_err().reason(),
        "serviceunavailable"
    );
}

#[test]
fn err_and_msg_on_a_200_is_an_error_for_every_parser() {
    let body = br#"{"err":"internal","msg":"something broke","visitorfound":true,"delivered":true,"authToken":"t"}"#;
    for (name, err) in all_errors(200, body) {
        let detail = error_detail(err);
        assert_eq!(
            detail, "the service reported internal: something broke",
            "{name}"
        );
    }
    // `err` alone is not an error on a 200 (Glance's client needs both keys).
    assert!(parse_signal(200, br#"{"err":"x"}"#).is_ok());
    // `visitornotpresent` wins on any status but the mapped ones.
    for status in [200, 404, 410, 500] {
        for (name, err) in all_errors(
            status,
            br#"{"err":"visitornotpresent","msg":"visitor not present"}"#,
        ) {
            assert_eq!(err, Some(RestError::VisitorNotPresent), "{name} {status}");
        }
    }
}

#[test]
fn oversized_and_unparsable_bodies_are_errors() {
    let mut big = b"{\"pad\":\"".to_vec();
    big.resize(DEFAULT_MAX_BODY_BYTES + 1, b'a');
    big.extend_from_slice(b"\"}");
    for (name, err) in all_errors(200, &big) {
        let detail = error_detail(err);
        assert!(detail.contains("exceeds the limit"), "{name}: {detail}");
    }
    // Exactly at the limit is read.
    let mut at_limit = b"{\"pad\":\"".to_vec();
    at_limit.resize(DEFAULT_MAX_BODY_BYTES - 2, b'a');
    at_limit.extend_from_slice(b"\"}");
    assert_eq!(at_limit.len(), DEFAULT_MAX_BODY_BYTES);
    assert!(matches!(
        parse_lookup(200, &at_limit).unwrap(),
        LookupResult::Present(_)
    ));
    assert!(matches!(
        check_response(200, b"{}", 1),
        Err(RestError::Error { .. })
    ));
    for body in [
        &b"{"[..],
        b"{\"a\":}",
        b"\xff\xfe",
        b"{\"a\":\"\xff\"}",
        b"nul",
    ] {
        for (name, err) in all_errors(200, body) {
            let detail = error_detail(err);
            assert!(
                detail.starts_with("body is not valid JSON"),
                "{name}: {detail}"
            );
        }
    }
    // A byte-order mark is skipped.
    assert_eq!(
        parse_lookup(200, b"\xEF\xBB\xBF{}").unwrap(),
        LookupResult::Absent
    );
}

#[test]
fn error_details_never_carry_a_token() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudDEifQ.3q2-7w";
    let bodies = [
        format!(r#"{{"err":"authorization","msg":"token {jwt} expired"}}"#),
        format!(r#"{{"err":"{jwt}"}}"#),
        format!(r#""{jwt}""#),
        format!(r#"{{"authToken":"{jwt} x"}}"#),
        format!(r#"{{"visitorid":"{jwt}"}}"#),
        format!(r#"{{"uniqueid":"{jwt}"}}"#),
        format!(r#"{{"timestamp":"{jwt}"}}"#),
    ];
    for body in &bodies {
        for status in [200, 400, 404, 500] {
            for (name, err) in all_errors(status, body.as_bytes()) {
                if let Some(err) = err {
                    let text = format!("{err} {err:?}");
                    assert!(!text.contains("eyJ"), "{name} {status} {body}: {text}");
                }
            }
        }
    }
}

// --- query --------------------------------------------------------------------------------

#[test]
fn query_reads_the_state() {
    let body = br#"{"present":true,"sockets":1,"since":"1583953702.0","presence":{"url":"https://a.example/","browser":"firefox","custom":"{'k': 'v'}"},"visibility":"Visible","terms":"ACCEPTED","insession":false}"#;
    let QueryResult::Present(state) = parse_query(200, body).unwrap() else {
        panic!("absent")
    };
    assert!(state.present);
    assert_eq!(state.sockets, 1);
    assert_eq!(state.since, 1583953702.0);
    assert_eq!(state.presence.url(), Some("https://a.example/"));
    assert_eq!(state.presence.get("custom"), Some(&json!({"k": "v"})));
    assert_eq!(state.visibility, Some(Visibility::Visible));
    assert_eq!(state.terms, Some(TermsStatus::Accepted));
    assert!(!state.in_session);
    let back = state.to_json();
    assert_eq!(back["visibility"], "visible");
    assert_eq!(back["since"], "1583953702.0");
    assert_eq!(
        parse_query(200, back.to_string().as_bytes()).unwrap(),
        QueryResult::Present(state)
    );

    let QueryResult::Present(minimal) =
        parse_query(200, br#"{"present":true,"sockets":"2"}"#).unwrap()
    else {
        panic!("absent")
    };
    assert!(minimal.present && minimal.sockets == 2 && minimal.since == 0.0);
    assert!(minimal.presence.is_empty() && minimal.visibility.is_none() && minimal.terms.is_none());
    for (body, field) in [
        (r#"{"present":"yes"}"#, "`present`"),
        (r#"{"connected":"no"}"#, "`connected`"),
        (r#"{"present":true,"sockets":-1}"#, "`sockets`"),
        (r#"{"present":true,"since":[]}"#, "`since`"),
        (r#"{"present":true,"presence":"x"}"#, "`presence`"),
        (
            r#"{"present":true,"visibility":"prerender"}"#,
            "`visibility`",
        ),
        (r#"{"present":true,"visibility":1}"#, "`visibility`"),
        (r#"{"present":true,"terms":"maybe"}"#, "`terms`"),
        (r#"{"present":true,"insession":1}"#, "`insession`"),
        // Checked whatever the answer says.
        (r#"{"present":false,"sockets":"many"}"#, "`sockets`"),
    ] {
        let detail = error_detail(parse_query(200, body.as_bytes()).err());
        assert!(detail.contains(field), "{body}: {detail}");
    }
}

/// Every answer shape a Glance-like service may send for `query`, and what it reads as.
#[test]
fn query_reads_presence_only_from_what_the_answer_says() {
    // `{}` (and whitespace around it): absent, as the reference service answers.
    assert_eq!(parse_query(200, b"{}").unwrap(), QueryResult::Absent);
    assert_eq!(parse_query(200, b" { } ").unwrap(), QueryResult::Absent);
    // The `visitorconn`-like shape: `connected:false` is absent, never present.
    assert_eq!(
        parse_query(200, br#"{"visitorid":"v1","connected":false}"#).unwrap(),
        QueryResult::Absent
    );
    assert_eq!(
        parse_query(
            200,
            br#"{"visitorid":"v1","connected":null,"present":false}"#
        )
        .unwrap(),
        QueryResult::Absent
    );
    // `connected:true`: present, the other fields at their defaults.
    let QueryResult::Present(connected) =
        parse_query(200, br#"{"visitorid":"v1","connected":true}"#).unwrap()
    else {
        panic!("absent")
    };
    assert!(connected.present);
    assert_eq!(connected.sockets, 0);
    // The reference service's shape, present and (if it ever said so) not present.
    let reference = br#"{"present":true,"sockets":2,"since":"1583953702.0","presence":{"url":"u"},"visibility":"hidden","terms":null,"insession":true}"#;
    let QueryResult::Present(state) = parse_query(200, reference).unwrap() else {
        panic!("absent")
    };
    assert!(state.present && state.sockets == 2 && state.in_session);
    assert_eq!(state.visibility, Some(Visibility::Hidden));
    assert_eq!(
        parse_query(
            200,
            br#"{"present":false,"sockets":0,"since":"1583953702.0","presence":{},"insession":false}"#
        )
        .unwrap(),
        QueryResult::Absent
    );
    // Both fields, agreeing: fine.
    assert!(matches!(
        parse_query(200, br#"{"present":true,"connected":true}"#).unwrap(),
        QueryResult::Present(_)
    ));

    // Shapes the agent cannot read are errors, not guesses.
    for body in [
        r#"{"visitorid":"v1"}"#,
        r#"{"sockets":2}"#,
        r#"{"visitorid":"v1","visitorpresent":"1583953702.0"}"#,
        r#"{"present":null}"#,
    ] {
        let err = parse_query(200, body.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, RestError::Error { status: 200, detail } if detail.contains("neither `present` nor `connected`")),
            "{body}: {err:?}"
        );
    }
    let err = parse_query(200, br#"{"present":true,"connected":false}"#).unwrap_err();
    assert!(
        matches!(&err, RestError::Error { detail, .. } if detail.contains("disagree")),
        "{err:?}"
    );
    for body in [
        r#"{"present":1}"#,
        r#"{"connected":"false"}"#,
        "[]",
        "true",
        "",
    ] {
        assert!(
            matches!(
                parse_query(200, body.as_bytes()),
                Err(RestError::Error { .. })
            ),
            "{body}"
        );
    }
}

// --- uniquevisitor ------------------------------------------------------------------------

#[test]
fn unique_visitor_reply() {
    let v = parse_unique_visitor(
        200,
        br#"{"visitorid":"UNQ-123456789","guesttoken":"gt-secret","uniqueid":"123456789","timeout":300}"#,
    )
    .unwrap();
    assert_eq!(v.visitorid.as_str(), "UNQ-123456789");
    assert_eq!(v.uniqueid.as_str(), "123456789");
    assert_eq!(v.guesttoken.as_deref(), Some("gt-secret"));
    assert_eq!(v.timeout, 300);
    assert!(!format!("{v:?}").contains("gt-secret"));
    assert_eq!(
        parse_unique_visitor(200, v.to_json().to_string().as_bytes()).unwrap(),
        v
    );

    let derived = parse_unique_visitor(200, br#"{"uniqueid":987654321}"#).unwrap();
    assert_eq!(derived.visitorid.as_str(), "UNQ-987654321");
    assert_eq!(derived.timeout, DEFAULT_UNIQUE_TIMEOUT_SECS);
    assert_eq!(derived.guesttoken, None);
    let from_visitor =
        parse_unique_visitor(200, br#"{"visitorid":"UNQ-42","timeout":"60"}"#).unwrap();
    assert_eq!(from_visitor.uniqueid.as_str(), "42");
    assert_eq!(from_visitor.timeout, 60);

    for (body, needle) in [
        (r#"{}"#, "`uniqueid` is missing"),
        (r#"{"visitorid":"plain"}"#, "`uniqueid` is missing"),
        (r#"{"uniqueid":"a b"}"#, "`uniqueid` is invalid"),
        (
            r#"{"visitorid":"a/b","uniqueid":"1"}"#,
            "`visitorid` is invalid",
        ),
        (r#"{"uniqueid":"1","timeout":-5}"#, "`timeout`"),
        (r#"{"uniqueid":"1","guesttoken":{}}"#, "`guesttoken`"),
    ] {
        let detail = error_detail(parse_unique_visitor(200, body.as_bytes()).err());
        assert!(detail.contains(needle), "{body}: {detail}");
    }
}

// --- presence (visitor side) --------------------------------------------------------------

#[test]
fn presence_assignment() {
    assert_eq!(
        parse_presence(
            200,
            br#"{"direct":"127.0.0.1:5000","directserver":"127.0.0.1","httpsport":5000}"#
        )
        .unwrap(),
        PresenceAssignment {
            direct_server: Some("127.0.0.1:5000".into())
        }
    );
    assert_eq!(
        parse_presence(200, br#"{"direct":"pr0002.glance.net"}"#).unwrap(),
        PresenceAssignment {
            direct_server: Some("pr0002.glance.net".into())
        }
    );
    assert_eq!(
        parse_presence(200, b"{}").unwrap(),
        PresenceAssignment {
            direct_server: None
        }
    );
}

#[test]
fn direct_server_rule() {
    for (body, expected) in [
        // directserver wins over direct; httpsport is appended.
        (
            r#"{"directserver":"a.example","direct":"b.example:1","httpsport":443}"#,
            Some("a.example:443"),
        ),
        (
            r#"{"directserver":"a.example","direct":"b.example:1"}"#,
            Some("a.example"),
        ),
        // An empty directserver falls back to direct (JavaScript truthiness).
        (
            r#"{"directserver":"","direct":"b.example","httpsport":8443}"#,
            Some("b.example:8443"),
        ),
        // httpsport 0 is not appended (JavaScript truthiness).
        (
            r#"{"directserver":"a.example","httpsport":0}"#,
            Some("a.example"),
        ),
        // Project decision: no second port when the value already has one.
        (
            r#"{"direct":"b.example:443","httpsport":443}"#,
            Some("b.example:443"),
        ),
        (
            r#"{"directserver":"[::1]","httpsport":9443}"#,
            Some("[::1]:9443"),
        ),
        (r#"{"httpsport":443}"#, None),
    ] {
        assert_eq!(
            parse_presence(200, body.as_bytes())
                .unwrap()
                .direct_server
                .as_deref(),
            expected,
            "{body}"
        );
        assert_eq!(
            parse_find(200, body.as_bytes())
                .unwrap()
                .direct_server
                .as_deref(),
            expected,
            "{body}"
        );
    }
}

// --- GetVisitorSettings3 ------------------------------------------------------------------

#[test]
fn visitor_settings() {
    let settings = parse_visitor_settings(
        200,
        br#"{"presenceUrl":"127.0.0.1:4443","isPresenceLoadBalanced":false,"other":1}"#,
    )
    .unwrap();
    assert_eq!(
        settings,
        VisitorSettings {
            presence_url: Some("127.0.0.1:4443".into()),
            load_balanced: false
        }
    );
    let server = settings.presence_server(Scheme::Http).unwrap().unwrap();
    assert_eq!(server.http_base(), "http://127.0.0.1:4443");
    assert_eq!(
        parse_visitor_settings(200, settings.to_json().to_string().as_bytes()).unwrap(),
        settings
    );

    let lb = parse_visitor_settings(
        200,
        br#"{"presenceUrl":"presence.glance.net","isPresenceLoadBalanced":true}"#,
    )
    .unwrap();
    assert!(lb.load_balanced);
    assert_eq!(
        lb.presence_server(Scheme::Https)
            .unwrap()
            .unwrap()
            .ws_url("/agent"),
        "wss://presence.glance.net/agent"
    );
    // Empty presenceUrl: presence disabled. Missing flag: not load-balanced.
    let disabled = parse_visitor_settings(200, br#"{"presenceUrl":""}"#).unwrap();
    assert_eq!(
        disabled,
        VisitorSettings {
            presence_url: None,
            load_balanced: false
        }
    );
    assert!(disabled.presence_server(Scheme::Https).is_none());
    assert_eq!(
        disabled.to_json(),
        json!({"presenceUrl":"","isPresenceLoadBalanced":false})
    );
    assert!(parse_visitor_settings(200, br#"{"presenceUrl":"a b"}"#)
        .unwrap()
        .presence_server(Scheme::Https)
        .unwrap()
        .is_err());
    for (body, field) in [
        (r#"{"presenceUrl":1}"#, "`presenceUrl`"),
        (
            r#"{"presenceUrl":"h","isPresenceLoadBalanced":"true"}"#,
            "`isPresenceLoadBalanced`",
        ),
    ] {
        let detail = error_detail(parse_visitor_settings(200, body.as_bytes()).err());
        assert!(detail.contains(field), "{body}: {detail}");
    }
}

// --- Authorize ----------------------------------------------------------------------------

#[test]
fn authorize_documented_object_and_bare_string() {
    let doc = br#"{"VServer":null,"applicationSettings":null,"authTokeExp":"2026-03-12T20:41:55.6484735Z","authToken":"eyJ...","coloSelectUrl":null,"glanceAddress":null,"groupId":25542,"gssnId":"...","isTrial":false,"message":null,"planTimeout":0,"planTitle":null,"privilegeString":"gssnId:...;personId:935203;...","service":9}"#;
    let result = parse_authorize(200, doc).unwrap();
    assert_eq!(result.token.expose_secret(), "eyJ...");
    assert_eq!(
        result.expires_text.as_deref(),
        Some("2026-03-12T20:41:55.6484735Z")
    );
    assert!(!format!("{result:?}").contains("eyJ"));
    let bare = parse_authorize(200, br#""header.payload.signature""#).unwrap();
    assert_eq!(bare.token.expose_secret(), "header.payload.signature");
    assert_eq!(bare.expires_text, None);
}
