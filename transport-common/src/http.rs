//! What an HTTP client needs to know about a core's request before it sends it: where it goes
//! ([`HttpTarget`], read from the URL) and how large an answer may be
//! ([`MAX_RESPONSE_BYTES`]). Shared by the transports' HTTP clients; it sends nothing.

use crate::error::HttpError;

/// The `User-Agent` every transport's HTTP requests carry: `glance-presence/<version>`.
pub const USER_AGENT: &str = concat!("glance-presence/", env!("CARGO_PKG_VERSION"));

/// Largest response body read; the core's parsers have their own limit.
pub const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// Where one HTTP request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpTarget {
    /// `https://`: TLS over the TCP stream.
    pub secure: bool,
    /// The host (brackets of an IPv6 literal removed).
    pub host: String,
    /// The port (443 for `https`, 80 for `http` when the URL names none).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path_and_query: String,
    /// The `Host` header value (host, and port when the URL names one).
    pub authority: String,
}

impl HttpTarget {
    /// Reads an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<HttpTarget, HttpError> {
        let invalid = |why: &str| HttpError::InvalidRequest(format!("{why}: {url}"));
        let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid("not an http or https URL"));
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = path.split('#').next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid("no host, or user info"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| invalid("bad IPv6 host"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(port) => port.parse().map_err(|_| invalid("bad port"))?,
            None if secure => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let path_and_query = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(HttpTarget {
            secure,
            host: host.to_owned(),
            port,
            path_and_query,
            authority: authority.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_urls_the_core_builds() {
        let t =
            HttpTarget::parse("http://127.0.0.1:8080/findvisitor?groupid=1&visitorid=v").unwrap();
        assert_eq!(
            (t.secure, t.host.as_str(), t.port, t.path_and_query.as_str()),
            (
                false,
                "127.0.0.1",
                8080,
                "/findvisitor?groupid=1&visitorid=v"
            )
        );
        assert_eq!(t.authority, "127.0.0.1:8080");
        let t = HttpTarget::parse("https://[::1]/x#frag").unwrap();
        assert_eq!(
            (t.secure, t.host.as_str(), t.port, t.path_and_query.as_str()),
            (true, "::1", 443, "/x")
        );
        let t = HttpTarget::parse("https://presence.glance.net?a=1").unwrap();
        assert_eq!(t.path_and_query, "/?a=1");
        for bad in [
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://a:b/",
            "http://u@h/",
        ] {
            assert!(HttpTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
