//! Property tests: the response parsers never panic on any status and any bytes or JSON, the
//! Python-dict parser never panics, and what the reference service writes parses back to the
//! same value.

use glance_presence_protocol::rest::{
    parse_authorize, parse_find, parse_lookup, parse_presence, parse_python_dict, parse_query,
    parse_signal, parse_unique_visitor, parse_visitor_settings, Delivery, LookupResult,
    QueryResult, RestError, ServerAddr, UniqueVisitor, VisitorRecord, VisitorSettings,
    VisitorState,
};
use glance_presence_protocol::{PresenceData, TermsStatus, UniqueId, Visibility, VisitorId};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Runs every parser; checks the invariants that hold whatever the input.
fn run_all(status: u16, body: &[u8]) {
    let errors = [
        parse_lookup(status, body).err(),
        parse_find(status, body).err(),
        parse_signal(status, body).err(),
        parse_query(status, body).err(),
        parse_unique_visitor(status, body).err(),
        parse_presence(status, body).err(),
        parse_visitor_settings(status, body).err(),
        parse_authorize(status, body).err(),
    ];
    for err in errors.into_iter().flatten() {
        match (status, &err) {
            (401 | 403, RestError::Authorization { status: s, .. }) => assert_eq!(*s, status),
            (401 | 403, other) => panic!("{status}: {other:?}"),
            (503, RestError::ServiceUnavailable) => {}
            (503, other) => panic!("503: {other:?}"),
            (0, RestError::Connection { .. }) => {}
            (0, other) => panic!("0: {other:?}"),
            (_, RestError::Error { status: s, detail }) => {
                assert_eq!(*s, status);
                assert!(!detail.is_empty());
            }
            (_, RestError::VisitorNotPresent) => {}
            (_, other) => panic!("{status}: {other:?}"),
        }
        // Error texts stay short whatever the body.
        assert!(err.to_string().chars().count() < 600, "{err}");
    }
    if !(200..300).contains(&status) && ![0, 401, 403, 503].contains(&status) {
        assert!(parse_signal(status, body).is_err());
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        "\\{'[a-z]{0,4}': '[a-z']{0,4}'\\}".prop_map(Value::String),
        "[0-9]{1,12}(\\.[0-9]{0,3})?".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A leaf, or one level of array/object of leaves.
fn shallow_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => json_leaf(),
        1 => prop::collection::vec(json_leaf(), 0..4).prop_map(Value::Array),
        1 => prop::collection::vec((json_key(), json_leaf()), 0..4)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
    ]
}

/// Keys that the parsers look at, plus arbitrary ones.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "direct",
            "directserver",
            "ds",
            "visitorpresent",
            "timestamp",
            "visitorid",
            "groupid",
            "tlsport",
            "httpsport",
            "visitorfound",
            "delivered",
            "held",
            "present",
            "sockets",
            "since",
            "presence",
            "visibility",
            "terms",
            "insession",
            "guesttoken",
            "uniqueid",
            "timeout",
            "presenceUrl",
            "isPresenceLoadBalanced",
            "authToken",
            "authTokeExp",
            "err",
            "msg",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z]{1,8}",
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        prop::sample::select(vec![0u16, 204, 400, 401, 403, 404, 500, 503]),
        any::<u16>(),
    ]
}

fn presence_data() -> impl Strategy<Value = PresenceData> {
    let value = prop_oneof![
        "[ -~]{0,16}".prop_map(Value::String),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
    ];
    // Keys that are not documented record fields (those would be read as such).
    prop::collection::vec(("p_[a-z]{1,8}", value), 0..6).prop_map(|pairs| {
        // A string holding a Python-dict literal would come back as an object.
        let map: Map<String, Value> = pairs
            .into_iter()
            .filter(|(_, v)| !v.as_str().is_some_and(|s| s.starts_with("{'")))
            .collect();
        PresenceData::from_map(map)
    })
}

fn host() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}"
}

fn epoch() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u64..4_000_000_000).prop_map(|s| s as f64),
        (0.0f64..4.0e9),
    ]
}

prop_compose! {
    fn visitor_record()(
        direct in proptest::option::of(host()),
        directserver in proptest::option::of(host()),
        ds in proptest::option::of("[a-z0-9./]{1,12}"),
        visitorpresent in proptest::option::of(epoch()),
        timestamp in proptest::option::of(epoch()),
        visitorid in proptest::option::of("[A-Za-z0-9_~-]{1,20}"),
        groupid in proptest::option::of("[1-9][0-9]{0,8}"),
        tlsport in proptest::option::of(any::<u16>()),
        httpsport in proptest::option::of(any::<u16>()),
        presence in presence_data(),
    ) -> VisitorRecord {
        VisitorRecord { direct, directserver, ds, visitorpresent, timestamp, visitorid, groupid, tlsport, httpsport, presence }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic_on_bytes(status in status(), body in prop::collection::vec(any::<u8>(), 0..256)) {
        run_all(status, &body);
    }

    #[test]
    fn parsers_never_panic_on_json(status in status(), value in json_value()) {
        run_all(status, value.to_string().as_bytes());
    }

    #[test]
    fn parsers_never_panic_on_objects_with_known_keys(
        status in status(),
        pairs in prop::collection::vec((json_key(), shallow_json()), 0..10),
    ) {
        let value = Value::Object(pairs.into_iter().collect());
        run_all(status, value.to_string().as_bytes());
    }

    #[test]
    fn python_dict_parser_never_panics(text in ".{0,64}", tail in "[{}':, a-z0-9\\[\\]\"]{0,32}") {
        let _ = parse_python_dict(&text);
        let candidate = format!("{{'{tail}");
        if let Some(value) = parse_python_dict(&candidate) {
            // What it returns is what JSON-parsing the quote-swapped text gives.
            prop_assert_eq!(Some(value), serde_json::from_str(&candidate.replace('\'', "\"")).ok());
        }
    }

    #[test]
    fn server_addr_parse_never_panics(text in ".{0,40}") {
        if let Ok(server) = ServerAddr::parse(&text) {
            prop_assert_eq!(ServerAddr::parse(&server.to_string()), Ok(server.clone()));
            prop_assert!(!server.http_base().contains(char::is_whitespace));
        }
    }

    #[test]
    fn lookup_records_round_trip(record in visitor_record()) {
        let body = record.to_json().to_string();
        let parsed = parse_lookup(200, body.as_bytes()).unwrap();
        let all_empty = record == VisitorRecord::default();
        if all_empty {
            prop_assert_eq!(parsed, LookupResult::Absent);
        } else {
            prop_assert_eq!(parsed, LookupResult::Present(record.clone()));
        }
        // The direct server is directserver-or-direct with the port rule.
        let chosen = record.directserver.clone().filter(|s| !s.is_empty()).or(record.direct.clone());
        prop_assert_eq!(record.direct_server().is_some(), chosen.is_some());
        if let (Some(chosen), Some(server)) = (chosen, record.direct_server()) {
            prop_assert!(server.starts_with(&chosen));
        }
    }

    #[test]
    fn query_states_round_trip(
        present in any::<bool>(),
        sockets in any::<u32>(),
        since in epoch(),
        presence in presence_data(),
        visibility in proptest::option::of(prop::sample::select(vec![Visibility::Hidden, Visibility::Visible])),
        terms in proptest::option::of(prop::sample::select(vec![TermsStatus::Displayed, TermsStatus::Accepted, TermsStatus::Declined])),
        in_session in any::<bool>(),
    ) {
        let state = VisitorState { present, sockets, since, presence, visibility, terms, in_session };
        let body = state.to_json().to_string();
        let expected = if present { QueryResult::Present(state) } else { QueryResult::Absent };
        prop_assert_eq!(parse_query(200, body.as_bytes()).unwrap(), expected);
    }

    #[test]
    fn unique_visitors_and_settings_round_trip(
        unique in "[0-9]{1,12}",
        guesttoken in proptest::option::of("[A-Za-z0-9._-]{1,40}"),
        timeout in any::<u64>(),
        presence_url in proptest::option::of(host()),
        load_balanced in any::<bool>(),
        delivered in any::<bool>(),
    ) {
        let uniqueid = UniqueId::new(unique).unwrap();
        let visitor = UniqueVisitor { visitorid: VisitorId::from_unique(&uniqueid), guesttoken, uniqueid, timeout };
        prop_assert_eq!(parse_unique_visitor(200, visitor.to_json().to_string().as_bytes()).unwrap(), visitor);
        let settings = VisitorSettings { presence_url, load_balanced };
        prop_assert_eq!(parse_visitor_settings(200, settings.to_json().to_string().as_bytes()).unwrap(), settings);
        let outcome = if delivered { Delivery::Delivered } else { Delivery::Held };
        prop_assert_eq!(parse_signal(200, outcome.to_json().to_string().as_bytes()).unwrap(), outcome);
    }
}
