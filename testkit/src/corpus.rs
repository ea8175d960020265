//! Replaying a fuzz target's corpus (`fuzz/corpus/<target>`) on stable, and growing it: what
//! the corpus tests of the protocol and the service share. Not the checks themselves (those
//! are in [`fuzz`](crate::fuzz)).

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The corpus folder of a fuzz target.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// The files of the target's corpus, sorted.
pub fn corpus_files(target: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every file of the target's corpus (at least four); returns the cases
/// reached.
pub fn replay<T: Ord>(target: &str, check: impl Fn(&[u8]) -> T) -> BTreeSet<T> {
    let files = corpus_files(target);
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

/// Writes seeds for `target` when `FUZZ_CORPUS_WRITE` is set: deterministic pseudo-random
/// inputs of 8 to `8 + max_len` bytes, kept when they reach a case not reached before.
pub fn write_seeds<T: Ord>(target: &str, max_len: usize, check: impl Fn(&[u8]) -> T) {
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
        let reached = check(&data);
        if seen.insert(reached) {
            std::fs::write(corpus_dir(target).join(format!("seed_{i:05}")), &data)
                .expect("write seed");
        }
    }
    println!("{target}: {} seeds", seen.len());
}
