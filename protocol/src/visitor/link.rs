//! The link: (`uniquevisitor` →) (`presence` →) open `…/visitorws` → `connect` → `connected`;
//! keepalives, dead-link detection, reconnects with backoff, redirects, scale-downs, pauses
//! (hidden, blurred) and stopping.

use std::time::Duration;

use crate::io::{CloseReason, HttpRequestId, Output, SocketId};
use crate::link::settings::check_plain_text;
use crate::link::{AfterServerClose, Link, LinkCore, LinkTimer, Retry, SocketLink};
use crate::rest::{self, RestError};
use crate::wire::{DecodeError, ServerFrame};

use super::event::{DisconnectReason, StopReason, VisitorEvent};
use super::{Fetch, UniqueGrant, VisitorProtocol, VisitorTimer};

/// A unique grant is renewed when it lapses within this (the time a connect may take).
const GUEST_TOKEN_MARGIN: Duration = Duration::from_secs(15);

impl VisitorProtocol {
    /// Starts a connect attempt: `Preparing`, with a `Connecting` event.
    pub(crate) fn begin_attempt(&mut self) {
        self.link.begin_attempt();
    }

    /// Takes the next step of a connect attempt, if one can be taken.
    pub(crate) fn drive_link(&mut self) {
        if self.link.state != Link::Preparing {
            return;
        }
        if self.visitor.is_none() || self.unique_grant_lapsing() {
            self.ensure_fetch(Fetch::Unique);
            return;
        }
        if self.config.role.direct_server_lookup && self.direct.is_none() {
            self.ensure_fetch(Fetch::Assignment);
            return;
        }
        let server = self
            .direct
            .clone()
            .unwrap_or_else(|| self.config.presence_server.clone());
        let origin = self.config.origin.as_deref();
        self.link.open(server, "/visitorws", origin);
    }

    /// Sends the request before the socket unless one is in flight.
    fn ensure_fetch(&mut self, fetch: Fetch) {
        if self.fetch.is_some() {
            return;
        }
        let server = &self.config.presence_server;
        let mut request = match fetch {
            // The first time with no id; afterwards with the granted `UNQ-` id, which keeps
            // the id and brings a fresh guest token.
            Fetch::Unique => rest::unique_visitor(
                server,
                self.config.group,
                self.visitor.as_ref(),
                &self.config.client_version,
            ),
            Fetch::Assignment => {
                let Some(visitor) = self.visitor.as_ref() else {
                    return;
                };
                rest::presence(
                    server,
                    self.config.group,
                    visitor,
                    &self.config.client_version,
                )
            }
        };
        if let Some(origin) = self.config.origin() {
            request
                .headers
                .push(("Origin".to_owned(), origin.to_owned()));
        }
        let id = self.link.new_http_id();
        self.link.out.push_back(Output::Http { id, request });
        self.fetch = Some((id, fetch));
        self.link.timers.set(
            VisitorTimer::ConnectTimeout,
            self.link.now + self.config.timers.connect_timeout,
        );
    }

    /// A request before the socket failed: Glance's `onerror(connfail)`, then the backoff.
    fn step_failed(&mut self, step: &'static str, error: RestError) {
        self.link.emit(VisitorEvent::Error {
            error: "connfail".to_owned(),
            detail: error.reason().to_owned(),
        });
        let why = DisconnectReason::ConnectFailed {
            step: step.into(),
            reason: error.reason().into(),
            detail: error.to_string(),
        };
        self.link_down(why, Retry::Backoff);
    }

    // ----- socket -----

    /// Something came in on the current socket: the link is alive.
    pub(crate) fn on_inbound(&mut self) {
        self.link.on_inbound();
    }

    /// `connected` arrived: keepalives start, the backoff resets.
    pub(crate) fn on_connected(&mut self, keepalive: Option<u64>) {
        self.link.connected(keepalive);
    }

    /// `redirect {direct}`: reconnect there.
    pub(crate) fn on_redirect(&mut self, direct: String) {
        if let Some((target, why, retry)) =
            self.link.redirect(&self.config.presence_server, &direct)
        {
            self.link_down(why, retry);
            self.direct = Some(target);
        }
    }

    /// `scaledown`: reconnect (to the presence server, or after a new `presence` lookup).
    pub(crate) fn on_scaledown(&mut self) {
        let retry = self.link.hop();
        self.link_down(DisconnectReason::ScaleDown, retry);
    }

    /// Whether the unique grant's code (and guest token) lapses before a socket opened now
    /// could finish connecting.
    fn unique_grant_lapsing(&self) -> bool {
        self.unique
            .as_ref()
            .is_some_and(|grant| grant.expires <= self.link.now + GUEST_TOKEN_MARGIN)
    }

    /// The service refused the guest token (`error {connfail, guesttoken}`): renew the
    /// grant, then reconnect after the backoff.
    pub(crate) fn guest_token_refused(&mut self) {
        if let Some(grant) = &mut self.unique {
            grant.expires = self.link.now;
        }
        self.link_down(DisconnectReason::TokenRefused, Retry::Backoff);
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

    /// `blur`: another socket with this visitor id took over.
    pub(crate) fn on_blur(&mut self) {
        self.link.emit(VisitorEvent::Blurred);
        self.blurred = true;
        self.pause(DisconnectReason::Blurred);
    }

    /// Hidden or blurred: close the socket (or give up the attempt, or the backoff wait) and
    /// stay down.
    pub(crate) fn pause(&mut self, why: DisconnectReason) {
        match self.link.state {
            Link::Preparing | Link::Opening(_) | Link::Handshaking(_) | Link::Up(_) => {
                self.link_down(why, Retry::Pause)
            }
            Link::Backoff => {
                self.link.timers.stop(VisitorTimer::Reconnect);
                self.link.state = Link::Paused;
            }
            Link::Idle | Link::Paused | Link::Stopped => {}
        }
    }

    /// Shown or focused: reconnect at once if nothing else keeps the visitor paused.
    pub(crate) fn resume(&mut self) {
        if self.link.state == Link::Paused && !self.hidden && !self.blurred {
            self.begin_attempt();
        }
    }

    /// The link went down (or a connect step failed): close the socket if there is one,
    /// report it, and go on as `retry` says.
    pub(crate) fn link_down(&mut self, why: DisconnectReason, retry: Retry) {
        let attempt_in_progress = self.link.state.in_attempt();
        if !attempt_in_progress && self.link.state != Link::Backoff {
            return;
        }
        self.fetch = None;
        if !matches!(
            why,
            DisconnectReason::Navigation | DisconnectReason::Hidden | DisconnectReason::Blurred
        ) {
            // Back to the presence server (or a new lookup) unless the server was fine.
            self.direct = None;
        }
        self.link.down(why, attempt_in_progress);
        self.link.retry(retry);
    }

    /// Stops for good: close, drop the queue, `Stopped` last.
    pub(crate) fn stop(&mut self, why: StopReason) {
        if self.link.state == Link::Stopped {
            return;
        }
        self.link.close_socket();
        self.link.timers.stop_all();
        self.fetch = None;
        self.queue.clear();
        self.queue.shrink_to_fit();
        self.link.emit(VisitorEvent::Stopped { why });
        self.link.state = Link::Stopped;
    }
}

// The link and its inputs are crate-private; `LinkCore` is sealed (see `link::core`).
#[allow(private_interfaces)]
impl LinkCore for VisitorProtocol {
    type Timer = VisitorTimer;
    type Event = VisitorEvent;

    fn link(&self) -> &SocketLink<VisitorTimer, VisitorEvent> {
        &self.link
    }

    fn link_mut(&mut self) -> &mut SocketLink<VisitorTimer, VisitorEvent> {
        &mut self.link
    }

    fn on_socket_opened(&mut self, socket: SocketId) {
        if self.link.opened(socket) {
            self.send_connect(socket);
        }
    }

    fn on_socket_closed(&mut self, socket: SocketId, reason: CloseReason) {
        if self.link.closed(socket) {
            self.link_down(reason.into(), Retry::Backoff);
        }
    }

    fn on_frame(&mut self, frame: Result<ServerFrame, DecodeError>) {
        self.read_frame(frame);
    }

    /// The answer to the request before the socket (stale ids are ignored).
    fn on_http(&mut self, id: HttpRequestId, result: Result<(u16, Vec<u8>), String>) {
        let Some((pending, fetch)) = self.fetch else {
            return;
        };
        if pending != id || self.link.state != Link::Preparing {
            return;
        }
        self.fetch = None;
        self.link.timers.stop(VisitorTimer::ConnectTimeout);
        match fetch {
            Fetch::Unique => {
                let parsed = result
                    .map_err(RestError::connection)
                    .and_then(|(status, body)| rest::parse_unique_visitor(status, &body));
                match parsed {
                    Ok(granted) => {
                        self.link.emit(VisitorEvent::UniqueId {
                            unique_id: granted.uniqueid.clone(),
                            visitor_id: granted.visitorid.clone(),
                            timeout_secs: granted.timeout,
                        });
                        self.visitor = Some(granted.visitorid);
                        self.unique = Some(UniqueGrant {
                            unique: granted.uniqueid,
                            guest_token: granted.guesttoken,
                            // A code said to lapse sooner than a connect takes is kept that
                            // long anyway (a refusal then renews it), never renewed in a loop.
                            expires: self.link.now
                                + Duration::from_secs(granted.timeout).max(GUEST_TOKEN_MARGIN * 2),
                        });
                    }
                    Err(error) => self.step_failed("uniquevisitor", error),
                }
            }
            Fetch::Assignment => {
                let parsed = result
                    .map_err(RestError::connection)
                    .and_then(|(status, body)| rest::parse_presence(status, &body));
                match parsed {
                    Ok(assignment) => {
                        let presence_server = self.config.presence_server.clone();
                        let direct = assignment
                            .direct_server
                            .as_deref()
                            .and_then(|d| presence_server.with_authority(d).ok())
                            .filter(|d| check_plain_text("direct server", d).is_ok());
                        if let (Some(named), None) = (&assignment.direct_server, &direct) {
                            self.link.emit(VisitorEvent::ProtocolViolation {
                                detail: format!(
                                    "presence named an unusable direct server {named:?}; using the presence server"
                                ),
                            });
                        }
                        self.direct = Some(direct.unwrap_or(presence_server));
                    }
                    Err(error) => self.step_failed("presence", error),
                }
            }
        }
    }

    fn on_timer(&mut self, timer: VisitorTimer) {
        let link_timer = match timer {
            VisitorTimer::PongDeadline => LinkTimer::PongDeadline,
            VisitorTimer::ConnectTimeout => LinkTimer::ConnectTimeout,
            VisitorTimer::Reconnect => LinkTimer::Reconnect,
            VisitorTimer::Keepalive => LinkTimer::Keepalive,
            VisitorTimer::IdlePing => LinkTimer::IdlePing,
            VisitorTimer::Stable => LinkTimer::Stable,
        };
        if let Some(why) = self.link.on_timer(link_timer) {
            self.link_down(why, Retry::Backoff);
        }
    }

    /// Runs whatever the new state allows: the next connect step.
    fn after_input(&mut self) {
        if self.link.state == Link::Stopped {
            return;
        }
        self.drive_link();
    }
}
