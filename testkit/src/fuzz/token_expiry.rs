//! Token expiry checks, through the smallest public path to the agent's JWT `exp` reader: an
//! agent configured with a bare token connects at a given wall-clock time, and must stop at
//! once with an authorization error exactly when the token's `exp` is not after that time.
//!
//! Input: a mode byte, then either a JWT built from pieces (an `exp` claim of every JSON kind,
//! padded or not, extra segments, other claims) whose expiry is known, or raw token text; then
//! the wall-clock time. Built tokens must be read as a reference reader reads them; for raw
//! text the answer must be monotonic in time (expired at `t` means expired at every later time).

use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{AgentConfig, AgentEvent, AgentProtocol};
use glance_presence_protocol::io::{Output, SansIo};
use serde_json::{Map, Value};

use super::input::Input;

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Whether an agent with `token` stops for authorization on `connect` at `unix_secs`;
/// `None` when the configuration refuses the token.
pub fn stops_at(token: &str, unix_secs: u64) -> Option<bool> {
    let start = Instant::now();
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token(token)
        .presence_server("http://127.0.0.1:8080")
        .build()
        .ok()?;
    let mut agent = AgentProtocol::new(config, start, Duration::from_secs(unix_secs));
    agent.connect(start).expect("a new agent connects");
    let mut stopped = false;
    let mut auth_error = false;
    while let Some(output) = agent.poll_output() {
        match output {
            Output::Event(AgentEvent::Stopped { .. }) => stopped = true,
            Output::Event(AgentEvent::Error { detail, .. }) if detail == "authorization" => {
                auth_error = true;
            }
            _ => {}
        }
    }
    assert_eq!(
        stopped, auth_error,
        "stopped without the authorization error"
    );
    Some(stopped)
}

/// The wall clock in milliseconds as the agent reads it (saturating).
fn unix_ms(unix_secs: u64) -> u64 {
    unix_secs.saturating_mul(1000)
}

/// Which cases an input reached: bit 0 built token, bit 1 expired, bit 2 not expired, bit 3
/// no readable `exp`, bit 4 raw text.
pub fn check(data: &[u8]) -> u32 {
    let mut u = Input::new(data);
    let mut reached = 0;
    if u.below(4) == 0 {
        reached |= 16;
        let token = u.text(u16::MAX as usize);
        let t1 = u.u64() >> u.below(64);
        let t2 = t1.saturating_add(u.u64() >> u.below(64));
        if let (Some(a), Some(b)) = (stops_at(&token, t1), stops_at(&token, t2)) {
            assert!(
                !a || b,
                "{token:?} expired at {t1} but not at the later {t2}"
            );
        }
        return reached;
    }
    reached |= 1;
    let now = u.u64() >> u.below(64);
    // The exp claim: near `now` (either side), anywhere, a float, negative, or not a number.
    let exp: Value = match u.below(9) {
        0 => Value::from(now.wrapping_add(u64::from(u.u16())).wrapping_sub(32768)),
        1 => Value::from(u.u64()),
        2 => Value::from((now as f64) + f64::from(u.u16()) - 32768.0 + f64::from(u.u8()) / 256.0),
        3 => {
            serde_json::Number::from_f64(f64::from_bits(u.u64())).map_or(Value::Null, Value::Number)
        }
        4 => Value::from(-i64::from(u.u32()) - 1),
        5 => Value::String(now.to_string()),
        6 => Value::Bool(u.bool()),
        7 => u.json(2),
        _ => Value::Null,
    };
    let mut claims = Map::new();
    for _ in 0..u.below(3) {
        let key = u.word(&["sub", "iat", "group", "service"], 8);
        if key != "exp" {
            claims.insert(key, u.json(1));
        }
    }
    let has_exp = u.below(8) != 0;
    if has_exp {
        claims.insert("exp".to_owned(), exp.clone());
    }
    // What the claim means: Unix seconds, an integer or a float (truncated); a negative number
    // or anything that is not a number means no expiry.
    let expected = match (&exp, has_exp) {
        (Value::Number(n), true) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        _ => None,
    };
    let payload = Value::Object(claims).to_string();
    let mut payload_b64 = base64url(payload.as_bytes());
    let padded = u.below(4) == 0;
    if padded {
        while !payload_b64.len().is_multiple_of(4) {
            payload_b64.push('=');
        }
    }
    let header = u.word(&["eyJhbGciOiJIUzI1NiJ9", ""], 40);
    let sig = u.word(&["c2lnbmF0dXJl", ""], 60);
    let shape = u.below(8);
    let token = match shape {
        0 => format!("{header}.{payload_b64}"),
        1 => format!("{header}.{payload_b64}.{sig}.extra"),
        _ => format!("{header}.{payload_b64}.{sig}"),
    };
    let well_formed = shape >= 2 && !header.contains('.') && !sig.contains('.');
    let Some(stopped) = stops_at(&token, now) else {
        return reached;
    };
    if well_formed {
        let expect_stop = expected.is_some_and(|e| e.saturating_mul(1000) <= unix_ms(now));
        assert_eq!(
            stopped, expect_stop,
            "token {token:?} (claims {payload}) at {now}: exp read as {expected:?}"
        );
        if expected.is_none() {
            reached |= 8;
        }
    } else {
        assert!(
            !stopped,
            "a token that is not JWT-shaped was read as expired: {token:?}"
        );
    }
    reached |= if stopped { 2 } else { 4 };
    reached
}
