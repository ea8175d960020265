//! Visitor → agent relay latency through the reference service on loopback, beside a bare
//! WebSocket relay (sender → relay → receiver, tokio-tungstenite, no JSON, no core) measured in
//! the same run, and the memory each idle connection costs the server.
//!
//! Each server runs in a child process (this binary re-executed), so that its resident memory
//! can be read from `/proc` without the clients' share. `PAIRS` visitor/agent pairs (default
//! 1,000) connect; the RSS of the server is read before and after, with every connection idle
//! after one frame each way; then `ROUNDS` (default 10) rounds send one 161-byte presence frame
//! per pair, one frame in flight at a time, and the one-way latency from the visitor's send to
//! the agent's receipt is recorded. The figures are printed; nothing is asserted.
//!
//! Run: `cargo bench -p glance-presence-service --bench relay` (env `PAIRS`, `ROUNDS`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use glance_presence_protocol::{GroupId, PartnerUserId};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::{Limits, ServiceConfig, ServiceHandle, TokenSecret};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const SECRET: &[u8] = b"relay benchmark secret, 32 bytes or more";
const FRAME: &str = r#"{"type":"presence","data":{"url":"https://shop.example.com/cart?item=42","browser":"chrome","browserver":120,"platform":"linux","custom":"field","cartvalue":42}}"#;
const ROLE_ENV: &str = "GLANCE_RELAY_BENCH_ROLE";
/// Bound on every wait of the benchmark, so that it never hangs.
const GUARD: Duration = Duration::from_secs(60);

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("service") => return child_service(),
        Ok("bare") => return child_bare(),
        _ => {}
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Keep the
    // test run quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let pairs = env_usize("PAIRS", if quick { 20 } else { 1000 });
    let rounds = env_usize("ROUNDS", if quick { 2 } else { 10 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    println!(
        "relay benchmark: {pairs} visitor/agent pairs, {rounds} rounds, 161-byte frame, loopback"
    );
    let service = runtime.block_on(run("service", pairs, rounds));
    let bare = runtime.block_on(run("bare", pairs, rounds));
    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>12} {:>14}",
        "server", "p50 µs", "p99 µs", "max µs", "samples", "RSS/conn"
    );
    for (name, r) in [
        ("reference service (visitor→agent)", &service),
        ("bare tokio-tungstenite relay", &bare),
    ] {
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>12} {:>11.1} KiB",
            name,
            r.p50_us,
            r.p99_us,
            r.max_us,
            r.samples,
            r.rss_per_conn_bytes / 1024.0
        );
    }
    println!(
        "ratio service/bare: p50 {:.2}x, p99 {:.2}x",
        service.p50_us / bare.p50_us,
        service.p99_us / bare.p99_us
    );
}

#[derive(Debug)]
struct Figures {
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    samples: usize,
    rss_per_conn_bytes: f64,
}

fn spawn_child(role: &str) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let mut child = Command::new(exe)
        .env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn child: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("child: {e}"));
    let addr = line
        .trim()
        .strip_prefix("ADDR ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("child said {line:?}"));
    (child, addr)
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

type Ws = WebSocketStream<TcpStream>;

async fn open(addr: SocketAddr, path: &str) -> Ws {
    let tcp = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    tcp.set_nodelay(true)
        .unwrap_or_else(|e| panic!("nodelay: {e}"));
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    ws
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(GUARD, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str().to_owned(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("socket ended or stalled: {other:?}"),
        }
    }
}

/// Opens the pairs: (visitor or sender, agent or receiver).
async fn open_pairs(role: &str, addr: SocketAddr, pairs: usize) -> Vec<(Ws, Ws)> {
    let keys = TokenKeys::new(SECRET);
    let group = GroupId::new(12345).unwrap_or_else(|e| panic!("{e}"));
    let user = PartnerUserId::new("bench").unwrap_or_else(|e| panic!("{e}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (token, _) = keys
        .issue_agent(group, &user, now, 3600)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::with_capacity(pairs);
    for i in 0..pairs {
        if role == "service" {
            let mut agent = open(addr, "/agent").await;
            let connect = format!(
                r#"{{"type":"connect","authorization":"{}","groupid":"12345","visitorid":"bench-{i}","version":"6.25.0"}}"#,
                token.expose_secret()
            );
            agent
                .send(Message::text(connect))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            next_text(&mut agent).await; // connected
            let mut visitor = open(addr, "/visitorws").await;
            let connect = format!(
                r#"{{"type":"connect","groupid":12345,"visitorid":"bench-{i}","version":"6.33.0"}}"#
            );
            visitor
                .send(Message::text(connect))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            next_text(&mut visitor).await; // connected
            next_text(&mut agent).await; // visitorsock
            next_text(&mut agent).await; // visitorconn
            out.push((visitor, agent));
        } else {
            let mut receiver = open(addr, "/").await;
            receiver
                .send(Message::text(format!("R {i}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            next_text(&mut receiver).await; // ok
            let mut sender = open(addr, "/").await;
            sender
                .send(Message::text(format!("S {i}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            next_text(&mut sender).await; // ok
            out.push((sender, receiver));
        }
    }
    out
}

async fn run(role: &str, pairs: usize, rounds: usize) -> Figures {
    let (mut child, addr) = spawn_child(role);
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes(pid);
    let mut sockets = open_pairs(role, addr, pairs).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes(pid);
    let connections = 2 * pairs;
    let rss_per_conn_bytes = after.saturating_sub(before) as f64 / connections as f64;
    println!(
        "{role}: server RSS {:.1} MiB before, {:.1} MiB with {connections} idle connections",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    // Warm-up: one frame per pair.
    for (from, to) in sockets.iter_mut() {
        from.send(Message::text(FRAME))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        next_text(to).await;
    }
    let mut samples = Vec::with_capacity(pairs * rounds);
    for _ in 0..rounds {
        for (from, to) in sockets.iter_mut() {
            let start = Instant::now();
            from.send(Message::text(FRAME))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let got = next_text(to).await;
            samples.push(start.elapsed());
            debug_assert_eq!(got.len(), FRAME.len());
        }
    }
    drop(sockets);
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"stop\n");
    }
    let _ = child.wait();
    samples.sort();
    let pick = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    Figures {
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        max_us: pick(1.0),
        samples: samples.len(),
        rss_per_conn_bytes,
    }
}

// ------------------------------------------------------------------------------- children

fn wait_for_stdin() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn child_service() {
    let config = ServiceConfig::builder()
        .token_secret(TokenSecret::new(SECRET).unwrap_or_else(|e| panic!("{e}")))
        .limits(Limits {
            max_connections: 100_000,
            ..Limits::default()
        })
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = ServiceHandle::spawn(config).unwrap_or_else(|e| panic!("{e}"));
    println!("ADDR {}", handle.addr());
    wait_for_stdin();
    handle.shutdown();
}

fn child_bare() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        println!("ADDR {addr}");
        let receivers: Arc<Mutex<HashMap<String, mpsc::Sender<Message>>>> = Arc::default();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                tokio::spawn(bare_connection(tcp, receivers.clone()));
            }
        });
        tokio::task::spawn_blocking(wait_for_stdin).await.ok();
    });
}

/// One connection of the bare relay: `R <id>` registers a receiver, `S <id>` a sender whose
/// frames go to that receiver.
async fn bare_connection(
    tcp: TcpStream,
    receivers: Arc<Mutex<HashMap<String, mpsc::Sender<Message>>>>,
) {
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config())).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let Some(Ok(Message::Text(hello))) = stream.next().await else {
        return;
    };
    let _ = sink.send(Message::text("ok")).await;
    let hello = hello.as_str().to_owned();
    if let Some(id) = hello.strip_prefix("R ") {
        let (tx, mut rx) = mpsc::channel(256);
        if let Ok(mut map) = receivers.lock() {
            map.insert(id.to_owned(), tx);
        }
        while let Some(message) = rx.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
    } else if let Some(id) = hello.strip_prefix("S ") {
        let tx = receivers.lock().ok().and_then(|map| map.get(id).cloned());
        let Some(tx) = tx else {
            return;
        };
        while let Some(Ok(message)) = stream.next().await {
            if message.is_text() && tx.send(message).await.is_err() {
                break;
            }
        }
    }
}
