//! Configuration of a [`VisitorProtocol`](super::VisitorProtocol): a builder validated before
//! any IO, with the same typed [`ConfigError`] as the agent's configuration.
//!
//! A visitor names its group and exactly one identity: a visitor id, or *unique mode*
//! (Glance's `connectUnique`: the core asks `GET /uniquevisitor` for a one-time id and connects
//! as `UNQ-<uniqueid>` with the guest token it is given). The rest has defaults: the presence
//! server (`presence.glance.net` over `https`/`wss`; plain `http`/`ws` only for loopback
//! hosts), whether to ask `POST /presence` for a direct server first, the client version
//! (`6.33.0`, the visitor script whose wire format this crate follows), timers, the reconnect
//! policy, the RNG seed, the frame limit, the bound of the outgoing queue and an optional
//! `Origin` header.
//!
//! This module only validates settings; it holds no secrets (visitors send no authorization).

use std::time::Duration;

pub use crate::config_error::ConfigError;
use crate::ids::VisitorId;
pub use crate::link::settings::{DEFAULT_PRESENCE_SERVER, MIN_FRAME_BYTES};
use crate::link::{CheckedLink, Config, ConfigBuilder, LinkTimerFields, Role};

/// The Glance visitor script version whose wire format this crate follows; sent as `ver` /
/// `version`.
pub const DEFAULT_VISITOR_VERSION: &str = "6.33.0";
/// Default bound of the queue of messages waiting for a socket.
pub const DEFAULT_OUTGOING_QUEUE_BOUND: usize = 64;

/// Who the visitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VisitorIdentity {
    /// A visitor id chosen by the site (1–62 characters of `[A-Za-z0-9_~-]`).
    Visitor(VisitorId),
    /// Glance's `connectUnique`: ask `GET /uniquevisitor` for a one-time id first.
    Unique,
}

/// The visitor's timers, each with its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitorTimers {
    /// After this long without anything inbound on a connected socket, send a WebSocket
    /// ping. Default 15 s.
    pub idle_ping_after: Duration,
    /// After the ping, this long without anything inbound and the link is dead. Default 10 s.
    pub pong_timeout: Duration,
    /// Each step of a connect attempt (the `uniquevisitor` or `presence` request; opening the
    /// socket up to `connected`) must finish within this. Default 10 s.
    pub connect_timeout: Duration,
    /// Keepalive interval used when `connected` names none. Default 30 s.
    pub default_keepalive: Duration,
    /// How long the link must stay up after `connected` before the reconnect backoff and the
    /// redirect count start over. Default 30 s.
    pub link_stable_after: Duration,
}

impl Default for VisitorTimers {
    fn default() -> Self {
        VisitorTimers {
            idle_ping_after: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            default_keepalive: Duration::from_secs(30),
            link_stable_after: Duration::from_secs(30),
        }
    }
}

/// The visitor's role in the configuration both cores share: [`VisitorConfig`] is
/// [`Config<VisitorRole>`](Config), [`VisitorConfigBuilder`] is
/// [`ConfigBuilder<VisitorRole>`](ConfigBuilder).
#[derive(Debug, Clone, Copy)]
pub enum VisitorRole {}

#[allow(private_interfaces)] // `Role` is sealed
impl Role for VisitorRole {
    type Timers = VisitorTimers;
    type Settings = VisitorSettings;
    type Checked = VisitorOptions;

    fn link_timers(timers: &mut VisitorTimers) -> LinkTimerFields<'_> {
        LinkTimerFields {
            connect_timeout: &mut timers.connect_timeout,
            idle_ping_after: &mut timers.idle_ping_after,
            pong_timeout: &mut timers.pong_timeout,
            default_keepalive: &mut timers.default_keepalive,
            link_stable_after: &mut timers.link_stable_after,
        }
    }
}

/// A validated visitor configuration. Build one with [`VisitorConfig::builder`].
pub type VisitorConfig = Config<VisitorRole>;

/// Builds a [`VisitorConfig`]. Setters take raw values; [`VisitorConfigBuilder::build`] checks
/// them all and reports the first problem as a [`ConfigError`].
pub type VisitorConfigBuilder = ConfigBuilder<VisitorRole>;

/// The visitor's own settings, as its builder collects them (unchecked).
#[derive(Debug, Clone, Default)]
pub struct VisitorSettings {
    visitor: Option<String>,
    unique: bool,
    direct_server_lookup: bool,
    outgoing_queue_bound: Option<usize>,
}

/// The visitor's own settings, checked.
#[derive(Debug, Clone)]
pub struct VisitorOptions {
    pub(crate) identity: VisitorIdentity,
    pub(crate) direct_server_lookup: bool,
    pub(crate) outgoing_queue_bound: usize,
}

impl VisitorConfig {
    /// A builder for a visitor of `group`; set exactly one of
    /// [`visitor_id`](VisitorConfigBuilder::visitor_id) and
    /// [`unique`](VisitorConfigBuilder::unique), then [`build`](VisitorConfigBuilder::build).
    ///
    /// ```
    /// use glance_presence_protocol::visitor::VisitorConfig;
    /// let config = VisitorConfig::builder().group_id(12345).visitor_id("v1").build().unwrap();
    /// assert_eq!(config.presence_server().ws_url("/visitorws"), "wss://presence.glance.net/visitorws");
    /// assert_eq!(config.client_version(), "6.33.0");
    /// assert!(VisitorConfig::builder().group_id(12345).build().is_err()); // no identity
    /// assert!(VisitorConfig::builder().visitor_id("v1").build().is_err()); // no group
    /// ```
    pub fn builder() -> VisitorConfigBuilder {
        VisitorConfigBuilder::default()
    }

    /// Who the visitor is.
    pub fn identity(&self) -> &VisitorIdentity {
        &self.role.identity
    }

    /// Whether each connect attempt first asks `POST /presence` for a direct server (Glance's
    /// non-load-balanced mode).
    pub fn direct_server_lookup(&self) -> bool {
        self.role.direct_server_lookup
    }

    /// The bound of the queue of messages waiting for a socket.
    pub fn outgoing_queue_bound(&self) -> usize {
        self.role.outgoing_queue_bound
    }
}

impl VisitorConfigBuilder {
    /// The visitor id (exclusive with [`unique`](Self::unique)).
    pub fn visitor_id(mut self, id: impl Into<String>) -> Self {
        self.role.visitor = Some(id.into());
        self
    }

    /// Unique mode, Glance's `connectUnique` (exclusive with [`visitor_id`](Self::visitor_id)):
    /// `GET /uniquevisitor` first, then connect as `UNQ-<uniqueid>` with the guest token.
    pub fn unique(mut self) -> Self {
        self.role.unique = true;
        self
    }

    /// Ask `POST /presence` for a direct server before each connect attempt (Glance's
    /// non-load-balanced mode). Off by default: the socket goes to the presence server.
    pub fn direct_server_lookup(mut self, on: bool) -> Self {
        self.role.direct_server_lookup = on;
        self
    }

    /// Time allowed to each connect step (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timers.connect_timeout = timeout;
        self
    }

    /// Bound of the queue of messages issued while no socket is open (default 64, at least 1).
    /// A message that finds the queue full is refused at once with
    /// [`CommandError::QueueFull`](super::CommandError::QueueFull).
    pub fn outgoing_queue_bound(mut self, bound: usize) -> Self {
        self.role.outgoing_queue_bound = Some(bound);
        self
    }

    /// Checks every setting and returns the configuration, or the first problem found.
    pub fn build(self) -> Result<VisitorConfig, ConfigError> {
        let group = self.link.group()?;
        let role = self.role;
        let identity = match (role.visitor, role.unique) {
            (None, false) => return Err(ConfigError::MissingVisitor),
            (Some(_), true) => return Err(ConfigError::VisitorAndUnique),
            (Some(visitor), false) => {
                VisitorIdentity::Visitor(VisitorId::new(visitor).map_err(|source| {
                    ConfigError::InvalidId {
                        field: "visitor id",
                        source,
                    }
                })?)
            }
            (None, true) => VisitorIdentity::Unique,
        };
        let presence_server = self.link.presence_server()?;
        check_timers(&self.timers)?;
        let max_frame_bytes = self.link.reconnect_and_frame_limit()?;
        let outgoing_queue_bound = role
            .outgoing_queue_bound
            .unwrap_or(DEFAULT_OUTGOING_QUEUE_BOUND);
        if outgoing_queue_bound == 0 {
            return Err(ConfigError::InvalidLimit {
                field: "outgoing queue bound",
                value: 0,
                min: 1,
            });
        }
        let client_version = self.link.version_and_origin(DEFAULT_VISITOR_VERSION)?;
        let name = match &identity {
            VisitorIdentity::Visitor(visitor) => visitor.as_str(),
            VisitorIdentity::Unique => "unique",
        };
        let rng_seed = self.link.rng_seed(group, name);
        let checked = CheckedLink {
            group,
            presence_server,
            max_frame_bytes,
            client_version,
            rng_seed,
        };
        let options = VisitorOptions {
            identity,
            direct_server_lookup: role.direct_server_lookup,
            outgoing_queue_bound,
        };
        Ok(Self::finish(self.link, self.timers, checked, options))
    }
}

fn check_timers(t: &VisitorTimers) -> Result<(), ConfigError> {
    for (field, value) in [
        ("idle ping delay", t.idle_ping_after),
        ("pong timeout", t.pong_timeout),
        ("connect timeout", t.connect_timeout),
        ("default keepalive", t.default_keepalive),
        ("link stable delay", t.link_stable_after),
    ] {
        if value.is_zero() {
            return Err(ConfigError::InvalidTimer {
                field,
                value,
                rule: "it must be more than zero",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::ReconnectPolicy;

    #[test]
    fn defaults() {
        let c = VisitorConfig::builder()
            .group_id(12345)
            .visitor_id("v1")
            .build()
            .unwrap();
        assert_eq!(c.client_version(), "6.33.0");
        assert_eq!(
            c.presence_server().http_base(),
            "https://presence.glance.net"
        );
        assert_eq!(c.reconnect_policy(), &ReconnectPolicy::default());
        assert_eq!(c.max_frame_bytes(), 64 * 1024);
        assert_eq!(c.outgoing_queue_bound(), 64);
        assert_eq!(c.timers().idle_ping_after, Duration::from_secs(15));
        assert!(!c.direct_server_lookup());
        assert_eq!(
            c.identity(),
            &VisitorIdentity::Visitor(VisitorId::new("v1").unwrap())
        );
        let same = VisitorConfig::builder()
            .group_id(12345)
            .visitor_id("v1")
            .build()
            .unwrap();
        let other = VisitorConfig::builder()
            .group_id(12345)
            .visitor_id("v2")
            .build()
            .unwrap();
        assert_eq!(c.rng_seed(), same.rng_seed());
        assert_ne!(c.rng_seed(), other.rng_seed());
    }

    #[test]
    fn errors_name_the_problem() {
        let b = || VisitorConfig::builder().group_id(12345).visitor_id("v1");
        assert!(matches!(
            VisitorConfig::builder()
                .group_id(0)
                .visitor_id("v1")
                .build(),
            Err(ConfigError::InvalidId {
                field: "group id",
                ..
            })
        ));
        assert_eq!(
            VisitorConfig::builder().group_id(1).build().unwrap_err(),
            ConfigError::MissingVisitor
        );
        assert_eq!(
            b().unique().build().unwrap_err(),
            ConfigError::VisitorAndUnique
        );
        assert!(matches!(
            VisitorConfig::builder()
                .group_id(1)
                .visitor_id("bad id")
                .build(),
            Err(ConfigError::InvalidId {
                field: "visitor id",
                ..
            })
        ));
        let e = b()
            .presence_server("http://presence.example.com")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(b().presence_server("ws://127.0.0.1:8080").build().is_ok());
        assert!(matches!(
            b().client_version("6.33").build(),
            Err(ConfigError::InvalidVersion { .. })
        ));
        assert!(matches!(
            b().client_version("6.33.0.1").build(),
            Err(ConfigError::InvalidVersion { .. })
        ));
        assert!(matches!(
            b().origin("shop.example.com").build(),
            Err(ConfigError::InvalidOrigin { .. })
        ));
        assert!(b().origin("https://shop.example.com").build().is_ok());
        assert!(matches!(
            b().outgoing_queue_bound(0).build(),
            Err(ConfigError::InvalidLimit { min: 1, .. })
        ));
        assert!(matches!(
            b().max_frame_bytes(10).build(),
            Err(ConfigError::InvalidLimit { min: 256, .. })
        ));
        assert!(matches!(
            b().pong_timeout(Duration::ZERO).build(),
            Err(ConfigError::InvalidTimer {
                field: "pong timeout",
                ..
            })
        ));
        assert!(matches!(
            b().reconnect_policy(ReconnectPolicy::full_jitter(Duration::ZERO, Duration::ZERO))
                .build(),
            Err(ConfigError::InvalidReconnectPolicy(_))
        ));
        let unique = VisitorConfig::builder()
            .group_id(7)
            .unique()
            .build()
            .unwrap();
        assert_eq!(unique.identity(), &VisitorIdentity::Unique);
    }
}
