//! Replays the `server_addr`, `rest_requests` and `service_frames` fuzz corpora on stable,
//! with the fuzz targets' own checks (from the workspace's test kit).
//!
//! `FUZZ_CORPUS_WRITE=1 cargo test -p glance-presence-service --test fuzz_corpus` regenerates
//! the seed files: deterministic pseudo-random inputs, kept when they reach a case the corpus
//! does not cover yet.

use glance_presence_testkit::corpus::{replay, write_seeds};
use glance_presence_testkit::fuzz::{rest_requests, server_addr, service_frames};

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
