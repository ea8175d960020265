//! How events look on a terminal: one readable line per agent event, or one JSON line.

use std::io::Write;
use std::time::Instant;

use glance_presence_protocol::agent::{
    AgentEvent, DisconnectReason, PresenceSource, RequestValue, StopReason, VisitorPresence,
};
use glance_presence_protocol::presence::PresenceData;
use serde_json::Value;

/// Prints events, as a timeline or as JSON lines.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    start: Instant,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Printer {
            json,
            start: Instant::now(),
        }
    }

    /// Prints one agent event. Failures to write stdout (a closed pipe) are ignored.
    pub fn agent_event(&self, event: &AgentEvent) {
        let line = if self.json {
            serde_json::to_string(event).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
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

fn disconnect_reason(why: &DisconnectReason) -> String {
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
        other => format!("{other:?}"),
    }
}

/// One readable line for an agent event.
pub fn describe(event: &AgentEvent) -> String {
    match event {
        AgentEvent::Connecting { attempt } => format!("agent connecting (attempt {attempt})"),
        AgentEvent::Connected {
            server,
            keepalive_secs,
        } => format!("agent connected to {server} (keepalive {keepalive_secs} s)"),
        AgentEvent::Disconnected { why } => {
            format!("agent link lost: {}", disconnect_reason(why))
        }
        AgentEvent::Reconnecting { attempt, delay_ms } => {
            format!("agent reconnecting in {delay_ms} ms (attempt {attempt})")
        }
        AgentEvent::Stopped { why } => match why {
            StopReason::Requested => "agent stopped".to_owned(),
            StopReason::ServerClose => "agent stopped: the service closed the session".to_owned(),
            StopReason::Authorization => "agent stopped: authorization refused".to_owned(),
            StopReason::PresenceDisabled => {
                "agent stopped: presence is disabled for this group".to_owned()
            }
            other => format!("agent stopped: {other:?}"),
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
            Ok(RequestValue::Sent(delivery)) => format!(
                "{} accepted: {}",
                request_name(request),
                serde_json::to_string(delivery).unwrap_or_default()
            ),
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
        other => format!("{other:?}"),
    }
}

fn request_name(kind: &impl serde::Serialize) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "request".to_owned())
}
