//! Replays the `server_addr`, `rest_requests` and `service_frames` fuzz corpora on stable,
//! with the fuzz targets' own checks (the same source files).
//!
//! `FUZZ_CORPUS_WRITE=1 cargo test -p glance-presence-service --test fuzz_corpus` regenerates
//! the seed files: deterministic pseudo-random inputs, kept when they reach a case the corpus
//! does not cover yet.

#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/rest_requests.rs"]
mod rest_requests;
#[path = "../../fuzz/src/server_addr.rs"]
mod server_addr;
#[path = "../../fuzz/src/service_frames.rs"]
mod service_frames;

use std::collections::BTreeSet;
use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus; returns the cases reached.
fn replay<T: Ord>(target: &str, check: impl Fn(&[u8]) -> T) -> BTreeSet<T> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "{target}: only {} corpus files",
        files.len()
    );
    files
        .iter()
        .map(|path| check(&std::fs::read(path).expect("corpus file")))
        .collect()
}

/// Writes seeds for `target` when `FUZZ_CORPUS_WRITE` is set.
fn write_seeds<T: Ord>(target: &str, max_len: usize, check: impl Fn(&[u8]) -> T) {
    if std::env::var_os("FUZZ_CORPUS_WRITE").is_none() {
        return;
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut seen = BTreeSet::new();
    for i in 0..20_000 {
        let len = 8 + (next() % max_len as u64) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if seen.insert(check(&data)) {
            std::fs::write(corpus_dir(target).join(format!("seed_{i:05}")), &data)
                .expect("write seed");
        }
    }
}

#[test]
fn server_addr_corpus_replays() {
    write_seeds("server_addr", 64, server_addr::check);
    let all = replay("server_addr", server_addr::check)
        .iter()
        .fold(0, |a, b| a | b);
    // Accepted, refused, IPv6, loopback.
    assert_eq!(all & 0b1111, 0b1111, "the corpus reaches only {all:#b}");
}

#[test]
fn rest_requests_corpus_replays() {
    write_seeds("rest_requests", 600, rest_requests::check);
    let all = replay("rest_requests", rest_requests::check)
        .iter()
        .fold(0, |a, b| a | b);
    // Query round trips, client URLs, tokens, Authorize bodies, signal and invoke bodies, the
    // service answering client and arbitrary requests.
    assert_eq!(
        all & 0b1_1011_1111,
        0b1_1011_1111,
        "the corpus reaches only {all:#b}"
    );
}

#[test]
fn service_frames_corpus_replays() {
    write_seeds("service_frames", 1500, |data| {
        let r = service_frames::check(data);
        (
            r.connected.min(3),
            r.present.min(2),
            r.forwarded.min(1),
            r.signals.min(1),
            r.closes.min(2),
        )
    });
    let reached = replay("service_frames", service_frames::check);
    assert!(
        reached.iter().any(|r| r.present > 0),
        "no visitor became present"
    );
    assert!(
        reached.iter().any(|r| r.forwarded > 0),
        "no frame was forwarded"
    );
    assert!(reached.iter().any(|r| r.signals > 0), "no signal was sent");
}
