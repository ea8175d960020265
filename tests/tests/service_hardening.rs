//! The reference service against idle, half-open and hostile connections, over loopback with
//! raw TCP and WebSocket clients: header and idle timeouts, the connection cap and its 503, the
//! WebSocket close handshake and the RFC 6455 close codes, and the order of a graceful stop.
//!
//! Timeouts are configured short here so that a connection that is never closed fails a test
//! (its read times out first); no test asserts on how long anything takes.

mod service_support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use glance_presence_protocol::ServerFrame;
use glance_presence_service::{Limits, ServiceConfig};
use service_support::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Guard on every wait for the service to close something: far above the timeouts configured.
const GUARD: Duration = Duration::from_secs(10);

fn connect(svc: &Svc) -> TcpStream {
    let tcp = TcpStream::connect(svc.handle.addr()).unwrap();
    tcp.set_read_timeout(Some(GUARD)).unwrap();
    tcp
}

/// Reads until the service closes the connection; fails when it is still open after the guard.
fn expect_closed(tcp: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the service did not close the connection: {e}"),
        }
    }
}

/// One HTTP/1.1 answer read from a keep-alive connection: status line and body.
fn read_answer(tcp: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = tcp.read(&mut buf).unwrap();
                assert!(n > 0, "the connection closed inside an answer");
                data.extend_from_slice(&buf[..n]);
            }
            let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
            let status = head.lines().next().unwrap_or("").to_owned();
            return (status, body);
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed before an answer: {data:?}");
        data.extend_from_slice(&buf[..n]);
    }
}

fn get(tcp: &mut TcpStream, path: &str, close: bool) -> (String, String) {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n"
    )
    .unwrap();
    read_answer(tcp)
}

// ----------------------------------------------------------------- row 2: connections

#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let svc = Svc::start(
        ServiceConfig::builder()
            .http_header_timeout(Duration::from_millis(300))
            .http_idle_timeout(Duration::from_secs(600)),
    );
    // A request line and one header, never the blank line that ends the headers.
    let mut tcp = connect(&svc);
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    expect_closed(&mut tcp);
    // A connection that sends nothing at all is held to the same timeout.
    let mut silent = connect(&svc);
    expect_closed(&mut silent);
    // A later request on a keep-alive connection that stops half-way, too.
    let mut tcp = connect(&svc);
    assert_eq!(get(&mut tcp, "/metrics", false).0, "HTTP/1.1 200 OK");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
    expect_closed(&mut tcp);
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let svc = Svc::start(
        ServiceConfig::builder()
            .http_header_timeout(Duration::from_secs(600))
            .http_idle_timeout(Duration::from_millis(400)),
    );
    let mut tcp = connect(&svc);
    // Requests closer together than the idle timeout keep the connection.
    for _ in 0..4 {
        assert_eq!(get(&mut tcp, "/metrics", false).0, "HTTP/1.1 200 OK");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Then nothing: the service closes it.
    expect_closed(&mut tcp);
}

#[test]
fn over_the_connection_cap_new_connections_get_503_and_existing_ones_keep_working() {
    let svc = Svc::start(ServiceConfig::builder().limits(Limits {
        max_connections: 3,
        ..Limits::default()
    }));
    // Three connections: an agent, a visitor and an HTTP keep-alive connection.
    let mut agent = svc.agent("capped");
    let mut visitor = svc.visitor("capped");
    assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: true });
    assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: true });
    let mut http = connect(&svc);
    assert_eq!(get(&mut http, "/metrics", false).0, "HTTP/1.1 200 OK");

    // The fourth is refused with a clear answer, and so is a fifth.
    for _ in 0..2 {
        let mut extra = connect(&svc);
        let (status, body) = get(&mut extra, "/metrics", true);
        assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["err"], "serviceunavailable");
        assert_eq!(body["msg"], "too many connections");
        expect_closed(&mut extra);
    }
    assert!(svc.handle.stats().refused_connections >= 2);

    // Those already in keep working.
    assert_eq!(get(&mut http, "/metrics", false).0, "HTTP/1.1 200 OK");
    visitor.send_text(r#"{"type":"presence","data":{"url":"https://a.example/"}}"#);
    assert!(matches!(agent.recv(), ServerFrame::Presence(_)));

    // Once one leaves, new connections are accepted again.
    drop(http);
    let deadline = Instant::now() + GUARD;
    loop {
        let mut next = connect(&svc);
        let (status, _) = get(&mut next, "/metrics", true);
        if status == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after a connection left"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    agent.close();
    visitor.close();
}

// --------------------------------------------------------------- row 3: close handshake

/// Reads the service's Close frame: its code and reason.
fn read_close(ws: &mut Ws) -> (u16, String) {
    loop {
        match ws.0.read() {
            Ok(Message::Close(Some(CloseFrame { code, reason }))) => {
                return (u16::from(code), reason.as_str().to_owned())
            }
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(Message::Text(_)) | Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
            Ok(other) => panic!("expected a Close frame, got {other:?}"),
            Err(e) => panic!("expected a Close frame, got the error {e}"),
        }
    }
}

/// After both Close frames, the service closes the TCP connection cleanly (no reset).
fn expect_clean_end(ws: &mut Ws) {
    match ws.0.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected a clean end of the connection, got {other:?}"),
    }
}

#[test]
fn a_client_close_is_answered_with_a_close_on_both_paths() {
    let svc = Svc::default();
    for path in ["/agent", "/visitorws"] {
        // Before `connect`.
        let mut ws = svc.ws(path, None).unwrap();
        ws.0.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .unwrap();
        assert_eq!(read_close(&mut ws).0, 1000, "{path}");
        expect_clean_end(&mut ws);
    }
    // After `connect`, as Glance's scripts close (hide, disconnect, unload).
    for mut ws in [svc.agent("closing"), svc.visitor("closing")] {
        ws.0.close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        }))
        .unwrap();
        assert_eq!(read_close(&mut ws).0, 1001);
        expect_clean_end(&mut ws);
    }
}

/// A raw masked frame (opcode, payload) as a client sends it.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

fn raw_write(ws: &mut Ws, bytes: &[u8]) {
    match ws.0.get_mut() {
        Stream::Plain(tcp) => tcp.write_all(bytes).unwrap(),
        Stream::Tls(_) => unreachable!("plain service"),
    }
}

#[test]
fn invalid_utf8_text_is_closed_with_1007() {
    let svc = Svc::default();
    for path in ["/agent", "/visitorws"] {
        let mut ws = svc.ws(path, None).unwrap();
        raw_write(&mut ws, &masked_frame(0x1, &[b'{', 0xC3, 0x28, b'}']));
        let (code, reason) = read_close(&mut ws);
        assert_eq!(code, 1007, "{path}: {reason}");
        assert!(!reason.is_empty());
    }
}

#[test]
fn a_frame_over_twice_the_limit_is_closed_with_1009() {
    let svc = Svc::start(ServiceConfig::builder().limits(Limits {
        max_frame_bytes: 1024,
        ..Limits::default()
    }));
    for path in ["/agent", "/visitorws"] {
        let mut ws = svc.ws(path, None).unwrap();
        let big = format!(r#"{{"type":"k","pad":"{}"}}"#, "x".repeat(16 * 1024));
        // The service may close before it has read everything: the write may fail.
        let _ = ws.0.send(Message::text(big));
        let (code, reason) = read_close(&mut ws);
        assert_eq!(code, 1009, "{path}: {reason}");
    }
    // Within twice the limit the decoder answers: the error frame, then 1009 as well.
    let mut ws = svc.visitor("big");
    ws.send_text(&format!(
        r#"{{"type":"presence","data":{{"pad":"{}"}}}}"#,
        "x".repeat(1500)
    ));
    assert_eq!(read_close(&mut ws).0, 1009);
}

#[test]
fn a_protocol_violation_is_closed_with_1002() {
    let svc = Svc::default();
    for path in ["/agent", "/visitorws"] {
        let mut ws = svc.ws(path, None).unwrap();
        // A client frame without a mask (RFC 6455 §5.1).
        raw_write(&mut ws, &[0x81, 0x02, b'{', b'}']);
        let (code, reason) = read_close(&mut ws);
        assert_eq!(code, 1002, "{path}: {reason}");
    }
}

// ------------------------------------------------------------ row 4: order of a stop

/// Whichever connected first, every agent's first frame after the stop begins is
/// `serverclose`: no `visitorsock {connected:false}` caused by the stop reaches it before.
#[test]
fn an_agent_gets_serverclose_before_any_visitor_change_the_stop_causes() {
    for round in 0..20 {
        let svc = Svc::default();
        let visitor_first = round % 2 == 0;
        let (mut agent, mut visitor) = if visitor_first {
            let visitor = svc.visitor("stopping");
            (svc.agent("stopping"), visitor)
        } else {
            let agent = svc.agent("stopping");
            (agent, svc.visitor("stopping"))
        };
        assert_eq!(agent.recv(), ServerFrame::VisitorSock { connected: true });
        assert_eq!(agent.recv(), ServerFrame::VisitorConn { connected: true });
        let Svc { handle, .. } = svc;
        let stopper = std::thread::spawn(move || handle.shutdown());
        assert_eq!(
            agent.recv(),
            ServerFrame::ServerClose,
            "round {round} (visitor first: {visitor_first})"
        );
        assert_eq!(
            agent.expect_end(),
            Ending::Closed(Some((1001, "server shutting down".into())))
        );
        assert_eq!(visitor.recv(), ServerFrame::ServerClose);
        assert!(matches!(
            visitor.expect_end(),
            Ending::Closed(Some((1001, _)))
        ));
        stopper.join().unwrap();
    }
}
