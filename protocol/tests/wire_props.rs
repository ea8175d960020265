//! Properties of the wire codec: encoding then decoding is the identity for every frame, and
//! decoding never panics, whatever the input.

use glance_presence_protocol::wire::{
    ClientFrame, ConnectFrame, DecodeError, InvokeRequest, ServerFrame, DEFAULT_MAX_FRAME_BYTES,
};
use glance_presence_protocol::{
    AuthToken, GroupId, PresenceData, TermsStatus, Visibility, VisitorId,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

const CLIENT_KINDS: &[&str] = &[
    "connect",
    "k",
    "signal",
    "invoke",
    "presence",
    "visibility",
    "terms",
    "visitorsessionstart",
    "visitorsessionend",
    "visitorerror",
];
const SERVER_KINDS: &[&str] = &[
    "connected",
    "visitorsock",
    "visitorconn",
    "presence",
    "visibility",
    "terms",
    "visitorsessionstart",
    "visitorsessionend",
    "visitorerror",
    "redirect",
    "serverclose",
    "scaledown",
    "blur",
    "error",
    "signal",
    "invoke",
];

// ----- strategies ----------------------------------------------------------------------------

/// Any float, plus short decimals and values near the extremes. (The crate builds serde_json
/// with `float_roundtrip`, so every finite float reads back exactly.)
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (any::<i32>(), 0u32..20).prop_map(|(m, e)| f64::from(m) / f64::from(1u32 << e)),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(-0.0),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,6}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((any::<String>(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    vec(("[a-z]{1,8}|\\PC{0,8}", json_value()), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect::<Map<_, _>>())
}

fn some_not_null() -> impl Strategy<Value = Option<Value>> {
    option::of(json_value().prop_filter("Some(null) reads back as None", |v| !v.is_null()))
}

fn presence() -> impl Strategy<Value = PresenceData> {
    json_object().prop_map(PresenceData::from_map)
}

fn terms() -> impl Strategy<Value = TermsStatus> {
    prop_oneof![
        Just(TermsStatus::Displayed),
        Just(TermsStatus::Accepted),
        Just(TermsStatus::Declined)
    ]
}

fn visibility() -> impl Strategy<Value = Visibility> {
    prop_oneof![Just(Visibility::Hidden), Just(Visibility::Visible)]
}

fn invoke() -> impl Strategy<Value = InvokeRequest> {
    (any::<String>(), json_value()).prop_map(|(func, args)| InvokeRequest { func, args })
}

fn other_kind(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z][a-zA-Z0-9_.-]{0,12}", any::<String>()]
        .prop_filter("not empty and not a known type", move |k| {
            !k.is_empty() && !known.contains(&k.as_str())
        })
}

fn connect() -> impl Strategy<Value = ConnectFrame> {
    (
        option::of(any::<String>()),
        1u64..=u64::MAX,
        any::<bool>(),
        "[A-Za-z0-9_~-]{1,62}",
        option::of(any::<String>()),
        any::<String>(),
    )
        .prop_map(
            |(auth, group, as_string, visitor, guest, version)| ConnectFrame {
                authorization: auth.map(AuthToken::new),
                group: GroupId::new(group).unwrap(),
                group_as_string: as_string,
                visitor: VisitorId::new(visitor).unwrap(),
                guest_token: guest,
                version,
            },
        )
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        connect().prop_map(ClientFrame::Connect),
        Just(ClientFrame::Keepalive),
        json_value().prop_map(ClientFrame::Signal),
        invoke().prop_map(ClientFrame::Invoke),
        presence().prop_map(ClientFrame::Presence),
        visibility().prop_map(ClientFrame::Visibility),
        terms().prop_map(ClientFrame::Terms),
        some_not_null().prop_map(ClientFrame::VisitorSessionStart),
        some_not_null().prop_map(ClientFrame::VisitorSessionEnd),
        json_value().prop_map(ClientFrame::VisitorError),
        (other_kind(CLIENT_KINDS), some_not_null())
            .prop_map(|(kind, data)| ClientFrame::Other { kind, data }),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (option::of(any::<u64>()), some_not_null())
            .prop_map(|(keepalive, data)| ServerFrame::Connected { keepalive, data }),
        any::<bool>().prop_map(|connected| ServerFrame::VisitorSock { connected }),
        any::<bool>().prop_map(|connected| ServerFrame::VisitorConn { connected }),
        presence().prop_map(ServerFrame::Presence),
        visibility().prop_map(ServerFrame::Visibility),
        terms().prop_map(ServerFrame::Terms),
        some_not_null().prop_map(ServerFrame::VisitorSessionStart),
        some_not_null().prop_map(ServerFrame::VisitorSessionEnd),
        json_value().prop_map(ServerFrame::VisitorError),
        any::<String>().prop_map(|direct| ServerFrame::Redirect { direct }),
        Just(ServerFrame::ServerClose),
        Just(ServerFrame::ScaleDown),
        Just(ServerFrame::Blur),
        (any::<String>(), option::of(any::<String>()))
            .prop_map(|(error, detail)| ServerFrame::Error { error, detail }),
        json_value().prop_map(ServerFrame::Signal),
        invoke().prop_map(ServerFrame::Invoke),
        (other_kind(SERVER_KINDS), some_not_null())
            .prop_map(|(kind, data)| ServerFrame::Other { kind, data }),
    ]
}

// ----- helpers -------------------------------------------------------------------------------

/// Decoding a successful decode's encoding gives the same frame (what the fuzz target checks).
fn assert_stable(text: &str) {
    if let Ok(frame) = ClientFrame::decode(text, usize::MAX) {
        let again = ClientFrame::decode(&frame.encode(), usize::MAX);
        assert_eq!(again.as_ref(), Ok(&frame), "client {text:?}");
    }
    if let Ok(frame) = ServerFrame::decode(text, usize::MAX) {
        let again = ServerFrame::decode(&frame.encode(), usize::MAX);
        assert_eq!(again.as_ref(), Ok(&frame), "server {text:?}");
    }
}

/// The error kinds a well-formed JSON object can produce (never a parse or envelope error
/// when the object has a known string type).
fn is_field_error(e: &DecodeError) -> bool {
    matches!(
        e,
        DecodeError::WrongType { .. } | DecodeError::InvalidValue { .. }
    )
}

// ----- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn client_frames_round_trip(frame in client_frame()) {
        let text = frame.encode();
        prop_assert_eq!(ClientFrame::decode(&text, usize::MAX), Ok(frame.clone()), "{}", text);
        prop_assert_eq!(
            ClientFrame::decode_bytes(text.as_bytes(), usize::MAX),
            Ok(frame.clone())
        );
        // The encoding is one JSON object whose `type` is the frame's kind.
        let value: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(value.get("type").and_then(Value::as_str), Some(frame.kind()));
    }

    #[test]
    fn server_frames_round_trip(frame in server_frame()) {
        let text = frame.encode();
        prop_assert_eq!(ServerFrame::decode(&text, usize::MAX), Ok(frame.clone()), "{}", text);
        prop_assert_eq!(
            ServerFrame::decode_bytes(text.as_bytes(), usize::MAX),
            Ok(frame.clone())
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(value.get("type").and_then(Value::as_str), Some(frame.kind()));
    }

    #[test]
    fn forwarded_frames_read_back_as_server_frames(frame in client_frame()) {
        if let Some(forwarded) = frame.clone().into_forwarded() {
            // Same wire text, and the agent side reads it as the forwarded frame.
            prop_assert_eq!(forwarded.encode(), frame.encode());
            prop_assert_eq!(ServerFrame::decode(&forwarded.encode(), usize::MAX), Ok(forwarded));
        } else {
            let kind_is_service_only = ServerFrame::is_known_kind(frame.kind())
                && !ClientFrame::is_known_kind(frame.kind());
            prop_assert!(
                matches!(
                    frame,
                    ClientFrame::Connect(_)
                        | ClientFrame::Keepalive
                        | ClientFrame::Signal(_)
                        | ClientFrame::Invoke(_)
                ) || kind_is_service_only
            );
        }
    }

    #[test]
    fn decode_never_panics_on_strings(text in any::<String>()) {
        let _ = ClientFrame::decode(&text, DEFAULT_MAX_FRAME_BYTES);
        let _ = ServerFrame::decode(&text, DEFAULT_MAX_FRAME_BYTES);
        assert_stable(&text);
    }

    #[test]
    fn decode_never_panics_on_json_like_strings(
        text in "[{}\\[\\]\":,a-z0-9 .eE+\\\\-]{0,64}"
    ) {
        let _ = ClientFrame::decode(&text, DEFAULT_MAX_FRAME_BYTES);
        let _ = ServerFrame::decode(&text, DEFAULT_MAX_FRAME_BYTES);
        assert_stable(&text);
    }

    #[test]
    fn decode_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..256)) {
        let c = ClientFrame::decode_bytes(&bytes, DEFAULT_MAX_FRAME_BYTES);
        let s = ServerFrame::decode_bytes(&bytes, DEFAULT_MAX_FRAME_BYTES);
        if std::str::from_utf8(&bytes).is_err() {
            prop_assert_eq!(c, Err(DecodeError::InvalidUtf8));
            prop_assert_eq!(s, Err(DecodeError::InvalidUtf8));
        }
    }

    #[test]
    fn decode_never_panics_on_json_values(value in json_value()) {
        let text = value.to_string();
        let c = ClientFrame::decode(&text, usize::MAX);
        let s = ServerFrame::decode(&text, usize::MAX);
        if value.is_object() {
            for r in [c.err(), s.err()].into_iter().flatten() {
                prop_assert!(
                    !matches!(r, DecodeError::InvalidJson { .. } | DecodeError::NotAnObject | DecodeError::TooLarge { .. }),
                    "{:?} for {}", r, text
                );
            }
        } else {
            prop_assert_eq!(c, Err(DecodeError::NotAnObject));
            prop_assert_eq!(s, Err(DecodeError::NotAnObject));
        }
        assert_stable(&text);
    }

    #[test]
    fn known_types_with_random_fields_give_frames_or_field_errors(
        kind in prop::sample::select(
            CLIENT_KINDS.iter().chain(SERVER_KINDS).copied().collect::<Vec<_>>()
        ),
        use_mtype in any::<bool>(),
        data in option::of(json_value()),
        extra in btree_map(
            prop::sample::select(vec![
                "keepalive", "direct", "authorization", "groupid", "visitorid",
                "guesttoken", "version", "other",
            ]),
            json_value(),
            0..5,
        ),
    ) {
        let mut object = Map::new();
        object.insert(if use_mtype { "mtype" } else { "type" }.into(), Value::from(kind));
        if let Some(data) = data {
            object.insert("data".into(), data);
        }
        for (k, v) in extra {
            object.insert(k.into(), v);
        }
        let text = Value::Object(object).to_string();
        if let Err(e) = ClientFrame::decode(&text, usize::MAX) {
            prop_assert!(is_field_error(&e), "{:?} for {}", e, text);
        }
        if let Err(e) = ServerFrame::decode(&text, usize::MAX) {
            prop_assert!(is_field_error(&e), "{:?} for {}", e, text);
        }
        assert_stable(&text);
    }

    #[test]
    fn known_types_with_well_shaped_data_decode(
        connected in any::<bool>(),
        status in terms(),
        vis in visibility(),
        noise in json_object(),
    ) {
        // Extra keys inside data and at top level are ignored.
        let mut data = noise.clone();
        data.insert("connected".into(), Value::Bool(connected));
        data.insert("status".into(), Value::from(status.as_str().to_uppercase()));
        data.insert("visibility".into(), Value::from(vis.as_str()));
        let data = Value::Object(data);
        let wrap = |kind: &str| {
            let mut top = noise.clone();
            top.insert("type".into(), Value::from(kind));
            top.insert("mtype".into(), Value::Null);
            top.insert("data".into(), data.clone());
            Value::Object(top).to_string()
        };
        prop_assert_eq!(
            ServerFrame::decode(&wrap("visitorsock"), usize::MAX),
            Ok(ServerFrame::VisitorSock { connected })
        );
        prop_assert_eq!(ClientFrame::decode(&wrap("terms"), usize::MAX), Ok(ClientFrame::Terms(status)));
        prop_assert_eq!(
            ClientFrame::decode(&wrap("visibility"), usize::MAX),
            Ok(ClientFrame::Visibility(vis))
        );
    }
}
