//! Signal round trip through the blocking agent (REST route: one `signalvisitor` to the server
//! the agent last saw the visitor on, after one `findvisitor` during the warm-up), beside bare
//! ureq requests to the same endpoints, measured in the same run against the reference service
//! on loopback.
//!
//! Four kinds of round trip are timed, interleaved in blocks of 5 (the order rotates every round)
//! so that machine noise falls on all of them alike:
//! - `agent`: `BlockingAgent::signal(json)`, which makes one HTTP request (`POST
//!   /signalvisitor` to the visitor's known server; Glance's find-before-every-signal is an
//!   option, not the default) and must come back `Delivered`;
//! - `bare POST`: one `POST /signalvisitor` with the same URL, headers (Authorization included)
//!   and body, sent with a fresh `ureq::Agent` in ureq's default configuration (keep-alive on)
//!   except that any status is an answer and the connect and receive phases have timeouts;
//! - `bare pair`: the same two requests as the agent, sent with that bare ureq agent;
//! - `client pair`: the same two requests sent with the transport's own `HttpClient` (its ureq
//!   configuration, without the core and the driver), to tell the two costs apart.
//!
//! A visitor connected with `BlockingVisitor` on its own thread counts the signals it gets;
//! the run fails (exit 1) unless every one arrived. The new TCP connections opened to the
//! service during each kind's blocks are counted from `/proc/net/tcp` (Linux), to show whether
//! HTTP keep-alive works. Figures are printed; nothing about time is asserted.
//!
//! Run: `cargo bench -p glance-presence-blocking --bench signal` (env `ROUNDS`, `WARMUP`).
//! Without `--bench` (e.g. `cargo test --benches`) it runs a few rounds only.

use std::collections::HashSet;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{
    BlockingAgent, BlockingVisitor, HttpClient, TlsRoots, TransportConfig,
};
use glance_presence_protocol::agent::{AgentConfig, Delivery};
use glance_presence_protocol::rest::{
    self, HttpRequest, Method, RestTarget, ServerAddr, SignalBody,
};
use glance_presence_protocol::visitor::{VisitorConfig, VisitorEvent};
use glance_presence_protocol::{GroupId, PartnerUserId, PresenceData, VisitorId};
use glance_presence_service::config::{ServiceConfig, DEMO_GROUP_ID};
use glance_presence_service::ServiceHandle;
use serde_json::{json, Value};

type BoxError = Box<dyn Error>;

const VISITOR_ID: &str = "bench-visitor";
const AGENT_ID: &str = "bench-agent";
/// Round trips of each kind in one block.
const BLOCK: usize = 5;
/// Bound on the whole run: past it the run stops and fails.
const GUARD: Duration = Duration::from_secs(120);
/// Bound on each phase of a bare request.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the visitor may take to see the last signals after the last answer.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Agent,
    BarePost,
    BarePair,
    ClientPair,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::Agent,
        Kind::BarePost,
        Kind::BarePair,
        Kind::ClientPair,
    ];

    fn index(self) -> usize {
        match self {
            Kind::Agent => 0,
            Kind::BarePost => 1,
            Kind::BarePair => 2,
            Kind::ClientPair => 3,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Agent => "blocking agent signal (REST route)",
            Kind::BarePost => "bare ureq POST /signalvisitor",
            Kind::BarePair => "bare ureq GET /findvisitor + POST",
            Kind::ClientPair => "HttpClient GET /findvisitor + POST",
        }
    }

    fn http_requests(self) -> usize {
        match self {
            Kind::BarePair | Kind::ClientPair => 2,
            Kind::Agent | Kind::BarePost => 1,
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("signal bench failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What the bench needs to send bare requests like the agent's.
struct Bare {
    agent: ureq::Agent,
    client: HttpClient,
    find: HttpRequest,
    post: HttpRequest,
}

impl Bare {
    /// One bare request; the answer is checked after the clock stopped.
    fn execute(&self, request: &HttpRequest) -> Result<(u16, Vec<u8>), ureq::Error> {
        let mut response = match request.method {
            Method::Get => {
                let mut builder = self.agent.get(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.call()?
            }
            Method::Post => {
                let mut builder = self.agent.post(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name.as_str(), value.as_str());
                }
                builder.send(request.body.as_deref().unwrap_or(""))?
            }
        };
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec()?;
        Ok((status, body))
    }
}

fn check_delivered(status: u16, body: &[u8]) -> Result<(), BoxError> {
    match rest::parse_signal(status, body)? {
        Delivery::Delivered => Ok(()),
        other => Err(format!("signalvisitor answered {other:?}, not delivered").into()),
    }
}

/// One timed round trip of `kind`; errors and non-delivery fail the run.
fn round_trip(
    kind: Kind,
    agent: &mut BlockingAgent,
    bare: &Bare,
    payload: &Value,
) -> Result<Duration, BoxError> {
    match kind {
        Kind::Agent => {
            let data = payload.clone();
            let start = Instant::now();
            let delivery = agent.signal(data)?;
            let took = start.elapsed();
            if delivery != Delivery::Delivered {
                return Err(format!("the agent's signal came back {delivery:?}").into());
            }
            Ok(took)
        }
        Kind::BarePost => {
            let start = Instant::now();
            let (status, body) = bare.execute(&bare.post)?;
            let took = start.elapsed();
            check_delivered(status, &body)?;
            Ok(took)
        }
        Kind::BarePair => {
            let start = Instant::now();
            let (find_status, find_body) = bare.execute(&bare.find)?;
            let (status, body) = bare.execute(&bare.post)?;
            let took = start.elapsed();
            if !rest::parse_find(find_status, &find_body)?.found {
                return Err("findvisitor did not find the visitor".into());
            }
            check_delivered(status, &body)?;
            Ok(took)
        }
        Kind::ClientPair => {
            let start = Instant::now();
            let (find_status, find_body) = bare.client.execute(&bare.find)?;
            let (status, body) = bare.client.execute(&bare.post)?;
            let took = start.elapsed();
            if !rest::parse_find(find_status, &find_body)?.found {
                return Err("findvisitor did not find the visitor".into());
            }
            check_delivered(status, &body)?;
            Ok(took)
        }
    }
}

/// The ephemeral ports of TCP connections to `service_port` on this machine, seen from either
/// end (so that a connection in TIME_WAIT on either side still counts). `None` off Linux.
fn connection_ports(service_port: u16) -> Option<HashSet<u16>> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port_of = |field: &str| -> Option<u16> {
        let (_, hex) = field.rsplit_once(':')?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut ports = HashSet::new();
    for line in table.lines().skip(1) {
        let mut fields = line.split_whitespace().skip(1);
        let (Some(local), Some(remote)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Some(local), Some(remote)) = (port_of(local), port_of(remote)) else {
            continue;
        };
        if remote == service_port {
            ports.insert(local);
        } else if local == service_port && remote != 0 {
            ports.insert(remote);
        }
    }
    Some(ports)
}

/// Nearest-rank percentile of sorted nanoseconds.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug, Clone, Copy)]
struct Summary {
    p50: f64,
    p99: f64,
    mean: f64,
}

fn summarize(samples: &mut [u64]) -> Summary {
    samples.sort_unstable();
    let mean = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|&n| n as f64).sum::<f64>() / samples.len() as f64
    };
    Summary {
        p50: percentile(samples, 50.0) as f64 / 1000.0,
        p99: percentile(samples, 99.0) as f64 / 1000.0,
        mean: mean / 1000.0,
    }
}

/// The visitor's thread: connect, say where it is, then count the signals carrying `payload`
/// until told to stop.
fn visitor_thread(
    server: String,
    payload: Value,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<(), String> {
    let config = VisitorConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(VISITOR_ID)
        .presence_server(server)
        .build()
        .map_err(|e| e.to_string())?;
    let mut visitor =
        BlockingVisitor::new(config, TransportConfig::default()).map_err(|e| e.to_string())?;
    visitor.connect().map_err(|e| e.to_string())?;
    let mut presence = PresenceData::new();
    presence.insert("url", "https://shop.example/cart");
    visitor
        .command(|v, now| v.presence(now, presence))
        .map_err(|e| e.to_string())?;
    let connected = visitor.wait_for(Duration::from_secs(10), |e| {
        matches!(e, VisitorEvent::Connected { .. }).then_some(())
    });
    let _ = ready.send(connected.ok_or_else(|| "the visitor did not connect".to_owned()));
    let mut other_signals = 0u64;
    while !stop.load(Ordering::Acquire) {
        match visitor.next_event(Some(Duration::from_millis(50))) {
            Some(VisitorEvent::Signal { data }) if data == payload => {
                received.fetch_add(1, Ordering::AcqRel);
            }
            Some(VisitorEvent::Signal { .. }) => other_signals += 1,
            Some(VisitorEvent::Disconnected { why }) => {
                return Err(format!("the visitor lost its link: {why:?}"));
            }
            _ => {}
        }
    }
    visitor.disconnect();
    if other_signals > 0 {
        return Err(format!(
            "the visitor got {other_signals} unexpected signals"
        ));
    }
    Ok(())
}

fn run() -> Result<(), BoxError> {
    // `cargo bench` passes `--bench`; anything else (`cargo test --benches`) runs briefly.
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = env_usize("ROUNDS", if quick { 4 } else { 100 }).max(1);
    let warmup = env_usize("WARMUP", if quick { 5 } else { 50 });
    let per_kind = rounds * BLOCK;
    let started = Instant::now();

    let service = ServiceHandle::spawn(
        ServiceConfig::builder()
            .listen(([127, 0, 0, 1], 0).into())
            .build()?,
    )?;
    let base = service.http_base();
    let service_port = service.addr().port();
    let group = GroupId::new(DEMO_GROUP_ID)?;
    let token = service
        .issue_token(
            group,
            &PartnerUserId::new(AGENT_ID)?,
            Duration::from_secs(3600),
        )
        .ok_or("the service issued no token for the demo group")?;
    let payload = json!({ "text": "Hi! Need a hand with your cart?", "cart": 42 });

    // The visitor, on its own thread, counting what it receives.
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let visitor = {
        let (server, payload) = (base.clone(), payload.clone());
        let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
        thread::spawn(move || visitor_thread(server, payload, received, stop, ready_tx))
    };
    ready_rx.recv_timeout(Duration::from_secs(15))??;

    // The agent: a token, no socket (the REST route needs none).
    let config = AgentConfig::builder()
        .group_id(DEMO_GROUP_ID)
        .visitor_id(VISITOR_ID)
        .presence_server(base.clone())
        .token(token.clone())
        .build()?;
    let version = config.client_version().to_owned();
    let mut agent = BlockingAgent::new(config, TransportConfig::default())?;

    // The bare requests: built with the same request builders the agent's core uses.
    let server = ServerAddr::parse(&base)?;
    let visitor_id = VisitorId::new(VISITOR_ID)?;
    let target = RestTarget {
        server: &server,
        group,
        visitor: &visitor_id,
        version: &version,
        token: Some(&token),
    };
    let bare = Bare {
        // Phase timeouts keep the run bounded; unlike a global timeout they do not make ureq
        // resolve the host on a helper thread for every request.
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(HTTP_TIMEOUT))
            .timeout_recv_response(Some(HTTP_TIMEOUT))
            .timeout_recv_body(Some(HTTP_TIMEOUT))
            .build()
            .into(),
        client: HttpClient::new(&TlsRoots::webpki(), HTTP_TIMEOUT),
        find: rest::find_visitor(&target),
        post: rest::signal_visitor(&target, &SignalBody::Signal(payload.clone())),
    };

    // The visitor must be findable before the first signal.
    let found_by = Instant::now() + Duration::from_secs(10);
    while !agent.find()?.0 {
        if Instant::now() > found_by {
            return Err("findvisitor never found the visitor".into());
        }
        thread::sleep(Duration::from_millis(20));
    }

    let mut sent = 0u64;
    for kind in Kind::ALL {
        for _ in 0..warmup {
            round_trip(kind, &mut agent, &bare, &payload)?;
            sent += 1;
        }
    }

    let mut samples: [Vec<u64>; 4] = std::array::from_fn(|_| Vec::with_capacity(per_kind));
    let mut new_connections = [0usize; 4];
    let mut seen_ports = connection_ports(service_port);
    for round in 0..rounds {
        if started.elapsed() > GUARD {
            return Err(format!("the run passed its {} s bound", GUARD.as_secs()).into());
        }
        for offset in 0..Kind::ALL.len() {
            let kind = Kind::ALL[(round + offset) % Kind::ALL.len()];
            for _ in 0..BLOCK {
                let took = round_trip(kind, &mut agent, &bare, &payload)?;
                samples[kind.index()].push(took.as_nanos() as u64);
                sent += 1;
            }
            if let (Some(seen), Some(now)) = (seen_ports.as_mut(), connection_ports(service_port)) {
                new_connections[kind.index()] += now.difference(seen).count();
                seen.extend(now);
            }
        }
    }

    // Every signal must reach the visitor.
    let drained_by = Instant::now() + DRAIN;
    while received.load(Ordering::Acquire) < sent && Instant::now() < drained_by {
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Release);
    let visitor_result = visitor.join().map_err(|_| "the visitor thread panicked")?;
    let got = received.load(Ordering::Acquire);

    let summaries: Vec<Summary> = samples.iter_mut().map(|s| summarize(s)).collect();
    let agent_s = summaries[Kind::Agent.index()];
    let post_s = summaries[Kind::BarePost.index()];
    let pair_s = summaries[Kind::BarePair.index()];
    let client_s = summaries[Kind::ClientPair.index()];

    println!(
        "signal round trip on loopback ({base}), one run: {per_kind} of each kind after \
         {warmup} warm-up each, interleaved in blocks of {BLOCK}"
    );
    println!(
        "{:<36} {:>10} {:>10} {:>10}  {:>13}",
        "", "p50 µs", "p99 µs", "mean µs", "HTTP requests"
    );
    for kind in Kind::ALL {
        let s = summaries[kind.index()];
        println!(
            "{:<36} {:>10.1} {:>10.1} {:>10.1}  {:>13}",
            kind.label(),
            s.p50,
            s.p99,
            s.mean,
            kind.http_requests()
        );
    }
    println!(
        "agent / bare POST (per signal; both make 1 HTTP request, signalvisitor; target p50 \
         <= 1.2x): p50 {:.2}x, mean {:.2}x",
        agent_s.p50 / post_s.p50,
        agent_s.mean / post_s.mean
    );
    println!(
        "agent / bare pair (findvisitor + signalvisitor, Glance's way, without the agent): p50 \
         {:.2}x, mean {:.2}x; difference: p50 {:+.1} µs, mean {:+.1} µs",
        agent_s.p50 / pair_s.p50,
        agent_s.mean / pair_s.mean,
        agent_s.p50 - pair_s.p50,
        agent_s.mean - pair_s.mean
    );
    println!(
        "HttpClient pair / bare pair (the transport's ureq setup): p50 {:.2}x, mean {:.2}x",
        client_s.p50 / pair_s.p50,
        client_s.mean / pair_s.mean
    );
    match &seen_ports {
        Some(seen) => println!(
            "new TCP connections to the service during the timed blocks: agent {}, bare POST {}, \
             bare pair {}, HttpClient pair {} (0: keep-alive reused the warm-up's connection); \
             distinct connections seen (the visitor's and any in TIME_WAIT included): {}",
            new_connections[0],
            new_connections[1],
            new_connections[2],
            new_connections[3],
            seen.len()
        ),
        None => println!("new TCP connections: not available (no /proc/net/tcp)"),
    }
    println!("signals received by the visitor: {got} of {sent}");
    println!("elapsed: {:.1} s", started.elapsed().as_secs_f64());

    visitor_result?;
    if got != sent {
        return Err(format!("the visitor received {got} of {sent} signals").into());
    }
    Ok(())
}
