//! Many watched visitors from one process: the fleet on tokio and on smol beside a bare
//! tokio-tungstenite client speaking the agent protocol (the floor), measured in the same run
//! against the reference service on loopback, at N = 1,000, 5,000 and 10,000.
//!
//! The parent process starts the reference service in child processes (at most 4,000 agents
//! per service process, under the 20,000 open files a process may have here; all share one
//! token secret, so one token works everywhere and after a restart), then runs each client
//! kind in a child process of its own, so that its RSS, heap, open files and threads are its
//! own. Each client connects N agents (visitor ids `v0`…) and waits until all are connected
//! (time and CPU), idles, and measures itself: RSS and heap (a counting allocator) per watched
//! visitor, open files, peak threads. Then a visitor process connects the N visitors (a bare
//! client on `/visitorws`) and each sends one presence update every 10 s, spread evenly, for
//! the latency window; the update carries its send time (wall clock, shared by the processes)
//! and the client records, per update, the time from that send to its own event (the fleet's
//! `Presence` event, the floor's `presence` frame): p50, p99 and max. Last, the parent kills
//! every service process and restarts it on the same port: the client reports how long until
//! all are connected again and how late a 1 s timer of the application fired during that
//! storm. Load is bounded (N agents, N visitors, one update per visitor per 10 s, one restart)
//! and every wait has a guard; the run stops by itself.
//!
//! Run: `cargo bench -p glance-presence-async --features smol --bench fleet`
//! (env `FLEET_N`, e.g. `FLEET_N=1000` for one size; `FLEET_LATENCY_SECS`, the latency
//! window, 30 by default). Needs about 2·N + 100 open files per process (`ulimit -n`).

use std::alloc::System;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use glance_presence_async::{
    Fleet, Runtime, SmolRuntime, TokioRuntime, Transport, TransportConfig,
};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent, PresenceSource};
use glance_presence_service::config::{TokenSecret, DEMO_GROUP_ID};
use glance_presence_service::{Service, ServiceConfig};
use glance_presence_transport::websocket_config;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio_tungstenite::tungstenite::Message;

/// Counts the heap of every process of the benchmark (the clients' heap per visitor).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const AGENTS_PER_SERVICE: usize = 4_000;
const SECRET: &str = "fleet benchmark token secret, not a real one....";
/// Guard on every wait of the run.
const GUARD: Duration = Duration::from_secs(120);
/// Each visitor sends one presence update this often.
const UPDATE_EVERY: Duration = Duration::from_secs(10);
/// Visitor sockets being opened at once by the visitor process.
const VISITOR_CONNECTS: usize = 64;
/// The worker threads of each client's runtime.
const WORKERS: u64 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("service") => service(args.get(2).map(String::as_str)),
        Some("client") => client(&args[2..]),
        Some("visitors") => visitors(&args[2..]),
        _ => parent(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------- the service children

fn service(port: Option<&str>) -> Result<(), BoxError> {
    let port: u16 = port.unwrap_or("0").parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let limits = glance_presence_service::config::Limits {
            max_connections: 19_000,
            ..Default::default()
        };
        let config = ServiceConfig::builder()
            .listen(format!("127.0.0.1:{port}").parse()?)
            .token_secret(TokenSecret::new(SECRET.as_bytes().to_vec())?)
            .limits(limits)
            .build()?;
        let svc = Service::start(config).await?;
        let token = svc
            .issue_token(
                glance_presence_protocol::GroupId::new(DEMO_GROUP_ID)?,
                &glance_presence_protocol::PartnerUserId::new("bench")?,
                Duration::from_secs(3600),
            )
            .ok_or("no token")?;
        println!(
            "PORT {} TOKEN {}",
            svc.local_addr().port(),
            token.expose_secret()
        );
        std::io::stdout().flush()?;
        // Runs until killed, or until the parent closes stdin.
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {}
        })
        .await?;
        Ok::<(), BoxError>(())
    })
}

struct Node {
    child: Child,
    port: u16,
}

fn start_service(port: u16) -> Result<(Node, String), BoxError> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["service", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let (Some("PORT"), Some(port), Some("TOKEN"), Some(token)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(format!("service said {line:?}").into());
    };
    Ok((
        Node {
            child,
            port: port.parse()?,
        },
        token.to_owned(),
    ))
}

// ---------------------------------------------------------------- the parent

/// One client's figures, as its `RESULT` line reports them (`key=value` words).
#[derive(Debug, Default, Clone)]
struct Row(HashMap<String, f64>);

impl Row {
    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(f64::NAN)
    }
}

const KINDS: [(&str, &str); 3] = [
    ("floor", "bare floor"),
    ("tokio", "Fleet on tokio"),
    ("smol", "Fleet on smol"),
];

fn latency_secs() -> u64 {
    std::env::var("FLEET_LATENCY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn parent() -> Result<(), BoxError> {
    let sizes: Vec<usize> = std::env::var("FLEET_N")
        .unwrap_or_else(|_| "1000,5000,10000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let mut table = Vec::new();
    for &n in &sizes {
        for (kind, _) in KINDS {
            let row = run_one(kind, n)?;
            eprintln!("{kind} N={n}: {:?}", row.0);
            table.push((n, kind, row));
        }
    }
    for &n in &sizes {
        let row = |kind: &str| {
            table
                .iter()
                .find(|(m, k, _)| *m == n && *k == kind)
                .map(|(_, _, r)| r.clone())
                .unwrap_or_default()
        };
        print_table(n, &row("floor"), &row("tokio"), &row("smol"));
    }
    Ok(())
}

/// One table per N: a row per measure, a column per client (with its ratio to the floor)
/// and the issue's target.
fn print_table(n: usize, floor: &Row, tokio: &Row, smol: &Row) {
    println!();
    println!(
        "N = {n} watched visitors in one process; reference service on loopback ({} process(es)); \
         {WORKERS} worker threads; {} s of updates, one per visitor every {} s",
        n.div_ceil(AGENTS_PER_SERVICE),
        latency_secs(),
        UPDATE_EVERY.as_secs()
    );
    println!(
        "{:<40} {:>12} {:>20} {:>20}  target",
        "", "bare floor", "Fleet on tokio", "Fleet on smol"
    );
    type Check = fn(f64, f64) -> bool;
    let rows: [(&str, &str, usize, &str, Option<Check>); 13] = [
        (
            "all present (s)",
            "connect_s",
            2,
            "<= 1.5x floor",
            Some(|v, f| v <= 1.5 * f),
        ),
        ("CPU to connect all (s)", "connect_cpu_s", 2, "", None),
        (
            "RSS per idle watched visitor (KiB)",
            "rss_kib",
            1,
            "<= 16 KiB, <= 1.5x floor",
            Some(|v, f| v <= 16.0 && v <= 1.5 * f),
        ),
        (
            "heap per idle watched visitor (KiB)",
            "heap_kib",
            1,
            "",
            None,
        ),
        (
            "open files per watched visitor",
            "files",
            3,
            "1 socket",
            Some(|v, _| v < 1.05),
        ),
        (
            "peak threads",
            "threads",
            0,
            "<= workers + 4",
            Some(|v, _| v <= (WORKERS + 4) as f64),
        ),
        ("event latency p50 (ms)", "lat_p50_ms", 2, "", None),
        (
            "event latency p99 (ms)",
            "lat_p99_ms",
            2,
            "< 50 ms",
            Some(|v, _| v < 50.0),
        ),
        ("event latency max (ms)", "lat_max_ms", 2, "", None),
        (
            "updates received / sent",
            "lat_ratio",
            3,
            "1",
            Some(|v, _| v >= 0.999),
        ),
        (
            "all back after kill + restart (s)",
            "recover_s",
            2,
            "<= 1.2x floor",
            Some(|v, f| v <= 1.2 * f),
        ),
        (
            "1 s app timer late in the storm (ms)",
            "timer_late_ms",
            0,
            "",
            None,
        ),
        (
            "connected / recovered of N",
            "all_ok",
            0,
            "all",
            Some(|v, _| v >= 1.0),
        ),
    ];
    for (label, key, digits, target, check) in rows {
        let f = floor.get(key);
        let cell = |row: &Row, with_ratio: bool| {
            let v = row.get(key);
            let mut text = if key == "all_ok" {
                format!("{}/{}", row.get("connected"), row.get("recovered"))
            } else {
                format!("{v:.digits$}")
            };
            if with_ratio && key != "all_ok" && key != "lat_ratio" && f > 0.0 {
                text.push_str(&format!(" ({:.2}x)", v / f));
            }
            if let Some(check) = check {
                if with_ratio || key == "all_ok" || key == "lat_ratio" {
                    text.push_str(if check(v, f) { " ok" } else { " !!" });
                }
            }
            text
        };
        println!(
            "{:<40} {:>12} {:>20} {:>20}  {}",
            label,
            cell(floor, false),
            cell(tokio, true),
            cell(smol, true),
            target
        );
    }
}

fn run_one(kind: &str, n: usize) -> Result<Row, BoxError> {
    let nodes_needed = n.div_ceil(AGENTS_PER_SERVICE);
    let mut nodes = Vec::new();
    let mut token = String::new();
    for _ in 0..nodes_needed {
        let (node, t) = start_service(0)?;
        token = t;
        nodes.push(node);
    }
    let ports: Vec<String> = nodes.iter().map(|node| node.port.to_string()).collect();
    let ports = ports.join(",");
    let exe = std::env::current_exe()?;
    let mut client = Command::new(&exe)
        .args(["client", kind, &n.to_string(), &token, &ports])
        .env("SMOL_THREADS", WORKERS.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to_client = client.stdin.take().ok_or("no stdin")?;
    let mut from_client = BufReader::new(client.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    loop {
        line.clear();
        if from_client.read_line(&mut line)? == 0 {
            return Err(format!("{kind} client ended early").into());
        }
        if line.starts_with("READY") {
            break;
        }
    }
    // The latency window: the visitors connect, then send their updates.
    writeln!(to_client, "SAMPLING")?;
    let secs = latency_secs().to_string();
    let status = Command::new(&exe)
        .args(["visitors", &n.to_string(), &ports, &secs])
        .stdin(Stdio::null())
        .status()?;
    if !status.success() {
        eprintln!("the visitor process failed ({status})");
    }
    writeln!(to_client, "SAMPLED")?;
    // Kill every service process and restart it on its port.
    for node in &mut nodes {
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
    writeln!(to_client, "KILLED")?;
    let mut restarted = Vec::new();
    for node in &nodes {
        let (node, _) = start_service(node.port)?;
        restarted.push(node);
    }
    writeln!(to_client, "RESTARTED")?;
    let mut row = Row::default();
    loop {
        line.clear();
        if from_client.read_line(&mut line)? == 0 {
            return Err(format!("{kind} client ended without a result").into());
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            for word in rest.split_whitespace() {
                if let Some((key, value)) = word.split_once('=') {
                    if let Ok(value) = value.parse() {
                        row.0.insert(key.to_owned(), value);
                    }
                }
            }
            let all = row.get("connected") >= n as f64 && row.get("recovered") >= n as f64;
            row.0
                .insert("all_ok".to_owned(), if all { 1.0 } else { 0.0 });
            break;
        }
    }
    let _ = client.wait();
    for mut node in restarted {
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
    Ok(row)
}

// ---------------------------------------------------------------- the visitor process

/// Now, in Unix microseconds (the clock every process of the run shares).
fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// N visitors on `/visitorws` (visitor `v{i}` on the service of agent `v{i}`): all connect,
/// then visitor `i` sends `{"type":"presence","data":{"t":<send time>}}` at `i/N` of the
/// update period and every period after, for the window; then they all leave.
fn visitors(args: &[String]) -> Result<(), BoxError> {
    let [n, ports, secs] = args else {
        return Err("visitors n ports secs".into());
    };
    let n: usize = n.parse()?;
    let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
    if ports.is_empty() {
        return Err("no ports".into());
    }
    let window = Duration::from_secs(secs.parse()?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let gate = Arc::new(tokio::sync::Semaphore::new(VISITOR_CONNECTS));
        let ready = Arc::new(AtomicUsize::new(0));
        let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let port = ports[i % ports.len()];
            let gate = Arc::clone(&gate);
            let ready = Arc::clone(&ready);
            let mut start_rx = start_rx.clone();
            tasks.push(tokio::spawn(async move {
                let Some(mut ws) = visitor_socket(&gate, port, i).await else {
                    return 0usize;
                };
                ready.fetch_add(1, Ordering::Relaxed);
                let start = loop {
                    if let Some(start) = *start_rx.borrow() {
                        break start;
                    }
                    tokio::select! {
                        changed = start_rx.changed() => if changed.is_err() { return 0 },
                        message = ws.next() => if !matches!(message, Some(Ok(_))) { return 0 },
                    }
                };
                let offset = UPDATE_EVERY.mul_f64(i as f64 / n as f64);
                let mut sent = 0;
                let mut next = start + offset;
                while next < start + window {
                    let sleep = tokio::time::sleep_until(next.into());
                    tokio::pin!(sleep);
                    loop {
                        tokio::select! {
                            () = &mut sleep => break,
                            message = ws.next() => if !matches!(message, Some(Ok(_))) { return sent },
                        }
                    }
                    let frame = format!(r#"{{"type":"presence","data":{{"t":{}}}}}"#, unix_us());
                    if ws.send(Message::text(frame)).await.is_err() {
                        return sent;
                    }
                    sent += 1;
                    next += UPDATE_EVERY;
                }
                // Answer pings until every visitor has sent its last update.
                let _ = tokio::time::timeout_at(
                    (start + window + Duration::from_secs(1)).into(),
                    async { while let Some(Ok(_)) = ws.next().await {} },
                )
                .await;
                let _ = ws.close(None).await;
                sent
            }));
        }
        let guard = Instant::now() + GUARD;
        while ready.load(Ordering::Relaxed) < n && Instant::now() < guard {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let the agents take in the visitors' arrival before the first update.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let _ = start_tx.send(Some(Instant::now()));
        let mut sent = 0;
        for task in tasks {
            sent += task.await.unwrap_or(0);
        }
        eprintln!(
            "visitors: {} of {n} connected, {sent} updates sent",
            ready.load(Ordering::Relaxed)
        );
        Ok::<(), BoxError>(())
    })
}

type VisitorWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One visitor's socket, up (`connected` received); `None` when it could not connect.
async fn visitor_socket(gate: &tokio::sync::Semaphore, port: u16, i: usize) -> Option<VisitorWs> {
    let _permit = gate.acquire().await.ok()?;
    for _ in 0..5 {
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            let _ = tcp.set_nodelay(true);
            let url = format!("ws://127.0.0.1:{port}/visitorws");
            let (mut ws, _) = tokio_tungstenite::client_async_with_config(
                url,
                tcp,
                Some(websocket_config(1 << 16)),
            )
            .await
            .ok()?;
            let connect = format!(
                r#"{{"type":"connect","groupid":{DEMO_GROUP_ID},"visitorid":"v{i}","version":"6.33.0"}}"#
            );
            ws.send(Message::text(connect)).await.ok()?;
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    if text.as_str().contains(r#""type":"connected""#) {
                        return Some(ws);
                    }
                }
            }
            None
        };
        if let Ok(Some(ws)) = tokio::time::timeout(Duration::from_secs(10), attempt).await {
            return Some(ws);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

// ---------------------------------------------------------------- the client children

fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time of this process so far (user + system), in seconds (100 ticks a second).
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which ends with the last ')'.
            let rest = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Bytes on the heap now.
fn heap_bytes() -> i64 {
    let stats = GLOBAL.stats();
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64 + stats.bytes_reallocated as i64
}

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Counts of agents connected since a mark, and the latency samples, shared with the
/// measuring thread.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    recovered: AtomicUsize,
    /// 0 before the kill; 1 once the service was killed.
    phase: AtomicUsize,
    peak_threads: AtomicU64,
    late_us: AtomicU64,
    /// The latency window is open.
    sampling: AtomicBool,
    /// Send-to-event times of the updates, in microseconds.
    latencies: Mutex<Vec<u64>>,
}

impl Counts {
    /// An update sent at `sent_us` (Unix microseconds) reached the application now.
    fn update(&self, sent_us: Option<u64>) {
        let Some(sent_us) = sent_us else {
            return;
        };
        let latency = unix_us().saturating_sub(sent_us);
        if self.sampling.load(Ordering::Relaxed) {
            if let Ok(mut samples) = self.latencies.lock() {
                samples.push(latency);
            }
        }
    }
}

fn client(args: &[String]) -> Result<(), BoxError> {
    let [kind, n, token, ports] = args else {
        return Err("client kind n token ports".into());
    };
    let n: usize = n.parse()?;
    let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
    let counts = Arc::new(Counts::default());
    let rss_base = proc_status("VmRSS:");
    let heap_base = heap_bytes();
    let cpu_base = cpu_secs();
    // Peak threads, sampled.
    {
        let counts = Arc::clone(&counts);
        std::thread::spawn(move || loop {
            counts
                .peak_threads
                .fetch_max(proc_status("Threads:"), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(50));
        });
    }
    let base = Base {
        start: Instant::now(),
        rss: rss_base,
        heap: heap_base,
        cpu: cpu_base,
    };
    match kind.as_str() {
        "floor" | "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKERS as usize)
                .enable_all()
                .build()?;
            let counts2 = Arc::clone(&counts);
            let token = token.clone();
            let kind = kind.clone();
            rt.spawn(async move {
                app_timer(counts2.clone()).await;
            });
            let counts2 = Arc::clone(&counts);
            rt.spawn(async move {
                if kind == "floor" {
                    floor(n, &ports, &token, counts2).await;
                } else {
                    let runtime: Arc<dyn Runtime> = Arc::new(TokioRuntime::current());
                    if let Err(e) = fleet(runtime, n, &ports, &token, counts2).await {
                        eprintln!("fleet: {e}");
                    }
                }
            });
            measure(&counts, n, &base)?;
            rt.shutdown_background();
        }
        _ => {
            let counts2 = Arc::clone(&counts);
            smol::spawn(app_timer_smol(counts2)).detach();
            let counts2 = Arc::clone(&counts);
            let token = token.clone();
            smol::spawn(async move {
                let runtime: Arc<dyn Runtime> = Arc::new(SmolRuntime::new());
                if let Err(e) = fleet(runtime, n, &ports, &token, counts2).await {
                    eprintln!("fleet: {e}");
                }
            })
            .detach();
            measure(&counts, n, &base)?;
        }
    }
    Ok(())
}

/// The client before it started its agents.
struct Base {
    start: Instant,
    rss: u64,
    heap: i64,
    cpu: f64,
}

fn read_stdin_line() -> Result<String, BoxError> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line)
}

/// The value at `q` (0..=1) of sorted `samples`, in milliseconds.
fn quantile_ms(samples: &[u64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let index = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[index.min(samples.len() - 1)] as f64 / 1000.0
}

/// Waits for the phases and prints the result line (on the main thread).
fn measure(counts: &Counts, n: usize, base: &Base) -> Result<(), BoxError> {
    let guard = Instant::now() + GUARD;
    while counts.connected.load(Ordering::Relaxed) < n && Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(5));
    }
    let connect_s = base.start.elapsed().as_secs_f64();
    let connect_cpu_s = cpu_secs() - base.cpu;
    std::thread::sleep(Duration::from_secs(3));
    let rss = proc_status("VmRSS:");
    let heap = heap_bytes();
    let files = open_files();
    let rss_kib = rss.saturating_sub(base.rss) as f64 / n as f64;
    let heap_kib = (heap - base.heap) as f64 / 1024.0 / n as f64;
    let files_per = files as f64 / n as f64;
    println!("READY");
    std::io::stdout().flush()?;
    read_stdin_line()?; // SAMPLING
    counts.sampling.store(true, Ordering::Relaxed);
    read_stdin_line()?; // SAMPLED
    counts.sampling.store(false, Ordering::Relaxed);
    let mut samples = counts
        .latencies
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    samples.sort_unstable();
    let expected = n as f64 * latency_secs().div_ceil(UPDATE_EVERY.as_secs()) as f64;
    read_stdin_line()?; // KILLED
    counts.late_us.store(0, Ordering::Relaxed);
    counts.phase.store(1, Ordering::Relaxed);
    read_stdin_line()?; // RESTARTED
    let restarted = Instant::now();
    let guard = Instant::now() + GUARD;
    while counts.recovered.load(Ordering::Relaxed) < n && Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(5));
    }
    let recover_s = restarted.elapsed().as_secs_f64();
    let late_ms = counts.late_us.load(Ordering::Relaxed) as f64 / 1000.0;
    println!(
        "RESULT connect_s={connect_s} connect_cpu_s={connect_cpu_s} rss_kib={rss_kib} \
         heap_kib={heap_kib} files={files_per} threads={} workers={WORKERS} \
         lat_p50_ms={} lat_p99_ms={} lat_max_ms={} lat_count={} lat_ratio={} \
         recover_s={recover_s} timer_late_ms={late_ms} connected={} recovered={}",
        counts.peak_threads.load(Ordering::Relaxed),
        quantile_ms(&samples, 0.5),
        quantile_ms(&samples, 0.99),
        quantile_ms(&samples, 1.0),
        samples.len(),
        samples.len() as f64 / expected,
        counts.connected.load(Ordering::Relaxed),
        counts.recovered.load(Ordering::Relaxed)
    );
    std::io::stdout().flush()?;
    Ok(())
}

/// A 1 s timer of the application: the worst lateness since the kill.
async fn app_timer(counts: Arc<Counts>) {
    let mut next = Instant::now() + Duration::from_secs(1);
    loop {
        tokio::time::sleep_until(next.into()).await;
        let late = Instant::now().saturating_duration_since(next);
        counts
            .late_us
            .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
        next += Duration::from_secs(1);
    }
}

async fn app_timer_smol(counts: Arc<Counts>) {
    let mut next = Instant::now() + Duration::from_secs(1);
    loop {
        smol::Timer::at(next).await;
        let late = Instant::now().saturating_duration_since(next);
        counts
            .late_us
            .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
        next += Duration::from_secs(1);
    }
}

fn connected(counts: &Counts) {
    if counts.phase.load(Ordering::Relaxed) == 0 {
        counts.connected.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.recovered.fetch_add(1, Ordering::Relaxed);
    }
}

/// The fleet: one fleet per service process, all on one shared transport.
async fn fleet(
    runtime: Arc<dyn Runtime>,
    n: usize,
    ports: &[u16],
    token: &str,
    counts: Arc<Counts>,
) -> Result<(), BoxError> {
    let transport = Transport::new(runtime.clone(), TransportConfig::default())?;
    let mut handles = Vec::new();
    for port in ports {
        let template = AgentConfig::builder()
            .group_id(DEMO_GROUP_ID)
            .presence_server(format!("http://127.0.0.1:{port}"))
            .token(token);
        let (handle, mut events) = Fleet::builder(template)
            .transport(transport.clone())
            .build()?
            .into_parts();
        let counts = Arc::clone(&counts);
        runtime.spawn(Box::pin(async move {
            while let Some((_, event)) = events.next().await {
                match event {
                    AgentEvent::Connected { .. } => connected(&counts),
                    AgentEvent::Presence {
                        source: PresenceSource::Live,
                        data,
                        ..
                    } => counts.update(data.get("t").and_then(|t| t.as_u64())),
                    _ => {}
                }
            }
        }));
        handles.push(handle);
    }
    for i in 0..n {
        handles[i % handles.len()].watch(&format!("v{i}")).await?;
    }
    // Keep the fleets alive.
    std::future::pending::<()>().await;
    Ok(())
}

/// The floor: a bare tokio-tungstenite client per visitor speaking the agent protocol
/// (connect frame, `connected`, frames parsed as JSON, keepalives answered by nothing),
/// reconnecting with full jitter on a 1 s base, doubling, as the agent's default policy does.
async fn floor(n: usize, ports: &[u16], token: &str, counts: Arc<Counts>) {
    let seed = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    for i in 0..n {
        let port = ports[i % ports.len()];
        let token = token.to_owned();
        let counts = Arc::clone(&counts);
        let mut state = seed.fetch_add(0x9e37_79b9, Ordering::Relaxed) ^ (i as u64 + 1);
        tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                if floor_session(port, &token, i, &counts).await {
                    attempt = 0;
                }
                attempt = (attempt + 1).min(6);
                // xorshift for jitter
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let cap_ms = 1000u64 << (attempt - 1);
                tokio::time::sleep(Duration::from_millis(state % cap_ms.max(1))).await;
            }
        });
    }
}

/// One socket's life; `true` when it got `connected`.
async fn floor_session(port: u16, token: &str, i: usize, counts: &Counts) -> bool {
    let Ok(tcp) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://127.0.0.1:{port}/agent");
    let Ok((mut ws, _)) =
        tokio_tungstenite::client_async_with_config(url, tcp, Some(websocket_config(1 << 20)))
            .await
    else {
        return false;
    };
    let connect = format!(
        r#"{{"type":"connect","authorization":"{token}","groupid":"{DEMO_GROUP_ID}","visitorid":"v{i}","version":"6.25.0"}}"#
    );
    if ws.send(Message::text(connect)).await.is_err() {
        return false;
    }
    let mut up = false;
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
                continue;
            };
            match frame.get("type").and_then(|t| t.as_str()) {
                Some("connected") if !up => {
                    up = true;
                    connected(counts);
                }
                Some("presence") => {
                    counts.update(frame.pointer("/data/t").and_then(|t| t.as_u64()));
                }
                _ => {}
            }
        }
    }
    up
}
