//! A byte cursor that turns fuzzer bytes into values. Every read succeeds: once the bytes run
//! out it gives zeros and empty strings, so every input decodes into some case.

use serde_json::{Map, Number, Value};

/// Reads values from the front of a byte slice.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len()
    }

    /// One byte (0 when exhausted).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// A boolean (the low bit of a byte).
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number below `n` (`n` > 0), from one byte when `n` ≤ 256.
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.u8()) % n
        } else {
            self.u32() as usize % n
        }
    }

    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Up to `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed byte string: a one-byte length (two bytes when `max` > 255), at most
    /// `max`.
    pub fn blob(&mut self, max: usize) -> &'a [u8] {
        let len = if max > 255 {
            usize::from(self.u16())
        } else {
            usize::from(self.u8())
        };
        self.bytes(len.min(max))
    }

    /// A length-prefixed string (lossy UTF-8), at most `max` bytes before the conversion.
    pub fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.blob(max)).into_owned()
    }

    /// A string that is often one of `words` (so known names are reached), else arbitrary.
    pub fn word(&mut self, words: &[&str], max: usize) -> String {
        let n = self.u8();
        if usize::from(n) < words.len() * 8 && !words.is_empty() {
            words[usize::from(n) % words.len()].to_owned()
        } else {
            self.text(max)
        }
    }

    /// An arbitrary JSON value at most `depth` levels deep, with short strings and small
    /// containers (objects and arrays of up to 6 members).
    pub fn json(&mut self, depth: u8) -> Value {
        let kinds = if depth == 0 { 6 } else { 8 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.bool()),
            2 => Value::from(self.u64() >> (self.u8() % 64)),
            3 => Value::from(-(self.u32() as i64)),
            4 => {
                let f = f64::from_bits(self.u64());
                Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            5 => Value::String(self.word(JSON_WORDS, 24)),
            6 => {
                let n = self.below(7);
                Value::Array((0..n).map(|_| self.json(depth - 1)).collect())
            }
            _ => {
                let n = self.below(7);
                let mut map = Map::new();
                for _ in 0..n {
                    let key = self.word(KEYS, 12);
                    let value = self.json(depth - 1);
                    map.insert(key, value);
                }
                Value::Object(map)
            }
        }
    }
}

/// Strings that mean something somewhere in the protocol.
const JSON_WORDS: &[&str] = &[
    "",
    "visible",
    "hidden",
    "accepted",
    "declined",
    "displayed",
    "GLANCE.Cobrowse.VisitorUI.showTerms",
    "GLANCE_COBROWSE.Custom.x",
    "1699999990.0",
    "127.0.0.1:8080",
    "https://shop.example.com/",
    "connfail",
    "authorization",
];

/// Object keys that mean something somewhere in the protocol.
const KEYS: &[&str] = &[
    "type",
    "mtype",
    "data",
    "connected",
    "keepalive",
    "url",
    "browser",
    "visibility",
    "status",
    "func",
    "args",
    "direct",
    "error",
    "detail",
    "groupid",
    "visitorid",
    "authorization",
    "guesttoken",
    "ver",
    "x",
];
