//! The agent's side of the scripted [`Harness`]: its default configurations, its commands
//! (each written to the transcript with its result) and the constants the agent tests share.
//! The peer, the clock and the transcript are the generic [`harness`]'s; the
//! agent's arbitrary runs are in [`ops`].
//!
//! The agent's fake peer answers pings at the end of every drain (on sockets still open) and
//! checks no transport invariants itself ([`ops`] checks its runs). Not the agent's tests.

pub mod ops;

use std::time::{Duration, Instant};

use glance_presence_protocol::agent::{
    AgentConfig, AgentConfigBuilder, AgentEvent, AgentProtocol, CommandError, RequestId,
};

use super::harness::{self, CommandValue, Core, PongTiming};

/// Wall-clock time at the harness's start: 2023-11-14T22:13:20Z.
pub const UNIX_START: u64 = 1_700_000_000;
/// The loopback presence server the default configuration points at.
pub const PRESENCE: &str = "http://127.0.0.1:8080";
/// The answer of `findvisitor` for a visitor on the presence server itself.
pub const FIND_FOUND: &str = r#"{"visitorfound":true,"direct":"127.0.0.1:8080","directserver":"127.0.0.1","httpsport":8080}"#;

/// A default configuration builder: group 12345, visitor `v1`, a bare token, the loopback
/// presence server, seed 7 (the harness starts the wall clock at [`UNIX_START`]).
pub fn base_config() -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .token("test-token")
        .presence_server(PRESENCE)
        .web_server("http://127.0.0.1:8081")
        .rng_seed(7)
}

/// Like [`base_config`] but authenticating with credentials (partner user `agent1`, API key
/// `api-key`) instead of a token.
pub fn credentials_config() -> AgentConfigBuilder {
    AgentConfig::builder()
        .group_id(12345)
        .visitor_id("v1")
        .credentials("agent1", "api-key")
        .presence_server(PRESENCE)
        .web_server("http://127.0.0.1:8081")
        .rng_seed(7)
}

impl Core for AgentProtocol {
    type Error = CommandError;
    const PONG_TIMING: PongTiming = PongTiming::WhileDraining;
    const AUTO_PONG: bool = true;

    fn connect(&mut self, now: Instant) -> Result<(), CommandError> {
        AgentProtocol::connect(self, now)
    }

    fn disconnect(&mut self, now: Instant) {
        AgentProtocol::disconnect(self, now);
    }

    fn is_stopped_event(event: &AgentEvent) -> bool {
        matches!(event, AgentEvent::Stopped { .. })
    }

    fn reconnect(event: &AgentEvent) -> Option<(u32, u64)> {
        match event {
            AgentEvent::Reconnecting { attempt, delay_ms } => Some((*attempt, *delay_ms)),
            _ => None,
        }
    }
}

impl CommandValue for RequestId {
    fn text(&self) -> String {
        self.to_string()
    }
}

/// The harness around an [`AgentProtocol`].
pub type Harness = harness::Harness<AgentProtocol>;

impl Harness {
    /// A harness around a configuration made from [`base_config`] and `tweak`.
    pub fn new(tweak: impl FnOnce(AgentConfigBuilder) -> AgentConfigBuilder) -> Self {
        let start = Instant::now();
        let config = tweak(base_config()).build().expect("valid test config");
        Self::with_config(config, start)
    }

    /// A harness around a configuration made from [`credentials_config`] and `tweak`.
    pub fn with_credentials(tweak: impl FnOnce(AgentConfigBuilder) -> AgentConfigBuilder) -> Self {
        let start = Instant::now();
        let config = tweak(credentials_config())
            .build()
            .expect("valid test config");
        Self::with_config(config, start)
    }

    /// A harness around `config`, whose clock (if anchored) must be anchored at `start`.
    pub fn with_config(config: AgentConfig, start: Instant) -> Self {
        let agent = AgentProtocol::new(config, start, Duration::from_secs(UNIX_START));
        Self::around(agent, start)
    }

    pub fn lookup(&mut self) -> Result<RequestId, CommandError> {
        self.command("lookup()", AgentProtocol::lookup)
    }

    pub fn query(&mut self) -> Result<RequestId, CommandError> {
        self.command("query()", AgentProtocol::query)
    }

    pub fn signal(&mut self, data: serde_json::Value) -> Result<RequestId, CommandError> {
        self.command(&format!("signal({data})"), |agent, now| {
            agent.signal(now, data)
        })
    }

    pub fn invoke(
        &mut self,
        func: &str,
        args: serde_json::Value,
    ) -> Result<RequestId, CommandError> {
        self.command(&format!("invoke({func:?}, {args})"), |agent, now| {
            agent.invoke(now, func, args)
        })
    }

    /// The usual way up with a bare token: findvisitor (found), socket, `connect`,
    /// `connected` (keepalive 30), then the snapshot lookup answered with `lookup_body`.
    pub fn connect_happy(&mut self, lookup_body: &str) {
        self.connect().expect("connect");
        self.respond("/findvisitor", 200, FIND_FOUND);
        self.open_socket();
        self.frame(r#"{"type":"connected","keepalive":30}"#);
        self.respond("/lookupvisitor", 200, lookup_body);
    }
}
