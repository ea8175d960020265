//! Service configuration: groups and their API keys, the listen address, timers, limits,
//! allowed agent origins and optional TLS.
//!
//! A [`ServiceConfig`] comes from a TOML document ([`ServiceConfig::from_toml_str`],
//! [`ServiceConfig::from_toml_file`]) or from the [`ServiceConfigBuilder`]; both validate
//! everything before the service starts. A built-in demo group ([`DEMO_GROUP_ID`] with the API
//! key [`DEMO_API_KEY`]) is on by default so that a service started with no configuration at all
//! can be used locally at once. This module does no IO except reading the files it is asked to
//! read.
//!
//! The TOML format (every key optional):
//!
//! ```toml
//! listen = "127.0.0.1:0"          # port 0: the OS picks a port; the bound address is reported
//! advertise_host = "127.0.0.1"    # host named in direct/directserver/presenceUrl answers
//! demo_group = true               # group 12345 with the API key "glance-presence-demo-key"
//! keepalive_secs = 30             # sent in `connected`
//! presence_window_secs = 6        # a visitor stays present this long after its last socket
//! hold_window_secs = 6            # a held signal waits this long; default: the presence window
//! idle_timeout_secs = 90          # default 3 × keepalive
//! unique_timeout_secs = 300       # the `timeout` of /uniquevisitor answers
//! http_header_timeout_secs = 10   # a request's headers must arrive within this (first byte on)
//! http_idle_timeout_secs = 60     # an HTTP connection with no request open closes after this
//! load_balanced = false           # isPresenceLoadBalanced in GetVisitorSettings3
//! allowed_origins = ["*"]         # agent origins, accepted on agent endpoints and /agent
//! token_secret = "at least 32 bytes of secret text....."  # default: random per process
//! seed = 7                        # seed of the unique-id generator (default: random)
//!
//! [limits]
//! max_frame_bytes = 65536
//! send_queue_frames = 256
//! held_signals_per_visitor = 64
//! max_connections = 10000        # open connections, HTTP and WebSocket; more are refused
//! max_body_bytes = 65536
//! max_presence_bytes = 65536      # a visitor's merged presence data, encoded as JSON
//! max_presence_keys = 256         # keys in a visitor's merged presence data
//!
//! [tls]
//! cert = "cert.pem"               # PEM certificate chain
//! key = "key.pem"                 # PEM private key
//!
//! [[group]]
//! id = 23456
//! api_keys = ["first key", "second key"]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use glance_presence_protocol::{ApiKey, GroupId};

use crate::core::AdminToken;
use serde::Deserialize;

/// The group id of the built-in demo group.
pub const DEMO_GROUP_ID: u64 = 12345;
/// The API key of the built-in demo group. It is public: use the demo group only locally.
pub const DEMO_API_KEY: &str = "glance-presence-demo-key";
/// Default keepalive interval sent in `connected`, in seconds.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 30;
/// Default presence window: a visitor stays present this long after its last socket closed.
///
/// Six seconds: Glance's visitor script in load-balanced mode reopens its socket exactly 5 s
/// after its tab is hidden, so a 5 s window would expire a few milliseconds before the new
/// socket arrives and agents would see the visitor leave and come back. One second of slack
/// covers the reopen and its network delay.
pub const DEFAULT_PRESENCE_WINDOW: Duration = Duration::from_secs(6);
/// Default hold window: the presence window, so that a held signal waits as long as its visitor
/// stays present. When only the presence window is configured, the hold window follows it.
pub const DEFAULT_HOLD_WINDOW: Duration = DEFAULT_PRESENCE_WINDOW;
/// Default bound of a visitor's merged presence data, in bytes of its JSON encoding: the
/// frame size limit, so any single frame the service accepts fits in an empty record, and a
/// quarter of the body limit of the client's REST parsers
/// (`glance_presence_protocol::rest::DEFAULT_MAX_BODY_BYTES`, 256 KiB), so that a
/// `lookupvisitor` or `query` answer of a full record stays readable by the client.
pub const DEFAULT_MAX_PRESENCE_BYTES: usize = 64 * 1024;
/// Default bound of the number of keys in a visitor's merged presence data.
pub const DEFAULT_MAX_PRESENCE_KEYS: usize = 256;
/// Largest configurable [`Limits::max_presence_bytes`]: the client's REST body limit less
/// 64 KiB for the record fields a `lookupvisitor` or `query` answer adds to the presence data.
pub const MAX_PRESENCE_BYTES_LIMIT: usize =
    glance_presence_protocol::rest::DEFAULT_MAX_BODY_BYTES - 64 * 1024;
/// Default lifetime announced for unique visitor ids, in seconds.
pub const DEFAULT_UNIQUE_TIMEOUT_SECS: u64 = 300;
/// Default time a client has to send a request's headers, from the first byte (or, for the first
/// request of a connection, from the accept).
pub const DEFAULT_HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an HTTP connection may stay open with no request under way.
pub const DEFAULT_HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest accepted token signing secret, in bytes.
pub const MIN_TOKEN_SECRET_BYTES: usize = 32;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The TOML document does not parse or has unknown keys or wrong types.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Limits that keep memory bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest WebSocket text frame accepted (bytes).
    pub max_frame_bytes: usize,
    /// Frames queued for one connection before it counts as a consumer that does not read and
    /// is disconnected.
    pub send_queue_frames: usize,
    /// Signals held for one socketless visitor.
    pub held_signals_per_visitor: usize,
    /// Open connections at most, HTTP and WebSocket together; more are refused with 503 (or,
    /// when even that cannot be afforded, closed at once). Lowered at start to what the
    /// process's open-file limit allows.
    pub max_connections: usize,
    /// Largest REST request body (bytes).
    pub max_body_bytes: usize,
    /// Largest merged presence record of one visitor, in bytes of its JSON encoding (each key
    /// and value as `"key":value,`). A `presence` frame that would make the record larger is
    /// refused whole. At most [`MAX_PRESENCE_BYTES_LIMIT`].
    pub max_presence_bytes: usize,
    /// Most keys in the merged presence record of one visitor. A `presence` frame that would
    /// add more is refused whole.
    pub max_presence_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 64 * 1024,
            send_queue_frames: 256,
            held_signals_per_visitor: 64,
            max_connections: 10_000,
            max_body_bytes: 64 * 1024,
            max_presence_bytes: DEFAULT_MAX_PRESENCE_BYTES,
            max_presence_keys: DEFAULT_MAX_PRESENCE_KEYS,
        }
    }
}

/// Where the TLS certificate and key come from.
#[derive(Clone)]
pub enum TlsConfig {
    /// PEM files on disk, read when the service starts.
    PemFiles {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// PEM text in memory.
    Pem {
        /// The certificate chain.
        cert: Vec<u8>,
        /// The private key.
        key: Vec<u8>,
    },
}

impl TlsConfig {
    /// Certificate chain and key from PEM files.
    pub fn from_pem_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig::PemFiles {
            cert: cert.into(),
            key: key.into(),
        }
    }

    /// Certificate chain and key from PEM text.
    pub fn from_pem(cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        TlsConfig::Pem {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfig::PemFiles { cert, key } => f
                .debug_struct("PemFiles")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            TlsConfig::Pem { cert, .. } => f
                .debug_struct("Pem")
                .field("cert_bytes", &cert.len())
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

/// The token signing secret (redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(Vec<u8>);

impl TokenSecret {
    /// A secret from bytes; at least [`MIN_TOKEN_SECRET_BYTES`] long.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ConfigError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_TOKEN_SECRET_BYTES {
            return Err(ConfigError::Invalid(format!(
                "token_secret must be at least {MIN_TOKEN_SECRET_BYTES} bytes long"
            )));
        }
        Ok(TokenSecret(bytes))
    }

    /// The secret bytes.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// The complete, validated configuration of a service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    listen: SocketAddr,
    advertise_host: Option<String>,
    demo_group: bool,
    groups: BTreeMap<GroupId, Vec<ApiKey>>,
    keepalive_secs: u64,
    presence_window: Duration,
    hold_window: Duration,
    idle_timeout: Duration,
    unique_timeout_secs: u64,
    http_header_timeout: Duration,
    http_idle_timeout: Duration,
    load_balanced: bool,
    allowed_origins: Vec<String>,
    token_secret: Option<TokenSecret>,
    seed: Option<u64>,
    limits: Limits,
    tls: Option<TlsConfig>,
    control_token: Option<AdminToken>,
}

impl Default for ServiceConfig {
    /// Loopback, port 0, the demo group, every default.
    fn default() -> Self {
        match ServiceConfig::builder().build() {
            Ok(config) => config,
            // The defaults are valid; this arm is never taken.
            Err(_) => unreachable!("the default configuration is valid"),
        }
    }
}

impl ServiceConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ServiceConfigBuilder {
        ServiceConfigBuilder::default()
    }

    /// Parses and validates a TOML document (format in the module docs).
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        file.into_builder()?.build()
    }

    /// Reads, parses and validates a TOML file. Relative TLS paths are taken relative to the
    /// file's directory.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: FileConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut builder = file.into_builder()?;
        if let Some(TlsConfig::PemFiles { cert, key }) = &mut builder.tls {
            if cert.is_relative() {
                *cert = base.join(&*cert);
            }
            if key.is_relative() {
                *key = base.join(&*key);
            }
        }
        builder.build()
    }

    /// A builder holding this configuration, to change a few values.
    pub fn to_builder(&self) -> ServiceConfigBuilder {
        let mut groups = self.groups.clone();
        if self.demo_group {
            // The builder adds the demo group back unless it is switched off.
            let demo_key = ApiKey::new(DEMO_API_KEY);
            groups.retain(|group, keys| {
                if group.get() == DEMO_GROUP_ID {
                    keys.retain(|k| *k != demo_key);
                }
                !keys.is_empty()
            });
        }
        ServiceConfigBuilder {
            listen: self.listen,
            advertise_host: self.advertise_host.clone(),
            demo_group: self.demo_group,
            groups,
            keepalive_secs: self.keepalive_secs,
            presence_window: self.presence_window,
            hold_window: Some(self.hold_window),
            idle_timeout: Some(self.idle_timeout),
            unique_timeout_secs: self.unique_timeout_secs,
            http_header_timeout: self.http_header_timeout,
            http_idle_timeout: self.http_idle_timeout,
            load_balanced: self.load_balanced,
            allowed_origins: self.allowed_origins.clone(),
            token_secret: self.token_secret.clone(),
            seed: self.seed,
            limits: self.limits.clone(),
            tls: self.tls.clone(),
            control_token: self.control_token.clone(),
        }
    }

    /// The address to listen on (port 0 lets the OS choose).
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
    /// The host named in `direct`/`directserver`/`presenceUrl` answers, if set; otherwise the
    /// bound IP address (127.0.0.1 when bound to an unspecified address).
    pub fn advertise_host(&self) -> Option<&str> {
        self.advertise_host.as_deref()
    }
    /// Whether the built-in demo group is on.
    pub fn demo_group(&self) -> bool {
        self.demo_group
    }
    /// The configured groups and their API keys (the demo group included when enabled).
    pub fn groups(&self) -> &BTreeMap<GroupId, Vec<ApiKey>> {
        &self.groups
    }
    /// The API keys of one group.
    pub fn api_keys(&self, group: GroupId) -> Option<&[ApiKey]> {
        self.groups.get(&group).map(Vec::as_slice)
    }
    /// Keepalive interval announced in `connected`, in seconds.
    pub fn keepalive_secs(&self) -> u64 {
        self.keepalive_secs
    }
    /// How long a visitor stays present after its last socket closed.
    pub fn presence_window(&self) -> Duration {
        self.presence_window
    }
    /// How long a held signal waits for the visitor's next socket.
    pub fn hold_window(&self) -> Duration {
        self.hold_window
    }
    /// Inbound silence after which a socket is closed.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
    /// The `timeout` announced by `/uniquevisitor`, in seconds.
    pub fn unique_timeout_secs(&self) -> u64 {
        self.unique_timeout_secs
    }
    /// How long a client has to send a request's headers: from the accept for the first
    /// request of a connection, from the first byte for later ones.
    pub fn http_header_timeout(&self) -> Duration {
        self.http_header_timeout
    }
    /// How long an HTTP connection may stay open with no request under way.
    pub fn http_idle_timeout(&self) -> Duration {
        self.http_idle_timeout
    }
    /// `isPresenceLoadBalanced` in `GetVisitorSettings3` answers.
    pub fn load_balanced(&self) -> bool {
        self.load_balanced
    }
    /// Allowed agent origins; `"*"` allows every origin.
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }
    /// Whether an agent `Origin` header value is allowed. Requests without an `Origin` header
    /// (non-browser clients) are not subject to the check.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| crate::core::rest::origins::origin_matches(allowed, origin))
    }
    /// The configured token signing secret; `None` means a random secret per process.
    pub fn token_secret(&self) -> Option<&TokenSecret> {
        self.token_secret.as_ref()
    }
    /// The seed of the unique-id generator; `None` means random.
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }
    /// Limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// The admin token of the test controls, when they are on.
    pub fn test_controls(&self) -> Option<&AdminToken> {
        self.control_token.as_ref()
    }

    /// Serves HTTPS/WSS with this certificate and key, when set.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }
}

/// Builds a [`ServiceConfig`]; [`build`](ServiceConfigBuilder::build) validates it.
#[derive(Debug, Clone)]
pub struct ServiceConfigBuilder {
    listen: SocketAddr,
    advertise_host: Option<String>,
    demo_group: bool,
    groups: BTreeMap<GroupId, Vec<ApiKey>>,
    keepalive_secs: u64,
    presence_window: Duration,
    hold_window: Option<Duration>,
    idle_timeout: Option<Duration>,
    unique_timeout_secs: u64,
    http_header_timeout: Duration,
    http_idle_timeout: Duration,
    load_balanced: bool,
    allowed_origins: Vec<String>,
    token_secret: Option<TokenSecret>,
    seed: Option<u64>,
    limits: Limits,
    tls: Option<TlsConfig>,
    control_token: Option<AdminToken>,
}

impl Default for ServiceConfigBuilder {
    fn default() -> Self {
        ServiceConfigBuilder {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertise_host: None,
            demo_group: true,
            groups: BTreeMap::new(),
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
            presence_window: DEFAULT_PRESENCE_WINDOW,
            hold_window: None,
            idle_timeout: None,
            unique_timeout_secs: DEFAULT_UNIQUE_TIMEOUT_SECS,
            http_header_timeout: DEFAULT_HTTP_HEADER_TIMEOUT,
            http_idle_timeout: DEFAULT_HTTP_IDLE_TIMEOUT,
            load_balanced: false,
            allowed_origins: vec!["*".to_owned()],
            token_secret: None,
            seed: None,
            limits: Limits::default(),
            tls: None,
            control_token: None,
        }
    }
}

impl ServiceConfigBuilder {
    /// The address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// The host to name in `direct`/`presenceUrl` answers (default: the bound IP).
    pub fn advertise_host(mut self, host: impl Into<String>) -> Self {
        self.advertise_host = Some(host.into());
        self
    }
    /// Whether the built-in demo group ([`DEMO_GROUP_ID`], [`DEMO_API_KEY`]) exists (default on).
    pub fn demo_group(mut self, enabled: bool) -> Self {
        self.demo_group = enabled;
        self
    }
    /// Adds an API key to a group (creating the group).
    pub fn group(mut self, group: GroupId, api_key: ApiKey) -> Self {
        let keys = self.groups.entry(group).or_default();
        if !keys.contains(&api_key) {
            keys.push(api_key);
        }
        self
    }
    /// The keepalive interval announced in `connected` (default 30 s).
    pub fn keepalive_secs(mut self, secs: u64) -> Self {
        self.keepalive_secs = secs;
        self
    }
    /// The presence window (default [`DEFAULT_PRESENCE_WINDOW`], 6 s).
    pub fn presence_window(mut self, window: Duration) -> Self {
        self.presence_window = window;
        self
    }
    /// The hold window (default: the presence window, so a held signal waits as long as its
    /// visitor stays present).
    pub fn hold_window(mut self, window: Duration) -> Self {
        self.hold_window = Some(window);
        self
    }
    /// The idle timeout (default 3 × keepalive).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }
    /// The `timeout` of `/uniquevisitor` answers (default 300 s).
    pub fn unique_timeout_secs(mut self, secs: u64) -> Self {
        self.unique_timeout_secs = secs;
        self
    }
    /// How long a client has to send a request's headers (default 10 s).
    pub fn http_header_timeout(mut self, timeout: Duration) -> Self {
        self.http_header_timeout = timeout;
        self
    }
    /// How long an HTTP connection may stay open with no request under way (default 60 s).
    pub fn http_idle_timeout(mut self, timeout: Duration) -> Self {
        self.http_idle_timeout = timeout;
        self
    }
    /// `isPresenceLoadBalanced` in `GetVisitorSettings3` (default false).
    pub fn load_balanced(mut self, load_balanced: bool) -> Self {
        self.load_balanced = load_balanced;
        self
    }
    /// Replaces the allowed agent origins (default `["*"]`, every origin).
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_origins = origins.into_iter().map(Into::into).collect();
        self
    }
    /// A fixed token signing secret, so tokens survive a restart (default: random).
    pub fn token_secret(mut self, secret: TokenSecret) -> Self {
        self.token_secret = Some(secret);
        self
    }
    /// Seeds the unique-id generator (default: random).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Serves HTTPS/WSS with this certificate and key.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Switches the test controls on behind this admin token (see [`crate::core::controls`]);
    /// refused by [`ServiceConfigBuilder::build`] unless the service listens on loopback.
    pub fn test_controls(mut self, admin_token: AdminToken) -> Self {
        self.control_token = Some(admin_token);
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<ServiceConfig, ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let mut groups = self.groups;
        if self.demo_group {
            let demo =
                GroupId::new(DEMO_GROUP_ID).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            let keys = groups.entry(demo).or_default();
            let key = ApiKey::new(DEMO_API_KEY);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if groups.is_empty() {
            return invalid("no groups: enable the demo group or configure one".into());
        }
        for (group, keys) in &groups {
            if keys.is_empty() {
                return invalid(format!("group {group} has no API key"));
            }
            if keys.iter().any(|k| k.expose_secret().is_empty()) {
                return invalid(format!("group {group} has an empty API key"));
            }
        }
        if self.keepalive_secs == 0 || self.keepalive_secs > 3600 {
            return invalid("keepalive_secs must be between 1 and 3600".into());
        }
        if self.presence_window.is_zero() || self.presence_window > Duration::from_secs(3600) {
            return invalid("presence_window must be more than 0 and at most 1 hour".into());
        }
        let hold_window = self.hold_window.unwrap_or(self.presence_window);
        if hold_window.is_zero() || hold_window > Duration::from_secs(3600) {
            return invalid("hold_window must be more than 0 and at most 1 hour".into());
        }
        let idle_timeout = self
            .idle_timeout
            .unwrap_or(Duration::from_secs(3 * self.keepalive_secs));
        if idle_timeout < Duration::from_secs(self.keepalive_secs) {
            return invalid("idle_timeout must be at least the keepalive interval".into());
        }
        if self.unique_timeout_secs == 0 {
            return invalid("unique_timeout_secs must be positive".into());
        }
        for (name, value) in [
            ("http_header_timeout", self.http_header_timeout),
            ("http_idle_timeout", self.http_idle_timeout),
        ] {
            if value < Duration::from_millis(10) || value > Duration::from_secs(3600) {
                return invalid(format!("{name} must be between 10 ms and 1 hour"));
            }
        }
        if let Some(host) = &self.advertise_host {
            // A DNS name is at most 253 characters; the bound also keeps the record fields of
            // `lookupvisitor` answers small (see `MAX_PRESENCE_BYTES_LIMIT`).
            if host.is_empty()
                || host.len() > 253
                || host
                    .chars()
                    .any(|c| c.is_whitespace() || c == '/' || c.is_control())
                // The client reads the host back from `direct`/`presenceUrl` answers as a
                // server address: anything it would refuse is refused here.
                || glance_presence_protocol::rest::ServerAddr::new(
                    glance_presence_protocol::rest::Scheme::Https,
                    host,
                )
                .is_err()
                || host.contains(':')
            {
                return invalid(format!("advertise_host {host:?} is not a host name"));
            }
        }
        if self.control_token.is_some() && !self.listen.ip().is_loopback() {
            return invalid("test controls need a loopback listen address".into());
        }
        if self.allowed_origins.iter().any(|o| o.trim().is_empty()) {
            return invalid("allowed_origins holds an empty origin".into());
        }
        let l = &self.limits;
        if l.max_frame_bytes < 256 || l.max_frame_bytes > 16 * 1024 * 1024 {
            return invalid("limits.max_frame_bytes must be between 256 and 16 MiB".into());
        }
        if l.send_queue_frames == 0
            || l.held_signals_per_visitor == 0
            || l.max_connections == 0
            || l.max_body_bytes < 256
        {
            return invalid("limits must be positive (max_body_bytes at least 256 bytes)".into());
        }
        if l.max_presence_bytes < 256 || l.max_presence_bytes > MAX_PRESENCE_BYTES_LIMIT {
            return invalid(format!(
                "limits.max_presence_bytes must be between 256 and {MAX_PRESENCE_BYTES_LIMIT} \
                 (the client refuses REST answers over {} bytes)",
                glance_presence_protocol::rest::DEFAULT_MAX_BODY_BYTES
            ));
        }
        if l.max_presence_keys == 0 {
            return invalid("limits.max_presence_keys must be positive".into());
        }
        Ok(ServiceConfig {
            listen: self.listen,
            advertise_host: self.advertise_host,
            demo_group: self.demo_group,
            groups,
            keepalive_secs: self.keepalive_secs,
            presence_window: self.presence_window,
            hold_window,
            idle_timeout,
            unique_timeout_secs: self.unique_timeout_secs,
            http_header_timeout: self.http_header_timeout,
            http_idle_timeout: self.http_idle_timeout,
            load_balanced: self.load_balanced,
            allowed_origins: self.allowed_origins,
            token_secret: self.token_secret,
            seed: self.seed,
            limits: self.limits,
            tls: self.tls,
            control_token: self.control_token,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    advertise_host: Option<String>,
    demo_group: Option<bool>,
    keepalive_secs: Option<u64>,
    presence_window_secs: Option<f64>,
    hold_window_secs: Option<f64>,
    idle_timeout_secs: Option<f64>,
    unique_timeout_secs: Option<u64>,
    http_header_timeout_secs: Option<f64>,
    http_idle_timeout_secs: Option<f64>,
    load_balanced: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    token_secret: Option<String>,
    seed: Option<u64>,
    limits: Option<FileLimits>,
    tls: Option<FileTls>,
    #[serde(default)]
    group: Vec<FileGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_frame_bytes: Option<usize>,
    send_queue_frames: Option<usize>,
    held_signals_per_visitor: Option<usize>,
    max_connections: Option<usize>,
    max_body_bytes: Option<usize>,
    max_presence_bytes: Option<usize>,
    max_presence_keys: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    id: u64,
    api_keys: Vec<String>,
}

fn secs(name: &str, value: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| ConfigError::Invalid(format!("{name} must be a non-negative number")))
}

impl FileConfig {
    fn into_builder(self) -> Result<ServiceConfigBuilder, ConfigError> {
        let mut b = ServiceConfig::builder();
        if let Some(listen) = self.listen {
            let addr: SocketAddr = listen.parse().map_err(|_| {
                ConfigError::Invalid(format!("listen {listen:?} is not an ip:port address"))
            })?;
            b = b.listen(addr);
        }
        if let Some(host) = self.advertise_host {
            b = b.advertise_host(host);
        }
        if let Some(demo) = self.demo_group {
            b = b.demo_group(demo);
        }
        if let Some(k) = self.keepalive_secs {
            b = b.keepalive_secs(k);
        }
        if let Some(v) = self.presence_window_secs {
            b = b.presence_window(secs("presence_window_secs", v)?);
        }
        if let Some(v) = self.hold_window_secs {
            b = b.hold_window(secs("hold_window_secs", v)?);
        }
        if let Some(v) = self.idle_timeout_secs {
            b = b.idle_timeout(secs("idle_timeout_secs", v)?);
        }
        if let Some(v) = self.unique_timeout_secs {
            b = b.unique_timeout_secs(v);
        }
        if let Some(v) = self.http_header_timeout_secs {
            b = b.http_header_timeout(secs("http_header_timeout_secs", v)?);
        }
        if let Some(v) = self.http_idle_timeout_secs {
            b = b.http_idle_timeout(secs("http_idle_timeout_secs", v)?);
        }
        if let Some(v) = self.load_balanced {
            b = b.load_balanced(v);
        }
        if let Some(v) = self.allowed_origins {
            b = b.allowed_origins(v);
        }
        if let Some(v) = self.token_secret {
            b = b.token_secret(TokenSecret::new(v.into_bytes())?);
        }
        if let Some(v) = self.seed {
            b = b.seed(v);
        }
        if let Some(l) = self.limits {
            let d = Limits::default();
            b = b.limits(Limits {
                max_frame_bytes: l.max_frame_bytes.unwrap_or(d.max_frame_bytes),
                send_queue_frames: l.send_queue_frames.unwrap_or(d.send_queue_frames),
                held_signals_per_visitor: l
                    .held_signals_per_visitor
                    .unwrap_or(d.held_signals_per_visitor),
                max_connections: l.max_connections.unwrap_or(d.max_connections),
                max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
                max_presence_bytes: l.max_presence_bytes.unwrap_or(d.max_presence_bytes),
                max_presence_keys: l.max_presence_keys.unwrap_or(d.max_presence_keys),
            });
        }
        if let Some(tls) = self.tls {
            b = b.tls(TlsConfig::from_pem_files(tls.cert, tls.key));
        }
        for group in self.group {
            let id = GroupId::new(group.id).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            if group.api_keys.is_empty() {
                return Err(ConfigError::Invalid(format!("group {id} has no API key")));
            }
            for key in group.api_keys {
                b = b.group(id, ApiKey::new(key));
            }
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = ServiceConfig::default();
        assert_eq!(c.listen().port(), 0);
        assert!(c.listen().ip().is_loopback());
        assert_eq!(c.keepalive_secs(), 30);
        assert_eq!(c.idle_timeout(), Duration::from_secs(90));
        assert_eq!(c.presence_window(), Duration::from_secs(6));
        assert_eq!(c.hold_window(), Duration::from_secs(6));
        assert_eq!(c.limits().max_presence_bytes, 64 * 1024);
        assert_eq!(c.limits().max_presence_keys, 256);
        assert_eq!(c.http_header_timeout(), Duration::from_secs(10));
        assert_eq!(c.http_idle_timeout(), Duration::from_secs(60));
        assert_eq!(c.limits().max_connections, 10_000);
        let demo = GroupId::new(DEMO_GROUP_ID).unwrap();
        assert_eq!(c.api_keys(demo).unwrap()[0].expose_secret(), DEMO_API_KEY);
        assert!(c.origin_allowed("https://anything.example"));
        assert!(!c.load_balanced());
    }

    #[test]
    fn toml_full() {
        let c = ServiceConfig::from_toml_str(
            r#"
            listen = "127.0.0.1:8080"
            advertise_host = "presence.local"
            demo_group = false
            keepalive_secs = 10
            presence_window_secs = 2.5
            hold_window_secs = 1
            unique_timeout_secs = 60
            load_balanced = true
            allowed_origins = ["https://console.example.com"]
            token_secret = "0123456789abcdef0123456789abcdef"
            seed = 7
            [limits]
            max_frame_bytes = 4096
            [tls]
            cert = "c.pem"
            key = "k.pem"
            [[group]]
            id = 777
            api_keys = ["k1", "k2"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listen().port(), 8080);
        assert_eq!(c.advertise_host(), Some("presence.local"));
        assert_eq!(c.keepalive_secs(), 10);
        assert_eq!(c.idle_timeout(), Duration::from_secs(30));
        assert_eq!(c.presence_window(), Duration::from_millis(2500));
        assert_eq!(c.hold_window(), Duration::from_secs(1));
        assert!(c.load_balanced());
        assert!(c.origin_allowed("https://console.example.com"));
        assert!(!c.origin_allowed("https://evil.example.com"));
        assert_eq!(c.limits().max_frame_bytes, 4096);
        assert_eq!(c.limits().send_queue_frames, 256);
        assert_eq!(c.groups().len(), 1);
        assert_eq!(c.api_keys(GroupId::new(777).unwrap()).unwrap().len(), 2);
        assert!(matches!(c.tls(), Some(TlsConfig::PemFiles { .. })));
        assert_eq!(c.seed(), Some(7));
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn toml_errors() {
        for bad in [
            "unknown = 1",
            "keepalive_secs = 0",
            "listen = \"nope\"",
            "token_secret = \"short\"",
            "demo_group = false",
            "[[group]]\nid = 0\napi_keys = [\"k\"]",
            "[[group]]\nid = 5\napi_keys = []",
            "presence_window_secs = -1",
            "idle_timeout_secs = 1",
            "[limits]\nmax_frame_bytes = 1",
            "http_header_timeout_secs = 0",
            "http_idle_timeout_secs = 7200",
            "[limits]\nmax_presence_bytes = 10",
            "[limits]\nmax_presence_bytes = 262144",
            "[limits]\nmax_presence_keys = 0",
            "hold_window_secs = 0",
        ] {
            assert!(ServiceConfig::from_toml_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hold_window_follows_the_presence_window_unless_set() {
        let c = ServiceConfig::builder()
            .presence_window(Duration::from_secs(9))
            .build()
            .unwrap();
        assert_eq!(c.hold_window(), Duration::from_secs(9));
        let c = ServiceConfig::from_toml_str("presence_window_secs = 2").unwrap();
        assert_eq!(c.hold_window(), Duration::from_secs(2));
        let c =
            ServiceConfig::from_toml_str("presence_window_secs = 2\nhold_window_secs = 1").unwrap();
        assert_eq!(
            (c.presence_window(), c.hold_window()),
            (Duration::from_secs(2), Duration::from_secs(1))
        );
    }

    #[test]
    fn presence_record_limits_from_toml() {
        let c = ServiceConfig::from_toml_str(
            "[limits]\nmax_presence_bytes = 4096\nmax_presence_keys = 16",
        )
        .unwrap();
        assert_eq!(c.limits().max_presence_bytes, 4096);
        assert_eq!(c.limits().max_presence_keys, 16);
        assert_eq!(c.limits().max_frame_bytes, 64 * 1024);
        // The largest allowed record leaves room below the client's REST body limit.
        let c = ServiceConfig::builder()
            .limits(Limits {
                max_presence_bytes: MAX_PRESENCE_BYTES_LIMIT,
                ..Limits::default()
            })
            .build()
            .unwrap();
        assert!(
            c.limits().max_presence_bytes < glance_presence_protocol::rest::DEFAULT_MAX_BODY_BYTES
        );
        assert!(ServiceConfig::builder()
            .advertise_host("h".repeat(254))
            .build()
            .is_err());
    }

    #[test]
    fn builder_round_trip() {
        let g = GroupId::new(42).unwrap();
        let c = ServiceConfig::builder()
            .demo_group(false)
            .group(g, ApiKey::new("k"))
            .hold_window(Duration::from_millis(300))
            .build()
            .unwrap();
        let again = c.to_builder().build().unwrap();
        assert_eq!(again.groups().len(), 1);
        assert_eq!(again.hold_window(), Duration::from_millis(300));
        // The demo group can be switched off after loading a configuration that had it.
        let with_demo = ServiceConfig::from_toml_str("").unwrap();
        assert!(with_demo.demo_group());
        assert!(with_demo
            .to_builder()
            .demo_group(false)
            .group(g, ApiKey::new("k"))
            .build()
            .unwrap()
            .api_keys(GroupId::new(DEMO_GROUP_ID).unwrap())
            .is_none());
        assert!(with_demo.to_builder().build().unwrap().demo_group());
    }
}
