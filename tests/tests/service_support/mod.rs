//! Helpers for the reference service's end-to-end tests: start a service on loopback (plain or
//! TLS with a certificate made here), and talk to it with real blocking WebSocket (tungstenite)
//! and HTTP (ureq) clients. Reads time out after a while so that a broken service fails a test
//! instead of hanging it; no test asserts on how long anything takes.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use glance_presence_protocol::rest::{HttpRequest, Method, Scheme, ServerAddr};
use glance_presence_protocol::{GroupId, PartnerUserId, ServerFrame};
use glance_presence_service::config::DEMO_GROUP_ID;
use glance_presence_service::{ServiceConfig, ServiceConfigBuilder, ServiceHandle, TlsConfig};
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// Guard against hangs, not a timing assertion.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);

pub fn demo_group() -> GroupId {
    GroupId::new(DEMO_GROUP_ID).unwrap()
}

/// A running service and clients for it.
pub struct Svc {
    pub handle: ServiceHandle,
    root: Option<CertificateDer<'static>>,
    http: ureq::Agent,
}

fn http_agent(root: Option<&CertificateDer<'static>>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(READ_TIMEOUT));
    if let Some(root) = root {
        let certs = vec![ureq::tls::Certificate::from_der(root.as_ref()).to_owned()];
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
                .build(),
        );
    }
    config.build().into()
}

/// One HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Svc {
    pub fn start(builder: ServiceConfigBuilder) -> Svc {
        let handle = ServiceHandle::spawn(builder.build().unwrap()).unwrap();
        Svc {
            handle,
            root: None,
            http: http_agent(None),
        }
    }

    pub fn default() -> Svc {
        Svc::start(ServiceConfig::builder())
    }

    /// A TLS service with a certificate for 127.0.0.1 made by this test.
    pub fn start_tls(builder: ServiceConfigBuilder) -> Svc {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let cert_pem = certified.cert.pem();
        let key_pem = certified.signing_key.serialize_pem();
        let root = certified.cert.der().clone();
        let handle = ServiceHandle::spawn(
            builder
                .tls(TlsConfig::from_pem(cert_pem, key_pem))
                .build()
                .unwrap(),
        )
        .unwrap();
        Svc {
            http: http_agent(Some(&root)),
            handle,
            root: Some(root),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.http_base())
    }

    /// A token for the demo group issued in-process.
    pub fn token(&self) -> String {
        self.handle
            .issue_token(
                demo_group(),
                &PartnerUserId::new("agent1").unwrap(),
                Duration::from_secs(3600),
            )
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    /// The service as the protocol crate's request builders name it.
    pub fn server_addr(&self) -> ServerAddr {
        let scheme = if self.handle.is_tls() {
            Scheme::Https
        } else {
            Scheme::Http
        };
        ServerAddr::new(scheme, self.handle.authority()).unwrap()
    }

    /// Sends a request built by the protocol crate, exactly as built.
    pub fn send(&self, request: &HttpRequest) -> HttpAnswer {
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let method = match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        self.request_url(method, &request.url, &headers, request.body.as_deref())
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        self.request_url(method, &self.url(path), headers, body)
    }

    pub fn request_url(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        let url = url.to_owned();
        let path = url.clone();
        let result = match method {
            "GET" => {
                let mut r = self.http.get(&url);
                for (n, v) in headers {
                    r = r.header(*n, *v);
                }
                r.call()
            }
            "OPTIONS" => {
                let mut r = self.http.options(&url);
                for (n, v) in headers {
                    r = r.header(*n, *v);
                }
                r.call()
            }
            "POST" => {
                let mut r = self.http.post(&url);
                for (n, v) in headers {
                    r = r.header(*n, *v);
                }
                match body {
                    Some(b) => r.send(b),
                    None => r.send_empty(),
                }
            }
            other => panic!("method {other}"),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.body_mut().read_to_string().unwrap();
        HttpAnswer {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> HttpAnswer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        self.request("GET", path, &headers, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> HttpAnswer {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json; charset=utf-8")];
        if let Some(b) = bearer.as_deref() {
            headers.push(("Authorization", b));
        }
        self.request("POST", path, &headers, Some(body))
    }

    /// Opens a WebSocket on `path`, optionally with an `Origin` header.
    pub fn ws(&self, path: &str, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let tcp = TcpStream::connect(self.handle.addr()).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_nodelay(true).unwrap();
        let stream = match &self.root {
            None => Stream::Plain(tcp),
            Some(root) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(root.clone()).unwrap();
                let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
                let name = ServerName::try_from("127.0.0.1").unwrap();
                let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
                Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        let mut request = format!("{}{path}", self.handle.ws_base())
            .into_client_request()
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(Ws(socket)),
            Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                panic!("blocking handshake interrupted")
            }
        }
    }

    /// An agent socket for `visitor` in the demo group, past `connected`.
    pub fn agent(&self, visitor: &str) -> Ws {
        let mut ws = self.ws("/agent", None).unwrap();
        ws.send_json(&serde_json::json!({
            "type": "connect", "authorization": self.token(), "groupid": "12345",
            "visitorid": visitor, "version": "6.25.0"
        }));
        assert_eq!(
            ws.recv(),
            ServerFrame::Connected {
                keepalive: Some(30),
                data: None
            }
        );
        ws
    }

    /// A visitor socket for `visitor` in the demo group, past `connected`.
    pub fn visitor(&self, visitor: &str) -> Ws {
        let mut ws = self.ws("/visitorws", None).unwrap();
        ws.send_json(&serde_json::json!({
            "type": "connect", "groupid": 12345, "visitorid": visitor, "version": "6.33.0"
        }));
        assert_eq!(
            ws.recv(),
            ServerFrame::Connected {
                keepalive: Some(30),
                data: None
            }
        );
        ws
    }

    /// `GET /metrics` as name{labels} -> value.
    pub fn metric(&self, series: &str) -> u64 {
        let text = self.get("/metrics", None).body;
        text.lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    }
}

/// A plain or TLS client stream.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
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

/// A blocking WebSocket client.
pub struct Ws(pub tungstenite::WebSocket<Stream>);

/// How a socket ended.
#[derive(Debug, PartialEq)]
pub enum Ending {
    Closed(Option<(u16, String)>),
    Dropped,
}

impl Ws {
    pub fn send_text(&mut self, text: &str) {
        self.0.send(Message::text(text)).unwrap();
    }

    pub fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string());
    }

    /// The next text frame, as text.
    pub fn recv_text(&mut self) -> String {
        loop {
            match self.0.read().unwrap() {
                Message::Text(t) => return t.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame, decoded with the protocol crate.
    pub fn recv(&mut self) -> ServerFrame {
        let text = self.recv_text();
        ServerFrame::decode(&text, 1 << 20).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Reads until the socket ends; fails on any text frame.
    pub fn expect_end(&mut self) -> Ending {
        loop {
            match self.0.read() {
                Ok(Message::Close(frame)) => {
                    let close = frame.map(|CloseFrame { code, reason }| {
                        (u16::from(code), reason.as_str().to_owned())
                    });
                    // Let tungstenite answer the close.
                    while self.0.read().is_ok() {}
                    return Ending::Closed(close);
                }
                Ok(Message::Text(t)) => panic!("expected the end of the socket, got {t}"),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("the socket neither closed nor sent anything: {e}")
                }
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed)
                | Err(tungstenite::Error::Protocol(_))
                | Err(tungstenite::Error::Io(_)) => return Ending::Dropped,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }

    pub fn close(mut self) {
        let _ = self.0.close(None);
        while self.0.read().is_ok() {}
    }
}
