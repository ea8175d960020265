//! Raw clients the suites observe a service with: a WebSocket probe that sends exactly the
//! frames it is told and records exactly what arrives (plain or TLS), and a REST client that
//! keeps the status, the headers and the body of every answer.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glance_presence_transport::TlsRoots;
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use serde_json::Value;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// A probe failure, as text for the report.
pub type ProbeError = String;

/// A TCP stream, plain or TLS.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where the service is: `http`/`https`, host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether it speaks TLS.
    pub tls: bool,
    /// The host (a name, an IPv4 address or a bracketed IPv6 address).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// Reads `http://host[:port]`, `https://host[:port]` or a bare `host[:port]` (https).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            (true, url)
        };
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() || rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(format!("{url:?} is not a server (scheme://host[:port])"));
        }
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => {
                let port = rest[i + 1..]
                    .parse::<u16>()
                    .map_err(|_| format!("{url:?}: the port is not a number 1-65535"))?;
                (&rest[..i], port)
            }
            _ => (rest, if tls { 443 } else { 80 }),
        };
        Ok(Endpoint {
            tls,
            host: host.to_owned(),
            port,
        })
    }

    /// `http(s)://host:port`.
    pub fn http_base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn connect_tcp(&self, timeout: Duration) -> Result<TcpStream, ProbeError> {
        let addrs = (self.host.trim_matches(['[', ']']), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        let mut last = format!("no address for {}", self.host);
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }
}

/// One WebSocket, as a client, reading with deadlines.
#[derive(Debug)]
pub struct WsProbe {
    ws: WebSocket<Stream>,
}

/// What a probe read.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// A text frame, parsed as JSON (`Value::String` with the text when it is not JSON).
    Frame(Value),
    /// A Close frame with its code (`None` when it had none).
    Close(Option<u16>),
    /// The connection ended without a Close frame.
    Gone,
}

impl WsProbe {
    /// Opens `path` (`/agent` or `/visitorws`) on the endpoint.
    pub fn open(endpoint: &Endpoint, path: &str, timeout: Duration) -> Result<Self, ProbeError> {
        let tcp = endpoint.connect_tcp(timeout)?;
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let stream = if endpoint.tls {
            let config = TlsRoots::webpki()
                .client_config()
                .map_err(|e| e.to_string())?;
            let name = ServerName::try_from(endpoint.host.trim_matches(['[', ']']).to_owned())
                .map_err(|e| format!("{}: {e}", endpoint.host))?;
            let conn = ClientConnection::new(Arc::clone(&config), name)
                .map_err(|e| format!("TLS: {e}"))?;
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let scheme = if endpoint.tls { "wss" } else { "ws" };
        let url = format!("{scheme}://{}{path}", endpoint.authority());
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| format!("WebSocket handshake on {path}: {e}"))?;
        Ok(WsProbe { ws })
    }

    /// Sends a text frame holding this JSON.
    pub fn send(&mut self, frame: &Value) -> Result<(), ProbeError> {
        self.send_text(frame.to_string())
    }

    /// Sends a text frame.
    pub fn send_text(&mut self, text: String) -> Result<(), ProbeError> {
        self.ws
            .send(Message::Text(text.into()))
            .map_err(|e| format!("send: {e}"))
    }

    /// Sends a Close frame with `code`.
    pub fn close(&mut self, code: u16) -> Result<(), ProbeError> {
        self.ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            }))
            .map_err(|e| format!("close: {e}"))
    }

    /// The next thing received before `deadline`, or `None` at the deadline.
    pub fn recv_until(&mut self, deadline: Instant) -> Option<Received> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self
                .ws
                .get_ref()
                .tcp()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let text = text.as_str();
                    let value = serde_json::from_str(text)
                        .unwrap_or_else(|_| Value::String(text.to_owned()));
                    return Some(Received::Frame(value));
                }
                Ok(Message::Close(frame)) => {
                    return Some(Received::Close(frame.map(|f| u16::from(f.code))));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(Received::Gone),
            }
        }
    }

    /// The next text frame before `deadline` (closes and the end count as none).
    pub fn next_frame(&mut self, within: Duration) -> Option<Value> {
        match self.recv_until(Instant::now() + within) {
            Some(Received::Frame(v)) => Some(v),
            _ => None,
        }
    }

    /// Every text frame received within `within` (stops early at a close or the end).
    pub fn frames_for(&mut self, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        while let Some(Received::Frame(v)) = self.recv_until(deadline) {
            frames.push(v);
        }
        frames
    }
}

/// A frame's type (`mtype || type`).
pub fn frame_type(frame: &Value) -> &str {
    frame
        .get("mtype")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .or_else(|| frame.get("type").and_then(Value::as_str))
        .unwrap_or("")
}

/// An HTTP answer: status, headers (names lower-case) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// A header (name lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A REST client that keeps whole answers, with a per-request timeout.
#[derive(Debug)]
pub struct RestProbe {
    agent: ureq::Agent,
}

impl RestProbe {
    /// A client with this timeout per request.
    pub fn new(timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build();
        RestProbe {
            agent: config.into(),
        }
    }

    /// Sends `method url` with these headers and an optional body.
    pub fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Answer, ProbeError> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let result = match body {
            Some(body) => {
                let request = builder
                    .body(body.as_bytes().to_vec())
                    .map_err(|e| e.to_string())?;
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|e| e.to_string())?;
                self.agent.run(request)
            }
        };
        let mut response = result.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
