//! `POST …/Authorize`: a LoginKey for a token.
//!
//! The body `{"partnerid":…,"partneruserid":…,"loginkey":"$1$…"}` (partner id a number or a
//! string) must name a served group (equal to `groupid` when given) and carry a LoginKey that
//! verifies against one of the group's API keys at the wall time passed in; `duration` is
//! 1–120 minutes (120 when missing); `service`, when given, must be `presence`. The answer is
//! the token as a bare JSON string (Glance's legacy shape). Not here: the bearer check of the
//! other agent endpoints (see [`super::agent`]).

use std::time::Duration;

use glance_presence_protocol::{loginkey, GroupId, LoginKey, PartnerUserId};
use serde_json::Value;

use super::{bad_request, json_body, RestResponse, TOKEN_MINUTES};
use crate::core::ServiceCore;
use crate::query::QueryParams;

fn text_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What `Authorize` was asked for, once read.
struct Ask {
    partner: GroupId,
    user: PartnerUserId,
    login_key: LoginKey,
    minutes: u64,
}

/// Reads the parameters and body; a refusal is its answer.
fn read_ask(q: &QueryParams, body: &[u8]) -> Result<Ask, RestResponse> {
    let bad = |msg: &str| bad_request(msg);
    let minutes = match q.get("duration") {
        None | Some("") => *TOKEN_MINUTES.end(),
        Some(text) => match text.parse::<u64>() {
            Ok(m) if TOKEN_MINUTES.contains(&m) => m,
            _ => return Err(bad("duration must be 1 to 120 minutes")),
        },
    };
    if q.get("service")
        .is_some_and(|s| !s.is_empty() && s != "presence")
    {
        return Err(bad("only the presence service is authorized here"));
    }
    let credentials = match json_body(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("body must be a JSON object")),
        Err(response) => return Err(response),
    };
    let partner = match text_or_number(credentials.get("partnerid")).map(|p| p.parse::<GroupId>()) {
        Some(Ok(group)) => group,
        Some(Err(e)) => return Err(bad(&e.to_string())),
        None => return Err(bad("partnerid is missing")),
    };
    if let Some(group) = q.get("groupid").filter(|g| !g.is_empty()) {
        if group.parse::<GroupId>().ok() != Some(partner) {
            return Err(bad("groupid and partnerid differ"));
        }
    }
    let user = match text_or_number(credentials.get("partneruserid")).map(PartnerUserId::new) {
        Some(Ok(user)) => user,
        Some(Err(e)) => return Err(bad(&e.to_string())),
        None => return Err(bad("partneruserid is missing")),
    };
    let Some(Value::String(key)) = credentials.get("loginkey") else {
        return Err(bad("loginkey is missing"));
    };
    Ok(Ask {
        partner,
        user,
        login_key: LoginKey::new(key.clone()),
        minutes,
    })
}

impl ServiceCore {
    /// The answer, and the `exp` of the token issued (for the test controls' log).
    pub(super) fn rest_authorize(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        body: &[u8],
    ) -> (RestResponse, Option<u64>) {
        match self.authorize(unix, q, body) {
            Ok(answer) => answer,
            Err(refusal) => {
                self.stats.authorize_failures += 1;
                tracing::info!(status = refusal.status, "Authorize refused");
                (refusal, None)
            }
        }
    }

    fn authorize(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        body: &[u8],
    ) -> Result<(RestResponse, Option<u64>), RestResponse> {
        let ask = read_ask(q, body)?;
        let unauthorized = |msg: &str| RestResponse::error(401, "authorization", msg);
        let Some(api_keys) = self.settings.groups.get(&ask.partner) else {
            return Err(unauthorized("unknown partner"));
        };
        let now = unix.as_secs();
        let verified = api_keys.iter().any(|api_key| {
            loginkey::verify(&ask.login_key, ask.partner, &ask.user, api_key, now).is_ok()
        });
        if !verified {
            return Err(unauthorized("the login key is not valid"));
        }
        // A test control may shorten (or set) the lifetime; the duration asked for otherwise.
        let lifetime_secs = self
            .controls
            .take_token_lifetime()
            .unwrap_or(ask.minutes * 60);
        match self
            .tokens
            .issue_agent(ask.partner, &ask.user, now, lifetime_secs)
        {
            Ok((token, exp)) => {
                tracing::info!(group = %ask.partner, user = %ask.user, lifetime_secs, "token issued");
                Ok((
                    RestResponse::json(200, &Value::from(token.expose_secret())),
                    Some(exp),
                ))
            }
            Err(_) => Ok((
                RestResponse::error(500, "error", "the token could not be made"),
                None,
            )),
        }
    }
}
