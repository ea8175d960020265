//! The configuration settings of the link that the agent's and the visitor's builders share:
//! the group, the presence server, the reconnect policy, the RNG seed, the frame limit, the client
//! version and the `Origin` header, with their checks, and the link timers' setters.
//!
//! The generic [`ConfigBuilder`](super::config::ConfigBuilder) keeps a [`LinkSettings`] and
//! its `build` (one per role) calls the checks here; the setters and getters are in
//! `config`.

use crate::backoff::ReconnectPolicy;
use crate::config_error::ConfigError;
use crate::ids::GroupId;
use crate::link::AfterServerClose;
use crate::rest::{Scheme, ServerAddr};
use crate::wire::DEFAULT_MAX_FRAME_BYTES;

/// Glance's presence load balancer.
pub const DEFAULT_PRESENCE_SERVER: &str = "presence.glance.net";
/// Smallest frame limit accepted by the builders.
pub const MIN_FRAME_BYTES: usize = 256;

/// The raw link settings a builder collects (checked by its `build`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkSettings {
    pub(crate) group: Option<u64>,
    pub(crate) presence_server: Option<String>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) rng_seed: Option<u64>,
    pub(crate) max_frame_bytes: Option<usize>,
    pub(crate) client_version: Option<String>,
    pub(crate) origin: Option<String>,
    pub(crate) after_server_close: AfterServerClose,
}

impl LinkSettings {
    /// The group id (required).
    pub(crate) fn group(&self) -> Result<GroupId, ConfigError> {
        let group = self.group.ok_or(ConfigError::MissingGroup)?;
        GroupId::new(group).map_err(|source| ConfigError::InvalidId {
            field: "group id",
            source,
        })
    }

    /// The presence server, default [`DEFAULT_PRESENCE_SERVER`].
    pub(crate) fn presence_server(&self) -> Result<ServerAddr, ConfigError> {
        server(
            "presence server",
            self.presence_server
                .as_deref()
                .unwrap_or(DEFAULT_PRESENCE_SERVER),
        )
    }

    /// Checks the reconnect policy, then returns the frame limit (default 64 KiB).
    pub(crate) fn reconnect_and_frame_limit(&self) -> Result<usize, ConfigError> {
        self.reconnect
            .validate()
            .map_err(ConfigError::InvalidReconnectPolicy)?;
        let max_frame_bytes = self.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
        if max_frame_bytes < MIN_FRAME_BYTES {
            return Err(ConfigError::InvalidLimit {
                field: "max frame bytes",
                value: max_frame_bytes,
                min: MIN_FRAME_BYTES,
            });
        }
        Ok(max_frame_bytes)
    }

    /// Checks the client version (default `default_version`) and the origin; returns the
    /// version.
    pub(crate) fn version_and_origin(&self, default_version: &str) -> Result<String, ConfigError> {
        let client_version = self
            .client_version
            .clone()
            .unwrap_or_else(|| default_version.to_owned());
        if !is_version(&client_version) {
            return Err(ConfigError::InvalidVersion {
                value: client_version,
            });
        }
        if let Some(origin) = &self.origin {
            if !is_origin(origin) {
                return Err(ConfigError::InvalidOrigin {
                    value: origin.clone(),
                });
            }
        }
        Ok(client_version)
    }

    /// The RNG seed, default derived from the group and `name` (see [`default_seed`]), and
    /// whether the application set it.
    pub(crate) fn rng_seed(&self, group: GroupId, name: &str) -> Seed {
        Seed {
            value: self.rng_seed.unwrap_or_else(|| default_seed(group, name)),
            explicit: self.rng_seed.is_some(),
        }
    }
}

/// The seed of a core's reconnect jitter, and whether the application chose it (a transport
/// replaces a seed the application did not choose with one from the operating system).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seed {
    pub(crate) value: u64,
    pub(crate) explicit: bool,
}

impl Seed {
    /// `entropy` unless the application chose the seed.
    pub(crate) fn or_entropy(self, entropy: u64) -> Self {
        if self.explicit {
            self
        } else {
            Seed {
                value: entropy,
                explicit: false,
            }
        }
    }
}

/// Parses a server setting and applies the loopback rule to plain-text schemes.
pub(crate) fn server(field: &'static str, text: &str) -> Result<ServerAddr, ConfigError> {
    let addr =
        ServerAddr::parse(text).map_err(|source| ConfigError::InvalidServer { field, source })?;
    check_plain_text(field, &addr)?;
    Ok(addr)
}

/// `http`/`ws` only for loopback hosts.
pub(crate) fn check_plain_text(field: &'static str, addr: &ServerAddr) -> Result<(), ConfigError> {
    if addr.scheme() == Scheme::Http && !addr.is_loopback() {
        return Err(ConfigError::PlainTextNotLoopback {
            field,
            host: addr.host().to_owned(),
        });
    }
    Ok(())
}

/// `major.minor.patch`, digits only.
pub(crate) fn is_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `scheme://host[:port]`.
pub(crate) fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        && ServerAddr::new(Scheme::Https, rest).is_ok()
}

/// FNV-1a over the group id and a name (the visitor id), so that two cores watching
/// different visitors draw different jitter by default.
pub(crate) fn default_seed(group: GroupId, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group.get().to_le_bytes().iter().chain(name.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
