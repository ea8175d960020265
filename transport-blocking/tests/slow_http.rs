//! A slow HTTP exchange stalls neither the socket nor the core's timers: while the agent's
//! `lookupvisitor` (made by the core right after `connected`) waits on a server that delays
//! its answer, the blocking driver keeps reading the socket (a frame the server sends in the
//! meantime becomes an event at once) and the core's timers keep firing (keepalive frames and
//! an idle ping reach the server before the answer is written).
//!
//! The server is scripted here, on loopback: one listener serving a minimal HTTP/1.1 (one
//! request per connection) and the `/agent` WebSocket, logging what it receives with the time.
//! Every wait is bounded by [`WAIT`], a guard against hangs.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use glance_presence_blocking::{BlockingAgent, TransportConfig};
use glance_presence_protocol::agent::{AgentConfig, AgentEvent, PresenceSource};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Bound on every wait (a guard against hangs).
const WAIT: Duration = Duration::from_secs(20);
/// How long the server holds its answer to `lookupvisitor`.
const SLOW: Duration = Duration::from_secs(3);
/// When, after `connected`, the server sends a frame on the socket.
const FRAME_AFTER: Duration = Duration::from_millis(300);

/// What the server saw, with when.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// An HTTP request for this path (query string cut off).
    Request(String),
    /// The answer to `lookupvisitor` was written.
    LookupAnswered,
    /// A text frame of this `type` on the socket.
    Frame(String),
    /// A WebSocket ping on the socket.
    Ping,
    /// The server sent its `visitorsock` frame.
    SentFrame,
}

type Log = Arc<Mutex<Vec<(Instant, Seen)>>>;

fn note(log: &Log, seen: Seen) {
    if let Ok(mut log) = log.lock() {
        log.push((Instant::now(), seen));
    }
}

/// The first time `what` was seen.
fn first(log: &Log, what: impl Fn(&Seen) -> bool) -> Option<Instant> {
    let log = log.lock().ok()?;
    log.iter().find(|(_, seen)| what(seen)).map(|(at, _)| *at)
}

/// Starts the scripted server; returns its port and its log.
fn start_server() -> (u16, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let server_log = Arc::clone(&log);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = Arc::clone(&server_log);
            thread::spawn(move || serve(stream, port, log));
        }
    });
    (port, log)
}

/// Reads the request head (up to the blank line), byte by byte so that nothing after it is
/// taken from the stream.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn serve(mut stream: TcpStream, port: u16, log: Log) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let target = head.split_whitespace().nth(1).unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    if path == "/agent" {
        return agent_socket(stream, &head, log);
    }
    note(&log, Seen::Request(path.clone()));
    let body = match path.as_str() {
        "/findvisitor" => format!(
            r#"{{"direct":"127.0.0.1:{port}","directserver":"127.0.0.1","httpsport":{port},"visitorfound":true}}"#
        ),
        "/lookupvisitor" => {
            thread::sleep(SLOW);
            r#"{"direct":"127.0.0.1:PORT","visitorpresent":"1700000000.0","visitorid":"v1","groupid":"12345","url":"https://shop.example/"}"#
                .replace("PORT", &port.to_string())
        }
        _ => "{}".to_owned(),
    };
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
    if path == "/lookupvisitor" {
        note(&log, Seen::LookupAnswered);
    }
}

/// The `/agent` socket: answers `connect` with `connected` (keepalive 1 s), sends a
/// `visitorsock` frame shortly after, and logs every frame and ping until the client goes.
fn agent_socket(mut stream: TcpStream, head: &str, log: Log) {
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(upgrade.as_bytes()).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    let mut connected_at = None;
    let mut frame_sent = false;
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if let Some(at) = connected_at {
            if !frame_sent && at + FRAME_AFTER <= Instant::now() {
                let frame = r#"{"type":"visitorsock","data":{"connected":true}}"#;
                if ws.send(Message::text(frame)).is_err() {
                    return;
                }
                frame_sent = true;
                note(&log, Seen::SentFrame);
            }
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                    .ok()
                    .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                if kind == "connect" && connected_at.is_none() {
                    if ws
                        .send(Message::text(r#"{"type":"connected","keepalive":1}"#))
                        .is_err()
                    {
                        return;
                    }
                    connected_at = Some(Instant::now());
                }
                note(&log, Seen::Frame(kind));
            }
            Ok(Message::Ping(_)) => {
                note(&log, Seen::Ping);
                let _ = ws.flush();
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                let _ = ws.flush();
            }
            Err(_) => return,
        }
    }
}

#[test]
fn a_slow_http_exchange_stalls_neither_the_socket_nor_the_timers() {
    let (port, log) = start_server();
    let config = AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .presence_server(format!("http://127.0.0.1:{port}"))
        .token("a token the scripted server takes as it is")
        .idle_ping_after(Duration::from_millis(200))
        .pong_timeout(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut agent = BlockingAgent::new(config, TransportConfig::default()).unwrap();
    agent.connect().unwrap();

    // Every event with the time the application got it, up to the lookup's snapshot.
    let mut events = Vec::new();
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        let Some(event) = agent.next_event(Some(Duration::from_millis(100))) else {
            continue;
        };
        let snapshot = matches!(
            event,
            AgentEvent::Presence {
                source: PresenceSource::Snapshot,
                ..
            }
        );
        events.push((Instant::now(), event));
        if snapshot {
            break;
        }
    }
    let got = |what: fn(&AgentEvent) -> bool| {
        events
            .iter()
            .find(|(_, event)| what(event))
            .map(|(at, _)| *at)
    };
    assert!(got(|e| matches!(e, AgentEvent::Connected { .. })).is_some());
    let snapshot = got(|e| {
        matches!(
            e,
            AgentEvent::Presence {
                source: PresenceSource::Snapshot,
                ..
            }
        )
    })
    .expect("the lookup's snapshot");
    let socket_event = got(|e| matches!(e, AgentEvent::VisitorSocket { connected: true }))
        .expect("the visitorsock frame as an event");

    let asked = first(&log, |s| *s == Seen::Request("/lookupvisitor".into())).expect("lookup");
    let answered = first(&log, |s| *s == Seen::LookupAnswered).expect("lookup answered");
    let sent = first(&log, |s| *s == Seen::SentFrame).expect("frame sent");
    let keepalive = first(&log, |s| *s == Seen::Frame("k".into()));
    let ping = first(&log, |s| *s == Seen::Ping);
    let report = format!("events {events:#?}\nserver {:#?}", log.lock().unwrap());

    // The exchange really was slow, and under way while the rest happened.
    assert!(answered >= asked + SLOW, "{report}");
    assert!(snapshot >= answered, "{report}");
    // The socket kept being read: the frame sent during the exchange became an event
    // before the exchange ended.
    assert!(asked < sent && socket_event < answered, "{report}");
    // The core's timers kept firing: a keepalive frame (`k`, every 1 s) and an idle ping
    // (after 200 ms of silence) reached the server during the exchange.
    let keepalive = keepalive.unwrap_or_else(|| panic!("no keepalive frame: {report}"));
    let ping = ping.unwrap_or_else(|| panic!("no idle ping: {report}"));
    assert!(asked < keepalive && keepalive < answered, "{report}");
    assert!(asked < ping && ping < answered, "{report}");

    agent.disconnect();
}
