//! The link: (`uniquevisitor` →) (`presence` →) open `…/visitorws` → `connect` → `connected`;
//! keepalives, dead-link detection, reconnects with backoff, redirects, scale-downs, pauses
//! (hidden, blurred) and stopping.

use std::time::Duration;

use crate::agent::config::check_plain_text;
use crate::io::{CloseReason, HttpRequestId, Output, SocketId};
use crate::rest::{self, RestError};
use crate::wire::ClientFrame;

use super::event::{DisconnectReason, StopReason, VisitorEvent};
use super::{Fetch, Link, UniqueGrant, VisitorProtocol, VisitorTimer};

/// Redirects / scale-downs followed at once before the backoff applies (as the agent).
const MAX_IMMEDIATE_HOPS: u32 = 3;
/// Longest keepalive interval honoured (a day).
const MAX_KEEPALIVE_SECS: u64 = 86_400;

/// What to do once the link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Open a new socket at once (redirect, scale-down, page load).
    Now,
    /// Wait for the backoff delay.
    Backoff,
    /// Stay down until the page is shown / focused.
    Pause,
}

impl VisitorProtocol {
    /// Starts a connect attempt: `Preparing`, with a `Connecting` event.
    pub(crate) fn begin_attempt(&mut self) {
        self.link = Link::Preparing;
        let attempt = self.backoff.attempt();
        self.emit(VisitorEvent::Connecting { attempt });
    }

    /// Takes the next step of a connect attempt, if one can be taken.
    pub(crate) fn drive_link(&mut self) {
        if self.link != Link::Preparing {
            return;
        }
        if self.visitor.is_none() {
            self.ensure_fetch(Fetch::Unique);
            return;
        }
        if self.config.direct_server_lookup && self.direct.is_none() {
            self.ensure_fetch(Fetch::Assignment);
            return;
        }
        let server = self
            .direct
            .clone()
            .unwrap_or_else(|| self.config.presence_server.clone());
        let socket = self.new_socket_id();
        let mut headers = Vec::new();
        if let Some(origin) = self.config.origin() {
            headers.push(("Origin".to_owned(), origin.to_owned()));
        }
        self.out.push_back(Output::OpenSocket {
            socket,
            url: server.ws_url("/visitorws"),
            headers,
        });
        self.socket_server = Some(server);
        self.link = Link::Opening(socket);
        self.timers.set(
            VisitorTimer::ConnectTimeout,
            self.now + self.config.timers.connect_timeout,
        );
    }

    /// Sends the request before the socket unless one is in flight.
    fn ensure_fetch(&mut self, fetch: Fetch) {
        if self.fetch.is_some() {
            return;
        }
        let server = &self.config.presence_server;
        let mut request = match fetch {
            Fetch::Unique => {
                rest::unique_visitor(server, self.config.group, None, &self.config.client_version)
            }
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
        let id = self.new_http_id();
        self.out.push_back(Output::Http { id, request });
        self.fetch = Some((id, fetch));
        self.timers.set(
            VisitorTimer::ConnectTimeout,
            self.now + self.config.timers.connect_timeout,
        );
    }

    /// The answer to the request before the socket (stale ids are ignored).
    pub(crate) fn on_http(&mut self, id: HttpRequestId, result: Result<(u16, Vec<u8>), String>) {
        let Some((pending, fetch)) = self.fetch else {
            return;
        };
        if pending != id || self.link != Link::Preparing {
            return;
        }
        self.fetch = None;
        self.timers.stop(VisitorTimer::ConnectTimeout);
        match fetch {
            Fetch::Unique => {
                let parsed = result
                    .map_err(RestError::connection)
                    .and_then(|(status, body)| rest::parse_unique_visitor(status, &body));
                match parsed {
                    Ok(granted) => {
                        self.emit(VisitorEvent::UniqueId {
                            unique_id: granted.uniqueid.clone(),
                            visitor_id: granted.visitorid.clone(),
                            timeout_secs: granted.timeout,
                        });
                        self.visitor = Some(granted.visitorid);
                        self.unique = Some(UniqueGrant {
                            unique: granted.uniqueid,
                            guest_token: granted.guesttoken,
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
                            self.emit(VisitorEvent::ProtocolViolation {
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

    /// A request before the socket failed: Glance's `onerror(connfail)`, then the backoff.
    fn step_failed(&mut self, step: &'static str, error: RestError) {
        self.emit(VisitorEvent::Error {
            error: "connfail".to_owned(),
            detail: error.reason().to_owned(),
        });
        let why = DisconnectReason::ConnectFailed {
            step,
            reason: error.reason(),
            detail: error.to_string(),
        };
        self.link_down(why, Retry::Backoff);
    }

    // ----- socket -----

    pub(crate) fn accepts_frames_from(&self, socket: SocketId) -> bool {
        matches!(self.link, Link::Handshaking(s) | Link::Up(s) if s == socket)
    }

    pub(crate) fn on_socket_opened(&mut self, socket: SocketId) {
        if self.link != Link::Opening(socket) {
            return;
        }
        self.link = Link::Handshaking(socket);
        self.send_connect(socket);
    }

    pub(crate) fn on_socket_closed(&mut self, socket: SocketId, reason: CloseReason) {
        if self.link.socket() != Some(socket) {
            return;
        }
        // The socket is gone: nothing to close.
        self.link = Link::Preparing;
        let why = match reason {
            CloseReason::HandshakeRefused { status } => {
                DisconnectReason::HandshakeRefused { status }
            }
            CloseReason::ClosedByPeer { code, reason } => {
                DisconnectReason::ClosedByPeer { code, reason }
            }
            CloseReason::TransportError { detail } => DisconnectReason::TransportError { detail },
            CloseReason::ClosedLocally => DisconnectReason::TransportError {
                detail: "closed locally".to_owned(),
            },
        };
        self.link_down(why, Retry::Backoff);
    }

    /// Something came in on the current socket: the link is alive.
    pub(crate) fn on_inbound(&mut self) {
        self.timers.stop(VisitorTimer::PongDeadline);
        if matches!(self.link, Link::Up(_)) {
            self.timers.set(
                VisitorTimer::IdlePing,
                self.now + self.config.timers.idle_ping_after,
            );
        }
    }

    /// `connected` arrived: keepalives start, the backoff resets.
    pub(crate) fn on_connected(&mut self, keepalive: Option<u64>) {
        let Link::Handshaking(socket) = self.link else {
            return;
        };
        self.link = Link::Up(socket);
        self.timers.stop(VisitorTimer::ConnectTimeout);
        self.backoff.reset();
        let keepalive = match keepalive {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs.min(MAX_KEEPALIVE_SECS))),
            None => Some(self.config.timers.default_keepalive),
        };
        self.keepalive = keepalive;
        if let Some(interval) = keepalive {
            self.timers
                .set(VisitorTimer::Keepalive, self.now + interval);
        }
        self.on_inbound();
        let server = self
            .socket_server
            .as_ref()
            .map(|s| s.host_port().to_owned())
            .unwrap_or_default();
        self.emit(VisitorEvent::Connected {
            server,
            keepalive_secs: keepalive.map_or(0, |k| k.as_secs()),
        });
    }

    /// `redirect {direct}`: reconnect there.
    pub(crate) fn on_redirect(&mut self, direct: String) {
        let target = match self.config.presence_server.with_authority(&direct) {
            Ok(server) if check_plain_text("redirect", &server).is_ok() => server,
            _ => {
                self.emit(VisitorEvent::ProtocolViolation {
                    detail: format!("redirect to an unusable server {direct:?} ignored"),
                });
                return;
            }
        };
        if self.socket_server.as_ref() == Some(&target) {
            return;
        }
        let server = target.host_port().to_owned();
        self.emit(VisitorEvent::Redirected {
            server: server.clone(),
        });
        let retry = self.hop();
        self.link_down(DisconnectReason::Redirect { server }, retry);
        self.direct = Some(target);
    }

    /// `scaledown`: reconnect (to the presence server, or after a new `presence` lookup).
    pub(crate) fn on_scaledown(&mut self) {
        let retry = self.hop();
        self.link_down(DisconnectReason::ScaleDown, retry);
    }

    /// `blur`: another socket with this visitor id took over.
    pub(crate) fn on_blur(&mut self) {
        self.emit(VisitorEvent::Blurred);
        self.blurred = true;
        self.pause(DisconnectReason::Blurred);
    }

    fn hop(&mut self) -> Retry {
        self.hops = self.hops.saturating_add(1);
        if self.hops <= MAX_IMMEDIATE_HOPS {
            Retry::Now
        } else {
            Retry::Backoff
        }
    }

    /// Hidden or blurred: close the socket (or give up the attempt, or the backoff wait) and
    /// stay down.
    pub(crate) fn pause(&mut self, why: DisconnectReason) {
        match self.link {
            Link::Preparing | Link::Opening(_) | Link::Handshaking(_) | Link::Up(_) => {
                self.link_down(why, Retry::Pause)
            }
            Link::Backoff => {
                self.timers.stop(VisitorTimer::Reconnect);
                self.link = Link::Paused;
            }
            Link::Idle | Link::Paused | Link::Stopped => {}
        }
    }

    /// Shown or focused: reconnect at once if nothing else keeps the visitor paused.
    pub(crate) fn resume(&mut self) {
        if self.link == Link::Paused && !self.hidden && !self.blurred {
            self.begin_attempt();
        }
    }

    /// The link went down (or a connect step failed): close the socket if there is one,
    /// report it, and go on as `retry` says.
    pub(crate) fn link_down(&mut self, why: DisconnectReason, retry: Retry) {
        let attempt_in_progress = matches!(
            self.link,
            Link::Preparing | Link::Opening(_) | Link::Handshaking(_) | Link::Up(_)
        );
        if !attempt_in_progress && self.link != Link::Backoff {
            return;
        }
        if let Some(socket) = self.link.socket() {
            self.out.push_back(Output::CloseSocket { socket });
        }
        for timer in [
            VisitorTimer::ConnectTimeout,
            VisitorTimer::Keepalive,
            VisitorTimer::IdlePing,
            VisitorTimer::PongDeadline,
            VisitorTimer::Reconnect,
        ] {
            self.timers.stop(timer);
        }
        self.fetch = None;
        self.socket_server = None;
        self.keepalive = None;
        if !matches!(
            why,
            DisconnectReason::Navigation | DisconnectReason::Hidden | DisconnectReason::Blurred
        ) {
            // Back to the presence server (or a new lookup) unless the server was fine.
            self.direct = None;
        }
        self.link = Link::Preparing;
        if attempt_in_progress {
            self.emit(VisitorEvent::Disconnected { why });
        }
        match retry {
            Retry::Now => self.begin_attempt(),
            Retry::Backoff => {
                let (attempt, delay) = self.backoff.next_delay();
                self.link = Link::Backoff;
                self.timers.set(VisitorTimer::Reconnect, self.now + delay);
                self.emit(VisitorEvent::Reconnecting {
                    attempt,
                    delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                });
            }
            Retry::Pause => self.link = Link::Paused,
        }
    }

    /// Stops for good: close, drop the queue, `Stopped` last.
    pub(crate) fn stop(&mut self, why: StopReason) {
        if self.link == Link::Stopped {
            return;
        }
        if let Some(socket) = self.link.socket() {
            self.out.push_back(Output::CloseSocket { socket });
        }
        self.timers.stop_all();
        self.fetch = None;
        self.queue.clear();
        self.queue.shrink_to_fit();
        self.emit(VisitorEvent::Stopped { why });
        self.link = Link::Stopped;
    }

    // ----- timers -----

    pub(crate) fn on_timer(&mut self, timer: VisitorTimer) {
        match timer {
            VisitorTimer::PongDeadline => {
                if matches!(self.link, Link::Up(_)) {
                    self.link_down(DisconnectReason::DeadLink, Retry::Backoff);
                }
            }
            VisitorTimer::ConnectTimeout => {
                if matches!(
                    self.link,
                    Link::Preparing | Link::Opening(_) | Link::Handshaking(_)
                ) {
                    self.link_down(DisconnectReason::ConnectTimeout, Retry::Backoff);
                }
            }
            VisitorTimer::Reconnect => {
                if self.link == Link::Backoff {
                    self.begin_attempt();
                }
            }
            VisitorTimer::Keepalive => {
                if let (Link::Up(socket), Some(interval)) = (self.link, self.keepalive) {
                    self.send_now(socket, ClientFrame::Keepalive.encode());
                    self.timers
                        .set(VisitorTimer::Keepalive, self.now + interval);
                    // A keepalive interval on a live link: redirects may be followed at once again.
                    self.hops = 0;
                }
            }
            VisitorTimer::IdlePing => {
                if let Link::Up(socket) = self.link {
                    self.out.push_back(Output::SendPing { socket });
                    self.timers.set(
                        VisitorTimer::PongDeadline,
                        self.now + self.config.timers.pong_timeout,
                    );
                }
            }
        }
    }
}
