//! The size accounting of a visitor's merged presence record.
//!
//! A record's size is the length of its entries in compact JSON, each counted as `"key":value,`
//! (so the encoded object is at most one byte longer than the size). That is what the record
//! adds to a `lookupvisitor` or `query` answer, which is what has to stay under the client's
//! REST body limit. Nothing is encoded into a buffer to count it.

use std::io;

use glance_presence_protocol::PresenceData;
use serde_json::Value;

/// An `io::Write` that only counts bytes.
#[derive(Default)]
struct ByteCount(usize);

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn encoded_len(value: &impl serde::Serialize) -> usize {
    let mut count = ByteCount::default();
    // Writing JSON text of a string or a `Value` into a counter cannot fail (its keys are
    // strings and the writer never errs); a failure would only undercount what was written.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The bytes of one entry: `"key":value,`.
pub(crate) fn entry_bytes(key: &str, value: &Value) -> usize {
    encoded_len(&key)
        .saturating_add(encoded_len(value))
        .saturating_add(2)
}

/// The size of a whole record (the sum of its entries).
#[cfg(test)]
pub(crate) fn record_bytes(data: &PresenceData) -> usize {
    data.iter()
        .fold(0, |sum, (k, v)| sum.saturating_add(entry_bytes(k, v)))
}

/// The size and key count `record` (of size `bytes`) would have after merging `update` into it
/// (later values win, new keys are added), without merging.
pub(crate) fn merged_size(
    record: &PresenceData,
    bytes: usize,
    update: &PresenceData,
) -> (usize, usize) {
    let mut bytes = bytes;
    let mut keys = record.len();
    for (key, value) in update {
        match record.get(key) {
            Some(old) => {
                bytes = bytes
                    .saturating_sub(entry_bytes(key, old))
                    .saturating_add(entry_bytes(key, value));
            }
            None => {
                bytes = bytes.saturating_add(entry_bytes(key, value));
                keys += 1;
            }
        }
    }
    (bytes, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> PresenceData {
        match value {
            Value::Object(map) => PresenceData::from_map(map),
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn size_is_the_compact_json_encoding_less_one_byte() {
        for value in [
            json!({"url":"https://a.example/","n":1}),
            json!({"q":"\"quoted\" \\ \u{1}\u{e9}","nested":{"a":[1,2,null]},"f":1.5,"b":true}),
            json!({"":""}),
        ] {
            let d = data(value);
            let text = serde_json::to_string(&d).unwrap();
            assert_eq!(record_bytes(&d), text.len() - 1, "{text}");
        }
        assert_eq!(record_bytes(&PresenceData::new()), 0);
    }

    #[test]
    fn merged_size_matches_the_merge() {
        let mut record = data(json!({"url":"https://a.example/","cart":3}));
        let update = data(json!({"url":"https://a.example/checkout","user":"ann"}));
        let (bytes, keys) = merged_size(&record, record_bytes(&record), &update);
        record.merge(&update);
        assert_eq!((bytes, keys), (record_bytes(&record), record.len()));
    }
}
