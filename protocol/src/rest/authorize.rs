//! The Glance authorization call: LoginKey credentials in, a bearer token out.
//!
//! Glance's agent script POSTs the credentials object as JSON to
//! `https://<web>/services/AuthorizationService.svc/rest/Authorize?groupid=G&service=presence&duration=D&site=S`
//! with `Content-Type: application/json`, and uses the parsed reply, a bare JSON string, as the
//! token. Glance's newer Authorization API answers an object with `authToken` and `authTokeExp`
//! (sic); [`parse_authorize`] accepts both.

use std::fmt;

use serde_json::{Map, Value};

use crate::ids::{GroupId, PartnerUserId};
use crate::secret::{AuthToken, LoginKey};

use super::request::{encode_query_value, HttpRequest, Method, CONTENT_TYPE_JSON};
use super::response::{check_response, wrong_type, DEFAULT_MAX_BODY_BYTES};
use super::server_addr::ServerAddr;
use super::RestError;

/// Shortest token lifetime the service grants, in minutes.
pub const AUTHORIZE_MIN_DURATION_MINUTES: u32 = 1;
/// Longest token lifetime the service grants, in minutes (two hours).
pub const AUTHORIZE_MAX_DURATION_MINUTES: u32 = 120;

/// What [`authorize`] needs.
#[derive(Clone, Copy)]
pub struct AuthorizeParams<'a> {
    /// The Glance web server (`www.glance.net`; the reference service for tests).
    pub web: &'a ServerAddr,
    /// The group; also the partner id of the credentials.
    pub group: GroupId,
    /// The agent's partner user id.
    pub partner_user: &'a PartnerUserId,
    /// A LoginKey signed for this group and partner user id.
    pub login_key: &'a LoginKey,
    /// Token lifetime in minutes; clamped to 1–120.
    pub duration_minutes: u32,
    /// `production` or `staging`.
    pub site: &'a str,
    /// The service the token is for: `presence`.
    pub service: &'a str,
}

impl fmt::Debug for AuthorizeParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeParams")
            .field("web", &self.web)
            .field("group", &self.group)
            .field("partner_user", &self.partner_user)
            .field("login_key", &self.login_key)
            .field("duration_minutes", &self.duration_minutes)
            .field("site", &self.site)
            .field("service", &self.service)
            .finish()
    }
}

/// `POST https://<web>/services/AuthorizationService.svc/rest/Authorize?groupid=G&service=S&duration=D&site=SITE`
/// with `Content-Type: application/json` and the body
/// `{"partnerid":12345,"partneruserid":"agent1","loginkey":"$1$…"}` (partner id as a number).
///
/// `service` and `site` are percent-encoded; the duration is clamped to
/// [`AUTHORIZE_MIN_DURATION_MINUTES`]–[`AUTHORIZE_MAX_DURATION_MINUTES`] (the documented range).
/// No `Authorization` header. Parse with [`parse_authorize`].
pub fn authorize(p: &AuthorizeParams<'_>) -> HttpRequest {
    let duration = p.duration_minutes.clamp(
        AUTHORIZE_MIN_DURATION_MINUTES,
        AUTHORIZE_MAX_DURATION_MINUTES,
    );
    let mut body = Map::new();
    body.insert("partnerid".to_owned(), Value::from(p.group.get()));
    body.insert(
        "partneruserid".to_owned(),
        Value::String(p.partner_user.as_str().to_owned()),
    );
    body.insert(
        "loginkey".to_owned(),
        Value::String(p.login_key.expose_secret().to_owned()),
    );
    HttpRequest {
        method: Method::Post,
        url: format!(
            "{}/services/AuthorizationService.svc/rest/Authorize?groupid={}&service={}&duration={duration}&site={}",
            p.web.http_base(),
            p.group,
            encode_query_value(p.service),
            encode_query_value(p.site),
        ),
        headers: vec![("Content-Type".to_owned(), CONTENT_TYPE_JSON.to_owned())],
        body: Some(Value::Object(body).to_string()),
    }
}

/// A token granted by `Authorize`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeResult {
    /// The bearer token (a JWT for Glance).
    pub token: AuthToken,
    /// The expiry as the service wrote it (`authTokeExp`, e.g. `2026-03-12T20:41:55.6484735Z`),
    /// when the reply said; the bare-string reply carries none, and then the token lives for the
    /// requested duration.
    pub expires_text: Option<String>,
}

fn check_token(text: &str, status: u16, field: &str) -> Result<AuthToken, RestError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RestError::Error {
            status,
            detail: format!("{field} is empty"),
        });
    }
    // The token goes into an HTTP header and a JSON frame: visible ASCII only.
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RestError::Error {
            status,
            detail: format!("{field} holds characters that cannot go in an HTTP header"),
        });
    }
    Ok(AuthToken::new(text))
}

/// Parses the reply of [`authorize`].
///
/// Accepts a bare JSON string (the legacy reply Glance's agent script uses), or an object with
/// a string `authToken` and optionally `authTokeExp` (string or number, kept as text; the
/// correctly spelt `authTokenExp` is accepted too). Status mapping as [`RestError`]; an empty
/// token, a token with whitespace or control characters, or any other shape is
/// [`RestError::Error`]. The token never appears in an error.
pub fn parse_authorize(status: u16, body: &[u8]) -> Result<AuthorizeResult, RestError> {
    let value = check_response(status, body, DEFAULT_MAX_BODY_BYTES)?;
    match value {
        Some(Value::String(text)) => Ok(AuthorizeResult {
            token: check_token(&text, status, "token")?,
            expires_text: None,
        }),
        Some(Value::Object(map)) => {
            let token = match map.get("authToken") {
                Some(Value::String(text)) => check_token(text, status, "field `authToken`")?,
                None | Some(Value::Null) => {
                    return Err(RestError::Error {
                        status,
                        detail: "field `authToken` is missing".to_owned(),
                    })
                }
                Some(_) => return Err(wrong_type(status, "authToken", "a string")),
            };
            let exp_field = if map.contains_key("authTokeExp") {
                "authTokeExp"
            } else {
                "authTokenExp"
            };
            let expires_text = match map.get(exp_field) {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                Some(_) => return Err(wrong_type(status, exp_field, "a string")),
            };
            Ok(AuthorizeResult {
                token,
                expires_text,
            })
        }
        Some(_) => Err(RestError::Error {
            status,
            detail: "body is neither a JSON string nor an object with `authToken`".to_owned(),
        }),
        None => Err(RestError::Error {
            status,
            detail: "body is empty".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_request_glances_client_sends() {
        let web = ServerAddr::parse("www.glance.net").unwrap();
        let user = PartnerUserId::new("agent1").unwrap();
        let key = LoginKey::new("$1$1700000000$Mkg7OYSAvgvLr3mFNThPJY-lq8wU4z3UH2RhaT8Cm5s");
        let mut params = AuthorizeParams {
            web: &web,
            group: GroupId::new(12345).unwrap(),
            partner_user: &user,
            login_key: &key,
            duration_minutes: 120,
            site: "production",
            service: "presence",
        };
        let req = authorize(&params);
        assert_eq!(
            req.request_line(),
            "POST https://www.glance.net/services/AuthorizationService.svc/rest/Authorize?groupid=12345&service=presence&duration=120&site=production"
        );
        assert_eq!(
            req.headers,
            vec![("Content-Type".into(), "application/json".into())]
        );
        assert_eq!(
            req.body.as_deref(),
            Some(
                r#"{"partnerid":12345,"partneruserid":"agent1","loginkey":"$1$1700000000$Mkg7OYSAvgvLr3mFNThPJY-lq8wU4z3UH2RhaT8Cm5s"}"#
            )
        );
        let debug = format!("{req:?} {params:?}");
        assert!(!debug.contains("Mkg7"), "{debug}");
        assert!(req.redacted().contains(r#""loginkey":"<redacted>""#));

        params.duration_minutes = 0;
        assert!(authorize(&params).url.contains("&duration=1&"));
        params.duration_minutes = 500;
        params.site = "stag ing";
        let url = authorize(&params).url;
        assert!(url.ends_with("&duration=120&site=stag%20ing"), "{url}");
    }

    #[test]
    fn parses_both_reply_shapes() {
        let bare = parse_authorize(200, br#""eyJhbGciOi.eyJzdWIi.sig""#).unwrap();
        assert_eq!(bare.token.expose_secret(), "eyJhbGciOi.eyJzdWIi.sig");
        assert_eq!(bare.expires_text, None);

        // The documented object reply of Glance's Authorization API 1.0.0.
        let doc = br#"{"VServer":null,"applicationSettings":null,"authTokeExp":"2026-03-12T20:41:55.6484735Z","authToken":"eyJ...","coloSelectUrl":null,"glanceAddress":null,"groupId":25542,"gssnId":"...","isTrial":false,"message":null,"planTimeout":0,"planTitle":null,"privilegeString":"gssnId:...;personId:935203;...","service":9}"#;
        let object = parse_authorize(200, doc).unwrap();
        assert_eq!(object.token.expose_secret(), "eyJ...");
        assert_eq!(
            object.expires_text.as_deref(),
            Some("2026-03-12T20:41:55.6484735Z")
        );
        let spelt =
            parse_authorize(200, br#"{"authToken":"t","authTokenExp":1700000000}"#).unwrap();
        assert_eq!(spelt.expires_text.as_deref(), Some("1700000000"));
    }

    #[test]
    fn refuses_what_is_not_a_token() {
        let secret = "eyJsecretsecretsecret";
        for (body, needle) in [
            (&br#""""#[..], "token is empty"),
            (br#""  ""#, "token is empty"),
            (br#""a b""#, "cannot go in an HTTP header"),
            (br#""a\r\nX-Evil: 1""#, "cannot go in an HTTP header"),
            (br#"{"authTokeExp":"x"}"#, "`authToken` is missing"),
            (br#"{"authToken":null}"#, "`authToken` is missing"),
            (br#"{"authToken":5}"#, "`authToken`"),
            (br#"{"authToken":"t","authTokeExp":[1]}"#, "`authTokeExp`"),
            (br#"[1]"#, "neither a JSON string"),
            (br#"12"#, "neither a JSON string"),
            (b"", "body is empty"),
            (b"not json", "not valid JSON"),
            (
                br#"{"err":"badlogin","msg":"LoginKey expired"}"#,
                "badlogin",
            ),
        ] {
            match parse_authorize(200, body) {
                Err(RestError::Error {
                    status: 200,
                    detail,
                }) => {
                    assert!(detail.contains(needle), "{detail:?} lacks {needle:?}");
                    assert!(!detail.contains(secret));
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
        assert_eq!(
            parse_authorize(401, br#"{"err":"authorization","msg":"bad key"}"#),
            Err(RestError::Authorization {
                status: 401,
                detail: Some("bad key".into())
            })
        );
        assert_eq!(
            parse_authorize(403, b""),
            Err(RestError::Authorization {
                status: 403,
                detail: None
            })
        );
        assert_eq!(
            parse_authorize(503, b""),
            Err(RestError::ServiceUnavailable)
        );
        assert!(matches!(
            parse_authorize(500, format!("\"{secret}\"").as_bytes()),
            Err(RestError::Error { status: 500, ref detail }) if !detail.contains(secret)
        ));
    }
}
