//! The `/metrics` answer: the core's counters and gauges in the Prometheus text exposition
//! format. Not here: the counters themselves (kept by the core as it decides).

use std::fmt::Write as _;

use super::{RestResponse, METRICS_CONTENT_TYPE};
use crate::core::ServiceCore;

impl ServiceCore {
    /// The Prometheus text exposition of the service's counters and gauges.
    pub fn metrics_text(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
        };
        family(
            "glance_presence_connections",
            "gauge",
            "Open WebSocket connections by role.",
            &[
                ("role=\"agent\"", s.agent_sockets),
                ("role=\"visitor\"", s.visitor_sockets),
            ],
        );
        family(
            "glance_presence_visitors_present",
            "gauge",
            "Visitors present (with a socket, or within the presence window).",
            &[("", s.visitors_present)],
        );
        family(
            "glance_presence_visitors_tracked",
            "gauge",
            "Visitor records held.",
            &[("", s.visitors_tracked)],
        );
        family(
            "glance_presence_presence_bytes",
            "gauge",
            "Bytes held in visitors' merged presence records (as compact JSON).",
            &[("", s.presence_bytes)],
        );
        family(
            "glance_presence_presence_refused_total",
            "counter",
            "Presence frames refused whole because the record would exceed its bounds.",
            &[("", s.presence_refused)],
        );
        family(
            "glance_presence_tokens_expired_total",
            "counter",
            "Agent sockets closed at their token's expiry.",
            &[("", s.tokens_expired)],
        );
        family(
            "glance_presence_signals_total",
            "counter",
            "Signals by outcome.",
            &[
                ("outcome=\"delivered\"", s.signals_delivered),
                ("outcome=\"held\"", s.signals_held),
                ("outcome=\"dropped\"", s.signals_dropped),
                ("outcome=\"notpresent\"", s.signals_not_present),
                ("outcome=\"queuefull\"", s.signals_queue_full),
            ],
        );
        family(
            "glance_presence_auth_failures_total",
            "counter",
            "Refused tokens and login keys by where they were refused.",
            &[
                ("endpoint=\"socket\"", s.auth_failures),
                ("endpoint=\"rest\"", s.rest_auth_failures),
                ("endpoint=\"authorize\"", s.authorize_failures),
            ],
        );
        family(
            "glance_presence_origin_rejections_total",
            "counter",
            "Agent requests refused for their Origin.",
            &[("", s.origin_rejections)],
        );
        family(
            "glance_presence_frames_received_total",
            "counter",
            "Well-formed frames received.",
            &[("", s.frames_received)],
        );
        family(
            "glance_presence_frames_forwarded_total",
            "counter",
            "Visitor frames forwarded to agent sockets.",
            &[("", s.frames_forwarded)],
        );
        family(
            "glance_presence_malformed_frames_total",
            "counter",
            "Malformed or out-of-order frames.",
            &[("", s.malformed_frames)],
        );
        family(
            "glance_presence_disconnects_total",
            "counter",
            "Sockets closed by the service, by reason.",
            &[
                ("reason=\"idle\"", s.idle_timeouts),
                ("reason=\"slowconsumer\"", s.slow_consumers),
            ],
        );
        family(
            "glance_presence_blurs_total",
            "counter",
            "blur frames sent to older visitor sockets.",
            &[("", s.blurs)],
        );
        family(
            "glance_presence_connections_total",
            "counter",
            "WebSocket connections accepted since start.",
            &[("", s.connections_total)],
        );
        family(
            "glance_presence_connections_refused_total",
            "counter",
            "Connections (HTTP or WebSocket) refused because the connection limit was reached.",
            &[("", s.refused_connections)],
        );
        family(
            "glance_presence_rest_requests_total",
            "counter",
            "HTTP requests other than WebSocket upgrades.",
            &[("", s.rest_requests)],
        );
        out
    }

    pub(super) fn rest_metrics(&self) -> RestResponse {
        RestResponse {
            status: 200,
            headers: vec![("Content-Type", METRICS_CONTENT_TYPE.to_owned())],
            body: self.metrics_text(),
        }
    }
}
