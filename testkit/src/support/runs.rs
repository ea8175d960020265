//! Pieces both cores' arbitrary runs share: decoding a run from bytes, the virtual time step an
//! op byte stands for, and the report of a run. Not a run itself: each core's `ops` module has
//! its own ops, setup and invariants.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

/// The most ops one run decodes.
const MAX_OPS: usize = 400;

/// Decodes a setup, then one op after another until the bytes run out (no continuation flags,
/// so random bytes give long sequences; `arbitrary_take_rest_iter` would stop at each step with
/// probability 1/2, so most runs would be one op long).
pub fn decode<'a, S: Arbitrary<'a>, O: Arbitrary<'a>>(data: &'a [u8]) -> Option<(S, Vec<O>)> {
    let mut u = Unstructured::new(data);
    let setup = S::arbitrary(&mut u).ok()?;
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_OPS {
        match O::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    Some((setup, ops))
}

/// The time an `Advance(n)` op moves the clock: below 128, that many × 50 ms; otherwise
/// (n - 128) × 2 s.
pub fn advance_step(n: u8) -> Duration {
    if n < 128 {
        Duration::from_millis(u64::from(n) * 50)
    } else {
        Duration::from_secs(u64::from(n - 128) * 2)
    }
}

/// What a run found: every invariant it broke, how far it went, and what the core's own runs
/// count besides (`Counts`).
#[derive(Debug, Default)]
pub struct Report<Counts> {
    pub violations: Vec<String>,
    pub steps: usize,
    pub events: usize,
    /// Connected events seen.
    pub connected: usize,
    pub counts: Counts,
}

impl<Counts> Report<Counts> {
    /// Violations whose text starts with `tag`.
    pub fn of(&self, tag: &str) -> Vec<&String> {
        self.violations
            .iter()
            .filter(|v| v.starts_with(tag))
            .collect()
    }
}

/// Declares a run's `Op` enum: the core's own ops as written, then the fake peer's ops both
/// cores' runs end with (in this order, which the decoding of existing corpora depends on).
/// `CloseChoice` and `StatusChoice` are the calling module's; `respond_body` is what picks an
/// answer's body.
macro_rules! run_ops {
    (
        $(#[$attr:meta])*
        pub enum $name:ident { $($own:tt)* }
        respond_body: $body:ty
    ) => {
        $(#[$attr])*
        pub enum $name {
            $($own)*
            /// A pong on the latest socket.
            Pong,
            /// The latest socket closes.
            Close(CloseChoice),
            /// An input for an older socket.
            Stale { pick: u8, close: bool },
            /// Answers the outstanding request picked by `pick`.
            Respond { pick: u8, status: StatusChoice, body: $body },
            /// Fails the outstanding request picked by `pick` at the transport level.
            FailHttp { pick: u8 },
            /// An answer for a request already answered.
            StaleHttp { pick: u8 },
        }
    };
}
pub(crate) use run_ops;

/// Replays every file of a run target's fuzz corpus (`agent_inputs`, `visitor_inputs`) through
/// `run_bytes`: each file that decodes must run without a violation, and at least `min` files
/// must be there and decode.
pub fn replay_corpus<C>(target: &str, min: usize, run_bytes: impl Fn(&[u8]) -> Option<Report<C>>) {
    let files = crate::corpus::corpus_files(target);
    let mut decoded = 0;
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        if let Some(report) = run_bytes(&data) {
            decoded += 1;
            assert!(
                report.violations.is_empty(),
                "{}: {:?}",
                path.display(),
                report.violations
            );
        }
    }
    let count = files.len();
    assert!(count >= min, "the seed corpus has only {count} files");
    assert!(decoded >= min, "only {decoded} corpus files decode");
}

/// What a run reached, as the name of the corpus file that keeps it: runs that reach the same
/// coarse counts are the same case.
pub trait SeedName {
    /// The file name (`seed_` and the counts).
    fn seed_name(&self) -> String;
}

/// Grows a run target's fuzz corpus when the environment variable `when` is set: runs 5,000
/// inputs from `next_input` and writes each one that reaches a case not seen before (named by
/// its report's [`SeedName`]). Returns how many files it wrote.
pub fn grow_corpus<C>(
    when: &str,
    target: &str,
    mut next_input: impl FnMut() -> Vec<u8>,
    run_bytes: impl Fn(&[u8]) -> Option<Report<C>>,
) -> usize
where
    Report<C>: SeedName,
{
    if std::env::var_os(when).is_none() {
        return 0;
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5_000 {
        let data = next_input();
        let Some(report) = run_bytes(&data) else {
            continue;
        };
        let name = report.seed_name();
        if seen.insert(name.clone()) {
            let path = crate::corpus::corpus_dir(target).join(name);
            std::fs::write(path, &data).expect("write seed");
        }
    }
    seen.len()
}

/// The proptest side of the cores' property and corpus tests (with the `proptest` feature):
/// the case count, the random bytes a run decodes from, and deterministic samples of runs.
#[cfg(feature = "proptest")]
pub mod props {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{TestCaseError, TestRunner};

    use super::Report;

    /// 1,000 cases, no failure files.
    pub fn cases() -> ProptestConfig {
        ProptestConfig {
            cases: 1_000,
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Up to 4 KiB of random bytes, decoded into a run.
    pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..4096)
    }

    /// The reports of `n` runs of deterministic random [`bytes`] (an empty report where they
    /// do not decode), to check that the generator reaches the interesting states.
    pub fn sample_reports<C: Default>(
        n: usize,
        run_bytes: impl Fn(&[u8]) -> Option<Report<C>>,
    ) -> Vec<Report<C>> {
        let mut runner = TestRunner::deterministic();
        (0..n)
            .map(|_| {
                let data = bytes().new_tree(&mut runner).unwrap().current();
                run_bytes(&data).unwrap_or_default()
            })
            .collect()
    }

    /// Deterministic random inputs of 64 to 2,047 bytes, to grow a corpus from.
    pub fn seed_inputs() -> impl FnMut() -> Vec<u8> {
        let mut runner = TestRunner::deterministic();
        let strategy = vec(any::<u8>(), 64..2048);
        move || strategy.new_tree(&mut runner).expect("tree").current()
    }

    impl<C> Report<C> {
        /// Fails the property with every violation when one is tagged `tag`.
        pub fn none_of(&self, tag: &str) -> Result<(), TestCaseError> {
            prop_assert!(self.of(tag).is_empty(), "{:?}", self.violations);
            Ok(())
        }
    }
}
