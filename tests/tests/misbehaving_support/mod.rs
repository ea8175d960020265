//! A scripted stand-in for a Glance-like presence service that misbehaves on request, for
//! end-to-end tests of the agent over loopback.
//!
//! Two TCP listeners on loopback (two "nodes", so that a `redirect` can name another server)
//! serve both sides on each port, the way the reference service does:
//!
//! - a minimal HTTP/1.1 server (one request per connection, `Connection: close`) that answers
//!   `findvisitor`, `lookupvisitor`, `query`, `signalvisitor`, `GetVisitorSettings3` and
//!   `Authorize` (any LoginKey: the token is `stand-in-token-<n>`) with bodies the test
//!   chooses ([`Answers`]);
//! - WebSocket upgrades on `/agent`, each of which plays a [`Step`] script that the test
//!   chooses per connection (the first socket, the second, ...): wait for `connect`, send
//!   frames of any size, close with any code (also codes a peer must never send), drop the
//!   TCP connection, pause, or hold the socket open.
//!
//! Everything is counted ([`Counts`]) and each `/agent` socket's opening time is kept, so a
//! test can bound reconnect and Authorize rates. The server runs on its own thread and tokio
//! runtime, so blocking and async clients can both use it; dropping it stops it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a socket that was sent a close frame is kept open for the client's answer.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// One step of what an `/agent` socket does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Wait for the client's first text frame (its `connect`).
    AwaitConnect,
    /// Send a text frame, as is except that `{PORT}` is replaced by the port this socket came
    /// in on and `{OTHER_PORT}` by the server's other port.
    Text(String),
    /// Send a close frame with this code and reason, whatever they are (1006 included), then
    /// wait a little for the client's answer and drop the connection.
    Close {
        /// The code written on the wire.
        code: u16,
        /// The reason written on the wire.
        reason: String,
    },
    /// Drop the TCP connection at once, without a close frame.
    Drop,
    /// Read (and discard) what the client sends for this long.
    Pause(Duration),
    /// Keep the socket open, reading what the client sends, until the client goes. Also what
    /// happens when a script runs out of steps.
    Hold,
}

impl Step {
    /// `{"type":"connected","keepalive":30}`.
    pub fn connected() -> Step {
        Step::Text(r#"{"type":"connected","keepalive":30}"#.to_owned())
    }

    /// A text frame holding `value` as JSON.
    pub fn json(value: serde_json::Value) -> Step {
        Step::Text(value.to_string())
    }
}

/// Which script the `n`-th `/agent` socket (from 0) plays.
pub type Script = Arc<dyn Fn(usize) -> Vec<Step> + Send + Sync>;

/// The bodies of the REST answers (all `200`, `application/json`). `{PORT}` in a body is
/// replaced by the server's first port.
#[derive(Debug, Clone)]
pub struct Answers {
    /// `GET /findvisitor`.
    pub find: String,
    /// `GET /lookupvisitor`.
    pub lookup: String,
    /// `GET /query`.
    pub query: String,
    /// `POST /signalvisitor`.
    pub signal: String,
}

impl Default for Answers {
    /// The visitor is present on this server.
    fn default() -> Self {
        Answers {
            find: r#"{"ds":"127.0.0.1/0","direct":"127.0.0.1:{PORT}","directserver":"127.0.0.1","tlsport":0,"httpsport":{PORT},"visitorfound":true}"#.to_owned(),
            lookup: r#"{"direct":"127.0.0.1:{PORT}","visitorpresent":"1700000000.0","timestamp":"1700000000.0","visitorid":"v1","groupid":"12345","url":"https://shop.example/"}"#.to_owned(),
            query: r#"{"present":true,"sockets":1,"since":"1700000000.0","presence":{},"insession":false}"#.to_owned(),
            signal: r#"{"delivered":true}"#.to_owned(),
        }
    }
}

/// What the server has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// `POST …/Authorize` requests.
    pub authorize: usize,
    /// `GET /findvisitor` requests.
    pub find: usize,
    /// `GET /lookupvisitor` requests.
    pub lookup: usize,
    /// `GET /query` requests.
    pub query: usize,
    /// `POST /signalvisitor` requests.
    pub signal: usize,
    /// `/agent` WebSockets opened.
    pub sockets: usize,
    /// Text frames received on `/agent` sockets, by their `type`.
    pub frames: HashMap<String, usize>,
}

#[derive(Default)]
struct Shared {
    counts: Counts,
    socket_opened: Vec<Instant>,
}

/// A running scripted server; dropping it stops it.
pub struct ScriptedServer {
    addr: SocketAddr,
    other: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ScriptedServer {
    /// Starts a server whose `n`-th `/agent` socket plays `script(n)`, with the default
    /// [`Answers`] (the visitor is present).
    pub fn start(script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static) -> ScriptedServer {
        ScriptedServer::with_answers(Answers::default(), script)
    }

    /// Starts a server with these REST answers.
    pub fn with_answers(
        answers: Answers,
        script: impl Fn(usize) -> Vec<Step> + Send + Sync + 'static,
    ) -> ScriptedServer {
        let script: Script = Arc::new(script);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop_tx, stop_rx) = oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let ports = Ports {
                    first: first.local_addr().unwrap().port(),
                    second: second.local_addr().unwrap().port(),
                };
                addr_tx
                    .send((first.local_addr().unwrap(), second.local_addr().unwrap()))
                    .unwrap();
                let answers = Arc::new(answers.fill_port(ports.first));
                let node = Node {
                    answers,
                    script,
                    shared: thread_shared,
                    ports,
                };
                tokio::select! {
                    () = serve(first, node.clone()) => {}
                    () = serve(second, node) => {}
                    _ = stop_rx => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        });
        let (addr, other) = addr_rx.recv().unwrap();
        ScriptedServer {
            addr,
            other,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, for the agent's presence and web servers.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:OTHER_PORT`: the second listener, serving the same answers and scripts.
    pub fn other_authority(&self) -> String {
        self.other.to_string()
    }

    /// What the server has seen so far.
    pub fn counts(&self) -> Counts {
        self.shared.lock().unwrap().counts.clone()
    }

    /// When each `/agent` socket was opened, in order.
    pub fn socket_times(&self) -> Vec<Instant> {
        self.shared.lock().unwrap().socket_opened.clone()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Answers {
    fn fill_port(self, port: u16) -> Answers {
        let fill = |body: String| body.replace("{PORT}", &port.to_string());
        Answers {
            find: fill(self.find),
            lookup: fill(self.lookup),
            query: fill(self.query),
            signal: fill(self.signal),
        }
    }
}

/// The two ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    first: u16,
    second: u16,
}

impl Ports {
    /// The port that is not `port`.
    fn other(self, port: u16) -> u16 {
        if port == self.first {
            self.second
        } else {
            self.first
        }
    }
}

/// What every connection needs.
#[derive(Clone)]
struct Node {
    answers: Arc<Answers>,
    script: Script,
    shared: Arc<Mutex<Shared>>,
    ports: Ports,
}

async fn serve(listener: TcpListener, node: Node) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let _ = connection(tcp, &node).await;
        });
    }
}

/// One HTTP request head and body.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
/// Nothing after the head is read for an upgrade (the client waits for `101`).
async fn read_request(tcp: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await? == 0 || head.len() > 64 * 1024 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tcp.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}

async fn respond(tcp: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    tcp.write_all(body.as_bytes()).await?;
    tcp.flush().await?;
    tcp.shutdown().await
}

async fn connection(mut tcp: TcpStream, node: &Node) -> std::io::Result<()> {
    let (answers, shared) = (&node.answers, &*node.shared);
    let port = tcp.local_addr()?.port();
    let _ = tcp.set_nodelay(true);
    let Some(request) = read_request(&mut tcp).await? else {
        return Ok(());
    };
    let upgrade = request
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if request.path == "/agent" && upgrade {
        let Some(key) = request.header("sec-websocket-key") else {
            return respond(&mut tcp, 400, r#"{"err":"badrequest","msg":"no key"}"#).await;
        };
        let accept = derive_accept_key(key.as_bytes());
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await?;
        let index = {
            let mut shared = shared.lock().unwrap();
            shared.counts.sockets += 1;
            shared.socket_opened.push(Instant::now());
            shared.counts.sockets - 1
        };
        // Room for any frame the script sends; the client's frames are small.
        let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
        let ws = WebSocketStream::from_raw_socket(tcp, Role::Server, Some(config)).await;
        let steps = (node.script)(index);
        play(ws, steps, (port, node.ports.other(port)), shared).await;
        return Ok(());
    }
    let count = |f: fn(&mut Counts) -> &mut usize| {
        *f(&mut shared.lock().unwrap().counts) += 1;
    };
    let (status, body) = match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/findvisitor") => {
            count(|c| &mut c.find);
            (200, answers.find.clone())
        }
        ("GET", "/lookupvisitor") => {
            count(|c| &mut c.lookup);
            (200, answers.lookup.clone())
        }
        ("GET", "/query") => {
            count(|c| &mut c.query);
            (200, answers.query.clone())
        }
        ("POST", "/signalvisitor") => {
            count(|c| &mut c.signal);
            (200, answers.signal.clone())
        }
        ("POST", path) if path.ends_with("/Authorize") => {
            count(|c| &mut c.authorize);
            let n = shared.lock().unwrap().counts.authorize;
            (200, format!(r#""stand-in-token-{n}""#))
        }
        ("GET", path) if path.ends_with("/GetVisitorSettings3") => (
            200,
            format!(
                r#"{{"presenceUrl":"127.0.0.1:{}","isPresenceLoadBalanced":false}}"#,
                node.ports.first
            ),
        ),
        _ => (404, r#"{"err":"notfound","msg":"not found"}"#.to_owned()),
    };
    let _ = request.body;
    respond(&mut tcp, status, &body).await
}

/// Plays `steps` on one socket, then holds it until the client goes.
async fn play(
    mut ws: WebSocketStream<TcpStream>,
    steps: Vec<Step>,
    (port, other_port): (u16, u16),
    shared: &Mutex<Shared>,
) {
    for step in steps {
        match step {
            Step::AwaitConnect => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => {
                        record(shared, text.as_str());
                        break;
                    }
                    Some(Ok(_)) => {}
                    _ => return,
                }
            },
            Step::Text(text) => {
                let text = text
                    .replace("{OTHER_PORT}", &other_port.to_string())
                    .replace("{PORT}", &port.to_string());
                if ws.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
            Step::Close { code, reason } => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                let _ = tokio::time::timeout(CLOSE_LINGER, drain(&mut ws, shared)).await;
                return;
            }
            Step::Drop => return,
            Step::Pause(pause) => {
                if tokio::time::timeout(pause, drain(&mut ws, shared))
                    .await
                    .is_ok()
                {
                    return; // the client went during the pause
                }
            }
            Step::Hold => break,
        }
    }
    drain(&mut ws, shared).await;
}

/// Reads until the client goes, counting its text frames.
async fn drain(ws: &mut WebSocketStream<TcpStream>, shared: &Mutex<Shared>) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Text(text) = message {
            record(shared, text.as_str());
        }
    }
}

fn record(shared: &Mutex<Shared>, text: &str) {
    let kind = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    *shared
        .lock()
        .unwrap()
        .counts
        .frames
        .entry(kind)
        .or_default() += 1;
}
