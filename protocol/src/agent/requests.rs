//! Application requests (lookup, query, signal, invoke), the HTTP requests in flight, their
//! deadlines, and the lookup made after `connected` (the snapshot).
//!
//! Every request gets its deadline (issue time + request timeout) when it is made and resolves
//! exactly once: with the service's answer, with a failure, as timed out, or as cancelled when
//! the agent stops. While a connect attempt is under way, requests wait in a bounded queue.

use std::time::Instant;

use crate::io::{HttpRequestId, Output};
use crate::presence::PresenceData;
use crate::rest::{
    self, FindResult, LookupResult, QueryResult, RestError, RestTarget, ServerAddr, SignalBody,
};
use crate::wire::ClientFrame;

use super::event::{
    AgentEvent, Delivery, PresenceSource, RequestFailure, RequestId, RequestKind, RequestValue,
    VisitorSnapshot,
};
use super::{AgentProtocol, AgentTimer, CommandError, Link, PendingSnapshot, SignalRoute};
use crate::link::settings::check_plain_text;
use crate::link::LinkCore;

/// What a request does.
#[derive(Debug, Clone)]
pub(crate) enum RequestOp {
    Lookup,
    Query,
    Find,
    /// Signal or invoke.
    Signal(SignalBody),
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Waiting for the link or for a token.
    Waiting,
    /// An HTTP request is in flight.
    InFlight,
}

/// One application request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) id: RequestId,
    pub(crate) kind: RequestKind,
    pub(crate) op: RequestOp,
    pub(crate) deadline: Instant,
    pub(crate) stage: Stage,
    /// Already retried once after a 401/403 with a renewed token.
    pub(crate) auth_retried: bool,
    /// A signal posted straight to the visitor's known server, without `findvisitor`: found
    /// (and posted) again once if that server says the visitor is not there.
    pub(crate) posted_to_known_server: bool,
}

/// Which step of a request an HTTP request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestStep {
    Lookup,
    Query,
    /// `findvisitor` asked by the application: the answer is the result.
    Locate,
    /// `findvisitor` before a signal's POST.
    Find,
    Post,
}

/// What an HTTP request in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpPurpose {
    Authorize,
    Settings,
    Find,
    Snapshot,
    Request(RequestId, RequestStep),
}

/// An HTTP request in flight.
#[derive(Debug, Clone)]
pub(crate) struct HttpPending {
    pub(crate) id: HttpRequestId,
    pub(crate) purpose: HttpPurpose,
    pub(crate) deadline: Instant,
}

type Response = Result<(u16, Vec<u8>), String>;

fn parse<T>(
    response: &Response,
    parser: fn(u16, &[u8]) -> Result<T, RestError>,
) -> Result<T, RestError> {
    match response {
        Ok((status, body)) => parser(*status, body),
        Err(detail) => Err(RestError::connection(detail.as_str())),
    }
}

impl AgentProtocol {
    /// Registers a request, or refuses it at once.
    pub(crate) fn command(
        &mut self,
        kind: RequestKind,
        op: RequestOp,
    ) -> Result<RequestId, CommandError> {
        if self.link.state == Link::Stopped {
            return Err(CommandError::Stopped);
        }
        if matches!(op, RequestOp::Signal(_))
            && self.config.role.signal_route == SignalRoute::Socket
            && self.link.state == Link::Idle
        {
            return Err(CommandError::NotConnected);
        }
        let waiting = self
            .requests
            .iter()
            .filter(|r| r.stage == Stage::Waiting)
            .count();
        if waiting >= self.config.role.command_queue_bound {
            return Err(CommandError::QueueFull {
                bound: self.config.role.command_queue_bound,
            });
        }
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.requests.push(Request {
            id,
            kind,
            op,
            deadline: self.link.now + self.config.timers.request_timeout,
            stage: Stage::Waiting,
            auth_retried: false,
            posted_to_known_server: false,
        });
        self.after_input();
        Ok(id)
    }

    /// Starts the waiting requests the state allows.
    pub(crate) fn drive_requests(&mut self) {
        if !self.requests.iter().any(|r| r.stage == Stage::Waiting) {
            return;
        }
        // While a connect attempt is under way, requests wait for `connected`.
        if !matches!(self.link.state, Link::Idle | Link::Up(_)) {
            return;
        }
        let socket_route = self.config.role.signal_route == SignalRoute::Socket;
        let needs_rest = self.requests.iter().any(|r| {
            r.stage == Stage::Waiting && !(socket_route && matches!(r.op, RequestOp::Signal(_)))
        });
        let rest_ready = self.token.is_some() && self.settings_known;
        if needs_rest && !rest_ready {
            if self.token.is_none() {
                self.ensure_token_fetch();
            } else {
                self.ensure_settings_fetch();
            }
        }
        // REST signals and invokes go one at a time, in the order they were made, so that a
        // retry (a renewed token, finding the visitor again) never lets a later one overtake.
        let mut signal_in_flight = !socket_route
            && self
                .requests
                .iter()
                .any(|r| r.stage == Stage::InFlight && matches!(r.op, RequestOp::Signal(_)));
        let mut index = 0;
        while index < self.requests.len() {
            let request = &self.requests[index];
            if request.stage != Stage::Waiting {
                index += 1;
                continue;
            }
            if signal_in_flight && !socket_route && matches!(request.op, RequestOp::Signal(_)) {
                index += 1;
                continue;
            }
            let id = request.id;
            match &request.op {
                RequestOp::Signal(body) if socket_route => {
                    if let Link::Up(socket) = self.link.state {
                        let frame = match body {
                            SignalBody::Signal(value) => ClientFrame::Signal(value.clone()),
                            SignalBody::Invoke(invoke) => ClientFrame::Invoke(invoke.clone()),
                        };
                        self.link.out.push_back(Output::SendFrame {
                            socket,
                            text: frame.encode(),
                        });
                        self.resolve(id, Ok(RequestValue::Sent(Delivery::SentUnconfirmed)));
                        continue; // the request was removed
                    }
                }
                _ if rest_ready => {
                    let known = match request.op {
                        RequestOp::Signal(_) if !self.config.role.find_every_signal => {
                            self.visitor_server.clone()
                        }
                        _ => None,
                    };
                    let step = match request.op {
                        RequestOp::Lookup => RequestStep::Lookup,
                        RequestOp::Query => RequestStep::Query,
                        RequestOp::Find => RequestStep::Locate,
                        RequestOp::Signal(_) if known.is_some() => RequestStep::Post,
                        RequestOp::Signal(_) => RequestStep::Find,
                    };
                    self.requests[index].stage = Stage::InFlight;
                    self.requests[index].posted_to_known_server = known.is_some();
                    if matches!(self.requests[index].op, RequestOp::Signal(_)) {
                        signal_in_flight = true;
                    }
                    self.send_request_step(id, step, known);
                }
                _ => {}
            }
            index += 1;
        }
    }

    fn rest_target<'a>(&'a self, server: &'a ServerAddr) -> RestTarget<'a> {
        RestTarget {
            server,
            group: self.config.group,
            visitor: &self.config.role.visitor,
            version: &self.config.client_version,
            token: self.token.as_ref(),
        }
    }

    /// Sends one HTTP step of request `id`.
    fn send_request_step(&mut self, id: RequestId, step: RequestStep, direct: Option<ServerAddr>) {
        let request = match step {
            RequestStep::Lookup => rest::lookup_visitor(&self.rest_target(&self.presence_server)),
            RequestStep::Query => rest::query(&self.rest_target(&self.presence_server)),
            RequestStep::Find | RequestStep::Locate => {
                rest::find_visitor(&self.rest_target(&self.presence_server))
            }
            RequestStep::Post => {
                let Some(RequestOp::Signal(body)) = self
                    .requests
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| r.op.clone())
                else {
                    return;
                };
                let server = direct.unwrap_or_else(|| self.presence_server.clone());
                rest::signal_visitor(&self.rest_target(&server), &body)
            }
        };
        self.send_http_with_origin(request, HttpPurpose::Request(id, step));
    }

    /// Resolves request `id` (once: a second call finds nothing and does nothing).
    pub(crate) fn resolve(&mut self, id: RequestId, result: Result<RequestValue, RequestFailure>) {
        let Some(position) = self.requests.iter().position(|r| r.id == id) else {
            return;
        };
        let request = self.requests.remove(position);
        self.http
            .retain(|h| !matches!(h.purpose, HttpPurpose::Request(r, _) if r == id));
        self.link.emit(AgentEvent::RequestOutcome {
            id,
            request: request.kind,
            result,
        });
        if self.requests.is_empty() {
            self.requests.shrink_to_fit();
        }
    }

    /// Fails every waiting REST request (a token or discovery step failed without a link to
    /// retry it).
    pub(crate) fn fail_waiting(&mut self, failure: RequestFailure) {
        let waiting: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|r| r.stage == Stage::Waiting)
            .map(|r| r.id)
            .collect();
        for id in waiting {
            self.resolve(id, Err(failure.clone()));
        }
    }

    /// Every request fails as cancelled (the agent stops).
    pub(crate) fn cancel_all_requests(&mut self) {
        self.fail_all_requests(RequestFailure::Cancelled);
    }

    /// Every request fails with `failure`.
    pub(crate) fn fail_all_requests(&mut self, failure: RequestFailure) {
        let ids: Vec<RequestId> = self.requests.iter().map(|r| r.id).collect();
        for id in ids {
            self.resolve(id, Err(failure.clone()));
        }
    }

    /// Arms the deadline timer at the earliest request or internal HTTP deadline.
    pub(crate) fn arm_deadlines(&mut self) {
        let earliest = self
            .requests
            .iter()
            .map(|r| r.deadline)
            .chain(self.http.iter().map(|h| h.deadline))
            .min();
        match earliest {
            Some(deadline) => self.link.timers.set(AgentTimer::Deadlines, deadline),
            None => self.link.timers.stop(AgentTimer::Deadlines),
        }
    }

    /// Times out every request and internal HTTP request whose deadline has come.
    pub(crate) fn expire_deadlines(&mut self) {
        let now = self.link.now;
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|r| r.deadline <= now)
            .map(|r| r.id)
            .collect();
        for id in due {
            self.resolve(id, Err(RequestFailure::TimedOut));
        }
        let due: Vec<HttpRequestId> = self
            .http
            .iter()
            .filter(|h| h.deadline <= now)
            .map(|h| h.id)
            .collect();
        for id in due {
            let timeout = self.config.timers.request_timeout;
            self.answer_http(
                id,
                Err(format!("no answer within {} ms", timeout.as_millis())),
            );
        }
    }

    /// An HTTP request answered (or failed, or timed out).
    pub(crate) fn answer_http(&mut self, id: HttpRequestId, response: Response) {
        let Some(position) = self.http.iter().position(|h| h.id == id) else {
            return; // unknown or abandoned
        };
        let pending = self.http.remove(position);
        if self.http.is_empty() {
            self.http.shrink_to_fit();
        }
        match pending.purpose {
            HttpPurpose::Authorize => {
                self.on_authorize(id, parse(&response, rest::parse_authorize))
            }
            HttpPurpose::Settings => {
                self.on_settings(id, parse(&response, rest::parse_visitor_settings))
            }
            HttpPurpose::Find => self.on_find(id, parse(&response, rest::parse_find)),
            HttpPurpose::Snapshot => self.on_snapshot(id, parse(&response, rest::parse_lookup)),
            HttpPurpose::Request(request, step) => self.on_request_step(request, step, &response),
        }
    }

    fn on_request_step(&mut self, id: RequestId, step: RequestStep, response: &Response) {
        let result: Result<Option<RequestValue>, RestError> = match step {
            RequestStep::Lookup => parse(response, rest::parse_lookup).map(|answer| {
                self.learn_visitor_server(&answer);
                Some(RequestValue::Lookup {
                    visitor: match answer {
                        LookupResult::Absent => None,
                        LookupResult::Present(record) => Some(VisitorSnapshot::from(record)),
                    },
                })
            }),
            RequestStep::Query => parse(response, rest::parse_query).map(|answer| {
                Some(RequestValue::Query {
                    visitor: match answer {
                        QueryResult::Absent => None,
                        QueryResult::Present(state) => Some(state),
                    },
                })
            }),
            RequestStep::Locate => parse(response, rest::parse_find).map(|answer| {
                Some(RequestValue::Find {
                    found: answer.found,
                    direct_server: answer.direct_server,
                })
            }),
            RequestStep::Find => match parse(response, rest::parse_find) {
                Ok(FindResult { found: false, .. }) => {
                    self.visitor_server = None;
                    Err(RestError::VisitorNotPresent)
                }
                Ok(FindResult { direct_server, .. }) => {
                    let direct = self.usable_direct(direct_server.as_deref());
                    self.visitor_server = direct.clone();
                    self.send_request_step(id, RequestStep::Post, direct);
                    Ok(None)
                }
                Err(error) => Err(error),
            },
            RequestStep::Post => {
                parse(response, rest::parse_signal).map(|outcome| Some(RequestValue::Sent(outcome)))
            }
        };
        match result {
            Ok(Some(value)) => self.resolve(id, Ok(value)),
            Ok(None) => {}
            Err(RestError::Authorization { status, detail }) => {
                self.request_refused(id, status, detail)
            }
            // Only the service's own word that the visitor is not there sends the signal again
            // (through `findvisitor`): after a failed connection the service may have taken it,
            // and posting again could deliver it twice.
            Err(RestError::VisitorNotPresent) if step == RequestStep::Post && self.refind(id) => {}
            Err(error) => self.resolve(id, Err(error.into())),
        }
    }

    /// A signal posted straight to the visitor's known server found the visitor gone: forget
    /// that server and find the visitor once before posting again. False when the signal
    /// already went through `findvisitor`.
    fn refind(&mut self, id: RequestId) -> bool {
        let Some(request) = self.requests.iter_mut().find(|r| r.id == id) else {
            return false;
        };
        if !request.posted_to_known_server {
            return false;
        }
        request.posted_to_known_server = false;
        self.visitor_server = None;
        self.send_request_step(id, RequestStep::Find, None);
        true
    }

    /// A `direct`/`directserver` answer as a server the agent may post to (same scheme as the
    /// presence server; plain text only on loopback).
    pub(crate) fn usable_direct(&self, direct: Option<&str>) -> Option<ServerAddr> {
        direct
            .and_then(|d| self.presence_server.with_authority(d).ok())
            .filter(|d| check_plain_text("direct server", d).is_ok())
    }

    /// A lookup names the visitor's server when the visitor is there.
    pub(crate) fn learn_visitor_server(&mut self, answer: &LookupResult) {
        match answer {
            LookupResult::Present(record) => {
                if let Some(direct) = self.usable_direct(record.direct_server().as_deref()) {
                    self.visitor_server = Some(direct);
                }
            }
            LookupResult::Absent => self.visitor_server = None,
        }
    }

    /// A request got 401/403 (with the service's stated reason, when it gave one): with
    /// credentials, renew the token and retry it once.
    fn request_refused(&mut self, id: RequestId, status: u16, detail: Option<String>) {
        let renewable = self.config.auth().renewable();
        let Some(request) = self.requests.iter_mut().find(|r| r.id == id) else {
            return;
        };
        if renewable && !request.auth_retried {
            request.auth_retried = true;
            request.stage = Stage::Waiting;
            self.token = None;
        } else {
            self.resolve(
                id,
                Err(RequestFailure::Authorization {
                    status: Some(status),
                    detail,
                }),
            );
        }
    }

    // ----- the snapshot after `connected` -----

    /// Looks the visitor up right after `connected`; live presence frames that arrive before
    /// the answer are merged after it.
    pub(crate) fn start_snapshot(&mut self) {
        if self.token.is_none() {
            return;
        }
        let request = rest::lookup_visitor(&self.rest_target(&self.presence_server));
        let http = self.send_http_with_origin(request, HttpPurpose::Snapshot);
        self.snapshot = Some(PendingSnapshot {
            http,
            live: PresenceData::new(),
        });
    }

    fn on_snapshot(&mut self, id: HttpRequestId, result: Result<LookupResult, RestError>) {
        let Some(snapshot) = self.snapshot.take_if(|s| s.http == id) else {
            return;
        };
        if let Ok(answer) = &result {
            self.learn_visitor_server(answer);
        }
        let (mut view, present, since) = match result {
            Ok(LookupResult::Present(record)) => {
                (record.presence, Some(true), record.visitorpresent)
            }
            Ok(LookupResult::Absent) => (PresenceData::new(), Some(false), None),
            Err(error) => {
                if matches!(error, RestError::Authorization { .. })
                    && self.config.auth().renewable()
                {
                    self.token = None;
                    self.ensure_token_fetch();
                }
                self.link.emit(AgentEvent::Error {
                    error: "lookupfail".to_owned(),
                    detail: error.reason().to_owned(),
                });
                (PresenceData::new(), None, None)
            }
        };
        view.merge(&snapshot.live);
        let changed: Vec<String> = view
            .iter()
            .filter(|(key, value)| self.presence.get(key) != Some(*value))
            .map(|(key, _)| key.clone())
            .collect();
        self.presence = view;
        if !self.presence.is_empty() {
            self.link.emit(AgentEvent::Presence {
                source: PresenceSource::Snapshot,
                data: self.presence.clone(),
                changed,
            });
        }
        if let Some(present) = present {
            let since_unix_ms = match since {
                Some(secs) if secs.is_finite() && secs > 0.0 => Some((secs * 1000.0) as u64),
                _ => None,
            };
            self.visitor_snapshot(present, since_unix_ms);
        }
    }

    /// A live `presence` frame: merged into the view, or held until the snapshot arrives.
    pub(crate) fn on_presence(&mut self, data: PresenceData) {
        if let Some(snapshot) = &mut self.snapshot {
            snapshot.live.merge(&data);
            return;
        }
        let changed = self.presence.merge(&data);
        self.link.emit(AgentEvent::Presence {
            source: PresenceSource::Live,
            data,
            changed,
        });
    }
}
