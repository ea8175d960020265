//! The `/metrics` answer: the core's counters and gauges, and the latency histograms, encoded
//! by `prometheus-client` in the OpenMetrics text format.
//!
//! The counters and gauges are the core's own (kept as it decides) and are copied into a
//! registry at each scrape. The histograms ([`Latencies`]) are fed by the driver, which owns the
//! clocks: the time the service took to answer each REST request, by endpoint
//! ([`Latencies::observe_rest`]), and the relay time of a visitor frame, from the moment the
//! driver read it to the moment the agent socket's write completed
//! ([`Latencies::observe_relay`]). Both are cheap to clone and safe to feed from any thread
//! without the core's lock.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::{RestResponse, AUTHORIZE_PATH, METRICS_CONTENT_TYPE, VISITOR_SETTINGS_PATH};
use crate::core::ServiceCore;

/// One label pair, as the families here take them.
type Labels = Vec<(&'static str, &'static str)>;

/// Latency buckets, in seconds: 100 µs doubling up to about 1.6 s (15 buckets, then `+Inf`).
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 15)
}

fn new_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The latency histograms: REST requests by endpoint, and visitor frames relayed to agents.
/// Clones share the same histograms.
#[derive(Debug, Clone)]
pub struct Latencies {
    rest: Family<Labels, Histogram, fn() -> Histogram>,
    relay: Histogram,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            rest: Family::new_with_constructor(new_histogram),
            relay: new_histogram(),
        }
    }
}

/// The endpoint label of a request path: the endpoint's name, or `other` for any path that is
/// not one (so that the series stay few whatever clients ask for).
pub fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/lookupvisitor" => "lookupvisitor",
        "/findvisitor" => "findvisitor",
        "/signalvisitor" => "signalvisitor",
        "/query" => "query",
        "/uniquevisitor" => "uniquevisitor",
        "/presence" => "presence",
        "/metrics" => "metrics",
        VISITOR_SETTINGS_PATH => "visitorsettings",
        AUTHORIZE_PATH => "authorize",
        p if p.starts_with(crate::core::CONTROL_PREFIX) => "control",
        _ => "other",
    }
}

impl Latencies {
    /// Records the time one REST request to `path` took to answer.
    pub fn observe_rest(&self, path: &str, took: Duration) {
        self.rest
            .get_or_create(&vec![("endpoint", endpoint_label(path))])
            .observe(took.as_secs_f64());
    }

    /// Records the time one visitor frame took from being read to being written to an agent.
    pub fn observe_relay(&self, took: Duration) {
        self.relay.observe(took.as_secs_f64());
    }
}

/// Samples of one family: an optional label pair and the value.
type Samples<'a> = &'a [(Option<(&'static str, &'static str)>, u64)];

fn labels(label: Option<(&'static str, &'static str)>) -> Labels {
    label.into_iter().collect()
}

fn gauge(registry: &mut Registry, name: &str, help: &str, samples: Samples<'_>) {
    let family = Family::<Labels, Gauge<u64, AtomicU64>>::default();
    for (label, value) in samples {
        family.get_or_create(&labels(*label)).set(*value);
    }
    // The registry adds the final full stop.
    registry.register(name, help.trim_end_matches('.'), family);
}

/// A counter: `name` without the `_total` the encoder adds.
fn counter(registry: &mut Registry, name: &str, help: &str, samples: Samples<'_>) {
    let family = Family::<Labels, Counter<u64, AtomicU64>>::default();
    for (label, value) in samples {
        family.get_or_create(&labels(*label)).inc_by(*value);
    }
    registry.register(name, help.trim_end_matches('.'), family);
}

/// A total kept under a name of its own whose family name a gauge already has
/// (`glance_presence_connections_total` beside the `glance_presence_connections` gauge): typed
/// `unknown`, so that the two families keep distinct names.
#[derive(Debug)]
struct Total(u64);

impl EncodeMetric for Total {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

impl ServiceCore {
    /// The latency histograms, for the driver to feed (clones share them).
    pub fn latencies(&self) -> &Latencies {
        &self.latencies
    }

    /// The OpenMetrics text exposition of the service's counters, gauges and latency
    /// histograms.
    pub fn metrics_text(&self) -> String {
        let s = self.stats();
        let mut r = Registry::default();
        let none = |v: u64| [(None, v)];
        gauge(
            &mut r,
            "glance_presence_connections",
            "Open WebSocket connections by role.",
            &[
                (Some(("role", "agent")), s.agent_sockets),
                (Some(("role", "visitor")), s.visitor_sockets),
            ],
        );
        gauge(
            &mut r,
            "glance_presence_visitors_present",
            "Visitors present (with a socket, or within the presence window).",
            &none(s.visitors_present),
        );
        gauge(
            &mut r,
            "glance_presence_visitors_tracked",
            "Visitor records held.",
            &none(s.visitors_tracked),
        );
        gauge(
            &mut r,
            "glance_presence_presence_bytes",
            "Bytes held in visitors' merged presence records (as compact JSON).",
            &none(s.presence_bytes),
        );
        counter(
            &mut r,
            "glance_presence_presence_refused",
            "Presence frames refused whole because the record would exceed its bounds.",
            &none(s.presence_refused),
        );
        counter(
            &mut r,
            "glance_presence_tokens_expired",
            "Agent sockets closed at their token's expiry.",
            &none(s.tokens_expired),
        );
        counter(
            &mut r,
            "glance_presence_signals",
            "Signals by outcome.",
            &[
                (Some(("outcome", "delivered")), s.signals_delivered),
                (Some(("outcome", "held")), s.signals_held),
                (Some(("outcome", "dropped")), s.signals_dropped),
                (Some(("outcome", "notpresent")), s.signals_not_present),
                (Some(("outcome", "queuefull")), s.signals_queue_full),
            ],
        );
        counter(
            &mut r,
            "glance_presence_auth_failures",
            "Refused tokens and login keys by where they were refused.",
            &[
                (Some(("endpoint", "socket")), s.auth_failures),
                (Some(("endpoint", "rest")), s.rest_auth_failures),
                (Some(("endpoint", "authorize")), s.authorize_failures),
            ],
        );
        counter(
            &mut r,
            "glance_presence_origin_rejections",
            "Agent requests refused for their Origin.",
            &none(s.origin_rejections),
        );
        counter(
            &mut r,
            "glance_presence_frames_received",
            "Well-formed frames received.",
            &none(s.frames_received),
        );
        counter(
            &mut r,
            "glance_presence_frames_forwarded",
            "Visitor frames forwarded to agent sockets.",
            &none(s.frames_forwarded),
        );
        counter(
            &mut r,
            "glance_presence_malformed_frames",
            "Malformed or out-of-order frames.",
            &none(s.malformed_frames),
        );
        counter(
            &mut r,
            "glance_presence_disconnects",
            "Sockets closed by the service, by reason.",
            &[
                (Some(("reason", "idle")), s.idle_timeouts),
                (Some(("reason", "slowconsumer")), s.slow_consumers),
            ],
        );
        counter(
            &mut r,
            "glance_presence_blurs",
            "blur frames sent to older visitor sockets.",
            &none(s.blurs),
        );
        r.register(
            "glance_presence_connections_total",
            "WebSocket connections accepted since start",
            Total(s.connections_total),
        );
        counter(
            &mut r,
            "glance_presence_connections_refused",
            "Connections (HTTP or WebSocket) refused because the connection limit was reached.",
            &none(s.refused_connections),
        );
        counter(
            &mut r,
            "glance_presence_rest_requests",
            "HTTP requests other than WebSocket upgrades.",
            &none(s.rest_requests),
        );
        r.register_with_unit(
            "glance_presence_rest_request_duration",
            "Time to answer a REST request, by endpoint",
            Unit::Seconds,
            self.latencies.rest.clone(),
        );
        r.register_with_unit(
            "glance_presence_relay_duration",
            "Time from reading a visitor frame to writing it to an agent socket",
            Unit::Seconds,
            self.latencies.relay.clone(),
        );
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &r);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenKeys;
    use std::time::Instant;

    fn core() -> ServiceCore {
        ServiceCore::new(
            crate::core::tests::settings(),
            TokenKeys::new(b"metrics test secret"),
            Instant::now(),
            1_700_000_000.0,
        )
    }

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then_some(value)
        })
    }

    #[test]
    fn the_series_keep_their_names_and_the_histograms_count() {
        let core = core();
        let text = core.metrics_text();
        for series in [
            "glance_presence_connections{role=\"agent\"}",
            "glance_presence_visitors_present",
            "glance_presence_signals_total{outcome=\"delivered\"}",
            "glance_presence_auth_failures_total{endpoint=\"authorize\"}",
            "glance_presence_connections_total",
            "glance_presence_rest_requests_total",
            "glance_presence_relay_duration_seconds_count",
        ] {
            assert_eq!(sample(&text, series), Some("0"), "{series} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# HELP glance_presence_signals Signals by outcome.\n"));

        let latencies = core.latencies().clone();
        latencies.observe_rest("/lookupvisitor", Duration::from_millis(3));
        latencies.observe_rest("/lookupvisitor", Duration::from_millis(30));
        latencies.observe_rest("/no/such/path", Duration::from_millis(1));
        latencies.observe_relay(Duration::from_micros(250));
        let text = core.metrics_text();
        assert!(text.contains("# TYPE glance_presence_rest_request_duration_seconds histogram"));
        let lookup = "glance_presence_rest_request_duration_seconds";
        assert_eq!(
            sample(
                &text,
                &format!("{lookup}_count{{endpoint=\"lookupvisitor\"}}")
            ),
            Some("2"),
            "{text}"
        );
        assert_eq!(
            sample(&text, &format!("{lookup}_count{{endpoint=\"other\"}}")),
            Some("1")
        );
        assert_eq!(
            sample(
                &text,
                &format!("{lookup}_bucket{{le=\"0.0064\",endpoint=\"lookupvisitor\"}}")
            ),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            sample(&text, "glance_presence_relay_duration_seconds_count"),
            Some("1")
        );
        assert_eq!(
            sample(
                &text,
                "glance_presence_relay_duration_seconds_bucket{le=\"0.0004\"}"
            ),
            Some("1"),
            "{text}"
        );
    }

    #[test]
    fn endpoint_labels_are_few() {
        assert_eq!(endpoint_label("/lookupvisitor"), "lookupvisitor");
        assert_eq!(endpoint_label(AUTHORIZE_PATH), "authorize");
        assert_eq!(endpoint_label(VISITOR_SETTINGS_PATH), "visitorsettings");
        assert_eq!(endpoint_label("/anything/else"), "other");
    }
}
