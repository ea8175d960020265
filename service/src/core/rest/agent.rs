//! The agent endpoints: `lookupvisitor`, `findvisitor`, `query` and `signalvisitor`, each behind
//! a bearer token for the group in `groupid`, checked against the wall time passed in.
//!
//! Replies are written with the protocol crate's writers ([`VisitorRecord::to_json`],
//! [`VisitorState::to_json`], [`Delivery::to_json`](glance_presence_protocol::rest::Delivery::to_json)); the
//! `findvisitor` answer, which the protocol crate only parses, is written here. Not here: the
//! origin check and CORS (see the parent module).

use std::time::{Duration, Instant};

use glance_presence_protocol::rest::{VisitorRecord, VisitorState};
use glance_presence_protocol::wire::InvokeRequest;
use glance_presence_protocol::{GroupId, ServerFrame, VisitorId};
use serde_json::{Map, Value};

use super::{bad_request, group_param, json_body, visitor_param, RestResponse};
use crate::auth::TokenError;
use crate::core::{ServiceCore, SignalRefused};
use crate::query::QueryParams;

/// The token of an `Authorization: Bearer <token>` header (`bearer` accepted too).
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The frame a `signalvisitor` body asks for: `{"mtype":"signal","data":…}`,
/// `{"mtype":"invoke","data":{"func":…,"args":…}}`, or another `mtype` sent as a frame of that
/// type; `type` is read when `mtype` is missing; a `mtype` naming one of the service's own
/// frames is refused.
pub fn signal_frame(body: Value) -> Result<ServerFrame, RestResponse> {
    let Value::Object(mut map) = body else {
        return Err(bad_request("body must be a JSON object"));
    };
    let kind = match map.get("mtype").or_else(|| map.get("type")) {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => return Err(bad_request("mtype is missing")),
    };
    let data = map.remove("data").filter(|v| !v.is_null());
    match kind.as_str() {
        "signal" => Ok(ServerFrame::Signal(data.unwrap_or(Value::Null))),
        "invoke" => {
            let data = data.ok_or_else(|| bad_request("invoke needs data {func, args}"))?;
            let request: InvokeRequest = serde_json::from_value(data)
                .map_err(|e| bad_request(format!("invoke data is not {{func, args}}: {e}")))?;
            Ok(ServerFrame::Invoke(request))
        }
        other if ServerFrame::is_known_kind(other) => Err(bad_request(format!(
            "mtype {other:?} cannot be sent to a visitor"
        ))),
        _ => Ok(ServerFrame::Other { kind, data }),
    }
}

impl ServiceCore {
    /// Checks a bearer token for `group` at wall time `unix`: 401 when missing, malformed,
    /// foreign or expired; 403 for a valid token of another group or a group not served here.
    fn authorize_bearer(
        &mut self,
        unix: Duration,
        authorization: Option<&str>,
        group: GroupId,
    ) -> Result<(), RestResponse> {
        let refused = match bearer_token(authorization) {
            None => (401, "missing bearer token"),
            Some(token) => match self.tokens.verify_agent(token, Some(group), unix.as_secs()) {
                Ok(_) if self.has_group(group) => return Ok(()),
                Ok(_) => (403, "group not served here"),
                Err(TokenError::WrongGroup) => (403, "token is for another group"),
                Err(TokenError::Expired) => (401, "token expired"),
                Err(_) => (401, "invalid token"),
            },
        };
        let (status, msg) = refused;
        self.stats.rest_auth_failures += 1;
        tracing::info!(%group, status, msg, "REST authorization failed");
        Err(RestResponse::error(status, "authorization", msg))
    }

    /// The prologue of every agent endpoint: group, token, visitor (in that order).
    fn agent_prologue(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        authorization: Option<&str>,
    ) -> Result<(GroupId, VisitorId), RestResponse> {
        let group = group_param(q)?;
        self.authorize_bearer(unix, authorization, group)?;
        let visitor = visitor_param(q)?;
        Ok((group, visitor))
    }

    /// The direct-server fields every answer naming this service carries.
    fn direct_fields(&self, map: &mut Map<String, Value>) {
        let host = &self.settings.advertised_host;
        map.insert("ds".into(), Value::from(format!("{host}/0")));
        map.insert("direct".into(), Value::from(self.settings.direct()));
        map.insert("directserver".into(), Value::from(host.clone()));
        map.insert("tlsport".into(), Value::from(0));
        map.insert(
            "httpsport".into(),
            Value::from(self.settings.advertised_port),
        );
    }

    pub(super) fn rest_lookup(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        authorization: Option<&str>,
    ) -> RestResponse {
        let (group, visitor) = match self.agent_prologue(unix, q, authorization) {
            Ok(ids) => ids,
            Err(response) => return response,
        };
        let body = match self.lookup(group, &visitor) {
            None => Value::Object(Map::new()),
            Some(s) => {
                let host = self.settings.advertised_host.clone();
                VisitorRecord {
                    direct: Some(self.settings.direct()),
                    directserver: Some(host.clone()),
                    ds: Some(format!("{host}/0")),
                    visitorpresent: Some(s.since_unix),
                    timestamp: Some(s.updated_unix),
                    visitorid: Some(s.visitor.as_str().to_owned()),
                    groupid: Some(s.group.to_string()),
                    tlsport: Some(0),
                    httpsport: Some(self.settings.advertised_port),
                    presence: s.presence,
                }
                .to_json()
            }
        };
        if self.controls.breakage().lookup_wrong_shape && body != Value::Object(Map::new()) {
            // A test-only broken service (see `core::controls`): the record nested one level.
            return RestResponse::json(200, &serde_json::json!({ "visitor": body }));
        }
        RestResponse::json(200, &body)
    }

    pub(super) fn rest_find(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        authorization: Option<&str>,
    ) -> RestResponse {
        let (group, visitor) = match self.agent_prologue(unix, q, authorization) {
            Ok(ids) => ids,
            Err(response) => return response,
        };
        // The direct fields are there also when the visitor is absent, so that agents can
        // open their socket before their visitor arrives.
        let mut map = Map::new();
        self.direct_fields(&mut map);
        map.insert(
            "visitorfound".into(),
            Value::from(self.is_present(group, &visitor)),
        );
        RestResponse::json(200, &Value::Object(map))
    }

    pub(super) fn rest_query(
        &mut self,
        unix: Duration,
        q: &QueryParams,
        authorization: Option<&str>,
    ) -> RestResponse {
        let (group, visitor) = match self.agent_prologue(unix, q, authorization) {
            Ok(ids) => ids,
            Err(response) => return response,
        };
        let body = match self.lookup(group, &visitor) {
            None => Value::Object(Map::new()),
            Some(s) => VisitorState {
                present: true,
                sockets: u32::try_from(s.sockets).unwrap_or(u32::MAX),
                since: s.since_unix,
                presence: s.presence,
                visibility: s.visibility,
                terms: s.terms,
                in_session: s.in_session,
            }
            .to_json(),
        };
        RestResponse::json(200, &body)
    }

    pub(super) fn rest_signal(
        &mut self,
        now: Instant,
        unix: Duration,
        q: &QueryParams,
        authorization: Option<&str>,
        body: &[u8],
    ) -> RestResponse {
        let (group, visitor) = match self.agent_prologue(unix, q, authorization) {
            Ok(ids) => ids,
            Err(response) => return response,
        };
        let frame = match json_body(body).and_then(signal_frame) {
            Ok(frame) => frame,
            Err(response) => return response,
        };
        let kind = frame.kind().to_owned();
        let outcome = self.signal(now, group, &visitor, frame);
        tracing::debug!(%group, %visitor, kind, ?outcome, "signalvisitor");
        match outcome {
            Ok(delivery) => RestResponse::json(200, &delivery.to_json()),
            Err(SignalRefused::NotPresent) => {
                RestResponse::error(404, "visitornotpresent", "visitor not present")
            }
            Err(SignalRefused::HoldQueueFull) => RestResponse::error(
                429,
                "holdqueuefull",
                "too many signals held for this visitor",
            ),
            Err(SignalRefused::TooLarge { len, limit }) => RestResponse::error(
                413,
                "toolarge",
                &format!("the signal would reach the visitor as a frame of {len} bytes; the limit is {limit}"),
            ),
        }
    }
}
