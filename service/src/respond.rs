//! Writes the core's [`RestResponse`] out: as an axum response, or as the raw HTTP/1.1 bytes of
//! a refusal written on a connection hyper never sees. Conversion only: what to answer is the
//! core's decision.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

use crate::core::rest::RestResponse;

/// The core's answer as an axum response (headers that are not valid HTTP are left out).
pub(crate) fn into_response(answer: RestResponse) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// The core's answer as raw HTTP/1.1 bytes, with its `Content-Length`.
pub(crate) fn raw_http(answer: &RestResponse) -> Vec<u8> {
    let reason = StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut text = format!("HTTP/1.1 {} {reason}\r\n", answer.status);
    for (name, value) in &answer.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", answer.body.len()));
    text.push_str(&answer.body);
    text.into_bytes()
}
