//! Benchmarks of the agent core.
//!
//! 1. Decode + handle one presence frame (the 161-byte frame of the performance notes) in a
//!    connected `AgentProtocol`, draining its outputs, beside `serde_json::from_str::<Value>`
//!    of the same frame. Criterion reports both; the bench then measures both again in
//!    alternating batches and prints the ratio (target: at most 1.0×).
//! 2. The heap bytes held by an idle connected `AgentProtocol`, measured with a counting
//!    global allocator, printed.
//!
//! Figures are printed, never asserted.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use glance_presence_protocol::agent::{AgentConfig, AgentProtocol};
use glance_presence_protocol::io::{Output, SansIo, SocketId, TransportInput};
use serde_json::Value;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The 161-byte presence frame of the performance notes.
const FRAME: &str = r#"{"type":"presence","data":{"url":"https://shop.example.com/cart?item=42","browser":"chrome","browserver":120,"platform":"linux","custom":"field","cartvalue":42}}"#;

const LOOKUP: &str = r#"{"direct":"127.0.0.1:8080","visitorpresent":"1699999990.0","visitorid":"v1","groupid":"12345","directserver":"127.0.0.1","httpsport":8080,"url":"https://shop.example.com/","browser":"chrome","browserver":120,"platform":"linux"}"#;

/// A connected agent (findvisitor, socket, `connected`, snapshot answered), outputs drained.
fn connected_agent(start: Instant) -> (AgentProtocol, SocketId) {
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token("bench-token")
        .presence_server("http://127.0.0.1:8080")
        .rng_seed(1)
        .build()
        .expect("config");
    let mut agent = AgentProtocol::new(config, start, Duration::from_secs(1_700_000_000));
    agent.connect(start).expect("connect");
    let mut socket = None;
    for _ in 0..10 {
        let mut inputs = Vec::new();
        while let Some(output) = agent.poll_output() {
            match output {
                Output::Http { id, request } => {
                    let body = if request.url.contains("/findvisitor") {
                        r#"{"visitorfound":true,"directserver":"127.0.0.1","httpsport":8080}"#
                    } else {
                        LOOKUP
                    };
                    inputs.push(TransportInput::HttpResponse {
                        id,
                        status: 200,
                        body: body.as_bytes().to_vec(),
                    });
                }
                Output::OpenSocket { socket: s, .. } => {
                    socket = Some(s);
                    inputs.push(TransportInput::SocketOpened { socket: s });
                }
                Output::SendFrame { socket: s, text } if text.contains(r#""type":"connect""#) => {
                    inputs.push(TransportInput::Frame {
                        socket: s,
                        text: r#"{"type":"connected","keepalive":30}"#.to_owned(),
                    });
                }
                _ => {}
            }
        }
        for input in inputs {
            agent.handle_input(start, input);
        }
    }
    while agent.poll_output().is_some() {}
    assert_eq!(
        agent.connection_state(),
        glance_presence_protocol::agent::ConnectionState::Connected
    );
    (agent, socket.expect("a socket"))
}

fn handle_frame(
    agent: &mut AgentProtocol,
    now: Instant,
    socket: SocketId,
    text: String,
) -> Option<Output<glance_presence_protocol::agent::AgentEvent>> {
    agent.handle_input(now, TransportInput::Frame { socket, text });
    let mut last = None;
    while let Some(output) = agent.poll_output() {
        last = Some(output);
    }
    last
}

fn bench_frames(c: &mut Criterion) {
    let start = Instant::now();
    let (mut agent, socket) = connected_agent(start);
    assert_eq!(FRAME.len(), 161);
    let mut group = c.benchmark_group("presence_frame");
    group.bench_function("agent_decode_and_handle", |b| {
        b.iter_batched(
            || FRAME.to_owned(),
            |text| handle_frame(&mut agent, start, socket, text),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("wire_decode_only", |b| {
        b.iter_batched(
            || (),
            |()| {
                glance_presence_protocol::wire::ServerFrame::decode(black_box(FRAME), 65_536)
                    .expect("frame")
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("serde_json_value", |b| {
        b.iter_batched(
            || (),
            |()| serde_json::from_str::<Value>(black_box(FRAME)).expect("json"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Nanoseconds per operation over `n` runs; inputs made and outputs dropped outside the
/// timed region.
fn time_agent(agent: &mut AgentProtocol, now: Instant, socket: SocketId, n: usize) -> f64 {
    let inputs: Vec<String> = (0..n).map(|_| FRAME.to_owned()).collect();
    let mut outputs = Vec::with_capacity(n);
    let t = Instant::now();
    for text in inputs {
        outputs.push(handle_frame(agent, now, socket, text));
    }
    let elapsed = t.elapsed();
    drop(black_box(outputs));
    elapsed.as_nanos() as f64 / n as f64
}

fn time_value(n: usize) -> f64 {
    let mut outputs = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        outputs.push(serde_json::from_str::<Value>(black_box(FRAME)).expect("json"));
    }
    let elapsed = t.elapsed();
    drop(black_box(outputs));
    elapsed.as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn print_ratio() {
    let start = Instant::now();
    let (mut agent, socket) = connected_agent(start);
    let (mut agent_ns, mut value_ns) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        agent_ns.push(time_agent(&mut agent, start, socket, 20_000));
        value_ns.push(time_value(20_000));
    }
    let (a, v) = (median(agent_ns), median(value_ns));
    println!(
        "presence frame (161 bytes): agent decode+handle {a:.0} ns, serde_json Value {v:.0} ns, ratio {:.2}x (target <= 1.0x)",
        a / v
    );
}

fn print_heap() {
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let (agent, _socket) = connected_agent(start);
    let boxed = Box::new(agent);
    let change = region.change();
    let held = change.bytes_allocated as i64 - change.bytes_deallocated as i64;
    let blocks = change.allocations as i64 - change.deallocations as i64;
    println!(
        "idle connected AgentProtocol: {held} heap bytes held in {blocks} blocks (struct {} bytes, included); presence view of {} fields",
        std::mem::size_of::<AgentProtocol>(),
        boxed.presence_data().len()
    );
    drop(black_box(boxed));
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_frames(&mut criterion);
    criterion.final_summary();
    print_ratio();
    print_heap();
}
