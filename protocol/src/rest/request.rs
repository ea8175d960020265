//! HTTP request descriptions for the Presence REST endpoints.
//!
//! The builders produce exactly what Glance's shipped clients send: the URL
//! `https://<host>/<endpoint>?groupid=G&visitorid=V&&ver=X.Y.Z` (the doubled `&` is really
//! there), `Authorization: Bearer <token>` on the agent's calls, and
//! `Content-Type: application/json; charset=utf-8` on POST bodies. GET requests carry no body.

use std::fmt;

use serde_json::{Map, Value};

use crate::ids::{GroupId, VisitorId};
use crate::secret::AuthToken;
use crate::wire::InvokeRequest;

use super::server_addr::ServerAddr;

/// `Content-Type` of the presence service's POST bodies, as Glance's client sends it.
pub const CONTENT_TYPE_JSON_UTF8: &str = "application/json; charset=utf-8";
/// `Content-Type` of the authorization call, as Glance's client sends it.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Header names whose values [`HttpRequest`]'s `Debug` hides.
const SECRET_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];
/// JSON body keys whose values [`HttpRequest`]'s `Debug` hides (the credential fields of
/// `Authorize`).
const SECRET_BODY_KEYS: [&str; 4] = ["loginkey", "password", "g4scredentials", "gssnid"];

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// `"GET"` or `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An HTTP request for a driver to perform.
///
/// The fields are what goes on the wire. `Debug` (and [`HttpRequest::redacted`]) hide the value
/// of the `Authorization` header (`Bearer <redacted>`) and the credential fields of a JSON body
/// (`loginkey`, `password`…), so a request can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The full URL, scheme included.
    pub url: String,
    /// Header names and values, in the order to send them.
    pub headers: Vec<(String, String)>,
    /// The body; `None` for GET requests.
    pub body: Option<String>,
}

impl HttpRequest {
    /// `"GET https://presence.glance.net/lookupvisitor?groupid=12345&visitorid=v1&&ver=6.25.0"`.
    pub fn request_line(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as text with its secrets hidden: the request line, one `Name: value` line per
    /// header, then (after a blank line) the body. Safe to log.
    pub fn redacted(&self) -> String {
        let mut out = self.request_line();
        for (name, value) in &self.headers {
            out.push('\n');
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&redact_header(name, value));
        }
        if let Some(body) = &self.body {
            out.push_str("\n\n");
            out.push_str(&redact_body(body));
        }
        out
    }
}

fn redact_header(name: &str, value: &str) -> String {
    if !SECRET_HEADERS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
        return value.to_owned();
    }
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("bearer") => {
            format!("{scheme} <redacted>")
        }
        _ => "<redacted>".to_owned(),
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if SECRET_BODY_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s)) {
                    *v = Value::String("<redacted>".to_owned());
                } else {
                    redact_value(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

fn redact_body(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    if !SECRET_BODY_KEYS.iter().any(|k| lower.contains(k)) {
        return body.to_owned();
    }
    match serde_json::from_str::<Value>(body) {
        Ok(mut value) => {
            redact_value(&mut value);
            value.to_string()
        }
        // A secret key word in a body that is not JSON: show nothing of it.
        Err(_) => format!("<{} bytes redacted>", body.len()),
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(n, v)| (n, redact_header(n, v))))
                    .finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &Headers(&self.headers))
            .field("body", &self.body.as_deref().map(redact_body))
            .finish()
    }
}

/// Percent-encodes a query value: everything but the RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) becomes `%XX` of its UTF-8 bytes.
pub(crate) fn encode_query_value(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The visitor a presence REST call is about, and how to reach the service.
#[derive(Debug, Clone, Copy)]
pub struct RestTarget<'a> {
    /// The server to send to: the load balancer (lookup, find, query) or the visitor's direct
    /// server (signal).
    pub server: &'a ServerAddr,
    /// The group.
    pub group: GroupId,
    /// The visitor (`UNQ-<uniqueid>` for a `connectUnique` visitor).
    pub visitor: &'a VisitorId,
    /// The client version sent as `ver`, `major.minor.patch`.
    pub version: &'a str,
    /// The agent's token; `None` sends no `Authorization` header.
    pub token: Option<&'a AuthToken>,
}

/// `https://<server>/<endpoint>?groupid=G&visitorid=V&&ver=X.Y.Z`, as Glance's client builds it.
fn presence_url(
    server: &ServerAddr,
    endpoint: &str,
    group: GroupId,
    visitor: &str,
    ver: &str,
) -> String {
    format!(
        "{}/{endpoint}?groupid={group}&visitorid={}&&ver={}",
        server.http_base(),
        encode_query_value(visitor),
        encode_query_value(ver)
    )
}

fn bearer(token: Option<&AuthToken>) -> Vec<(String, String)> {
    token
        .map(|t| {
            vec![(
                "Authorization".to_owned(),
                format!("Bearer {}", t.expose_secret()),
            )]
        })
        .unwrap_or_default()
}

fn agent_get(t: &RestTarget<'_>, endpoint: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: presence_url(t.server, endpoint, t.group, t.visitor.as_str(), t.version),
        headers: bearer(t.token),
        body: None,
    }
}

/// `GET https://<lb>/lookupvisitor?groupid=G&visitorid=V&&ver=X.Y.Z` with
/// `Authorization: Bearer <token>`: the visitor's presence record. Parse with
/// [`parse_lookup`](super::parse_lookup).
pub fn lookup_visitor(t: &RestTarget<'_>) -> HttpRequest {
    agent_get(t, "lookupvisitor")
}

/// `GET https://<lb>/findvisitor?…` with the bearer token: whether the visitor is connected, and
/// to which direct server. Parse with [`parse_find`](super::parse_find).
pub fn find_visitor(t: &RestTarget<'_>) -> HttpRequest {
    agent_get(t, "findvisitor")
}

/// `GET https://<lb>/query?…` with the bearer token: the visitor's current state. Parse with
/// [`parse_query`](super::parse_query).
pub fn query(t: &RestTarget<'_>) -> HttpRequest {
    agent_get(t, "query")
}

/// The body of `POST /signalvisitor`.
#[derive(Debug, Clone, PartialEq)]
pub enum SignalBody {
    /// A custom message for the visitor's `onsignal`: `{"mtype":"signal","data":<value>}`.
    Signal(Value),
    /// A visitor-side function call:
    /// `{"mtype":"invoke","data":{"func":"GLANCE.…","args":<value>}}`.
    Invoke(InvokeRequest),
}

impl SignalBody {
    /// `"signal"` or `"invoke"`.
    pub fn mtype(&self) -> &'static str {
        match self {
            SignalBody::Signal(_) => "signal",
            SignalBody::Invoke(_) => "invoke",
        }
    }

    /// The body as a JSON value, keys in wire order (`mtype`, `data`).
    pub fn to_json(&self) -> Value {
        let data = match self {
            SignalBody::Signal(value) => value.clone(),
            SignalBody::Invoke(invoke) => {
                let mut payload = Map::new();
                payload.insert("func".to_owned(), Value::String(invoke.func.clone()));
                payload.insert("args".to_owned(), invoke.args.clone());
                Value::Object(payload)
            }
        };
        let mut body = Map::new();
        body.insert("mtype".to_owned(), Value::String(self.mtype().to_owned()));
        body.insert("data".to_owned(), data);
        Value::Object(body)
    }
}

/// `POST https://<direct server>/signalvisitor?…` with the bearer token,
/// `Content-Type: application/json; charset=utf-8` and the body `{"mtype":..,"data":..}`.
/// `t.server` must be the visitor's direct server (from [`parse_find`](super::parse_find)).
/// Parse with [`parse_signal`](super::parse_signal).
pub fn signal_visitor(t: &RestTarget<'_>, body: &SignalBody) -> HttpRequest {
    let mut headers = bearer(t.token);
    headers.push(("Content-Type".to_owned(), CONTENT_TYPE_JSON_UTF8.to_owned()));
    HttpRequest {
        method: Method::Post,
        url: presence_url(
            t.server,
            "signalvisitor",
            t.group,
            t.visitor.as_str(),
            t.version,
        ),
        headers,
        body: Some(body.to_json().to_string()),
    }
}

/// `GET https://<lb>/uniquevisitor?groupid=G&visitorid=V&&ver=X.Y.Z`, no authorization (visitor
/// side of `connectUnique`). Without a visitor id the literal `visitorid=undefined` is sent, as
/// Glance's visitor script does. Parse with [`parse_unique_visitor`](super::parse_unique_visitor).
pub fn unique_visitor(
    server: &ServerAddr,
    group: GroupId,
    visitor: Option<&VisitorId>,
    version: &str,
) -> HttpRequest {
    let visitor = visitor.map_or("undefined", VisitorId::as_str);
    HttpRequest {
        method: Method::Get,
        url: presence_url(server, "uniquevisitor", group, visitor, version),
        headers: Vec::new(),
        body: None,
    }
}

/// `POST https://<lb>/presence?…` with the body `{}` and
/// `Content-Type: application/json; charset=utf-8`, no authorization (visitor side, non
/// load-balanced mode): asks which direct server the visitor should connect to. Parse with
/// [`parse_presence`](super::parse_presence).
pub fn presence(
    server: &ServerAddr,
    group: GroupId,
    visitor: &VisitorId,
    version: &str,
) -> HttpRequest {
    HttpRequest {
        method: Method::Post,
        url: presence_url(server, "presence", group, visitor.as_str(), version),
        headers: vec![("Content-Type".to_owned(), CONTENT_TYPE_JSON_UTF8.to_owned())],
        body: Some("{}".to_owned()),
    }
}

/// `GET https://<web>/services/authorizationservice/GetVisitorSettings3?groupid=G&site=S&service=presence`,
/// no authorization: the group's presence host and mode. `web` is the Glance web server
/// (`www.glance.net`); `site` is `production` or `staging` (percent-encoded). Parse with
/// [`parse_visitor_settings`](super::parse_visitor_settings).
pub fn get_visitor_settings(web: &ServerAddr, group: GroupId, site: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: format!(
            "{}/services/authorizationservice/GetVisitorSettings3?groupid={group}&site={}&service=presence",
            web.http_base(),
            encode_query_value(site)
        ),
        headers: Vec::new(),
        body: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target<'a>(
        server: &'a ServerAddr,
        visitor: &'a VisitorId,
        token: Option<&'a AuthToken>,
    ) -> RestTarget<'a> {
        RestTarget {
            server,
            group: GroupId::new(12345).unwrap(),
            visitor,
            version: "6.25.0",
            token,
        }
    }

    #[test]
    fn agent_get_requests_have_the_glance_url_and_bearer_token() {
        let server = ServerAddr::parse("presence.glance.net").unwrap();
        let visitor = VisitorId::new("v1").unwrap();
        let token = AuthToken::new("tok.en");
        let t = target(&server, &visitor, Some(&token));
        for (req, endpoint) in [
            (lookup_visitor(&t), "lookupvisitor"),
            (find_visitor(&t), "findvisitor"),
            (query(&t), "query"),
        ] {
            assert_eq!(req.method, Method::Get);
            assert_eq!(
                req.request_line(),
                format!("GET https://presence.glance.net/{endpoint}?groupid=12345&visitorid=v1&&ver=6.25.0")
            );
            assert_eq!(
                req.headers,
                vec![("Authorization".into(), "Bearer tok.en".into())]
            );
            assert_eq!(req.header("authorization"), Some("Bearer tok.en"));
            assert_eq!(req.body, None);
        }
        let anonymous = lookup_visitor(&target(&server, &visitor, None));
        assert!(anonymous.headers.is_empty());
    }

    #[test]
    fn debug_and_redacted_never_show_the_token() {
        let server = ServerAddr::parse("https://h:8443").unwrap();
        let visitor = VisitorId::new("v1").unwrap();
        let token = AuthToken::new("SECRET-TOKEN-123");
        let t = target(&server, &visitor, Some(&token));
        let req = signal_visitor(&t, &SignalBody::Signal(json!({"a": 1})));
        assert!(req
            .header("Authorization")
            .unwrap()
            .contains("SECRET-TOKEN-123"));
        for text in [format!("{req:?}"), format!("{req:#?}"), req.redacted()] {
            assert!(!text.contains("SECRET-TOKEN-123"), "{text}");
            assert!(text.contains("Bearer <redacted>"), "{text}");
        }
        assert_eq!(
            req.redacted(),
            "POST https://h:8443/signalvisitor?groupid=12345&visitorid=v1&&ver=6.25.0\n\
             Authorization: Bearer <redacted>\n\
             Content-Type: application/json; charset=utf-8\n\n\
             {\"mtype\":\"signal\",\"data\":{\"a\":1}}"
        );
        let odd = HttpRequest {
            method: Method::Get,
            url: "http://x".into(),
            headers: vec![("authorization".into(), "Basic dXNlcjpwYXNz".into())],
            body: Some("loginkey=$1$123$abc".into()),
        };
        let text = format!("{odd:?}");
        assert!(
            !text.contains("dXNlcjpwYXNz") && !text.contains("abc"),
            "{text}"
        );
    }

    #[test]
    fn signal_and_invoke_bodies() {
        let server = ServerAddr::parse("pr0016.glance.net:443").unwrap();
        let visitor = VisitorId::new("v1").unwrap();
        let t = target(&server, &visitor, None);
        let req = signal_visitor(
            &t,
            &SignalBody::Invoke(InvokeRequest {
                func: "GLANCE.Cobrowse.VisitorUI.showTerms".into(),
                args: json!({"sessionKey": "1234"}),
            }),
        );
        assert_eq!(req.method, Method::Post);
        assert_eq!(
            req.url,
            "https://pr0016.glance.net:443/signalvisitor?groupid=12345&visitorid=v1&&ver=6.25.0"
        );
        assert_eq!(
            req.body.as_deref(),
            Some(
                r#"{"mtype":"invoke","data":{"func":"GLANCE.Cobrowse.VisitorUI.showTerms","args":{"sessionKey":"1234"}}}"#
            )
        );
        assert_eq!(req.header("content-type"), Some(CONTENT_TYPE_JSON_UTF8));
    }

    #[test]
    fn visitor_side_requests_carry_no_authorization() {
        let server = ServerAddr::parse("http://127.0.0.1:8080").unwrap();
        let group = GroupId::new(7).unwrap();
        let visitor = VisitorId::new("UNQ-123").unwrap();
        let unique = unique_visitor(&server, group, None, "6.33.0");
        assert_eq!(
            unique.request_line(),
            "GET http://127.0.0.1:8080/uniquevisitor?groupid=7&visitorid=undefined&&ver=6.33.0"
        );
        assert!(unique.headers.is_empty() && unique.body.is_none());
        let unique = unique_visitor(&server, group, Some(&visitor), "6.33.0");
        assert!(unique.url.contains("visitorid=UNQ-123&&ver"));
        let p = presence(&server, group, &visitor, "6.33.0");
        assert_eq!(
            p.request_line(),
            "POST http://127.0.0.1:8080/presence?groupid=7&visitorid=UNQ-123&&ver=6.33.0"
        );
        assert_eq!(p.body.as_deref(), Some("{}"));
        assert_eq!(p.header("Authorization"), None);
    }

    #[test]
    fn settings_url_encodes_the_site() {
        let web = ServerAddr::parse("www.glance.net").unwrap();
        let group = GroupId::new(12345).unwrap();
        assert_eq!(
            get_visitor_settings(&web, group, "production").request_line(),
            "GET https://www.glance.net/services/authorizationservice/GetVisitorSettings3?groupid=12345&site=production&service=presence"
        );
        assert!(get_visitor_settings(&web, group, "a b&c=d/é")
            .url
            .contains("site=a%20b%26c%3Dd%2F%C3%A9&service=presence"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            encode_query_value("a b+c&d=e?f#g/h%"),
            "a%20b%2Bc%26d%3De%3Ff%23g%2Fh%25"
        );
        assert_eq!(encode_query_value("é"), "%C3%A9");
        assert_eq!(encode_query_value(""), "");
    }
}
