//! Server addresses: a scheme plus `host[:port]`, nothing else.
//!
//! Glance's clients pass server names around as bare `host[:port]` text (`presenceUrl`,
//! `directserver` + `":"` + `httpsport`, the `ws` web server) and always talk `https`/`wss` to
//! them. A [`ServerAddr`] is that text, validated, plus the scheme to use (`http`/`ws` exists for
//! the reference service on loopback). It builds the base URL of REST calls and the URL of the
//! WebSocket endpoints. It does no name resolution and no IO.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest `host[:port]` accepted (a DNS name is at most 253 characters).
pub const MAX_AUTHORITY_LEN: usize = 261;

/// Which scheme a server is reached with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// `https://` for REST and `wss://` for WebSockets: what Glance's clients always use.
    #[default]
    Https,
    /// `http://` and `ws://`: plain text, for a local reference service.
    Http,
}

impl Scheme {
    /// `"https"` or `"http"`.
    pub fn http_scheme(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// `"wss"` or `"ws"`.
    pub fn ws_scheme(self) -> &'static str {
        match self {
            Scheme::Https => "wss",
            Scheme::Http => "ws",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.http_scheme())
    }
}

/// Why a server address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerAddrError {
    /// Nothing was given.
    #[error("server address is empty")]
    Empty,
    /// The text is longer than [`MAX_AUTHORITY_LEN`].
    #[error("server address is {len} characters long; at most {max} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A scheme other than `http`, `https`, `ws` or `wss`.
    #[error("server address {value:?} has the unsupported scheme {scheme:?}; use https or http")]
    UnsupportedScheme {
        /// The offending address.
        value: String,
        /// The scheme it names.
        scheme: String,
    },
    /// Something after the host and port: a path, query, fragment or user info.
    #[error("server address {value:?} must be host[:port] only, without a path, query or user")]
    NotHostPort {
        /// The offending address.
        value: String,
    },
    /// A character that has no place in a host name.
    #[error("server address {value:?} has the character {ch:?}, which is not allowed in a host")]
    InvalidCharacter {
        /// The offending address.
        value: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// The port is not a number from 1 to 65535.
    #[error("server address {value:?} has an invalid port; use a number from 1 to 65535")]
    InvalidPort {
        /// The offending address.
        value: String,
    },
}

/// A server to talk to: a [`Scheme`] and a validated `host[:port]`.
///
/// The host is a DNS name, an IPv4 address or a bracketed IPv6 address (`[::1]:8443`); the
/// port is optional. Paths, queries, user info and whitespace are refused, so the address can be
/// pasted into a URL as is.
///
/// ```
/// use glance_presence_protocol::rest::{Scheme, ServerAddr};
/// let server = ServerAddr::parse("https://presence.glance.net").unwrap();
/// assert_eq!(server.http_base(), "https://presence.glance.net");
/// assert_eq!(server.ws_url("/agent"), "wss://presence.glance.net/agent");
/// let local = ServerAddr::new(Scheme::Http, "127.0.0.1:8080").unwrap();
/// assert_eq!(local.ws_url("visitorws"), "ws://127.0.0.1:8080/visitorws");
/// assert!(local.is_loopback());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerAddr {
    scheme: Scheme,
    authority: String,
    /// Byte length of the host part of `authority` (the rest is `:port`).
    host_len: usize,
    port: Option<u16>,
}

impl ServerAddr {
    /// A server from a scheme and `host[:port]` (no scheme in the text).
    pub fn new(scheme: Scheme, host_port: &str) -> Result<Self, ServerAddrError> {
        let (host_len, port) = check_authority(host_port)?;
        Ok(ServerAddr {
            scheme,
            authority: host_port.to_owned(),
            host_len,
            port,
        })
    }

    /// Parses `https://host[:port]`, `http://host[:port]` (also `wss://`/`ws://`), or a bare
    /// `host[:port]`, which means `https` as in Glance's clients. One trailing `/` is allowed.
    pub fn parse(text: &str) -> Result<Self, ServerAddrError> {
        let text = text.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = match scheme.to_ascii_lowercase().as_str() {
                    "https" | "wss" => Scheme::Https,
                    "http" | "ws" => Scheme::Http,
                    _ => {
                        return Err(ServerAddrError::UnsupportedScheme {
                            value: text.to_owned(),
                            scheme: scheme.to_owned(),
                        })
                    }
                };
                (scheme, rest)
            }
            None => (Scheme::Https, text),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        ServerAddr::new(scheme, rest)
    }

    /// Another server reached with the same scheme, e.g. the direct server a lookup named.
    pub fn with_authority(&self, host_port: &str) -> Result<Self, ServerAddrError> {
        ServerAddr::new(self.scheme, host_port)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `host[:port]` exactly as given.
    pub fn host_port(&self) -> &str {
        &self.authority
    }

    /// The host alone (IPv6 addresses keep their brackets).
    pub fn host(&self) -> &str {
        &self.authority[..self.host_len]
    }

    /// The port, when one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The base of REST URLs: `https://host[:port]` (no trailing slash).
    pub fn http_base(&self) -> String {
        format!("{}://{}", self.scheme.http_scheme(), self.authority)
    }

    /// The URL of a WebSocket endpoint: `wss://host[:port]/path` (`ws://` for [`Scheme::Http`]).
    /// A missing leading `/` is added.
    pub fn ws_url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!(
            "{}://{}{slash}{path}",
            self.scheme.ws_scheme(),
            self.authority
        )
    }

    /// The URL of a REST endpoint: `https://host[:port]/path`. A missing leading `/` is added.
    pub fn http_url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!(
            "{}://{}{slash}{path}",
            self.scheme.http_scheme(),
            self.authority
        )
    }

    /// Whether the host is `localhost` or a loopback IP address.
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Checks `host[:port]`; returns the byte length of the host and the port.
fn check_authority(value: &str) -> Result<(usize, Option<u16>), ServerAddrError> {
    if value.is_empty() {
        return Err(ServerAddrError::Empty);
    }
    if value.len() > MAX_AUTHORITY_LEN {
        return Err(ServerAddrError::TooLong {
            len: value.len(),
            max: MAX_AUTHORITY_LEN,
        });
    }
    let owned = || value.to_owned();
    if value.contains(['/', '?', '#', '@', '\\']) {
        return Err(ServerAddrError::NotHostPort { value: owned() });
    }
    let (host, port_text) = if let Some(rest) = value.strip_prefix('[') {
        // Bracketed IPv6 literal.
        let Some(end) = rest.find(']') else {
            return Err(ServerAddrError::InvalidCharacter {
                value: owned(),
                ch: '[',
            });
        };
        let inner = &rest[..end];
        if inner.parse::<Ipv6Addr>().is_err() {
            let ch = inner
                .chars()
                .find(|c| !(c.is_ascii_hexdigit() || *c == ':' || *c == '.'))
                .unwrap_or('[');
            return Err(ServerAddrError::InvalidCharacter { value: owned(), ch });
        }
        let host_len = end + 2;
        let after = &value[host_len..];
        match after.strip_prefix(':') {
            Some(port) => (&value[..host_len], Some(port)),
            None if after.is_empty() => (&value[..host_len], None),
            None => {
                return Err(ServerAddrError::InvalidCharacter {
                    value: owned(),
                    ch: after.chars().next().unwrap_or(']'),
                })
            }
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return Err(ServerAddrError::Empty);
    }
    if !host.starts_with('[') {
        if let Some(ch) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(ServerAddrError::InvalidCharacter { value: owned(), ch });
        }
    }
    let port = match port_text {
        None => None,
        Some(text) => {
            if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ServerAddrError::InvalidPort { value: owned() });
            }
            match text.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => return Err(ServerAddrError::InvalidPort { value: owned() }),
            }
        }
    };
    Ok((host.len(), port))
}

impl fmt::Display for ServerAddr {
    /// The REST base, `https://host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.http_scheme(), self.authority)
    }
}

impl FromStr for ServerAddr {
    type Err = ServerAddrError;
    /// Same as [`ServerAddr::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServerAddr::parse(s)
    }
}

impl Serialize for ServerAddr {
    /// As the text `https://host[:port]`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerAddr {
    /// From any text [`ServerAddr::parse`] accepts.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ServerAddr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_accepted_forms() {
        let s = ServerAddr::parse("https://h:8443").unwrap();
        assert_eq!(s.scheme(), Scheme::Https);
        assert_eq!(s.host(), "h");
        assert_eq!(s.port(), Some(8443));
        assert_eq!(s.host_port(), "h:8443");
        assert_eq!(s.http_base(), "https://h:8443");
        assert_eq!(s.ws_url("/agent"), "wss://h:8443/agent");

        let bare = ServerAddr::parse("presence.glance.net").unwrap();
        assert_eq!(bare.scheme(), Scheme::Https);
        assert_eq!(bare.http_base(), "https://presence.glance.net");
        assert_eq!(bare.port(), None);
        assert!(!bare.is_loopback());

        let http = ServerAddr::parse("HTTP://127.0.0.1:9/").unwrap();
        assert_eq!(http.scheme(), Scheme::Http);
        assert_eq!(http.http_base(), "http://127.0.0.1:9");
        assert_eq!(http.ws_url("visitorws"), "ws://127.0.0.1:9/visitorws");
        assert_eq!(
            http.http_url("lookupvisitor"),
            "http://127.0.0.1:9/lookupvisitor"
        );
        assert!(http.is_loopback());

        assert_eq!(
            ServerAddr::parse("wss://a.b").unwrap().scheme(),
            Scheme::Https
        );
        assert_eq!(
            ServerAddr::parse("ws://a.b").unwrap().scheme(),
            Scheme::Http
        );

        let v6 = ServerAddr::parse("http://[::1]:8080").unwrap();
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.port(), Some(8080));
        assert!(v6.is_loopback());
        assert!(ServerAddr::parse("localhost").unwrap().is_loopback());
        assert!(ServerAddr::parse("127.8.9.10:1").unwrap().is_loopback());
        assert!(!ServerAddr::parse("10.0.0.1").unwrap().is_loopback());
        assert_eq!(ServerAddr::parse("[::1]").unwrap().port(), None);
    }

    #[test]
    fn refuses_what_is_not_host_port() {
        use ServerAddrError as E;
        for (text, check) in [("", E::Empty), ("https://", E::Empty), (":443", E::Empty)] {
            assert_eq!(ServerAddr::parse(text).unwrap_err(), check, "{text:?}");
        }
        for text in [
            "https://h/path",
            "h/x",
            "h?x=1",
            "h#f",
            "user@h",
            "https://h//",
        ] {
            assert!(
                matches!(ServerAddr::parse(text), Err(E::NotHostPort { .. })),
                "{text:?}"
            );
        }
        for text in ["h x", "h\n", "hé", "h%20", "[zz]", "[::1]x", "[::1"] {
            assert!(
                matches!(
                    ServerAddr::new(Scheme::Https, text),
                    Err(E::InvalidCharacter { .. })
                ),
                "{text:?}"
            );
        }
        for text in [
            "h:", "h:0", "h:65536", "h:-1", "h:1:2", "h:123456", "[::1]:",
        ] {
            assert!(
                matches!(ServerAddr::parse(text), Err(E::InvalidPort { .. })),
                "{text:?}"
            );
        }
        assert!(matches!(
            ServerAddr::parse("ftp://h"),
            Err(E::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            ServerAddr::parse(&"a".repeat(300)),
            Err(E::TooLong { .. })
        ));
        assert_eq!(
            ServerAddr::parse("h:0").unwrap_err().to_string(),
            "server address \"h:0\" has an invalid port; use a number from 1 to 65535"
        );
    }

    #[test]
    fn keeps_the_scheme_for_another_server_and_round_trips_as_text() {
        let lb = ServerAddr::parse("http://127.0.0.1:1000").unwrap();
        let direct = lb.with_authority("127.0.0.1:2000").unwrap();
        assert_eq!(direct.http_base(), "http://127.0.0.1:2000");
        assert_eq!(direct.to_string(), "http://127.0.0.1:2000");
        assert_eq!(direct.to_string().parse::<ServerAddr>().unwrap(), direct);
        let json = serde_json::to_string(&direct).unwrap();
        assert_eq!(json, "\"http://127.0.0.1:2000\"");
        assert_eq!(serde_json::from_str::<ServerAddr>(&json).unwrap(), direct);
        assert!(serde_json::from_str::<ServerAddr>("\"h/p\"").is_err());
    }
}
