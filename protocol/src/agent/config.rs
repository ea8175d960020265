//! Configuration of an [`AgentProtocol`](super::AgentProtocol): a builder validated before any
//! IO, with typed errors that name the problem.
//!
//! Everything the agent needs is here: which visitor to watch (group id and exactly one of
//! visitor id / unique id), how to authenticate (a token, or credentials from which the core
//! makes LoginKeys and asks `Authorize` for tokens), where the service is (default
//! `presence.glance.net` over `https`/`wss`; plain `http`/`ws` only for loopback hosts),
//! optional discovery through `GetVisitorSettings3`, the signal route, every timer, the
//! reconnect policy, the RNG seed, limits, the client version and an optional `Origin` header.
//!
//! Secrets stay secret: `Debug` of the configuration prints tokens and API keys as
//! `<redacted>`.

use std::fmt;
use std::time::{Duration, Instant};

pub use crate::config_error::ConfigError;
use crate::ids::{PartnerUserId, UniqueId, VisitorId};
use crate::link::settings::server;
use crate::link::{CheckedLink, Config, ConfigBuilder, LinkTimerFields, Role};
use crate::rest::ServerAddr;
use crate::secret::{ApiKey, AuthToken};

/// The Glance agent version whose wire format this crate follows; sent as `ver` / `version`.
pub const DEFAULT_CLIENT_VERSION: &str = "6.25.0";
pub use crate::link::settings::DEFAULT_PRESENCE_SERVER;
/// Glance's web server (authorization and visitor settings).
pub const DEFAULT_WEB_SERVER: &str = "www.glance.net";
/// The Glance site.
pub const DEFAULT_SITE: &str = "production";
/// Default lifetime asked of `Authorize`, in minutes (the most Glance allows).
pub const DEFAULT_AUTHORIZE_MINUTES: u32 = 120;
pub use crate::rest::{
    AUTHORIZE_MAX_DURATION_MINUTES as MAX_AUTHORIZE_MINUTES,
    AUTHORIZE_MIN_DURATION_MINUTES as MIN_AUTHORIZE_MINUTES,
};
/// Default bound of the queue of commands waiting for the link.
pub const DEFAULT_COMMAND_QUEUE_BOUND: usize = 64;

/// The agent's wall time, pinned to a monotonic instant: at `anchor` it reads `unix`, and it
/// advances with the `now` it is given. The driver passes the wall time once, to
/// [`AgentProtocol::new`](super::AgentProtocol::new); the core never reads a clock. Used only
/// to stamp LoginKeys, check a token's `exp` and date presence changes in events.
#[derive(Debug, Clone, Copy)]
pub struct AnchoredClock {
    anchor: Instant,
    unix: Duration,
}

impl AnchoredClock {
    /// A clock that reads `unix` (time since the epoch) at `anchor`.
    pub fn new(anchor: Instant, unix: Duration) -> Self {
        AnchoredClock { anchor, unix }
    }

    /// Time since the Unix epoch at the monotonic instant `now`.
    pub fn unix_time(&self, now: Instant) -> Duration {
        match now.checked_duration_since(self.anchor) {
            Some(elapsed) => self.unix + elapsed,
            None => self.unix.saturating_sub(self.anchor - now),
        }
    }
}

/// How the agent proves who it is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentAuth {
    /// A token obtained elsewhere. It cannot be renewed: once the service refuses it the agent
    /// reports `connfail/authorization` once and stops.
    Token(AuthToken),
    /// Credentials: the core signs a LoginKey with the API key and asks `Authorize` for a token
    /// of `duration_minutes`, renewing it at 80% of its life and after a 401/403.
    Credentials {
        /// The agent's partner user id.
        partner_user: PartnerUserId,
        /// The group's API key.
        api_key: ApiKey,
        /// Token lifetime asked for, 1–120 minutes.
        duration_minutes: u32,
    },
    /// Tokens come from the application, as Ably's `authCallback` and Centrifugo's
    /// `getToken` do: whenever the agent needs one (before the first connect, before the
    /// current one expires when its JWT `exp` is readable, after the service refuses one) it
    /// emits [`AgentEvent::TokenNeeded`](super::AgentEvent::TokenNeeded) and waits (up to
    /// the request timeout) for [`AgentProtocol::provide_token`](super::AgentProtocol::provide_token).
    /// Refusals are handled as with credentials.
    Provider,
}

impl AgentAuth {
    /// Whether the agent can get a new token by itself when the current one is refused or
    /// runs out (credentials, or a token provider).
    pub fn renewable(&self) -> bool {
        matches!(self, AgentAuth::Credentials { .. } | AgentAuth::Provider)
    }
}

impl fmt::Debug for AgentAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentAuth::Token(_) => f.write_str("Token(<redacted>)"),
            AgentAuth::Provider => f.write_str("Provider"),
            AgentAuth::Credentials {
                partner_user,
                duration_minutes,
                ..
            } => f
                .debug_struct("Credentials")
                .field("partner_user", partner_user)
                .field("api_key", &"<redacted>")
                .field("duration_minutes", duration_minutes)
                .finish(),
        }
    }
}

/// How `signal` and `invoke` reach the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SignalRoute {
    /// `GET /findvisitor`, then `POST /signalvisitor` on the visitor's server: the outcome says
    /// whether the service delivered the message now or holds it for the visitor's next
    /// connect. The default.
    #[default]
    Rest,
    /// A frame on the agent's socket (Glance's load-balanced mode): resolves as "sent,
    /// unconfirmed" once the frame is handed to the transport.
    Socket,
}

/// The timers of the agent, each with its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentTimers {
    /// A visitor socket that closes is reported as the visitor leaving only if no socket
    /// comes back within this grace. It also bounds how long the last known state is kept
    /// while the agent's own link is down (then it reads `unknown`), and how long an empty
    /// lookup after a reconnect waits for a visitor that was present before. Default 6 s:
    /// Glance's visitor script reopens a hidden tab's socket exactly 5 s after hiding it, and
    /// the reference service keeps a visitor present 6 s, so the agent never reports a
    /// leave earlier than the service would.
    pub visitor_leave_grace: Duration,
    /// After this long without anything inbound, send a WebSocket ping. Default 15 s.
    pub idle_ping_after: Duration,
    /// After the ping, this long without anything inbound and the link is dead. Default 10 s.
    pub pong_timeout: Duration,
    /// Every request (lookup, signal, invoke, query, authorize, discovery) resolves within
    /// this, and so does opening the socket up to `connected`. Default 10 s.
    pub request_timeout: Duration,
    /// Keepalive interval used when `connected` names none. Default 30 s.
    pub default_keepalive: Duration,
    /// How long the link must stay up after `connected` before the reconnect backoff, the
    /// redirect count and the token-refusal count start over. Default 30 s.
    pub link_stable_after: Duration,
    /// How long ahead a LoginKey made for `Authorize` expires. Default 5 min (at most a day).
    pub login_key_validity: Duration,
}

impl Default for AgentTimers {
    fn default() -> Self {
        AgentTimers {
            visitor_leave_grace: Duration::from_secs(6),
            idle_ping_after: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            default_keepalive: Duration::from_secs(30),
            link_stable_after: Duration::from_secs(30),
            login_key_validity: Duration::from_secs(300),
        }
    }
}

/// The agent's role in the configuration both cores share: [`AgentConfig`] is
/// [`Config<AgentRole>`](Config), [`AgentConfigBuilder`] is
/// [`ConfigBuilder<AgentRole>`](ConfigBuilder).
#[derive(Debug, Clone, Copy)]
pub enum AgentRole {}

#[allow(private_interfaces)] // `Role` is sealed
impl Role for AgentRole {
    type Timers = AgentTimers;
    type Settings = AgentSettings;
    type Checked = AgentOptions;

    fn link_timers(timers: &mut AgentTimers) -> LinkTimerFields<'_> {
        LinkTimerFields {
            connect_timeout: &mut timers.request_timeout,
            idle_ping_after: &mut timers.idle_ping_after,
            pong_timeout: &mut timers.pong_timeout,
            default_keepalive: &mut timers.default_keepalive,
            link_stable_after: &mut timers.link_stable_after,
        }
    }
}

/// A validated agent configuration. Build one with [`AgentConfig::builder`].
pub type AgentConfig = Config<AgentRole>;

/// Builds an [`AgentConfig`]. Setters take raw values; [`AgentConfigBuilder::build`] checks
/// them all and reports the first problem as a [`ConfigError`].
pub type AgentConfigBuilder = ConfigBuilder<AgentRole>;

/// The agent's own settings, as its builder collects them (unchecked).
#[derive(Clone, Default)]
pub struct AgentSettings {
    visitor: Option<String>,
    unique: Option<String>,
    token: Option<AuthToken>,
    credentials: Option<(String, ApiKey)>,
    token_provider: bool,
    authorize_minutes: Option<u32>,
    web_server: Option<String>,
    discovery: bool,
    site: Option<String>,
    signal_route: SignalRoute,
    find_every_signal: bool,
    command_queue_bound: Option<usize>,
}

impl fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSettings")
            .field("visitor", &self.visitor)
            .field("unique", &self.unique)
            .field("token", &self.token)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(user, key)| (user, key)),
            )
            .field("web_server", &self.web_server)
            .finish_non_exhaustive()
    }
}

/// The agent's own settings, checked.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub(crate) visitor: VisitorId,
    pub(crate) unique: Option<UniqueId>,
    pub(crate) auth: AgentAuth,
    pub(crate) web_server: ServerAddr,
    pub(crate) discovery: bool,
    pub(crate) site: String,
    pub(crate) signal_route: SignalRoute,
    pub(crate) find_every_signal: bool,
    pub(crate) command_queue_bound: usize,
}

impl AgentConfig {
    /// A builder with every default; set the group, the visitor and the auth, then
    /// [`AgentConfigBuilder::build`].
    ///
    /// ```
    /// use glance_presence_protocol::agent::AgentConfig;
    /// let config = AgentConfig::builder()
    ///     .group_id(12345)
    ///     .visitor_id("v1")
    ///     .token("eyJhbGciOi...")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.presence_server().http_base(), "https://presence.glance.net");
    /// assert!(!format!("{config:?}").contains("eyJ"));
    /// ```
    pub fn builder() -> AgentConfigBuilder {
        AgentConfigBuilder::default()
    }

    /// The visitor watched (`UNQ-<uniqueid>` for a unique id).
    pub fn visitor(&self) -> &VisitorId {
        &self.role.visitor
    }

    /// The unique id, when the visitor was named by one.
    pub fn unique(&self) -> Option<&UniqueId> {
        self.role.unique.as_ref()
    }

    /// How the agent authenticates.
    pub fn auth(&self) -> &AgentAuth {
        &self.role.auth
    }

    /// The web server for `Authorize` and `GetVisitorSettings3`.
    pub fn web_server(&self) -> &ServerAddr {
        &self.role.web_server
    }

    /// Whether the presence server is discovered through `GetVisitorSettings3`.
    pub fn discovery(&self) -> bool {
        self.role.discovery
    }

    /// The Glance site (`production` by default).
    pub fn site(&self) -> &str {
        &self.role.site
    }

    /// The signal route.
    pub fn signal_route(&self) -> SignalRoute {
        self.role.signal_route
    }

    /// Whether every REST signal and invoke asks `findvisitor` first (see
    /// [`AgentConfigBuilder::find_before_every_signal`]).
    pub fn finds_before_every_signal(&self) -> bool {
        self.role.find_every_signal
    }

    /// The bound of the queue of commands waiting for the link.
    pub fn command_queue_bound(&self) -> usize {
        self.role.command_queue_bound
    }
}

impl AgentConfigBuilder {
    /// The visitor id to watch (1–62 of `[A-Za-z0-9_~-]`). Set this or
    /// [`AgentConfigBuilder::unique_id`].
    pub fn visitor_id(mut self, visitor: impl Into<String>) -> Self {
        self.role.visitor = Some(visitor.into());
        self
    }

    /// The unique id of a `connectUnique` visitor; the visitor id becomes `UNQ-<uniqueid>`.
    pub fn unique_id(mut self, unique: impl Into<String>) -> Self {
        self.role.unique = Some(unique.into());
        self
    }

    /// Authenticate with this token (cannot be renewed).
    pub fn token(mut self, token: impl Into<AuthToken>) -> Self {
        self.role.token = Some(token.into());
        self
    }

    /// Authenticate with credentials: the partner user id and the group's API key. The
    /// partner id is the group id.
    pub fn credentials(
        mut self,
        partner_user_id: impl Into<String>,
        api_key: impl Into<ApiKey>,
    ) -> Self {
        self.role.credentials = Some((partner_user_id.into(), api_key.into()));
        self
    }

    /// Authenticate with tokens the application supplies on request (see
    /// [`AgentAuth::Provider`]).
    pub fn token_provider(mut self) -> Self {
        self.role.token_provider = true;
        self
    }

    /// Token lifetime asked of `Authorize`, 1–120 minutes (default 120).
    pub fn authorize_duration_minutes(mut self, minutes: u32) -> Self {
        self.role.authorize_minutes = Some(minutes);
        self
    }

    /// The web server for `Authorize` and `GetVisitorSettings3`, same forms. Default
    /// `www.glance.net`.
    pub fn web_server(mut self, server: impl Into<String>) -> Self {
        self.role.web_server = Some(server.into());
        self
    }

    /// Discover the presence server through `GetVisitorSettings3` on the web server before
    /// connecting (off by default: the configured presence server is used).
    pub fn discovery(mut self, on: bool) -> Self {
        self.role.discovery = on;
        self
    }

    /// The Glance site, `production` (default) or `staging`.
    pub fn site(mut self, site: impl Into<String>) -> Self {
        self.role.site = Some(site.into());
        self
    }

    /// How signals and invokes are sent (default [`SignalRoute::Rest`]).
    pub fn signal_route(mut self, route: SignalRoute) -> Self {
        self.role.signal_route = route;
        self
    }

    /// Ask `findvisitor` before every REST signal and invoke, as Glance's agents do, instead
    /// of posting straight to the visitor's server when the agent already knows it (the
    /// default: one round trip per signal; the agent finds again only when the service says
    /// the visitor is not there, or the server cannot be reached).
    pub fn find_before_every_signal(mut self, every: bool) -> Self {
        self.role.find_every_signal = every;
        self
    }

    /// The visitor-leave grace (default 5 s).
    pub fn visitor_leave_grace(mut self, grace: Duration) -> Self {
        self.timers.visitor_leave_grace = grace;
        self
    }

    /// Request timeout (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.timers.request_timeout = timeout;
        self
    }

    /// Bound of the queue of commands issued while the link is down (default 64).
    pub fn command_queue_bound(mut self, bound: usize) -> Self {
        self.role.command_queue_bound = Some(bound);
        self
    }

    /// Checks every setting and returns the configuration, or the first problem found.
    pub fn build(self) -> Result<AgentConfig, ConfigError> {
        let group = self.link.group()?;
        let role = self.role;
        let (visitor, unique) = match (role.visitor, role.unique) {
            (None, None) => return Err(ConfigError::MissingVisitor),
            (Some(_), Some(_)) => return Err(ConfigError::VisitorAndUnique),
            (Some(visitor), None) => (
                VisitorId::new(visitor).map_err(|source| ConfigError::InvalidId {
                    field: "visitor id",
                    source,
                })?,
                None,
            ),
            (None, Some(unique)) => {
                let unique = UniqueId::new(unique).map_err(|source| ConfigError::InvalidId {
                    field: "unique id",
                    source,
                })?;
                (VisitorId::from_unique(&unique), Some(unique))
            }
        };
        let auth = match (role.token, role.credentials) {
            (None, None) if role.token_provider => AgentAuth::Provider,
            (None, None) => return Err(ConfigError::MissingAuth),
            (Some(_), Some(_)) => return Err(ConfigError::TokenAndCredentials),
            _ if role.token_provider => return Err(ConfigError::TokenAndCredentials),
            (Some(token), None) => {
                if token.expose_secret().trim().is_empty() {
                    return Err(ConfigError::EmptySecret {
                        field: "authorization token",
                    });
                }
                AgentAuth::Token(token)
            }
            (None, Some((user, api_key))) => {
                let partner_user =
                    PartnerUserId::new(user).map_err(|source| ConfigError::InvalidId {
                        field: "partner user id",
                        source,
                    })?;
                if api_key.expose_secret().is_empty() {
                    return Err(ConfigError::EmptySecret { field: "API key" });
                }
                let minutes = role.authorize_minutes.unwrap_or(DEFAULT_AUTHORIZE_MINUTES);
                if !(MIN_AUTHORIZE_MINUTES..=MAX_AUTHORIZE_MINUTES).contains(&minutes) {
                    return Err(ConfigError::AuthorizeDuration { minutes });
                }
                AgentAuth::Credentials {
                    partner_user,
                    api_key,
                    duration_minutes: minutes,
                }
            }
        };
        let presence_server = self.link.presence_server()?;
        let web_server = server(
            "web server",
            role.web_server.as_deref().unwrap_or(DEFAULT_WEB_SERVER),
        )?;
        let site = role.site.unwrap_or_else(|| DEFAULT_SITE.to_owned());
        if site.is_empty()
            || !site
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::InvalidSite { value: site });
        }
        check_timers(&self.timers)?;
        let max_frame_bytes = self.link.reconnect_and_frame_limit()?;
        let command_queue_bound = role
            .command_queue_bound
            .unwrap_or(DEFAULT_COMMAND_QUEUE_BOUND);
        if command_queue_bound == 0 {
            return Err(ConfigError::InvalidLimit {
                field: "command queue bound",
                value: 0,
                min: 1,
            });
        }
        let client_version = self.link.version_and_origin(DEFAULT_CLIENT_VERSION)?;
        let rng_seed = self.link.rng_seed(group, visitor.as_str());
        let checked = CheckedLink {
            group,
            presence_server,
            max_frame_bytes,
            client_version,
            rng_seed,
        };
        let options = AgentOptions {
            visitor,
            unique,
            auth,
            web_server,
            discovery: role.discovery,
            site,
            signal_route: role.signal_route,
            find_every_signal: role.find_every_signal,
            command_queue_bound,
        };
        Ok(Self::finish(self.link, self.timers, checked, options))
    }
}

fn check_timers(t: &AgentTimers) -> Result<(), ConfigError> {
    let positive = |field: &'static str, value: Duration| {
        if value.is_zero() {
            Err(ConfigError::InvalidTimer {
                field,
                value,
                rule: "it must be more than zero",
            })
        } else {
            Ok(())
        }
    };
    positive("visitor leave grace", t.visitor_leave_grace)?;
    positive("idle ping delay", t.idle_ping_after)?;
    positive("pong timeout", t.pong_timeout)?;
    positive("request timeout", t.request_timeout)?;
    positive("default keepalive", t.default_keepalive)?;
    positive("link stable delay", t.link_stable_after)?;
    if t.login_key_validity < Duration::from_secs(10)
        || t.login_key_validity.as_secs() > crate::loginkey::MAX_VALIDITY_SECS
    {
        return Err(ConfigError::InvalidTimer {
            field: "login key validity",
            value: t.login_key_validity,
            rule: "it must be from 10 s to one day",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AgentConfigBuilder {
        AgentConfig::builder()
            .group_id(12345)
            .visitor_id("v1")
            .token("t")
    }

    #[test]
    fn defaults() {
        let c = base().build().unwrap();
        assert_eq!(c.client_version(), "6.25.0");
        assert_eq!(
            c.presence_server().ws_url("/agent"),
            "wss://presence.glance.net/agent"
        );
        assert_eq!(c.web_server().http_base(), "https://www.glance.net");
        assert_eq!(c.timers().visitor_leave_grace, Duration::from_secs(6));
        assert_eq!(c.max_frame_bytes(), 64 * 1024);
        assert_eq!(c.signal_route(), SignalRoute::Rest);
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            AgentConfig::builder()
                .visitor_id("v")
                .token("t")
                .build()
                .unwrap_err(),
            ConfigError::MissingGroup
        );
        assert_eq!(
            base().unique_id("123").build().unwrap_err(),
            ConfigError::VisitorAndUnique
        );
        assert!(matches!(
            base().visitor_id("bad id").build().unwrap_err(),
            ConfigError::InvalidId {
                field: "visitor id",
                ..
            }
        ));
        assert_eq!(
            base().credentials("agent1", "key").build().unwrap_err(),
            ConfigError::TokenAndCredentials
        );
        let e = base()
            .presence_server("http://presence.example.com")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(base()
            .presence_server("ws://127.0.0.1:8080")
            .build()
            .is_ok());
        assert!(base().presence_server("http://[::1]:8080").build().is_ok());
        assert!(base().presence_server("http://localhost:1").build().is_ok());
        assert!(matches!(
            base().client_version("6.25").build().unwrap_err(),
            ConfigError::InvalidVersion { .. }
        ));
        assert!(matches!(
            base().origin("not an origin").build().unwrap_err(),
            ConfigError::InvalidOrigin { .. }
        ));
        assert!(matches!(
            base().request_timeout(Duration::ZERO).build().unwrap_err(),
            ConfigError::InvalidTimer {
                field: "request timeout",
                ..
            }
        ));
        let c = AgentConfig::builder()
            .group_id(1)
            .unique_id("123456789")
            .credentials("agent1", "secret-key")
            .authorize_duration_minutes(121)
            .build()
            .unwrap_err();
        assert_eq!(c, ConfigError::AuthorizeDuration { minutes: 121 });
    }

    #[test]
    fn unique_id_becomes_unq_visitor_and_debug_redacts() {
        let c = AgentConfig::builder()
            .group_id(1)
            .unique_id("123456789")
            .credentials("agent1", "secret-key")
            .build()
            .unwrap();
        assert_eq!(c.visitor().as_str(), "UNQ-123456789");
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret-key"), "{debug}");
        assert!(debug.contains("agent1"));
        let debug = format!("{:?}", base().token("tok-secret"));
        assert!(!debug.contains("tok-secret"), "{debug}");
    }

    #[test]
    fn anchored_clock_advances_with_now() {
        let t0 = Instant::now();
        let clock = AnchoredClock::new(t0, Duration::from_secs(1_700_000_000));
        assert_eq!(
            clock.unix_time(t0 + Duration::from_secs(3)),
            Duration::from_secs(1_700_000_003)
        );
    }
}
