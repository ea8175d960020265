//! Replays the `loginkey` and `token_expiry` fuzz corpora on stable, with the fuzz targets'
//! own checks (the same source files).
//!
//! `FUZZ_CORPUS_WRITE=1 cargo test -p glance-presence-protocol --test corpus_fuzz_checks`
//! regenerates the seed files: deterministic pseudo-random inputs, kept when they reach a case
//! the corpus does not cover yet.

#[allow(dead_code)]
#[path = "../../fuzz/src/input.rs"]
mod input;
#[path = "../../fuzz/src/loginkey.rs"]
mod loginkey;
#[path = "../../fuzz/src/token_expiry.rs"]
mod token_expiry;

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
fn write_seeds<T: Ord + std::fmt::Debug>(target: &str, check: impl Fn(&[u8]) -> T) {
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
        let len = 8 + (next() % 400) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let reached = check(&data);
        if seen.insert(reached) {
            std::fs::write(corpus_dir(target).join(format!("seed_{i:05}")), &data)
                .expect("write seed");
        }
    }
    println!("{target}: {} seeds", seen.len());
}

#[test]
fn loginkey_corpus_replays() {
    write_seeds("loginkey", loginkey::check);
    let reached = replay("loginkey", loginkey::check);
    let all = reached.iter().fold(0, |a, b| a | b);
    // Keys generated, raw keys parsed, mutations refused.
    assert_eq!(all & 0b111, 0b111, "the corpus reaches only {all:#b}");
}

#[test]
fn token_expiry_corpus_replays() {
    write_seeds("token_expiry", token_expiry::check);
    let reached = replay("token_expiry", token_expiry::check);
    let all = reached.iter().fold(0, |a, b| a | b);
    // Expired and live tokens, tokens without a readable exp, raw text.
    assert_eq!(all & 0b11110, 0b11110, "the corpus reaches only {all:#b}");
}
