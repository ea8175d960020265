//! The service as the simulation hosts it: one [`ServiceCore`] at a time (a crash drops it with
//! all its state; a restart builds a fresh one with the same token secret), and the mapping
//! between the clients' sockets and the core's connections.
//!
//! Requests reach the core the way the real server hands them over: an HTTP request becomes a
//! [`RestRequest`] with the simulation's wall time; a socket opening is an upgrade request the
//! core admits (or answers), then [`ServiceCore::open`]. It is not the network (see
//! [`crate::net`]) and checks nothing (see [`crate::check`]).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use glance_presence_protocol::io::SocketId;
use glance_presence_protocol::rest::HttpRequest;
use glance_presence_protocol::{ApiKey, GroupId};
use glance_presence_service::auth::TokenKeys;
use glance_presence_service::core::rest::{HttpAnswer, HttpMethod, RestRequest, RestResponse};
use glance_presence_service::core::{ConnId, CoreSettings, Role, ServiceCore};
use glance_presence_service::ServiceConfig;

/// The group every simulated client belongs to.
pub const GROUP: u64 = 12345;
/// Its API key (LoginKeys are signed with it).
pub const API_KEY: &str = "simulated-api-key";
/// The token secret the service keeps across restarts.
pub const SECRET: &[u8] = b"simulation token secret, 32+ bytes long";
/// Where the clients reach the service.
pub const SERVER: &str = "http://127.0.0.1:8080";
/// Wall time at the start of every run.
pub const EPOCH_UNIX: u64 = 1_700_000_000;

/// A client of the simulation: an agent or a visitor, by index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// Agent `i`.
    Agent(usize),
    /// Visitor `i`.
    Visitor(usize),
}

/// The core's settings for a simulated service.
pub fn settings(seed: u64) -> CoreSettings {
    let group = GroupId::new(GROUP).unwrap_or_else(|_| unreachable!("a valid group"));
    let config = ServiceConfig::builder()
        .demo_group(false)
        .group(group, ApiKey::new(API_KEY))
        .advertise_host("127.0.0.1")
        .build();
    let mut settings = match config {
        Ok(config) => CoreSettings::from_config(&config, seed),
        Err(err) => unreachable!("the simulated configuration is valid: {err}"),
    };
    settings.advertised_port = 8080;
    settings
}

/// The service: up (a core) or down, and the sockets it holds.
#[derive(Debug)]
pub struct Service {
    seed: u64,
    epoch: Instant,
    core: Option<ServiceCore>,
    /// Incremented at every crash and restart.
    pub incarnation: u32,
    by_socket: HashMap<(Node, SocketId), ConnId>,
    by_conn: HashMap<ConnId, (Node, SocketId)>,
}

impl Service {
    /// A service that is up from `epoch`.
    pub fn new(seed: u64, epoch: Instant) -> Self {
        let mut service = Service {
            seed,
            epoch,
            core: None,
            incarnation: 0,
            by_socket: HashMap::new(),
            by_conn: HashMap::new(),
        };
        service.start(epoch);
        service
    }

    /// The wall time at `now`.
    pub fn wall(&self, now: Instant) -> Duration {
        Duration::from_secs(EPOCH_UNIX) + now.saturating_duration_since(self.epoch)
    }

    /// Starts a fresh core (nothing of the old one survives but the token secret).
    pub fn start(&mut self, now: Instant) {
        let seed = self.seed ^ u64::from(self.incarnation).wrapping_mul(0x9E37_79B9);
        let wall = self.wall(now).as_secs_f64();
        self.core = Some(ServiceCore::new(
            settings(seed),
            TokenKeys::new(SECRET),
            now,
            wall,
        ));
        self.incarnation += 1;
    }

    /// Drops the core and every socket mapping: its state is lost.
    pub fn crash(&mut self) {
        self.core = None;
        self.by_socket.clear();
        self.by_conn.clear();
        self.incarnation += 1;
    }

    /// Whether a core is running.
    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }

    /// The core, when up.
    pub fn core(&self) -> Option<&ServiceCore> {
        self.core.as_ref()
    }

    /// The core, when up.
    pub fn core_mut(&mut self) -> Option<&mut ServiceCore> {
        self.core.as_mut()
    }

    /// The connection of a client's socket.
    pub fn conn_of(&self, node: Node, socket: SocketId) -> Option<ConnId> {
        self.by_socket.get(&(node, socket)).copied()
    }

    /// The client socket of a connection.
    pub fn socket_of(&self, conn: ConnId) -> Option<(Node, SocketId)> {
        self.by_conn.get(&conn).copied()
    }

    /// Forgets a connection (closed on either side).
    pub fn forget(&mut self, conn: ConnId) {
        if let Some(key) = self.by_conn.remove(&conn) {
            self.by_socket.remove(&key);
        }
    }

    /// A socket asks to open on `path`: the core admits it (a connection id) or answers it.
    pub fn open(
        &mut self,
        now: Instant,
        node: Node,
        socket: SocketId,
        path: &str,
    ) -> Result<ConnId, u16> {
        let wall = self.wall(now);
        let Some(core) = self.core.as_mut() else {
            return Err(0);
        };
        let request = RestRequest {
            method: HttpMethod::Get,
            path,
            query: None,
            authorization: None,
            origin: None,
            body: Some(b""),
        };
        match core.handle_http(now, wall, &request) {
            HttpAnswer::Upgrade(role) => {
                let conn = core.open(now, role);
                self.by_socket.insert((node, socket), conn);
                self.by_conn.insert(conn, (node, socket));
                Ok(conn)
            }
            HttpAnswer::Respond(answer) | HttpAnswer::RespondAfter(_, answer) => Err(answer.status),
        }
    }

    /// An HTTP request, as the server would hand it to the core.
    pub fn http(&mut self, now: Instant, request: &HttpRequest) -> Option<RestResponse> {
        let wall = self.wall(now);
        let core = self.core.as_mut()?;
        let target = request
            .url
            .split_once("://")
            .map_or(request.url.as_str(), |(_, rest)| rest);
        let target = target.find('/').map_or("/", |i| &target[i..]);
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        let method = match request.method.as_str() {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "OPTIONS" => HttpMethod::Options,
            _ => HttpMethod::Other,
        };
        let rest = RestRequest {
            method,
            path,
            query,
            authorization: request.header("Authorization"),
            origin: request.header("Origin"),
            body: Some(request.body.as_deref().unwrap_or_default().as_bytes()),
        };
        match core.handle_http(now, wall, &rest) {
            // The simulation does not turn on the test controls, the only source of delays.
            HttpAnswer::Respond(answer) | HttpAnswer::RespondAfter(_, answer) => Some(answer),
            HttpAnswer::Upgrade(_) => Some(RestResponse::error(400, "badrequest", "not here")),
        }
    }

    /// Which role a socket path opens, for logs.
    pub fn role_of(path: &str) -> Option<Role> {
        match path {
            "/agent" => Some(Role::Agent),
            "/visitorws" => Some(Role::Visitor),
            _ => None,
        }
    }
}
