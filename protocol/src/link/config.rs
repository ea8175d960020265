//! The configuration both cores share: [`Config`] (validated) and [`ConfigBuilder`] (raw
//! settings), each generic over the core's role. What every core has — the group, the presence
//! server, the timers, the reconnect policy, the RNG seed, the frame limit, the client version
//! and the `Origin` header — is read and set here, once; the role adds its own part
//! ([`AgentConfig`](crate::agent::AgentConfig) and
//! [`VisitorConfig`](crate::visitor::VisitorConfig) are this type for each role, with their
//! role's getters, setters and `build` in the cores' `config` modules).
//!
//! The checks themselves are in `settings`; this module holds no defaults of its own.

use std::fmt;
use std::time::Duration;

use super::settings::{LinkSettings, Seed};
use super::{AfterServerClose, LinkTimings};
use crate::backoff::ReconnectPolicy;
use crate::ids::GroupId;
use crate::rest::ServerAddr;

/// The link timers a role's timer set holds, to read and to set.
pub(crate) struct LinkTimerFields<'a> {
    pub(crate) connect_timeout: &'a mut Duration,
    pub(crate) idle_ping_after: &'a mut Duration,
    pub(crate) pong_timeout: &'a mut Duration,
    pub(crate) default_keepalive: &'a mut Duration,
    pub(crate) link_stable_after: &'a mut Duration,
}

/// A core's role in its configuration (the agent's, the visitor's): what it adds to the
/// settings every core shares. Sealed: it lives in a private module.
#[allow(private_interfaces)] // sealed: `pub` only so the public configuration types may name it
pub trait Role {
    /// The role's timers, the link's among them.
    type Timers: Copy + fmt::Debug + Default + PartialEq;
    /// The role's own settings as its builder collects them (unchecked).
    type Settings: Clone + fmt::Debug + Default;
    /// The role's own settings, checked.
    type Checked: Clone + fmt::Debug;
    /// The link timers among `timers`.
    fn link_timers(timers: &mut Self::Timers) -> LinkTimerFields<'_>;
}

/// A validated configuration of a core of role `R`. Build one with
/// [`AgentConfig::builder`](crate::agent::AgentConfig::builder) or
/// [`VisitorConfig::builder`](crate::visitor::VisitorConfig::builder).
#[allow(private_bounds)] // `Role` is sealed
#[derive(Debug, Clone)]
pub struct Config<R: Role> {
    pub(crate) group: GroupId,
    pub(crate) presence_server: ServerAddr,
    pub(crate) timers: R::Timers,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) rng_seed: Seed,
    pub(crate) after_server_close: AfterServerClose,
    pub(crate) max_frame_bytes: usize,
    pub(crate) client_version: String,
    pub(crate) origin: Option<String>,
    /// The role's own part.
    pub(crate) role: R::Checked,
}

#[allow(private_bounds)] // `Role` is sealed
impl<R: Role> Config<R> {
    /// The group.
    pub fn group(&self) -> GroupId {
        self.group
    }

    /// The presence server (load balancer) for REST calls and, unless a direct server is
    /// known, the socket.
    pub fn presence_server(&self) -> &ServerAddr {
        &self.presence_server
    }

    /// The timers.
    pub fn timers(&self) -> &R::Timers {
        &self.timers
    }

    /// The reconnect policy.
    pub fn reconnect_policy(&self) -> &ReconnectPolicy {
        &self.reconnect
    }

    /// The RNG seed in use.
    pub fn rng_seed(&self) -> u64 {
        self.rng_seed.value
    }

    /// Whether the application chose the RNG seed ([`ConfigBuilder::rng_seed`]).
    pub fn has_chosen_seed(&self) -> bool {
        self.rng_seed.explicit
    }

    /// This configuration with its reconnect jitter seeded from `entropy`, unless the
    /// application chose a seed. Drivers call it with a value from the operating system, so
    /// that two clients (an agent and its visitor among them) never draw the same delays.
    pub fn with_entropy(mut self, entropy: u64) -> Self {
        self.rng_seed = self.rng_seed.or_entropy(entropy);
        self
    }

    /// What the client does on `serverclose`.
    pub fn after_server_close(&self) -> AfterServerClose {
        self.after_server_close
    }

    /// The largest frame accepted (and, for the visitor, sent), in bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// The client version sent as `ver` / `version`.
    pub fn client_version(&self) -> &str {
        &self.client_version
    }

    /// The `Origin` header sent with the WebSocket upgrade (and, for the visitor, the REST
    /// requests), if any.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The link's timings.
    pub(crate) fn link_timings(&self) -> LinkTimings {
        let mut timers = self.timers;
        let fields = R::link_timers(&mut timers);
        LinkTimings {
            connect_timeout: *fields.connect_timeout,
            idle_ping_after: *fields.idle_ping_after,
            pong_timeout: *fields.pong_timeout,
            default_keepalive: *fields.default_keepalive,
            stable_after: *fields.link_stable_after,
        }
    }
}

/// Builds a [`Config`] of role `R`. Setters take raw values; the role's `build` checks them
/// all and reports the first problem as a [`ConfigError`](crate::config_error::ConfigError).
/// The setters here are those of every core; each role adds its own.
#[allow(private_bounds)] // `Role` is sealed
#[derive(Debug, Clone)]
pub struct ConfigBuilder<R: Role> {
    pub(crate) link: LinkSettings,
    pub(crate) timers: R::Timers,
    /// The role's own settings.
    pub(crate) role: R::Settings,
}

#[allow(private_bounds)] // `Role` is sealed
impl<R: Role> Default for ConfigBuilder<R> {
    fn default() -> Self {
        ConfigBuilder {
            link: LinkSettings::default(),
            timers: R::Timers::default(),
            role: R::Settings::default(),
        }
    }
}

#[allow(private_bounds)] // `Role` is sealed
impl<R: Role> ConfigBuilder<R> {
    /// The Glance group id (required; a positive integer).
    pub fn group_id(mut self, group: u64) -> Self {
        self.link.group = Some(group);
        self
    }

    /// The presence server: `host[:port]` (https), `https://host[:port]`, `wss://…`, or
    /// for a loopback host `http://…` / `ws://…`. Default `presence.glance.net`.
    pub fn presence_server(mut self, server: impl Into<String>) -> Self {
        self.link.presence_server = Some(server.into());
        self
    }

    /// Every timer at once.
    pub fn timers(mut self, timers: R::Timers) -> Self {
        self.timers = timers;
        self
    }

    /// Inbound silence before a ping (default 15 s).
    pub fn idle_ping_after(mut self, after: Duration) -> Self {
        *R::link_timers(&mut self.timers).idle_ping_after = after;
        self
    }

    /// Silence after the ping before the link is declared dead (default 10 s).
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        *R::link_timers(&mut self.timers).pong_timeout = timeout;
        self
    }

    /// Keepalive interval when `connected` names none (default 30 s).
    pub fn default_keepalive(mut self, interval: Duration) -> Self {
        *R::link_timers(&mut self.timers).default_keepalive = interval;
        self
    }

    /// How long the link must stay up after `connected` before the reconnect backoff
    /// starts over (default 30 s): a server that accepts and then drops the socket, or
    /// redirects in a loop, meets a growing delay instead of a fresh short one.
    pub fn link_stable_after(mut self, after: Duration) -> Self {
        *R::link_timers(&mut self.timers).link_stable_after = after;
        self
    }

    /// The reconnect policy (default full jitter, 1 s base, 60 s cap).
    pub fn reconnect_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.link.reconnect = policy;
        self
    }

    /// Seed of the RNG that draws reconnect jitter, for a reproducible schedule (tests,
    /// simulations). Without it the transports of this project draw a seed from the
    /// operating system for every client, so that clients never reconnect in lockstep;
    /// a core driven directly falls back to a seed derived from the group and the visitor
    /// id unless its driver calls `with_entropy`.
    pub fn rng_seed(mut self, seed: u64) -> Self {
        self.link.rng_seed = Some(seed);
        self
    }

    /// What the client does when the service sends `serverclose` (default
    /// [`AfterServerClose::Stop`], as Glance's clients do).
    pub fn after_server_close(mut self, policy: AfterServerClose) -> Self {
        self.link.after_server_close = policy;
        self
    }

    /// Largest frame accepted from the service (and, for the visitor, largest message
    /// sent), in bytes (default 64 KiB, at least 256).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.link.max_frame_bytes = Some(bytes);
        self
    }

    /// The client version sent as `ver` / `version`, `major.minor.patch` (default: the
    /// Glance version whose wire format this crate follows, `6.25.0` for the agent,
    /// `6.33.0` for the visitor).
    pub fn client_version(mut self, version: impl Into<String>) -> Self {
        self.link.client_version = Some(version.into());
        self
    }

    /// An `Origin` header (e.g. `https://console.example.com`) for the WebSocket upgrade
    /// (and, for the visitor, the REST requests, as a browser would send).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.link.origin = Some(origin.into());
        self
    }
}

/// The shared settings once checked, for a role's `build` to finish its [`Config`] with.
pub(crate) struct CheckedLink {
    pub(crate) group: GroupId,
    pub(crate) presence_server: ServerAddr,
    pub(crate) max_frame_bytes: usize,
    pub(crate) client_version: String,
    pub(crate) rng_seed: Seed,
}

#[allow(private_bounds)] // `Role` is sealed
impl<R: Role> ConfigBuilder<R> {
    /// The configuration of `checked` and the role's checked part, with the settings that
    /// need no check (the timers are checked by the role).
    pub(crate) fn finish(
        link: LinkSettings,
        timers: R::Timers,
        checked: CheckedLink,
        role: R::Checked,
    ) -> Config<R> {
        Config {
            group: checked.group,
            presence_server: checked.presence_server,
            timers,
            reconnect: link.reconnect,
            rng_seed: checked.rng_seed,
            after_server_close: link.after_server_close,
            max_frame_bytes: checked.max_frame_bytes,
            client_version: checked.client_version,
            origin: link.origin,
            role,
        }
    }
}
