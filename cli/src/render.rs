//! How events look on a terminal: one readable line per agent event, or one JSON line.
//!
//! A JSON line is the event as the library serializes it (`"event"` names it) with two fields
//! put first: `time_unix_ms`, when it was printed (Unix milliseconds, the one time unit of the
//! command's JSON), and `visitor_id`, the visitor it is about. The lines are
//! [`JsonLine`]s; their schema, `cli/events.schema.json`, is generated from that type.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use glance_presence_protocol::agent::{
    AgentEvent, DisconnectReason, PresenceSource, RequestValue, StopReason, VisitorPresence,
};
use glance_presence_protocol::presence::PresenceData;
use glance_presence_protocol::rest::Delivery;
use serde_json::Value;

use crate::line::{Event, JsonLine};

/// Prints events, as a timeline or as JSON lines.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    start: Instant,
    visitor: String,
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Unix seconds (as Glance sends them, a float) in Unix milliseconds.
pub fn seconds_to_ms(seconds: f64) -> Option<u64> {
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// One JSON line about `visitor`: `time_unix_ms` (now) and `visitor_id` first, then the
/// event's own fields.
pub fn event_line(visitor: &str, event: Event<'_>) -> String {
    JsonLine::Event {
        time_unix_ms: unix_ms(),
        visitor_id: visitor,
        event,
    }
    .to_text()
}

impl Printer {
    pub fn new(json: bool, visitor: &str) -> Self {
        Printer {
            json,
            start: Instant::now(),
            visitor: visitor.to_owned(),
        }
    }

    /// Prints one agent event. Failures to write stdout (a closed pipe) are ignored.
    pub fn agent_event(&self, event: &AgentEvent) {
        let line = if self.json {
            event_line(&self.visitor, Event::Agent(event))
        } else {
            self.timeline_line(&describe(event))
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Prints a free-form timeline line (human mode only).
    pub fn note(&self, text: &str) {
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.timeline_line(text));
            let _ = out.flush();
        }
    }

    fn timeline_line(&self, text: &str) -> String {
        let t = self.start.elapsed().as_secs_f64();
        format!("[{t:6.2}s] {text}")
    }
}

fn fields(data: &PresenceData) -> String {
    data.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a link went down, in words.
pub fn disconnect_reason(why: &DisconnectReason) -> String {
    match why {
        DisconnectReason::ClosedByPeer { code, reason } => match code {
            Some(code) if !reason.is_empty() => format!("closed by the service ({code} {reason})"),
            Some(code) => format!("closed by the service ({code})"),
            None => "closed by the service".to_owned(),
        },
        DisconnectReason::TransportError { detail } => format!("transport error: {detail}"),
        DisconnectReason::HandshakeRefused { status } => {
            format!("WebSocket upgrade refused (HTTP {status})")
        }
        DisconnectReason::DeadLink => "no answer to the idle ping (dead link)".to_owned(),
        DisconnectReason::ConnectTimeout => "connect timed out".to_owned(),
        DisconnectReason::ConnectFailed {
            step,
            reason,
            detail,
        } => format!("{step} failed ({reason}): {detail}"),
        DisconnectReason::Redirect { server } => format!("redirected to {server}"),
        DisconnectReason::ScaleDown => "the service is scaling down".to_owned(),
        DisconnectReason::TokenRefused => "token refused; renewing it".to_owned(),
        DisconnectReason::Hidden => "the page was hidden".to_owned(),
        _ => "the link ended".to_owned(),
    }
}

/// One readable line for an agent event.
pub fn describe(event: &AgentEvent) -> String {
    match event {
        AgentEvent::Connecting { attempt: 0 } => "agent connecting".to_owned(),
        AgentEvent::Connecting { attempt } => {
            format!("agent connecting again (retry {attempt})")
        }
        AgentEvent::Connected {
            server,
            keepalive_secs,
        } => format!("agent connected to {server} (keepalive {keepalive_secs} s)"),
        AgentEvent::Disconnected { why } => {
            format!("agent link lost: {}", disconnect_reason(why))
        }
        AgentEvent::Reconnecting { delay_ms, .. } => {
            format!("agent reconnecting in {}", human_delay(*delay_ms))
        }
        AgentEvent::Stopped { why } => match why {
            StopReason::Requested => "agent stopped".to_owned(),
            StopReason::ServerClose => "agent stopped: the service closed the session".to_owned(),
            StopReason::Authorization => "agent stopped: authorization refused".to_owned(),
            StopReason::PresenceDisabled => {
                "agent stopped: presence is disabled for this group".to_owned()
            }
            _ => "agent stopped".to_owned(),
        },
        AgentEvent::VisitorPresence { state, .. } => match state {
            VisitorPresence::Present => "visitor PRESENT".to_owned(),
            VisitorPresence::Absent => "visitor ABSENT".to_owned(),
            VisitorPresence::Unknown => "visitor presence unknown (agent offline)".to_owned(),
        },
        AgentEvent::VisitorSocket { connected } => {
            if *connected {
                "  visitor socket open".to_owned()
            } else {
                "  visitor socket closed".to_owned()
            }
        }
        AgentEvent::Presence {
            source,
            data,
            changed,
        } => match source {
            PresenceSource::Snapshot => format!("presence snapshot: {}", fields(data)),
            _ if changed.is_empty() => format!("presence: {} (unchanged)", fields(data)),
            _ => format!(
                "presence: {} (changed: {})",
                fields(data),
                changed.join(", ")
            ),
        },
        AgentEvent::Terms { status } => format!("terms {}", status.as_str()),
        AgentEvent::Visibility { visibility } => format!("tab {}", visibility.as_str()),
        AgentEvent::SessionStart { .. } => "cobrowse session started".to_owned(),
        AgentEvent::SessionEnd { .. } => "cobrowse session ended".to_owned(),
        AgentEvent::VisitorError { data } => format!("visitor error: {data}"),
        AgentEvent::Error { error, detail } => format!("error: {error} ({detail})"),
        AgentEvent::Redirected { server } => format!("agent redirected to {server}"),
        AgentEvent::RequestOutcome {
            request, result, ..
        } => match result {
            Ok(RequestValue::Sent(delivery)) => {
                format!("{}: {}", request_name(request), delivery_words(delivery))
            }
            Ok(RequestValue::Lookup { visitor: None }) => "lookup: visitor absent".to_owned(),
            Ok(RequestValue::Lookup {
                visitor: Some(visitor),
            }) => format!("lookup: visitor present: {}", fields(&visitor.presence)),
            Ok(other) => format!(
                "{} ok: {}",
                request_name(request),
                serde_json::to_string(other).unwrap_or_default()
            ),
            Err(failure) => format!("{} failed: {failure}", request_name(request)),
        },
        AgentEvent::ProtocolViolation { detail } => format!("protocol violation: {detail}"),
        AgentEvent::Other { kind, data } => match data {
            Some(data) => format!("message {kind}: {data}"),
            None => format!("message {kind}"),
        },
        other => serde_json::to_string(other).unwrap_or_else(|_| "event".to_owned()),
    }
}

fn request_name(kind: &impl serde::Serialize) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "request".to_owned())
}

/// What the service said about a signal or invoke, in words.
pub fn delivery_words(delivery: &Delivery) -> String {
    match delivery {
        Delivery::Delivered => "delivered to the visitor".to_owned(),
        Delivery::Held => "held for the visitor's next connect".to_owned(),
        Delivery::Accepted { body } => format!("accepted ({body})"),
        Delivery::SentUnconfirmed => "sent on the agent's socket (not confirmed)".to_owned(),
        _ => "accepted".to_owned(),
    }
}

/// A delay as people read it: `250 ms`, `1.5 s`.
pub fn human_delay(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_lead_with_the_time_and_the_visitor() {
        let line = event_line("v1", Event::Agent(&AgentEvent::TokenNeeded));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["time_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(v["visitor_id"], "v1");
        assert!(line.starts_with("{\"time_unix_ms\":"));
        assert_eq!(seconds_to_ms(1796087089.3), Some(1796087089300));
        assert_eq!(human_delay(4), "4 ms");
        assert_eq!(human_delay(1543), "1.5 s");
    }
}
