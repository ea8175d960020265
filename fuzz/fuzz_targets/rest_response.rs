//! Fuzz target: every REST response parser on an arbitrary status and body.
//!
//! Input layout: the first two bytes are the HTTP status (big-endian `u16`), the rest is the
//! body. The parsers must never panic; the status mapping must hold for every parser.
#![no_main]

use glance_presence_protocol::rest::{
    check_response, parse_authorize, parse_find, parse_lookup, parse_presence, parse_python_dict,
    parse_query, parse_signal, parse_unique_visitor, parse_visitor_settings, RestError,
    DEFAULT_MAX_BODY_BYTES,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let body = &data[2..];
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
        match (status, err) {
            (401 | 403, RestError::Authorization { status: s, .. }) => assert_eq!(s, status),
            (503, RestError::ServiceUnavailable) | (0, RestError::Connection { .. }) => {}
            (401 | 403 | 503 | 0, other) => panic!("status {status} gave {other:?}"),
            (_, RestError::Error { status: s, .. }) => assert_eq!(s, status),
            (_, RestError::VisitorNotPresent) => {}
            (_, other) => panic!("status {status} gave {other:?}"),
        }
    }
    let _ = check_response(status, body, DEFAULT_MAX_BODY_BYTES);
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_python_dict(text);
    }
});
