//! Replays the `loginkey` and `token_expiry` fuzz corpora on stable, with the fuzz targets'
//! own checks (from the workspace's test kit).
//!
//! `FUZZ_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_fuzz_checks`
//! regenerates the seed files: deterministic pseudo-random inputs, kept when they reach a case
//! the corpus does not cover yet.

use glance_presence_testkit::corpus::{replay, write_seeds};
use glance_presence_testkit::fuzz::{loginkey, token_expiry};

#[test]
fn loginkey_corpus_replays() {
    write_seeds("loginkey", 400, loginkey::check);
    let reached = replay("loginkey", loginkey::check);
    let all = reached.iter().fold(0, |a, b| a | b);
    // Keys generated, raw keys parsed, mutations refused.
    assert_eq!(all & 0b111, 0b111, "the corpus reaches only {all:#b}");
}

#[test]
fn token_expiry_corpus_replays() {
    write_seeds("token_expiry", 400, token_expiry::check);
    let reached = replay("token_expiry", token_expiry::check);
    let all = reached.iter().fold(0, |a, b| a | b);
    // Expired and live tokens, tokens without a readable exp, raw text.
    assert_eq!(all & 0b11110, 0b11110, "the corpus reaches only {all:#b}");
}
