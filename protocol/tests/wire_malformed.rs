//! A corpus of malformed, oversized and wrongly typed frames: each gives its own typed
//! [`DecodeError`], from both decoders, and nothing panics.

use glance_presence_protocol::wire::{
    ClientFrame, DecodeError, ServerFrame, DEFAULT_MAX_FRAME_BYTES,
};

/// Which error a frame must produce.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    TooLarge,
    InvalidUtf8,
    InvalidJson,
    NotAnObject,
    MissingType,
    WrongType(&'static str),
    InvalidValue(&'static str),
}

fn classify(err: &DecodeError) -> Expect {
    match err {
        DecodeError::TooLarge { .. } => Expect::TooLarge,
        DecodeError::InvalidUtf8 => Expect::InvalidUtf8,
        DecodeError::InvalidJson { .. } => Expect::InvalidJson,
        DecodeError::NotAnObject => Expect::NotAnObject,
        DecodeError::MissingType => Expect::MissingType,
        DecodeError::WrongType { field, .. } => Expect::WrongType(field),
        DecodeError::InvalidValue { field, .. } => Expect::InvalidValue(field),
        other => panic!("unexpected variant {other:?}"),
    }
}

/// Frames that fail the same way for both decoders (envelope-level problems).
const BOTH: &[(&str, Expect)] = &[
    ("", Expect::InvalidJson),
    (" ", Expect::InvalidJson),
    ("{", Expect::InvalidJson),
    ("}", Expect::InvalidJson),
    ("{\"type\":\"k\"", Expect::InvalidJson),
    ("{\"type\":\"k\"}}", Expect::InvalidJson),
    ("{\"type\":\"k\"} {}", Expect::InvalidJson),
    ("{'type':'k'}", Expect::InvalidJson),
    ("{type:\"k\"}", Expect::InvalidJson),
    ("{\"type\":\"k\",}", Expect::InvalidJson),
    ("{\"type\":\"\\x\"}", Expect::InvalidJson),
    ("{\"type\":\"\\ud800\"}", Expect::InvalidJson),
    ("{\"type\":\"k\",\"data\":NaN}", Expect::InvalidJson),
    ("{\"type\":\"k\",\"data\":01}", Expect::InvalidJson),
    ("{\"type\":\"k\",\"data\":[1,2}", Expect::InvalidJson),
    ("[1,2", Expect::InvalidJson),
    ("nul", Expect::InvalidJson),
    ("\u{feff}{\"type\":\"k\"}", Expect::InvalidJson),
    ("[]", Expect::NotAnObject),
    ("[{\"type\":\"k\"}]", Expect::NotAnObject),
    ("5", Expect::NotAnObject),
    ("-1.5e3", Expect::NotAnObject),
    ("\"k\"", Expect::NotAnObject),
    ("\"{\\\"type\\\":\\\"k\\\"}\"", Expect::NotAnObject),
    ("true", Expect::NotAnObject),
    ("null", Expect::NotAnObject),
    ("  [ ]  ", Expect::NotAnObject),
    ("{}", Expect::MissingType),
    ("{\"data\":{}}", Expect::MissingType),
    ("{\"type\":\"\"}", Expect::MissingType),
    ("{\"type\":null}", Expect::MissingType),
    ("{\"mtype\":\"\",\"type\":\"\"}", Expect::MissingType),
    ("{\"Type\":\"k\"}", Expect::MissingType),
    ("{\"type\":5}", Expect::WrongType("type")),
    ("{\"type\":true}", Expect::WrongType("type")),
    ("{\"type\":[\"k\"]}", Expect::WrongType("type")),
    ("{\"type\":{\"k\":1}}", Expect::WrongType("type")),
    ("{\"mtype\":1,\"type\":\"k\"}", Expect::WrongType("mtype")),
    ("{\"mtype\":{},\"type\":\"k\"}", Expect::WrongType("mtype")),
    (
        "{\"type\":\"presence\",\"data\":[1]}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"presence\",\"data\":\"url=x\"}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"presence\",\"data\":7}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"terms\",\"data\":{\"status\":\"maybe\"}}",
        Expect::InvalidValue("data.status"),
    ),
    (
        "{\"type\":\"terms\",\"data\":{\"status\":\"\"}}",
        Expect::InvalidValue("data.status"),
    ),
    (
        "{\"type\":\"terms\",\"data\":{\"status\":1}}",
        Expect::WrongType("data.status"),
    ),
    (
        "{\"type\":\"terms\",\"data\":{}}",
        Expect::WrongType("data.status"),
    ),
    ("{\"type\":\"terms\"}", Expect::WrongType("data")),
    (
        "{\"type\":\"terms\",\"data\":\"accepted\"}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"visibility\",\"data\":{\"visibility\":\"gone\"}}",
        Expect::InvalidValue("data.visibility"),
    ),
    (
        "{\"type\":\"visibility\",\"data\":{\"visibility\":false}}",
        Expect::WrongType("data.visibility"),
    ),
    (
        "{\"type\":\"visibility\",\"data\":null}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"invoke\",\"data\":{\"func\":5}}",
        Expect::WrongType("data.func"),
    ),
    (
        "{\"type\":\"invoke\",\"data\":[]}",
        Expect::WrongType("data"),
    ),
];

/// Frames only a client decoder sees (connect).
const CLIENT_ONLY: &[(&str, Expect)] = &[
    ("{\"type\":\"connect\"}", Expect::WrongType("groupid")),
    (
        "{\"type\":\"connect\",\"groupid\":\"12345\"}",
        Expect::WrongType("visitorid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":true,\"visitorid\":\"v\"}",
        Expect::WrongType("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":\"abc\",\"visitorid\":\"v\"}",
        Expect::InvalidValue("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":0,\"visitorid\":\"v\"}",
        Expect::InvalidValue("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":-7,\"visitorid\":\"v\"}",
        Expect::InvalidValue("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":12.5,\"visitorid\":\"v\"}",
        Expect::InvalidValue("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":99999999999999999999999,\"visitorid\":\"v\"}",
        Expect::InvalidValue("groupid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"\"}",
        Expect::InvalidValue("visitorid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"a/b\"}",
        Expect::InvalidValue("visitorid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"\\u00e9\"}",
        Expect::InvalidValue("visitorid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":[\"v\"]}",
        Expect::WrongType("visitorid"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"v\",\"authorization\":{}}",
        Expect::WrongType("authorization"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"v\",\"guesttoken\":1}",
        Expect::WrongType("guesttoken"),
    ),
    (
        "{\"type\":\"connect\",\"groupid\":1,\"visitorid\":\"v\",\"version\":6.3}",
        Expect::WrongType("version"),
    ),
];

/// Frames only a server-frame decoder sees.
const SERVER_ONLY: &[(&str, Expect)] = &[
    (
        "{\"type\":\"visitorsock\",\"data\":{\"connected\":\"yes\"}}",
        Expect::WrongType("data.connected"),
    ),
    (
        "{\"type\":\"visitorsock\",\"data\":{\"connected\":1}}",
        Expect::WrongType("data.connected"),
    ),
    (
        "{\"type\":\"visitorsock\",\"data\":{}}",
        Expect::WrongType("data.connected"),
    ),
    (
        "{\"type\":\"visitorsock\",\"connected\":true}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"visitorconn\",\"data\":true}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"connected\",\"keepalive\":\"30\"}",
        Expect::WrongType("keepalive"),
    ),
    (
        "{\"type\":\"connected\",\"keepalive\":[30]}",
        Expect::WrongType("keepalive"),
    ),
    (
        "{\"type\":\"connected\",\"keepalive\":-30}",
        Expect::InvalidValue("keepalive"),
    ),
    (
        "{\"type\":\"connected\",\"keepalive\":0.5}",
        Expect::InvalidValue("keepalive"),
    ),
    (
        "{\"type\":\"connected\",\"keepalive\":1e400}",
        Expect::InvalidJson,
    ),
    ("{\"type\":\"redirect\"}", Expect::WrongType("direct")),
    (
        "{\"type\":\"redirect\",\"direct\":5}",
        Expect::WrongType("direct"),
    ),
    (
        "{\"type\":\"redirect\",\"data\":\"h:1\"}",
        Expect::WrongType("data"),
    ),
    (
        "{\"type\":\"redirect\",\"data\":{\"direct\":null}}",
        Expect::WrongType("data.direct"),
    ),
    ("{\"type\":\"error\"}", Expect::WrongType("data")),
    (
        "{\"type\":\"error\",\"data\":{\"error\":1}}",
        Expect::WrongType("data.error"),
    ),
    (
        "{\"type\":\"error\",\"data\":{\"error\":\"e\",\"detail\":[]}}",
        Expect::WrongType("data.detail"),
    ),
];

fn check_client(text: &str, expect: Expect) {
    let got = ClientFrame::decode(text, DEFAULT_MAX_FRAME_BYTES);
    match got {
        Ok(frame) => panic!("{text:?} decoded as client frame {frame:?}, expected {expect:?}"),
        Err(e) => assert_eq!(classify(&e), expect, "client {text:?}: {e}"),
    }
    let got = ClientFrame::decode_bytes(text.as_bytes(), DEFAULT_MAX_FRAME_BYTES);
    assert_eq!(
        got.map_err(|e| classify(&e)),
        Err(expect),
        "client bytes {text:?}"
    );
}

fn check_server(text: &str, expect: Expect) {
    let got = ServerFrame::decode(text, DEFAULT_MAX_FRAME_BYTES);
    match got {
        Ok(frame) => panic!("{text:?} decoded as server frame {frame:?}, expected {expect:?}"),
        Err(e) => assert_eq!(classify(&e), expect, "server {text:?}: {e}"),
    }
    let got = ServerFrame::decode_bytes(text.as_bytes(), DEFAULT_MAX_FRAME_BYTES);
    assert_eq!(
        got.map_err(|e| classify(&e)),
        Err(expect),
        "server bytes {text:?}"
    );
}

#[test]
fn envelope_errors_for_both_decoders() {
    for (text, expect) in BOTH {
        check_client(text, *expect);
        check_server(text, *expect);
    }
}

#[test]
fn client_only_errors() {
    for (text, expect) in CLIENT_ONLY {
        check_client(text, *expect);
        // A server-frame decoder does not know `connect`: it is kept as Other.
        assert!(matches!(
            ServerFrame::decode(text, DEFAULT_MAX_FRAME_BYTES),
            Ok(ServerFrame::Other { .. })
        ));
    }
}

#[test]
fn server_only_errors() {
    for (text, expect) in SERVER_ONLY {
        check_server(text, *expect);
        if *expect != Expect::InvalidJson {
            assert!(matches!(
                ClientFrame::decode(text, DEFAULT_MAX_FRAME_BYTES),
                Ok(ClientFrame::Other { .. })
            ));
        }
    }
}

#[test]
fn error_messages_name_the_problem() {
    let e = ServerFrame::decode(
        r#"{"type":"visitorsock","data":{"connected":"yes"}}"#,
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "field data.connected must be a boolean");
    let e = ClientFrame::decode(r#"{"type":"connect","groupid":1,"visitorid":"a b"}"#, 100)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "field visitorid is invalid: visitor id \"a b\" has the character ' ' at position 1; only letters, digits, '_', '~' and '-' are allowed"
    );
    let e = ClientFrame::decode("[]", 100).unwrap_err();
    assert_eq!(e.to_string(), "frame is not a JSON object");
    let e = ClientFrame::decode("{", 100).unwrap_err();
    assert!(
        e.to_string().starts_with("frame is not valid JSON: "),
        "{e}"
    );
}

#[test]
fn size_limit_is_checked_first() {
    // A valid frame of exactly the limit is accepted; one more byte is refused.
    let prefix = r#"{"type":"presence","data":{"pad":""#;
    let suffix = r#""}}"#;
    let pad = DEFAULT_MAX_FRAME_BYTES - prefix.len() - suffix.len();
    let exact = format!("{prefix}{}{suffix}", "x".repeat(pad));
    assert_eq!(exact.len(), DEFAULT_MAX_FRAME_BYTES);
    assert!(ClientFrame::decode(&exact, DEFAULT_MAX_FRAME_BYTES).is_ok());
    let over = format!("{prefix}{}{suffix}", "x".repeat(pad + 1));
    assert_eq!(over.len(), DEFAULT_MAX_FRAME_BYTES + 1);
    let too_large = DecodeError::TooLarge {
        len: DEFAULT_MAX_FRAME_BYTES + 1,
        limit: DEFAULT_MAX_FRAME_BYTES,
    };
    assert_eq!(
        ClientFrame::decode(&over, DEFAULT_MAX_FRAME_BYTES),
        Err(too_large.clone())
    );
    assert_eq!(
        ServerFrame::decode(&over, DEFAULT_MAX_FRAME_BYTES),
        Err(too_large.clone())
    );
    // Even garbage and invalid UTF-8 report the size first.
    let junk = vec![0xffu8; DEFAULT_MAX_FRAME_BYTES + 1];
    assert_eq!(
        ClientFrame::decode_bytes(&junk, DEFAULT_MAX_FRAME_BYTES),
        Err(too_large.clone())
    );
    assert_eq!(
        ServerFrame::decode_bytes(&junk, DEFAULT_MAX_FRAME_BYTES),
        Err(too_large)
    );
    // A custom limit.
    assert_eq!(
        ClientFrame::decode(r#"{"type":"k"}"#, 11),
        Err(DecodeError::TooLarge { len: 12, limit: 11 })
    );
    assert!(ClientFrame::decode(r#"{"type":"k"}"#, 12).is_ok());
    assert_eq!(
        ClientFrame::decode("", 0),
        Err(DecodeError::InvalidJson {
            detail: "EOF while parsing a value at line 1 column 0".into()
        })
    );
}

#[test]
fn invalid_utf8() {
    for bytes in [
        &b"\xff"[..],
        b"{\"type\":\"k\xc3\"}",
        b"{\"type\":\"k\"}\x80",
        b"\xed\xa0\x80",
        b"{\"type\":\"presence\",\"data\":{\"url\":\"\xfe\"}}",
    ] {
        assert_eq!(
            ClientFrame::decode_bytes(bytes, DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            ServerFrame::decode_bytes(bytes, DEFAULT_MAX_FRAME_BYTES),
            Err(DecodeError::InvalidUtf8)
        );
    }
    // Valid multi-byte UTF-8 is fine.
    assert!(ClientFrame::decode_bytes(
        "{\"type\":\"presence\",\"data\":{\"url\":\"é✓😀\"}}".as_bytes(),
        DEFAULT_MAX_FRAME_BYTES
    )
    .is_ok());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 20_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // Inside `data` the JSON parser's recursion limit stops it.
    let in_data = format!(r#"{{"type":"presence","data":{{"x":{arrays}}}}}"#);
    assert!(matches!(
        ClientFrame::decode(&in_data, usize::MAX),
        Err(DecodeError::InvalidJson { ref detail }) if detail.contains("recursion limit")
    ));
    let in_data = format!(r#"{{"type":"signal","data":{arrays}}}"#);
    assert!(matches!(
        ServerFrame::decode(&in_data, usize::MAX),
        Err(DecodeError::InvalidJson { .. })
    ));
    // Same for a known top-level field.
    let in_group = format!(r#"{{"type":"connect","groupid":{arrays},"visitorid":"v"}}"#);
    assert!(matches!(
        ClientFrame::decode(&in_group, usize::MAX),
        Err(DecodeError::InvalidJson { .. })
    ));
    // Objects too.
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let in_data = format!(r#"{{"type":"visitorerror","data":{objects}}}"#);
    assert!(matches!(
        ClientFrame::decode(&in_data, usize::MAX),
        Err(DecodeError::InvalidJson { .. })
    ));
    // A deep value that is skipped (a whole non-object input, an unknown field, a `type` of
    // the wrong type) is walked without recursion: typed errors or success, no overflow.
    assert_eq!(
        ClientFrame::decode(&arrays, usize::MAX),
        Err(DecodeError::NotAnObject)
    );
    let ignored = format!(r#"{{"type":"k","extra":{arrays}}}"#);
    assert_eq!(
        ClientFrame::decode(&ignored, usize::MAX),
        Ok(ClientFrame::Keepalive)
    );
    let wrong = format!(r#"{{"type":{arrays}}}"#);
    assert!(matches!(
        ServerFrame::decode(&wrong, usize::MAX),
        Err(DecodeError::WrongType { field: "type", .. })
    ));
    // Unbalanced deep input is invalid JSON.
    assert!(matches!(
        ClientFrame::decode(&"[".repeat(depth), usize::MAX),
        Err(DecodeError::InvalidJson { .. })
    ));
    // Moderate nesting (within serde_json's limit of 128) is accepted and kept.
    let ok = format!(
        r#"{{"type":"signal","data":{}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(ClientFrame::decode(&ok, DEFAULT_MAX_FRAME_BYTES).is_ok());
}

#[test]
fn duplicate_keys_last_wins() {
    assert_eq!(
        ClientFrame::decode(r#"{"type":"presence","type":"k"}"#, DEFAULT_MAX_FRAME_BYTES),
        Ok(ClientFrame::Keepalive)
    );
}
