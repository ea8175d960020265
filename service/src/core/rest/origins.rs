//! Which origins an agent request is accepted from: a presence decision, made here (the CORS
//! headers every REST answer carries are the server's, written by a well-kept layer).
//!
//! An `Origin` is compared as a web origin (scheme, host and port, as the `url` crate
//! serializes it, so that `https://A.example:443` and `https://a.example` are the same origin).
//! Agent endpoints (the bearer-token REST endpoints, `Authorize` and the `/agent` socket) take
//! requests from the allowed origins only; visitor endpoints take them from every origin.

/// The ASCII serialization of a web origin (`scheme://host[:port]`, default port left out,
/// host lower-cased), or `None` when `text` is not a URL with a tuple origin (`null`, a path
/// without a scheme…).
fn serialized_origin(text: &str) -> Option<String> {
    let origin = url::Url::parse(text.trim()).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Whether `origin` (an `Origin` header) matches one entry of an allow list: `*` matches
/// every origin; other entries match the same web origin, or, for what is not a URL, the same
/// text (ASCII case ignored).
pub fn origin_matches(allowed: &str, origin: &str) -> bool {
    if allowed == "*" {
        return true;
    }
    match (serialized_origin(allowed), serialized_origin(origin)) {
        (Some(allowed), Some(origin)) => allowed == origin,
        _ => allowed.eq_ignore_ascii_case(origin),
    }
}

/// Whether a request to `path` from `origin` (an `Origin` header) is accepted, given the
/// allowed origins: agent endpoints only from an allowed one, every other path from any.
pub fn origin_accepted(allowed: &[String], path: &str, origin: &str) -> bool {
    !super::is_agent_endpoint(path) || allowed.iter().any(|entry| origin_matches(entry, origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_as_web_origins() {
        assert!(origin_matches("*", "https://anything.example"));
        assert!(origin_matches("https://a.example", "https://A.EXAMPLE"));
        assert!(origin_matches("https://a.example", "https://a.example:443"));
        assert!(origin_matches("https://a.example/", "https://a.example"));
        assert!(origin_matches(
            "http://a.example:8080",
            "http://a.example:8080"
        ));
        assert!(!origin_matches("https://a.example", "http://a.example"));
        assert!(!origin_matches(
            "https://a.example",
            "https://a.example:8443"
        ));
        assert!(!origin_matches("https://a.example", "https://b.example"));
        assert!(!origin_matches("https://a.example", "null"));
        assert!(origin_matches("null", "NULL"));
    }

    #[test]
    fn only_agent_endpoints_check_the_origin() {
        let allowed = ["https://console.example".to_owned()];
        for path in ["/lookupvisitor", "/agent", super::super::AUTHORIZE_PATH] {
            assert!(origin_accepted(&allowed, path, "https://console.example"));
            assert!(!origin_accepted(&allowed, path, "https://evil.example"));
        }
        assert!(origin_accepted(
            &allowed,
            "/uniquevisitor",
            "https://evil.example"
        ));
        assert!(origin_accepted(
            &allowed,
            "/visitorws",
            "https://evil.example"
        ));
    }
}
