//! Sans-IO codecs for the Presence REST API and the Glance authorization calls.
//!
//! This module describes HTTP requests ([`HttpRequest`]: method, URL, headers, body) and parses
//! HTTP responses (`parse_*(status, body)`) into typed results. It is **not** an HTTP client: it
//! opens no connection, reads no clock and keeps no state. A driver performs the request, then
//! hands the status code and body bytes to the matching parser, or builds
//! [`RestError::connection`] when the transport failed.
//!
//! The endpoints, as Glance's shipped clients call them:
//!
//! | builder | request | parser |
//! |---|---|---|
//! | [`lookup_visitor`] | `GET https://<lb>/lookupvisitor?groupid=G&visitorid=V&&ver=X.Y.Z` | [`parse_lookup`] |
//! | [`find_visitor`] | `GET https://<lb>/findvisitor?…` | [`parse_find`] |
//! | [`query`] | `GET https://<lb>/query?…` | [`parse_query`] |
//! | [`signal_visitor`] | `POST https://<direct>/signalvisitor?…` | [`parse_signal`] |
//! | [`unique_visitor`] | `GET https://<lb>/uniquevisitor?…` (visitor side) | [`parse_unique_visitor`] |
//! | [`presence`] | `POST https://<lb>/presence?…` body `{}` (visitor side) | [`parse_presence`] |
//! | [`get_visitor_settings`] | `GET https://<web>/services/authorizationservice/GetVisitorSettings3?…` | [`parse_visitor_settings`] |
//! | [`authorize`] | `POST https://<web>/services/AuthorizationService.svc/rest/Authorize?…` | [`parse_authorize`] |
//!
//! Every parser maps the status the same way (see [`RestError`]), refuses bodies over
//! [`DEFAULT_MAX_BODY_BYTES`], and never panics. Error details never hold a token.

mod authorize;
mod pydict;
mod request;
mod response;
mod server_addr;

pub use authorize::{
    authorize, parse_authorize, AuthorizeParams, AuthorizeResult, AUTHORIZE_MAX_DURATION_MINUTES,
    AUTHORIZE_MIN_DURATION_MINUTES,
};
pub use pydict::{convert_python_dict_fields, parse_python_dict};
pub use request::{
    find_visitor, get_visitor_settings, lookup_visitor, presence, query, signal_visitor,
    unique_visitor, HttpRequest, Method, RestTarget, SignalBody, CONTENT_TYPE_JSON,
    CONTENT_TYPE_JSON_UTF8,
};
pub use response::{
    check_response, parse_find, parse_lookup, parse_presence, parse_query, parse_signal,
    parse_unique_visitor, parse_visitor_settings, Delivery, FindResult, LookupResult,
    PresenceAssignment, QueryResult, UniqueVisitor, VisitorRecord, VisitorSettings, VisitorState,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_UNIQUE_TIMEOUT_SECS,
};
pub use server_addr::{Scheme, ServerAddr, ServerAddrError, MAX_AUTHORITY_LEN};

/// Why a REST or authorization call failed.
///
/// The status mapping follows Glance's agent script, with the project's additions marked:
///
/// | response | error |
/// |---|---|
/// | HTTP 401 or 403 (with the reason the body states, when it states one) | [`Authorization`](RestError::Authorization) |
/// | HTTP 503 | [`ServiceUnavailable`](RestError::ServiceUnavailable) |
/// | no response (transport failure; also status 0) | [`Connection`](RestError::Connection), built by the driver with [`RestError::connection`] |
/// | any body with `"err":"visitornotpresent"` (the reference service answers 404) — project decision | [`VisitorNotPresent`](RestError::VisitorNotPresent) |
/// | any other status outside 2xx, an unparsable or oversized body, a body of the wrong shape, or a 2xx body with both `err` and `msg` | [`Error`](RestError::Error) |
///
/// `reason()` gives the reason strings of Glance's clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The service refused the credentials or token (HTTP 401/403).
    #[error("authorization refused (HTTP {status}){}", stated(.detail.as_deref()))]
    Authorization {
        /// 401 or 403.
        status: u16,
        /// The service's stated reason (`token expired`, `the login key is not valid`…), when
        /// its answer gave one: cleaned like every detail (control characters, length,
        /// token-like words redacted).
        detail: Option<String>,
    },
    /// The presence service is unavailable (HTTP 503). Glance's client sends no more requests
    /// after this.
    #[error("presence service unavailable (HTTP 503)")]
    ServiceUnavailable,
    /// The request never got an HTTP response.
    #[error("connection failed: {detail}")]
    Connection {
        /// What the transport reported (token-like words are redacted).
        detail: String,
    },
    /// The visitor is not there to receive the message.
    #[error("visitor not present")]
    VisitorNotPresent,
    /// Any other failure: an unexpected status, an unparsable body, or a reported error.
    #[error("request failed (HTTP {status}): {detail}")]
    Error {
        /// The HTTP status.
        status: u16,
        /// What went wrong; never holds a token.
        detail: String,
    },
}

impl RestError {
    /// A transport failure (DNS, TCP, TLS, timeout before any response…). Words in `detail`
    /// that look like tokens or login keys are redacted.
    pub fn connection(detail: impl Into<String>) -> Self {
        RestError::Connection {
            detail: sanitize_detail(&detail.into()),
        }
    }

    /// The reason string Glance's clients use: `"authorization"`, `"serviceunavailable"`,
    /// `"connection"`, `"visitornotpresent"` or `"error"`.
    pub fn reason(&self) -> &'static str {
        match self {
            RestError::Authorization { .. } => "authorization",
            RestError::ServiceUnavailable => "serviceunavailable",
            RestError::Connection { .. } => "connection",
            RestError::VisitorNotPresent => "visitornotpresent",
            RestError::Error { .. } => "error",
        }
    }

    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Authorization { status, .. } | RestError::Error { status, .. } => {
                Some(*status)
            }
            RestError::ServiceUnavailable => Some(503),
            RestError::Connection { .. } | RestError::VisitorNotPresent => None,
        }
    }
}

/// `": <detail>"` when there is a stated reason, else nothing (how errors show it).
pub(crate) fn stated(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

/// Longest detail text kept in an error, in characters.
pub(crate) const MAX_DETAIL_CHARS: usize = 200;

/// Makes server- or transport-supplied text safe for an error detail: control characters become
/// spaces, words that look like secrets (JWTs, login keys, long opaque strings, the word after
/// `Bearer`) become `<redacted>`, and the result is cut to [`MAX_DETAIL_CHARS`].
pub(crate) fn sanitize_detail(text: &str) -> String {
    fn is_word_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '+' | '/' | '=' | '$' | '-')
    }
    fn looks_secret(word: &str) -> bool {
        word.starts_with("eyJ") || word.contains("$1$") || word.len() >= 32
    }
    // Bound the work on hostile input before scanning.
    let bounded: String = text.chars().take(MAX_DETAIL_CHARS * 4).collect();
    let mut out = String::with_capacity(bounded.len().min(MAX_DETAIL_CHARS * 2));
    let mut word = String::new();
    let mut after_bearer = false;
    let flush = |word: &mut String, out: &mut String, after_bearer: &mut bool| {
        if word.is_empty() {
            return;
        }
        if *after_bearer || looks_secret(word) {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        *after_bearer = word.eq_ignore_ascii_case("bearer");
        word.clear();
    };
    for c in bounded.chars() {
        if is_word_char(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out, &mut after_bearer);
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    flush(&mut word, &mut out, &mut after_bearer);
    if out.chars().count() > MAX_DETAIL_CHARS {
        let mut cut: String = out.chars().take(MAX_DETAIL_CHARS).collect();
        cut.push('…');
        cut
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_statuses() {
        let cases = [
            (
                RestError::Authorization {
                    status: 401,
                    detail: None,
                },
                "authorization",
                Some(401),
            ),
            (
                RestError::ServiceUnavailable,
                "serviceunavailable",
                Some(503),
            ),
            (RestError::connection("refused"), "connection", None),
            (RestError::VisitorNotPresent, "visitornotpresent", None),
            (
                RestError::Error {
                    status: 500,
                    detail: "x".into(),
                },
                "error",
                Some(500),
            ),
        ];
        for (err, reason, status) in cases {
            assert_eq!(err.reason(), reason);
            assert_eq!(err.status(), status);
        }
        assert_eq!(
            RestError::connection("tcp connect refused").to_string(),
            "connection failed: tcp connect refused"
        );
    }

    #[test]
    fn details_lose_secrets_and_control_characters() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let text = format!("bad token {jwt} (Bearer abc) key $1$1700000000$Mkg7\r\nend");
        let clean = sanitize_detail(&text);
        assert!(!clean.contains("eyJ"), "{clean}");
        assert!(!clean.contains("abc"), "{clean}");
        assert!(!clean.contains("Mkg7"), "{clean}");
        assert!(!clean.contains('\n'));
        assert_eq!(
            clean,
            "bad token <redacted> (Bearer <redacted>) key <redacted>  end"
        );
        assert_eq!(
            sanitize_detail("visitor not present"),
            "visitor not present"
        );
        let long = "word ".repeat(100);
        assert_eq!(sanitize_detail(&long).chars().count(), MAX_DETAIL_CHARS + 1);
        match RestError::connection(format!("failed Bearer {jwt}")) {
            RestError::Connection { detail } => assert_eq!(detail, "failed Bearer <redacted>"),
            other => panic!("{other:?}"),
        }
    }
}
