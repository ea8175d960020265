//! The frames of the facts file (§1.4, §5.3, §7), decoded and encoded.

use glance_presence_protocol::wire::{
    invoke_func_allowed, ClientFrame, ConnectFrame, DecodeError, InvokeRequest, ServerFrame,
    DEFAULT_MAX_FRAME_BYTES,
};
use glance_presence_protocol::{
    AuthToken, GroupId, PresenceData, TermsStatus, Visibility, VisitorId,
};
use serde_json::{json, Value};

fn client(text: &str) -> ClientFrame {
    ClientFrame::decode(text, DEFAULT_MAX_FRAME_BYTES).unwrap()
}

fn server(text: &str) -> ServerFrame {
    ServerFrame::decode(text, DEFAULT_MAX_FRAME_BYTES).unwrap()
}

fn client_err(text: &str) -> DecodeError {
    ClientFrame::decode(text, DEFAULT_MAX_FRAME_BYTES).unwrap_err()
}

fn server_err(text: &str) -> DecodeError {
    ServerFrame::decode(text, DEFAULT_MAX_FRAME_BYTES).unwrap_err()
}

fn presence(v: Value) -> PresenceData {
    match v {
        Value::Object(m) => PresenceData::from_map(m),
        other => panic!("not an object: {other}"),
    }
}

// ----- connect -------------------------------------------------------------------------------

#[test]
fn swift_visitor_connect_numeric_group_any_key_order() {
    // [SAMPLE S-SWIFT]
    let frame =
        client(r#"{"groupid":21489,"type":"connect","version":"6.8.6.0","visitorid":"666666"}"#);
    let expected = ConnectFrame {
        authorization: None,
        group: GroupId::new(21489).unwrap(),
        group_as_string: false,
        visitor: VisitorId::new("666666").unwrap(),
        guest_token: None,
        version: "6.8.6.0".into(),
    };
    assert_eq!(frame, ClientFrame::Connect(expected));
    // Re-encoded in the order Glance's scripts write.
    assert_eq!(
        frame.encode(),
        r#"{"type":"connect","groupid":21489,"visitorid":"666666","version":"6.8.6.0"}"#
    );
}

#[test]
fn agent_connect_string_group_round_trips_exactly() {
    // [OBSERVED §7] agent 6.3.1
    let text = r#"{"type":"connect","authorization":"tok.en.jwt","groupid":"12345","visitorid":"v1","version":"6.3.1"}"#;
    let frame = client(text);
    let ClientFrame::Connect(c) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(c.authorization, Some(AuthToken::new("tok.en.jwt")));
    assert_eq!(c.group.get(), 12345);
    assert!(c.group_as_string);
    assert_eq!(c.visitor.as_str(), "v1");
    assert_eq!(c.guest_token, None);
    assert_eq!(c.version, "6.3.1");
    assert_eq!(frame.encode(), text);
    assert_eq!(frame.kind(), "connect");
    // The token never shows in Debug.
    assert!(!format!("{frame:?}").contains("tok.en.jwt"));
}

#[test]
fn visitor_connect_observed_and_connect_unique() {
    // [OBSERVED §7] visitor 6.33.0: no authorization key at all
    let text = r#"{"type":"connect","groupid":12345,"visitorid":"v1","version":"6.33.0"}"#;
    assert_eq!(client(text).encode(), text);
    // groupid from the meta tag is a string
    let text = r#"{"type":"connect","groupid":"12345","visitorid":"v1","version":"6.33.0"}"#;
    assert_eq!(client(text).encode(), text);
    // after connectUnique, guesttoken before version
    let text = r#"{"type":"connect","groupid":12345,"visitorid":"UNQ-123456789","guesttoken":"gt-1","version":"6.33.0"}"#;
    let frame = client(text);
    let ClientFrame::Connect(c) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(c.guest_token.as_deref(), Some("gt-1"));
    assert_eq!(c.visitor.unique_id().unwrap().as_str(), "123456789");
    assert_eq!(frame.encode(), text);
}

#[test]
fn connect_full_key_order() {
    let frame = ClientFrame::Connect(ConnectFrame {
        authorization: Some(AuthToken::new("T")),
        group: GroupId::new(12345).unwrap(),
        group_as_string: true,
        visitor: VisitorId::new("v1").unwrap(),
        guest_token: Some("G".into()),
        version: "6.25.0".into(),
    });
    assert_eq!(
        frame.encode(),
        r#"{"type":"connect","authorization":"T","groupid":"12345","visitorid":"v1","guesttoken":"G","version":"6.25.0"}"#
    );
}

#[test]
fn connect_nulls_are_absent_and_version_is_optional() {
    let frame = client(
        r#"{"type":"connect","authorization":null,"groupid":7,"visitorid":"v","guesttoken":null}"#,
    );
    let ClientFrame::Connect(c) = frame else {
        panic!()
    };
    assert_eq!(c.authorization, None);
    assert_eq!(c.guest_token, None);
    assert_eq!(c.version, "");
}

#[test]
fn connect_errors() {
    assert_eq!(
        client_err(r#"{"type":"connect","groupid":1,"visitorid":"a b","version":"1"}"#),
        DecodeError::InvalidValue {
            field: "visitorid",
            detail: VisitorId::new("a b").unwrap_err().to_string()
        }
    );
    assert!(matches!(
        client_err(r#"{"type":"connect","groupid":1,"visitorid":"","version":"1"}"#),
        DecodeError::InvalidValue {
            field: "visitorid",
            ..
        }
    ));
    assert!(matches!(
        client_err(r#"{"type":"connect","groupid":1,"visitorid":7,"version":"1"}"#),
        DecodeError::WrongType {
            field: "visitorid",
            ..
        }
    ));
    assert!(matches!(
        client_err(r#"{"type":"connect","groupid":1,"version":"1"}"#),
        DecodeError::WrongType {
            field: "visitorid",
            ..
        }
    ));
    for bad_group in [r#""0""#, r#""12a""#, "0", "-4", "1.5", r#""""#] {
        let text = format!(r#"{{"type":"connect","groupid":{bad_group},"visitorid":"v"}}"#);
        assert!(
            matches!(
                client_err(&text),
                DecodeError::InvalidValue {
                    field: "groupid",
                    ..
                }
            ),
            "{text}"
        );
    }
    for bad_group in ["true", "[1]", "{}", "null"] {
        let text = format!(r#"{{"type":"connect","groupid":{bad_group},"visitorid":"v"}}"#);
        assert!(
            matches!(
                client_err(&text),
                DecodeError::WrongType {
                    field: "groupid",
                    ..
                }
            ),
            "{text}"
        );
    }
    assert!(matches!(
        client_err(r#"{"type":"connect","authorization":5,"groupid":1,"visitorid":"v"}"#),
        DecodeError::WrongType {
            field: "authorization",
            expected: "a string"
        }
    ));
    assert!(matches!(
        client_err(r#"{"type":"connect","groupid":1,"visitorid":"v","guesttoken":{}}"#),
        DecodeError::WrongType {
            field: "guesttoken",
            ..
        }
    ));
    assert!(matches!(
        client_err(r#"{"type":"connect","groupid":1,"visitorid":"v","version":6}"#),
        DecodeError::WrongType {
            field: "version",
            ..
        }
    ));
}

// ----- keepalive, agent socket route ---------------------------------------------------------

#[test]
fn keepalive_frame() {
    assert_eq!(client(r#"{"type":"k"}"#), ClientFrame::Keepalive);
    assert_eq!(ClientFrame::Keepalive.encode(), r#"{"type":"k"}"#);
    // unknown fields are ignored
    assert_eq!(
        client(r#"{"type":"k","ts":1,"data":[1]}"#),
        ClientFrame::Keepalive
    );
}

#[test]
fn agent_socket_route_signal_and_invoke() {
    // [OBSERVED §7] 6.25.0 with the load-balanced flag
    let text = r#"{"type":"signal","mtype":"signal","data":{"hello":"visitor","n":1}}"#;
    let frame = client(text);
    assert_eq!(frame, ClientFrame::Signal(json!({"hello":"visitor","n":1})));
    assert_eq!(frame.encode(), text);

    let text = r#"{"type":"invoke","mtype":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#;
    let frame = client(text);
    let expected = InvokeRequest {
        func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
        args: json!({"sessionKey":"1234"}),
    };
    assert!(expected.is_allowed_func());
    assert_eq!(frame, ClientFrame::Invoke(expected));
    assert_eq!(frame.encode(), text);
    assert_eq!(frame.kind(), "invoke");
}

#[test]
fn mtype_wins_over_type() {
    assert_eq!(
        client(r#"{"type":"whatever","mtype":"signal","data":1}"#),
        ClientFrame::Signal(json!(1))
    );
    // empty or null mtype falls back to type
    assert_eq!(client(r#"{"type":"k","mtype":""}"#), ClientFrame::Keepalive);
    assert_eq!(
        client(r#"{"type":"k","mtype":null}"#),
        ClientFrame::Keepalive
    );
    // only mtype
    assert_eq!(
        client(r#"{"mtype":"Ping"}"#),
        ClientFrame::Other {
            kind: "Ping".into(),
            data: None
        }
    );
    assert_eq!(
        client_err(r#"{"type":"k","mtype":3}"#),
        DecodeError::WrongType {
            field: "mtype",
            expected: "a string"
        }
    );
    // a string with escapes is fine
    assert_eq!(client(r#"{"type":"\u006b"}"#), ClientFrame::Keepalive);
}

#[test]
fn signal_without_data_is_null_and_invoke_needs_func() {
    assert_eq!(
        client(r#"{"type":"signal"}"#),
        ClientFrame::Signal(Value::Null)
    );
    assert_eq!(
        client(r#"{"type":"invoke","data":{"func":"GLANCE.x"}}"#),
        ClientFrame::Invoke(InvokeRequest {
            func: "GLANCE.x".into(),
            args: Value::Null
        })
    );
    assert_eq!(
        client_err(r#"{"type":"invoke","data":{"args":{}}}"#),
        DecodeError::WrongType {
            field: "data.func",
            expected: "a string"
        }
    );
    assert_eq!(
        client_err(r#"{"type":"invoke"}"#),
        DecodeError::WrongType {
            field: "data",
            expected: "an object"
        }
    );
}

#[test]
fn invoke_allow_list() {
    for ok in [
        "GLANCE.Cobrowse.VisitorUI.showTerms",
        "GLANCE.x",
        "GLANCE_COBROWSE.Custom.myFn",
    ] {
        assert!(invoke_func_allowed(ok), "{ok}");
    }
    for bad in [
        "",
        "GLANCE.",
        "GLANCE",
        "glance.x",
        "GLANCE_COBROWSE.Custom.",
        "GLANCE_COBROWSE.other",
        "window.alert",
        " GLANCE.x",
    ] {
        assert!(!invoke_func_allowed(bad), "{bad}");
    }
}

// ----- visitor frames ------------------------------------------------------------------------

#[test]
fn presence_frame_keeps_order_and_types() {
    // [OBSERVED §7] browserver is a number, custom fields keep their JSON types
    let text = r#"{"type":"presence","data":{"url":"https://shop.example/cart","browser":"Chrome","browserver":120,"platform":"Linux x86_64","plan":"gold","items":3,"vip":true}}"#;
    let frame = client(text);
    let ClientFrame::Presence(p) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(p.url(), Some("https://shop.example/cart"));
    assert_eq!(p.browser(), Some("Chrome"));
    assert_eq!(p.browserver(), Some(&json!(120)));
    assert_eq!(p.platform(), Some("Linux x86_64"));
    assert_eq!(p.get("items"), Some(&json!(3)));
    assert_eq!(frame.encode(), text);
    // The same frame forwarded to agents.
    let fwd = frame.clone().into_forwarded().unwrap();
    assert_eq!(fwd.encode(), text);
    assert_eq!(server(text), fwd);
}

#[test]
fn presence_without_data_is_empty() {
    assert_eq!(
        client(r#"{"type":"presence"}"#),
        ClientFrame::Presence(PresenceData::new())
    );
    assert_eq!(
        client(r#"{"type":"presence","data":null}"#),
        ClientFrame::Presence(PresenceData::new())
    );
}

#[test]
fn visibility_frames() {
    for (word, vis) in [
        ("hidden", Visibility::Hidden),
        ("visible", Visibility::Visible),
    ] {
        let text = format!(r#"{{"type":"visibility","data":{{"visibility":"{word}"}}}}"#);
        assert_eq!(client(&text), ClientFrame::Visibility(vis));
        assert_eq!(server(&text), ServerFrame::Visibility(vis));
        assert_eq!(ClientFrame::Visibility(vis).encode(), text);
        assert_eq!(ServerFrame::Visibility(vis).encode(), text);
    }
    assert_eq!(
        client(r#"{"type":"visibility","data":{"visibility":"HIDDEN"}}"#),
        ClientFrame::Visibility(Visibility::Hidden)
    );
    assert!(matches!(
        client_err(r#"{"type":"visibility","data":{"visibility":"gone"}}"#),
        DecodeError::InvalidValue {
            field: "data.visibility",
            ..
        }
    ));
}

#[test]
fn terms_frames() {
    // [OBSERVED §7] the terms UI sends displayed, then accepted or declined
    for (word, status) in [
        ("displayed", TermsStatus::Displayed),
        ("accepted", TermsStatus::Accepted),
        ("declined", TermsStatus::Declined),
    ] {
        let text = format!(r#"{{"type":"terms","data":{{"status":"{word}"}}}}"#);
        assert_eq!(client(&text), ClientFrame::Terms(status));
        assert_eq!(ServerFrame::Terms(status).encode(), text);
        assert_eq!(ClientFrame::Terms(status).encode(), text);
    }
    // [SAMPLE S-SWIFT] the Swift client adds fields: ignored
    assert_eq!(
        client(r#"{"type":"terms","mtype":"terms","data":{"status":"Accepted"}}"#),
        ClientFrame::Terms(TermsStatus::Accepted)
    );
    assert_eq!(
        client_err(r#"{"type":"terms","data":{"status":"maybe"}}"#),
        DecodeError::InvalidValue {
            field: "data.status",
            detail: "unknown terms status \"maybe\"; expected one of displayed, accepted, declined"
                .into()
        }
    );
}

#[test]
fn session_and_error_frames() {
    assert_eq!(
        client(r#"{"type":"visitorsessionstart"}"#),
        ClientFrame::VisitorSessionStart(None)
    );
    assert_eq!(
        ClientFrame::VisitorSessionStart(None).encode(),
        r#"{"type":"visitorsessionstart"}"#
    );
    let text = r#"{"type":"visitorsessionend","data":{"sessionKey":"1234"}}"#;
    assert_eq!(
        client(text),
        ClientFrame::VisitorSessionEnd(Some(json!({"sessionKey":"1234"})))
    );
    assert_eq!(client(text).encode(), text);
    // [DOC D-MOBVIS] mobile visitorerror example
    let text = r#"{"type":"visitorerror","data":{"code":"conndrop","msg":"Connect failed","params":{"a":1}}}"#;
    let frame = client(text);
    assert_eq!(
        frame,
        ClientFrame::VisitorError(
            json!({"code":"conndrop","msg":"Connect failed","params":{"a":1}})
        )
    );
    assert_eq!(frame.encode(), text);
    assert_eq!(frame.into_forwarded().unwrap().encode(), text);
}

#[test]
fn other_frames_are_kept() {
    let text = r#"{"type":"customevent","data":{"x":[1,2]}}"#;
    let frame = client(text);
    assert_eq!(
        frame,
        ClientFrame::Other {
            kind: "customevent".into(),
            data: Some(json!({"x":[1,2]}))
        }
    );
    assert_eq!(frame.kind(), "customevent");
    assert_eq!(frame.encode(), text);
    let fwd = frame.into_forwarded().unwrap();
    assert_eq!(fwd.encode(), text);
    assert_eq!(server(text), fwd);
    // Types are case-sensitive, as in Glance's `"on" + name` dispatch.
    assert!(matches!(
        client(r#"{"type":"K"}"#),
        ClientFrame::Other { .. }
    ));
}

#[test]
fn forwarding_rules() {
    let not_forwarded = [
        r#"{"type":"k"}"#,
        r#"{"type":"signal","data":1}"#,
        r#"{"type":"invoke","data":{"func":"GLANCE.x"}}"#,
        r#"{"type":"connect","groupid":1,"visitorid":"v"}"#,
        // a visitor cannot impersonate the service
        r#"{"type":"redirect","data":{"direct":"evil:443"}}"#,
        r#"{"type":"connected","keepalive":1}"#,
        r#"{"type":"visitorconn","data":{"connected":true}}"#,
        r#"{"type":"visitorsock","data":{"connected":true}}"#,
        r#"{"type":"serverclose"}"#,
        r#"{"type":"scaledown"}"#,
        r#"{"type":"blur"}"#,
        r#"{"type":"error","data":{"error":"x"}}"#,
        r#"{"type":"presence","mtype":"redirect","data":{"direct":"evil"}}"#,
    ];
    for text in not_forwarded {
        assert_eq!(client(text).into_forwarded(), None, "{text}");
    }
    let forwarded = [
        r#"{"type":"presence","data":{"url":"u"}}"#,
        r#"{"type":"visibility","data":{"visibility":"hidden"}}"#,
        r#"{"type":"terms","data":{"status":"accepted"}}"#,
        r#"{"type":"visitorsessionstart"}"#,
        r#"{"type":"visitorsessionend","data":{"k":1}}"#,
        r#"{"type":"visitorerror","data":{"code":"c"}}"#,
        r#"{"type":"mything","data":[1]}"#,
    ];
    for text in forwarded {
        let fwd = client(text).into_forwarded().unwrap();
        assert_eq!(fwd.encode(), text);
        assert_eq!(server(text), fwd);
    }
}

// ----- server frames -------------------------------------------------------------------------

#[test]
fn connected_frame() {
    let text = r#"{"type":"connected","keepalive":30}"#;
    let frame = server(text);
    assert_eq!(
        frame,
        ServerFrame::Connected {
            keepalive: Some(30),
            data: None
        }
    );
    assert_eq!(frame.encode(), text);
    assert_eq!(
        server(r#"{"type":"connected","keepalive":30.0}"#),
        frame,
        "a whole float is accepted"
    );
    assert_eq!(
        server(r#"{"type":"connected"}"#),
        ServerFrame::Connected {
            keepalive: None,
            data: None
        }
    );
    let text = r#"{"type":"connected","keepalive":0,"data":{"node":"a"}}"#;
    assert_eq!(server(text).encode(), text);
    assert_eq!(
        server_err(r#"{"type":"connected","keepalive":"30"}"#),
        DecodeError::WrongType {
            field: "keepalive",
            expected: "a non-negative integer"
        }
    );
    for bad in ["-1", "30.5", "1e30"] {
        assert!(matches!(
            server_err(&format!(r#"{{"type":"connected","keepalive":{bad}}}"#)),
            DecodeError::InvalidValue {
                field: "keepalive",
                ..
            }
        ));
    }
}

#[test]
fn visitorsock_and_visitorconn() {
    for connected in [true, false] {
        let text = format!(r#"{{"type":"visitorsock","data":{{"connected":{connected}}}}}"#);
        assert_eq!(server(&text), ServerFrame::VisitorSock { connected });
        assert_eq!(ServerFrame::VisitorSock { connected }.encode(), text);
        let text = format!(r#"{{"type":"visitorconn","data":{{"connected":{connected}}}}}"#);
        assert_eq!(server(&text), ServerFrame::VisitorConn { connected });
        assert_eq!(ServerFrame::VisitorConn { connected }.encode(), text);
    }
    assert_eq!(
        server_err(r#"{"type":"visitorsock","data":{"connected":"yes"}}"#),
        DecodeError::WrongType {
            field: "data.connected",
            expected: "a boolean"
        }
    );
    assert_eq!(
        server_err(r#"{"type":"visitorconn"}"#),
        DecodeError::WrongType {
            field: "data",
            expected: "an object"
        }
    );
}

#[test]
fn redirect_both_shapes() {
    let nested = r#"{"type":"redirect","data":{"direct":"node2.example:8443"}}"#;
    let top = r#"{"type":"redirect","direct":"node2.example:8443"}"#;
    let expected = ServerFrame::Redirect {
        direct: "node2.example:8443".into(),
    };
    assert_eq!(server(nested), expected);
    assert_eq!(server(top), expected);
    assert_eq!(expected.encode(), nested);
    // `data` wins when present, as in Glance's `msg.data || msg`
    assert_eq!(
        server_err(r#"{"type":"redirect","direct":"a","data":{}}"#),
        DecodeError::WrongType {
            field: "data.direct",
            expected: "a string"
        }
    );
    assert_eq!(
        server(r#"{"type":"redirect","direct":"a","data":null}"#),
        ServerFrame::Redirect { direct: "a".into() }
    );
    assert_eq!(
        server_err(r#"{"type":"redirect"}"#),
        DecodeError::WrongType {
            field: "direct",
            expected: "a string"
        }
    );
}

#[test]
fn control_frames() {
    for (text, frame) in [
        (r#"{"type":"serverclose"}"#, ServerFrame::ServerClose),
        (r#"{"type":"scaledown"}"#, ServerFrame::ScaleDown),
        (r#"{"type":"blur"}"#, ServerFrame::Blur),
    ] {
        assert_eq!(server(text), frame);
        assert_eq!(frame.encode(), text);
    }
}

#[test]
fn error_frame() {
    // [CODE] wrapper-level shape {error:"connfail", detail:<reason>}
    let text = r#"{"type":"error","data":{"error":"connfail","detail":"authorization"}}"#;
    let frame = server(text);
    assert_eq!(
        frame,
        ServerFrame::Error {
            error: "connfail".into(),
            detail: Some("authorization".into())
        }
    );
    assert_eq!(frame.encode(), text);
    let text = r#"{"type":"error","data":{"error":"badrequest"}}"#;
    assert_eq!(server(text).encode(), text);
    assert!(matches!(
        server_err(r#"{"type":"error","data":{"detail":"x"}}"#),
        DecodeError::WrongType {
            field: "data.error",
            ..
        }
    ));
    assert!(matches!(
        server_err(r#"{"type":"error","data":{"error":"x","detail":1}}"#),
        DecodeError::WrongType {
            field: "data.detail",
            ..
        }
    ));
}

#[test]
fn server_signal_and_invoke() {
    let text = r#"{"type":"signal","data":{"hello":"visitor"}}"#;
    assert_eq!(
        server(text),
        ServerFrame::Signal(json!({"hello":"visitor"}))
    );
    assert_eq!(server(text).encode(), text);
    let text = r#"{"type":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#;
    assert_eq!(server(text).encode(), text);
    // What an agent's socket-route frame looks like to the service's peer decoder.
    let agent = r#"{"type":"invoke","mtype":"invoke","data":{"func":"GLANCE.x","args":null}}"#;
    assert_eq!(
        server(agent),
        ServerFrame::Invoke(InvokeRequest {
            func: "GLANCE.x".into(),
            args: Value::Null
        })
    );
}

#[test]
fn server_other_and_kinds() {
    assert_eq!(
        server(r#"{"type":"k"}"#),
        ServerFrame::Other {
            kind: "k".into(),
            data: None
        }
    );
    assert!(ServerFrame::is_known_kind("redirect"));
    assert!(!ServerFrame::is_known_kind("k"));
    assert!(ClientFrame::is_known_kind("k"));
    assert!(!ClientFrame::is_known_kind("redirect"));
    assert_eq!(ServerFrame::Blur.kind(), "blur");
    assert_eq!(
        ServerFrame::Connected {
            keepalive: None,
            data: None
        }
        .kind(),
        "connected"
    );
}

#[test]
fn presence_merge_across_frames() {
    let mut state = PresenceData::new();
    let ClientFrame::Presence(first) =
        client(r#"{"type":"presence","data":{"url":"a","browser":"Firefox","browserver":115}}"#)
    else {
        panic!()
    };
    assert_eq!(state.merge(&first), ["url", "browser", "browserver"]);
    let ClientFrame::Presence(second) =
        client(r#"{"type":"presence","data":{"plan":"gold","url":"b"}}"#)
    else {
        panic!()
    };
    assert_eq!(state.merge(&second), ["plan", "url"]);
    assert_eq!(
        state,
        presence(json!({"url":"b","browser":"Firefox","browserver":115,"plan":"gold"}))
    );
}
