//! Pieces both cores' arbitrary runs share: decoding a run from bytes, the virtual time step an
//! op byte stands for, canonical HTTP bodies with one field changed, and picking violations by
//! tag. Not a run itself: each core's `ops` module has its own ops, setup and invariants.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;

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

/// A canonical body with one top-level field (picked by `pick`) set to `value`, or removed.
pub fn changed(body: &str, pick: u8, value: Option<&Value>) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(mut map)) if !map.is_empty() => {
            let key = map
                .keys()
                .nth(usize::from(pick) % map.len())
                .cloned()
                .unwrap_or_default();
            match value {
                Some(v) => {
                    map.insert(key, v.clone());
                }
                None => {
                    map.remove(&key);
                }
            }
            Value::Object(map).to_string()
        }
        _ => value.map_or_else(String::new, Value::to_string),
    }
}

/// The violations whose text starts with `tag`.
pub fn tagged<'a>(violations: &'a [String], tag: &str) -> Vec<&'a String> {
    violations.iter().filter(|v| v.starts_with(tag)).collect()
}
