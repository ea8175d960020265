//! The link: authorize → discover → findvisitor → open `…/agent` → `connect` → `connected`;
//! keepalives, dead-link detection, reconnects with backoff, redirects, scale-downs, token
//! renewal, and stopping.

use std::time::Duration;

use crate::io::{CloseReason, HttpRequestId, Output, SocketId};
use crate::loginkey;
use crate::rest::{
    self, AuthorizeParams, AuthorizeResult, FindResult, RestError, RestTarget, VisitorSettings,
};
use crate::wire::{ClientFrame, ConnectFrame, DecodeError, ServerFrame};

use super::event::{AgentEvent, DisconnectReason, RequestFailure, StopReason};
use super::requests::{HttpPending, HttpPurpose};
use super::token::jwt_expiry;
use super::{AgentAuth, AgentProtocol, AgentTimer, TokenFetch};
use crate::link::settings::check_plain_text;
use crate::link::{AfterServerClose, Link, LinkCore, LinkTimer, Retry, SocketLink};
use crate::secret::AuthToken;

/// How soon to try again after a failed token renewal.
const REFRESH_RETRY: Duration = Duration::from_secs(30);
/// Never renew a token more often than this (a token already expired by the local clock).
const MIN_REFRESH_IN: Duration = Duration::from_secs(10);
/// Token refusals (each followed by a renewal) tolerated without a stable link in between;
/// the next one stops the agent. At most this many + 1 `Authorize` calls follow refusals
/// before the agent stops.
pub(crate) const MAX_TOKEN_REFUSALS: u32 = 3;
impl AgentProtocol {
    /// Starts a connect attempt: `Preparing`, with a `Connecting` event.
    pub(crate) fn begin_attempt(&mut self) {
        self.link.begin_attempt();
    }

    /// Whether the configured bare token is a JWT whose `exp` has passed.
    pub(crate) fn bare_token_expired(&self) -> bool {
        match self.config.auth() {
            AgentAuth::Token(token) => {
                jwt_expiry(token).is_some_and(|exp| exp.saturating_mul(1000) <= self.unix_ms())
            }
            AgentAuth::Credentials { .. } | AgentAuth::Provider => false,
        }
    }

    /// Takes the next step of a connect attempt, if one can be taken.
    pub(crate) fn drive_link(&mut self) {
        if self.link.state != Link::Preparing {
            return;
        }
        if self.token.is_none() {
            self.ensure_token_fetch();
            return;
        }
        if !self.settings_known {
            self.ensure_settings_fetch();
            return;
        }
        let server = if let Some(direct) = &self.direct {
            direct.clone()
        } else if self.load_balanced {
            self.presence_server.clone()
        } else {
            self.ensure_find();
            return;
        };
        let origin = self.config.origin.as_deref();
        self.link.open(server, "/agent", origin);
    }

    /// Asks for a new token unless a request for one is under way: `Authorize` with
    /// credentials, `TokenNeeded` to the application with a token provider (answered within
    /// the request timeout). A bare token cannot be renewed.
    pub(crate) fn ensure_token_fetch(&mut self) {
        if self.token_fetch.is_some() {
            return;
        }
        let (partner_user, api_key, duration_minutes) = match self.config.auth() {
            AgentAuth::Credentials {
                partner_user,
                api_key,
                duration_minutes,
            } => (partner_user.clone(), api_key.clone(), *duration_minutes),
            AgentAuth::Provider => {
                self.token_fetch = Some(TokenFetch::Provider);
                self.link.timers.set(
                    AgentTimer::TokenWait,
                    self.link.now + self.config.timers.request_timeout,
                );
                self.link.emit(AgentEvent::TokenNeeded);
                return;
            }
            AgentAuth::Token(_) => return,
        };
        let unix = self.unix_ms() / 1000;
        let expires = unix + self.config.timers.login_key_validity.as_secs();
        let login_key =
            match loginkey::generate(self.config.group, &partner_user, expires, &api_key, unix) {
                Ok(key) => key,
                Err(_) => {
                    // Cannot happen with a validated configuration; never loop on it.
                    self.fatal_authorization();
                    return;
                }
            };
        let mut request = rest::authorize(&AuthorizeParams {
            web: &self.config.role.web_server,
            group: self.config.group,
            partner_user: &partner_user,
            login_key: &login_key,
            duration_minutes,
            site: &self.config.role.site,
            service: "presence",
        });
        self.add_origin(&mut request);
        let id = self.send_http(request, HttpPurpose::Authorize);
        self.token_fetch = Some(TokenFetch::Authorize(id));
    }

    /// Sends `GetVisitorSettings3` unless it is in flight.
    pub(crate) fn ensure_settings_fetch(&mut self) {
        if self.settings_fetch.is_some() {
            return;
        }
        let mut request = rest::get_visitor_settings(
            &self.config.role.web_server,
            self.config.group,
            &self.config.role.site,
        );
        self.add_origin(&mut request);
        let id = self.send_http(request, HttpPurpose::Settings);
        self.settings_fetch = Some(id);
    }

    /// Sends `findvisitor` for the socket's server unless it is in flight.
    fn ensure_find(&mut self) {
        if self.find_fetch.is_some() {
            return;
        }
        let request = rest::find_visitor(&RestTarget {
            server: &self.presence_server,
            group: self.config.group,
            visitor: &self.config.role.visitor,
            version: &self.config.client_version,
            token: self.token.as_ref(),
        });
        let id = self.send_http_with_origin(request, HttpPurpose::Find);
        self.find_fetch = Some(id);
    }

    // ----- answers to the connect steps -----

    pub(crate) fn on_authorize(
        &mut self,
        id: HttpRequestId,
        result: Result<AuthorizeResult, RestError>,
    ) {
        if self.token_fetch != Some(TokenFetch::Authorize(id)) {
            return;
        }
        self.token_fetch = None;
        self.token_arrived("authorize", result.map(|answer| answer.token));
    }

    /// The application answered [`AgentEvent::TokenNeeded`] (see
    /// [`AgentProtocol::provide_token`](super::AgentProtocol::provide_token)).
    pub(crate) fn on_provided_token(&mut self, token: Result<AuthToken, String>) {
        if self.token_fetch != Some(TokenFetch::Provider) {
            return;
        }
        self.token_fetch = None;
        self.link.timers.stop(AgentTimer::TokenWait);
        let result = token.map_err(|detail| RestError::Error { status: 0, detail });
        self.token_arrived("token provider", result);
    }

    /// The application did not answer `TokenNeeded` within the request timeout.
    fn on_token_wait_over(&mut self) {
        if self.token_fetch != Some(TokenFetch::Provider) {
            return;
        }
        self.token_fetch = None;
        self.token_arrived(
            "token provider",
            Err(RestError::Error {
                status: 0,
                detail: "the application supplied no token within the request timeout".to_owned(),
            }),
        );
    }

    /// A new token, or the failure to get one, from `step`.
    fn token_arrived(&mut self, step: &'static str, result: Result<AuthToken, RestError>) {
        match result {
            Ok(token) => {
                let now_ms = self.unix_ms();
                // The token's own `exp` when it has one, else the lifetime asked for (a
                // provider's token without a readable `exp` is renewed only when refused).
                let life = jwt_expiry(&token)
                    .map(|exp| {
                        Duration::from_millis(exp.saturating_mul(1000).saturating_sub(now_ms))
                    })
                    .or(match self.config.auth() {
                        AgentAuth::Credentials {
                            duration_minutes, ..
                        } => Some(Duration::from_secs(u64::from(*duration_minutes) * 60)),
                        _ => None,
                    });
                if let Some(life) = life {
                    let refresh_in = life.mul_f64(0.8).max(MIN_REFRESH_IN);
                    self.link
                        .timers
                        .set(AgentTimer::TokenRefresh, self.link.now + refresh_in);
                }
                self.token = Some(token);
                if matches!(self.link.state, Link::Handshaking(_) | Link::Up(_)) {
                    // The socket was opened with the old token, which the service enforces
                    // until its expiry: move to the new one now, before the old one lapses.
                    self.link_down(DisconnectReason::TokenRenewed, Retry::Now);
                }
            }
            Err(refused @ RestError::Authorization { .. }) => {
                self.fatal_authorization_for(refused.into())
            }
            Err(error) => {
                if self.token.is_some() {
                    // A renewal failed; the current token still works for now.
                    self.link
                        .timers
                        .set(AgentTimer::TokenRefresh, self.link.now + REFRESH_RETRY);
                } else {
                    self.step_failed(step, error);
                }
            }
        }
    }

    pub(crate) fn on_settings(
        &mut self,
        id: HttpRequestId,
        result: Result<VisitorSettings, RestError>,
    ) {
        if self.settings_fetch != Some(id) {
            return;
        }
        self.settings_fetch = None;
        match result {
            Ok(VisitorSettings {
                presence_url: Some(url),
                load_balanced,
                ..
            }) => match self.config.presence_server.with_authority(&url) {
                Ok(server) if check_plain_text("presenceUrl", &server).is_ok() => {
                    self.presence_server = server;
                    self.load_balanced = load_balanced;
                    self.settings_known = true;
                }
                _ => self.step_failed(
                    "discovery",
                    RestError::Error {
                        status: 200,
                        detail: format!("presenceUrl {url:?} is not a usable host[:port]"),
                    },
                ),
            },
            Ok(_) => {
                self.link.emit(AgentEvent::Error {
                    error: "connfail".to_owned(),
                    detail: "presencedisabled".to_owned(),
                });
                self.stop(StopReason::PresenceDisabled);
            }
            Err(error) => self.step_failed("discovery", error),
        }
    }

    pub(crate) fn on_find(&mut self, id: HttpRequestId, result: Result<FindResult, RestError>) {
        if self.find_fetch != Some(id) {
            return;
        }
        self.find_fetch = None;
        match result {
            Ok(found) => {
                let direct = self.usable_direct(found.direct_server.as_deref());
                self.visitor_server = if found.found { direct.clone() } else { None };
                if found.direct_server.is_some() && direct.is_none() {
                    self.link.emit(AgentEvent::ProtocolViolation {
                        detail: format!(
                            "findvisitor named an unusable direct server {:?}; using the presence server",
                            found.direct_server.unwrap_or_default()
                        ),
                    });
                }
                self.direct = Some(direct.unwrap_or_else(|| self.presence_server.clone()));
            }
            Err(RestError::Authorization { .. }) => self.token_refused(),
            Err(error) => {
                self.link.emit(AgentEvent::Error {
                    error: "connfail".to_owned(),
                    detail: error.reason().to_owned(),
                });
                self.step_failed("findvisitor", error);
            }
        }
    }

    /// A step before the socket failed: without `connect`, waiting REST requests fail with it;
    /// during a connect attempt, the link goes down and retries after the backoff.
    fn step_failed(&mut self, step: &'static str, error: RestError) {
        match self.link.state {
            Link::Preparing => {
                let why = DisconnectReason::ConnectFailed {
                    step: step.into(),
                    reason: error.reason().into(),
                    detail: error.to_string(),
                };
                self.link_down(why, Retry::Backoff);
            }
            Link::Idle => self.fail_waiting(error.into()),
            _ => {}
        }
    }

    // ----- socket -----

    /// Something came in on the current socket: the link is alive.
    pub(crate) fn on_inbound(&mut self) {
        self.link.on_inbound();
    }

    /// `connected` arrived.
    pub(crate) fn on_connected(&mut self, keepalive: Option<u64>) {
        if !self.link.connected(keepalive) {
            return;
        }
        self.start_snapshot();
    }

    /// `redirect {direct}`.
    pub(crate) fn on_redirect(&mut self, direct: String) {
        if let Some((target, why, retry)) = self.link.redirect(&self.presence_server, &direct) {
            self.link_down(why, retry);
            self.direct = Some(target);
        }
    }

    /// `scaledown`: reconnect and discover the server again.
    pub(crate) fn on_scaledown(&mut self) {
        let retry = self.link.hop();
        self.link_down(DisconnectReason::ScaleDown, retry);
        if self.config.role.discovery {
            self.settings_known = false;
        }
    }

    /// The service refused the token on the link (error frame, 401/403 on the upgrade or on
    /// findvisitor). With credentials the token is renewed and the agent reconnects: at once
    /// the first time, after the backoff the next times; after [`MAX_TOKEN_REFUSALS`]
    /// refusals without a stable link in between, or with a bare token, it stops with
    /// `Stopped { authorization }`.
    pub(crate) fn token_refused(&mut self) {
        if let Some(socket) = self.link.state.socket() {
            self.link.out.push_back(Output::CloseSocket { socket });
            self.link.state = Link::Preparing;
        }
        self.token_refused_after_close();
    }

    fn token_refused_after_close(&mut self) {
        let renewable = self.config.auth().renewable();
        self.token_refusals = self.token_refusals.saturating_add(1);
        if !renewable || self.token_refusals > MAX_TOKEN_REFUSALS {
            self.fatal_authorization();
            return;
        }
        self.token = None;
        let retry = if self.token_refusals == 1 {
            Retry::Now
        } else {
            Retry::Backoff
        };
        self.link_down(DisconnectReason::TokenRefused, retry);
    }

    /// `serverclose`: stop, or come back after the backoff, as configured.
    pub(crate) fn on_server_close(&mut self) {
        match self.config.after_server_close {
            AfterServerClose::Stop => self.stop(StopReason::ServerClose),
            AfterServerClose::Reconnect => {
                self.link_down(DisconnectReason::ServerClose, Retry::Backoff)
            }
        }
    }

    /// `connfail / authorization` once, then stop.
    pub(crate) fn fatal_authorization(&mut self) {
        self.fatal_authorization_for(RequestFailure::Authorization {
            status: None,
            detail: None,
        });
    }

    /// `connfail / authorization` once, then stop; pending requests fail with `failure` (the
    /// service's refusal, with its stated reason when it gave one).
    fn fatal_authorization_for(&mut self, failure: RequestFailure) {
        if self.link.state == Link::Stopped {
            return;
        }
        self.link.emit(AgentEvent::Error {
            error: "connfail".to_owned(),
            detail: "authorization".to_owned(),
        });
        // Pending requests fail for the reason the agent stops, not as cancelled.
        self.fail_all_requests(failure);
        self.stop(StopReason::Authorization);
    }

    /// The link went down (or a connect step failed): close the socket if there is one,
    /// report it, and try again now or after the backoff.
    pub(crate) fn link_down(&mut self, why: DisconnectReason, retry: Retry) {
        if matches!(self.link.state, Link::Idle | Link::Stopped) {
            return;
        }
        if let Some(find) = self.find_fetch.take() {
            self.forget_http(find);
        }
        if let Some(snapshot) = self.snapshot.take() {
            self.forget_http(snapshot.http);
        }
        self.direct = None;
        self.link.down(why, true);
        self.visitor_link_down();
        self.link.retry(retry);
    }

    /// Stops for good: close, cancel every request, `Stopped` last.
    pub(crate) fn stop(&mut self, why: StopReason) {
        if self.link.state == Link::Stopped {
            return;
        }
        self.link.close_socket();
        self.cancel_all_requests();
        self.http.clear();
        self.http.shrink_to_fit();
        self.link.timers.stop_all();
        self.snapshot = None;
        self.token_fetch = None;
        self.settings_fetch = None;
        self.find_fetch = None;
        self.link.emit(AgentEvent::Stopped { why });
        self.link.state = Link::Stopped;
    }

    // ----- timers -----

    // ----- HTTP helpers -----

    pub(crate) fn add_origin(&self, request: &mut rest::HttpRequest) {
        if let Some(origin) = self.config.origin() {
            request
                .headers
                .push(("Origin".to_owned(), origin.to_owned()));
        }
    }

    pub(crate) fn send_http_with_origin(
        &mut self,
        mut request: rest::HttpRequest,
        purpose: HttpPurpose,
    ) -> HttpRequestId {
        self.add_origin(&mut request);
        self.send_http(request, purpose)
    }

    pub(crate) fn send_http(
        &mut self,
        request: rest::HttpRequest,
        purpose: HttpPurpose,
    ) -> HttpRequestId {
        let id = self.link.new_http_id();
        let deadline = match purpose {
            HttpPurpose::Request(request_id, _) => self
                .requests
                .iter()
                .find(|r| r.id == request_id)
                .map(|r| r.deadline),
            _ => None,
        }
        .unwrap_or(self.link.now + self.config.timers.request_timeout);
        self.http.push(HttpPending {
            id,
            purpose,
            deadline,
        });
        self.link.out.push_back(Output::Http { id, request });
        id
    }

    pub(crate) fn forget_http(&mut self, id: HttpRequestId) {
        self.http.retain(|h| h.id != id);
    }
}

// The link and its inputs are crate-private; `LinkCore` is sealed (see `link::core`).
#[allow(private_interfaces)]
impl LinkCore for AgentProtocol {
    type Timer = AgentTimer;
    type Event = AgentEvent;

    fn link(&self) -> &SocketLink<AgentTimer, AgentEvent> {
        &self.link
    }

    fn link_mut(&mut self) -> &mut SocketLink<AgentTimer, AgentEvent> {
        &mut self.link
    }

    fn on_socket_opened(&mut self, socket: SocketId) {
        if !self.link.opened(socket) {
            return;
        }
        self.visitor_socket_opened();
        let Some(token) = self.token.clone() else {
            self.link_down(DisconnectReason::TokenRefused, Retry::Now);
            return;
        };
        let frame = ClientFrame::Connect(ConnectFrame {
            authorization: Some(token),
            group: self.config.group,
            group_as_string: true,
            visitor: self.config.role.visitor.clone(),
            guest_token: None,
            version: self.config.client_version.clone(),
        });
        self.link.out.push_back(Output::SendFrame {
            socket,
            text: frame.encode(),
        });
    }

    fn on_socket_closed(&mut self, socket: SocketId, reason: CloseReason) {
        if !self.link.closed(socket) {
            return;
        }
        if let CloseReason::HandshakeRefused { status: 401 | 403 } = reason {
            self.token_refused_after_close();
            return;
        }
        self.link_down(reason.into(), Retry::Backoff);
    }

    fn on_frame(&mut self, frame: Result<ServerFrame, DecodeError>) {
        self.read_frame(frame);
    }

    fn on_http(&mut self, id: HttpRequestId, result: Result<(u16, Vec<u8>), String>) {
        self.answer_http(id, result);
    }

    fn on_timer(&mut self, timer: AgentTimer) {
        let link_timer = match timer {
            AgentTimer::Deadlines => return self.expire_deadlines(),
            AgentTimer::VisitorGrace => return self.on_leave_grace_over(),
            AgentTimer::VisitorUnknown => return self.on_visitor_unknown(),
            AgentTimer::TokenRefresh => return self.ensure_token_fetch(),
            AgentTimer::TokenWait => return self.on_token_wait_over(),
            AgentTimer::Stable => {
                self.token_refusals = 0;
                LinkTimer::Stable
            }
            AgentTimer::PongDeadline => LinkTimer::PongDeadline,
            AgentTimer::ConnectTimeout => LinkTimer::ConnectTimeout,
            AgentTimer::Reconnect => LinkTimer::Reconnect,
            AgentTimer::Keepalive => LinkTimer::Keepalive,
            AgentTimer::IdlePing => LinkTimer::IdlePing,
        };
        if let Some(why) = self.link.on_timer(link_timer) {
            self.link_down(why, Retry::Backoff);
        }
    }

    /// Runs whatever the new state allows: the next connect step, waiting requests, and the deadline timer.
    fn after_input(&mut self) {
        if self.link.state == Link::Stopped {
            return;
        }
        self.drive_link();
        self.drive_requests();
        self.arm_deadlines();
    }
}
