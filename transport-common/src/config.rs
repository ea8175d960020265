//! How a transport connects ([`TransportConfig`]): bounds on connecting and on HTTP
//! exchanges, the WebSocket message ceiling, TLS trust, and the shared HTTP pool's limits.
//! Plain data: the transports read it, nothing here opens anything.

use std::time::Duration;

use crate::tls::TlsRoots;
use crate::websocket::DEFAULT_MAX_MESSAGE_BYTES;

/// How a transport connects. Every field has a default ([`TransportConfig::default`]).
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Bound on TCP connect + TLS + WebSocket handshake (default 10 s).
    pub connect_timeout: Duration,
    /// Bound on one HTTP exchange when the core gives none of its own (default 10 s). The
    /// agent's exchanges are bounded by the core's request timeout, whichever is shorter.
    pub http_timeout: Duration,
    /// Hard ceiling on one WebSocket message (or frame) from the peer, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_BYTES`], 1 MiB). A message over it drops the link with a
    /// transport error. Keep it above the core's own `max_frame_bytes` (64 KiB by default):
    /// frames between the two reach the core, which reports them as a `protocol_violation`
    /// and keeps the link, as PROTOCOL.md says. This ceiling only bounds memory.
    pub max_message_bytes: usize,
    /// Which TLS roots to trust for `wss://` and `https://`.
    pub tls_roots: TlsRoots,
    /// Idle HTTP connections kept per host by a shared HTTP client (default 32); more are
    /// closed as soon as their exchange ends.
    pub http_max_idle_per_host: usize,
    /// HTTP connections open at once per host by a shared HTTP client (default 32); further
    /// exchanges wait for one of them.
    pub http_max_connections_per_host: usize,
    /// How long an idle HTTP connection is kept for reuse (default 15 s).
    pub http_idle_timeout: Duration,
    /// How many connects (WebSocket opens and the HTTP exchanges of connecting) run at once in
    /// one fleet or process (default 256); the others wait their turn, so a reconnect storm
    /// of thousands of visitors does not open thousands of sockets in the same instant.
    pub max_concurrent_connects: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            http_timeout: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tls_roots: TlsRoots::webpki(),
            http_max_idle_per_host: 32,
            http_max_connections_per_host: 32,
            http_idle_timeout: Duration::from_secs(15),
            max_concurrent_connects: 256,
        }
    }
}
