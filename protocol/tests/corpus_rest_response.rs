//! Replays the `rest_response` fuzz corpus on stable: every file is a 2-byte big-endian HTTP
//! status followed by a body, and goes through every REST response parser, as the fuzz target
//! does. The file names say what some of them must give.

use std::fs;
use std::path::PathBuf;

use glance_presence_protocol::rest::{
    parse_authorize, parse_find, parse_lookup, parse_presence, parse_python_dict, parse_query,
    parse_signal, parse_unique_visitor, parse_visitor_settings, LookupResult, RestError,
};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rest_response")
}

/// What the fuzz target does, with the status mapping checked.
fn replay(name: &str, status: u16, body: &[u8]) {
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
            (401 | 403, RestError::Authorization { status: s, .. }) => {
                assert_eq!(s, status, "{name}")
            }
            (503, RestError::ServiceUnavailable) | (0, RestError::Connection { .. }) => {}
            (401 | 403 | 503 | 0, other) => panic!("{name}: status {status} gave {other:?}"),
            (_, RestError::Error { status: s, .. }) => assert_eq!(s, status, "{name}"),
            (_, RestError::VisitorNotPresent) => {}
            (_, other) => panic!("{name}: status {status} gave {other:?}"),
        }
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = parse_python_dict(text);
    }
}

#[test]
fn replay_rest_response_corpus() {
    let mut files: Vec<_> = fs::read_dir(corpus_dir())
        .expect("the rest_response corpus exists")
        .map(|entry| entry.expect("readable corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} corpus files", files.len());
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let data = fs::read(path).expect("readable corpus file");
        if data.len() < 2 {
            continue;
        }
        let status = u16::from_be_bytes([data[0], data[1]]);
        let body = &data[2..];
        replay(&name, status, body);

        // Named seeds say what they must give.
        if name.starts_with("lookup_") {
            assert!(parse_lookup(status, body).is_ok(), "{name}");
        }
        if name.starts_with("malformed_") {
            assert!(
                matches!(parse_lookup(status, body), Err(RestError::Error { .. })),
                "{name}"
            );
        }
        if name == "lookup_absent" {
            assert_eq!(parse_lookup(status, body), Ok(LookupResult::Absent));
        }
        if name.starts_with("find_") {
            assert!(parse_find(status, body).is_ok(), "{name}");
        }
        if name.starts_with("signal_") && status == 200 {
            assert!(parse_signal(status, body).is_ok(), "{name}");
        }
        if name.starts_with("authorize_") {
            assert!(parse_authorize(status, body).is_ok(), "{name}");
        }
        if name.starts_with("settings") {
            assert!(parse_visitor_settings(status, body).is_ok(), "{name}");
        }
    }
}
