//! The endpoints a visitor (or a page loading Glance's script) calls, without a token:
//! `uniquevisitor`, `presence` and `GetVisitorSettings3`.
//!
//! Replies are written with the protocol crate's writers where it has one
//! ([`UniqueVisitor::to_json`], [`VisitorSettings::to_json`]); the `presence` answer, which the
//! protocol crate only parses, is written here.

use std::time::Instant;

use glance_presence_protocol::rest::{UniqueVisitor, VisitorSettings};
use glance_presence_protocol::VisitorId;
use serde_json::json;

use super::{bad_request, group_param, visitor_param, RestResponse};
use crate::core::ServiceCore;
use crate::query::QueryParams;

impl ServiceCore {
    /// `GET /uniquevisitor`: `visitorid=undefined` (or any id that is not `UNQ-…`) asks for a
    /// new unique id; an `UNQ-` id keeps its code and gets a fresh guest token.
    pub(super) fn rest_unique_visitor(&mut self, now: Instant, q: &QueryParams) -> RestResponse {
        let group = match group_param(q) {
            Ok(group) => group,
            Err(response) => return response,
        };
        if !self.has_group(group) {
            return bad_request(format!("group {group} is not served here"));
        }
        let requested = q.get("visitorid").and_then(|v| VisitorId::new(v).ok());
        let u = self.unique_visitor(now, group, requested.as_ref());
        let body = UniqueVisitor {
            visitorid: u.visitor,
            guesttoken: Some(u.guest_token),
            uniqueid: u.unique,
            timeout: u.timeout_secs,
        }
        .to_json();
        RestResponse::json(200, &body)
    }

    /// `POST /presence`: where the visitor's socket goes (this service).
    pub(super) fn rest_presence(&mut self, q: &QueryParams) -> RestResponse {
        let group = match group_param(q) {
            Ok(group) => group,
            Err(response) => return response,
        };
        if let Err(response) = visitor_param(q) {
            return response;
        }
        if !self.has_group(group) {
            return bad_request(format!("group {group} is not served here"));
        }
        RestResponse::json(
            200,
            &json!({
                "direct": self.settings.direct(),
                "directserver": self.settings.advertised_host,
                "httpsport": self.settings.advertised_port,
            }),
        )
    }

    /// `GET GetVisitorSettings3`: this service for a served group; an empty `presenceUrl`
    /// (presence off, as Glance's clients read it) for any other.
    pub(super) fn rest_visitor_settings(&mut self, q: &QueryParams) -> RestResponse {
        let group = match group_param(q) {
            Ok(group) => group,
            Err(response) => return response,
        };
        let settings = VisitorSettings {
            presence_url: self.has_group(group).then(|| self.settings.direct()),
            load_balanced: self.settings.load_balanced,
        };
        RestResponse::json(200, &settings.to_json())
    }
}
