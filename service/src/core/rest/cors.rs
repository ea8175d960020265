//! CORS: which origins an agent request may come from, and the headers of every REST answer.
//!
//! The decisions stay in the core; the reading is done by well-kept crates: an `Origin` is
//! compared as a web origin (scheme, host and port, as the `url` crate serializes it, so that
//! `https://A.example:443` and `https://a.example` are the same origin), and a header value is
//! echoed only when it is a valid HTTP header value (the `http` crate's rule).

use http::HeaderValue;

use super::RestResponse;

/// Methods a cross-origin caller may use.
pub const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a cross-origin caller may send.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type";
/// How long (seconds) a browser may keep a preflight's answer.
pub const MAX_AGE_SECS: u32 = 600;

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

/// Adds the CORS headers of a REST answer: the caller's `Origin` echoed when it is a valid
/// header value (else `*`), the methods and headers allowed, the preflight lifetime and
/// `Vary: Origin`.
pub(crate) fn add_cors(response: &mut RestResponse, origin: Option<&str>) {
    let allow_origin = origin
        .filter(|o| HeaderValue::from_str(o).is_ok())
        .unwrap_or("*");
    let headers = [
        ("Access-Control-Allow-Origin", allow_origin.to_owned()),
        ("Access-Control-Allow-Methods", ALLOW_METHODS.to_owned()),
        ("Access-Control-Allow-Headers", ALLOW_HEADERS.to_owned()),
        ("Access-Control-Max-Age", MAX_AGE_SECS.to_string()),
        ("Vary", "Origin".to_owned()),
    ];
    for (name, value) in headers {
        response.headers.push((name, value));
    }
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
    fn the_echoed_origin_is_a_valid_header_value() {
        let mut response = RestResponse::error(400, "badrequest", "x");
        add_cors(&mut response, Some("https://a.example"));
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://a.example")
        );
        assert_eq!(response.header("access-control-max-age"), Some("600"));
        assert_eq!(response.header("vary"), Some("Origin"));
        let mut response = RestResponse::error(400, "badrequest", "x");
        add_cors(&mut response, Some("https://a.example\u{7f}"));
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }
}
