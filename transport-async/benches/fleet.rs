//! Many watched visitors from one process: the fleet on tokio and on smol beside a bare
//! tokio-tungstenite client speaking the agent protocol (the floor), measured in the same run
//! against the reference service on loopback, at N = 1,000, 5,000 and 10,000.
//!
//! The parent process starts the reference service in child processes (at most 4,000 agents
//! per service process, under the 20,000 open files a process may have here; all share one
//! token secret, so one token works everywhere and after a restart), then runs each client
//! kind in a child process of its own, so that its RSS, open files and threads are its own.
//! Each client connects N agents (visitor ids `v0`…), waits until all are connected, idles,
//! measures itself, then the parent kills every service process and restarts it on the same
//! port: the client reports how long until all are connected again and how late a 1 s timer
//! of the application fired during that storm. Load is bounded (N agents, one restart) and
//! every wait has a guard; the run stops by itself.
//!
//! Run: `cargo bench -p glance-presence-async --features smol --bench fleet`
//! (env `FLEET_N`, e.g. `FLEET_N=1000` for one size).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use glance_presence_async::{
    Fleet, Runtime, SmolRuntime, TokioRuntime, Transport, TransportConfig,
};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent};
use glance_presence_service::config::{TokenSecret, DEMO_GROUP_ID};
use glance_presence_service::{Service, ServiceConfig};
use glance_presence_transport::websocket_config;
use tokio_tungstenite::tungstenite::Message;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const AGENTS_PER_SERVICE: usize = 4_000;
const SECRET: &str = "fleet benchmark token secret, not a real one....";
/// Guard on every wait of the run.
const GUARD: Duration = Duration::from_secs(120);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("service") => service(args.get(2).map(String::as_str)),
        Some("client") => client(&args[2..]),
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

#[derive(Debug, Default, Clone)]
struct Row {
    connect_s: f64,
    rss_kib_per: f64,
    files_per: f64,
    peak_threads: u64,
    #[allow(dead_code)]
    workers: u64,
    recover_s: f64,
    timer_late_ms: f64,
    connected: usize,
    recovered: usize,
}

fn parent() -> Result<(), BoxError> {
    let sizes: Vec<usize> = std::env::var("FLEET_N")
        .unwrap_or_else(|_| "1000,5000,10000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let kinds = ["floor", "tokio", "smol"];
    let mut table = Vec::new();
    for &n in &sizes {
        for kind in kinds {
            let row = run_one(kind, n)?;
            eprintln!("{kind} N={n}: {row:?}");
            table.push((n, kind, row));
        }
    }
    println!();
    println!(
        "watched visitors in one process, reference service on loopback, one run (workers: 2)"
    );
    println!(
        "{:>6} {:<24} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12}",
        "N",
        "client",
        "all conn s",
        "RSS KiB/v",
        "files/v",
        "peak thr",
        "recover s",
        "timer late",
        "vs floor"
    );
    for (n, kind, row) in &table {
        let floor = table
            .iter()
            .find(|(m, k, _)| m == n && *k == "floor")
            .map(|(_, _, r)| r.clone())
            .unwrap_or_default();
        let label = match *kind {
            "floor" => "bare tokio-tungstenite",
            "tokio" => "Fleet on tokio",
            _ => "Fleet on smol",
        };
        let ratio = if *kind == "floor" {
            "-".to_owned()
        } else {
            format!(
                "conn {:.2}x rss {:.2}x rec {:.2}x",
                row.connect_s / floor.connect_s.max(1e-9),
                row.rss_kib_per / floor.rss_kib_per.max(1e-9),
                row.recover_s / floor.recover_s.max(1e-9)
            )
        };
        println!(
            "{:>6} {:<24} {:>10.2} {:>10.1} {:>10.3} {:>10} {:>12.2} {:>10.0}ms  {}",
            n,
            label,
            row.connect_s,
            row.rss_kib_per,
            row.files_per,
            row.peak_threads,
            row.recover_s,
            row.timer_late_ms,
            ratio
        );
        if row.connected < *n || row.recovered < *n {
            println!(
                "       (only {} connected, {} recovered of {n})",
                row.connected, row.recovered
            );
        }
    }
    Ok(())
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
    let exe = std::env::current_exe()?;
    let mut client = Command::new(exe)
        .args(["client", kind, &n.to_string(), &token, &ports.join(",")])
        .env("SMOL_THREADS", "2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut to_client = client.stdin.take().ok_or("no stdin")?;
    let mut from_client = BufReader::new(client.stdout.take().ok_or("no stdout")?);
    let mut line = String::new();
    let mut row = Row::default();
    loop {
        line.clear();
        if from_client.read_line(&mut line)? == 0 {
            return Err(format!("{kind} client ended early").into());
        }
        if line.starts_with("READY") {
            break;
        }
    }
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
    loop {
        line.clear();
        if from_client.read_line(&mut line)? == 0 {
            return Err(format!("{kind} client ended without a result").into());
        }
        if let Some(rest) = line.strip_prefix("RESULT ") {
            let v: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            if v.len() == 9 {
                row = Row {
                    connect_s: v[0],
                    rss_kib_per: v[1],
                    files_per: v[2],
                    peak_threads: v[3] as u64,
                    workers: v[4] as u64,
                    recover_s: v[5],
                    timer_late_ms: v[6],
                    connected: v[7] as usize,
                    recovered: v[8] as usize,
                };
            }
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

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// Counts of agents connected since a mark, shared with the measuring thread.
#[derive(Default)]
struct Counts {
    connected: AtomicUsize,
    recovered: AtomicUsize,
    /// 0 before the kill; 1 once the service was killed.
    phase: AtomicUsize,
    peak_threads: AtomicU64,
    late_us: AtomicU64,
}

fn client(args: &[String]) -> Result<(), BoxError> {
    let [kind, n, token, ports] = args else {
        return Err("client kind n token ports".into());
    };
    let n: usize = n.parse()?;
    let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
    let counts = Arc::new(Counts::default());
    let rss_base = proc_status("VmRSS:");
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
    let workers = 2u64;
    let start = Instant::now();
    match kind.as_str() {
        "floor" | "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers as usize)
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
            measure(&counts, n, start, rss_base, workers)?;
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
            measure(&counts, n, start, rss_base, workers)?;
        }
    }
    Ok(())
}

/// Waits for the phases and prints the result line (on the main thread).
fn measure(
    counts: &Counts,
    n: usize,
    start: Instant,
    rss_base: u64,
    workers: u64,
) -> Result<(), BoxError> {
    let guard = Instant::now() + GUARD;
    while counts.connected.load(Ordering::Relaxed) < n && Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(5));
    }
    let connect_s = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let rss = proc_status("VmRSS:");
    let files = open_files();
    let rss_per = rss.saturating_sub(rss_base) as f64 / n as f64;
    let files_per = files as f64 / n as f64;
    println!("READY");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?; // KILLED
    counts.late_us.store(0, Ordering::Relaxed);
    counts.phase.store(1, Ordering::Relaxed);
    line.clear();
    std::io::stdin().read_line(&mut line)?; // RESTARTED
    let restarted = Instant::now();
    let guard = Instant::now() + GUARD;
    while counts.recovered.load(Ordering::Relaxed) < n && Instant::now() < guard {
        std::thread::sleep(Duration::from_millis(5));
    }
    let recover_s = restarted.elapsed().as_secs_f64();
    let late_ms = counts.late_us.load(Ordering::Relaxed) as f64 / 1000.0;
    println!(
        "RESULT {connect_s} {rss_per} {files_per} {} {workers} {recover_s} {late_ms} {} {}",
        counts.peak_threads.load(Ordering::Relaxed),
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
                if matches!(event, AgentEvent::Connected { .. }) {
                    connected(&counts);
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
/// (connect frame, `connected`, keepalives answered by nothing), reconnecting with full
/// jitter on a 1 s base, doubling, as the agent's default policy does.
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
            if !up && text.as_str().contains(r#""type":"connected""#) {
                up = true;
                connected(counts);
            }
        }
    }
    up
}
