//! Frames from the service on the agent's socket.
//!
//! Every decoded frame is acted on or surfaced: known types become typed events, unknown types
//! become [`AgentEvent::Other`], and frames that cannot be decoded become
//! [`AgentEvent::ProtocolViolation`] (never a panic, never silently dropped).

use serde_json::{Map, Value};

use crate::wire::{DecodeError, ServerFrame};

use super::event::AgentEvent;
use super::AgentProtocol;

impl AgentProtocol {
    /// One frame from the current socket.
    pub(crate) fn read_frame(&mut self, frame: Result<ServerFrame, DecodeError>) {
        self.on_inbound();
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                self.link.emit(AgentEvent::ProtocolViolation {
                    detail: error.to_string(),
                });
                return;
            }
        };
        match frame {
            ServerFrame::Presence(data) => self.on_presence(data),
            ServerFrame::Connected { keepalive, .. } => self.on_connected(keepalive),
            ServerFrame::VisitorSock { connected } => {
                self.link.emit(AgentEvent::VisitorSocket { connected });
                self.visitor_signal(connected);
            }
            ServerFrame::VisitorConn { connected } => self.visitor_signal(connected),
            ServerFrame::Visibility(visibility) => {
                self.link.emit(AgentEvent::Visibility { visibility })
            }
            ServerFrame::Terms(status) => self.link.emit(AgentEvent::Terms { status }),
            ServerFrame::VisitorSessionStart(data) => {
                self.link.emit(AgentEvent::SessionStart { data })
            }
            ServerFrame::VisitorSessionEnd(data) => self.link.emit(AgentEvent::SessionEnd { data }),
            ServerFrame::VisitorError(data) => self.link.emit(AgentEvent::VisitorError { data }),
            ServerFrame::Redirect { direct } => self.on_redirect(direct),
            ServerFrame::ServerClose => self.on_server_close(),
            ServerFrame::ScaleDown => self.on_scaledown(),
            ServerFrame::Error { error, detail } => {
                if error == "connfail" && detail.as_deref() == Some("authorization") {
                    self.token_refused();
                } else {
                    self.link.emit(AgentEvent::Error {
                        error,
                        detail: detail.unwrap_or_default(),
                    });
                }
            }
            ServerFrame::Blur => self.link.emit(AgentEvent::Other {
                kind: "blur".to_owned(),
                data: None,
            }),
            ServerFrame::Signal(data) => self.link.emit(AgentEvent::Other {
                kind: "signal".to_owned(),
                data: Some(data),
            }),
            ServerFrame::Invoke(invoke) => {
                let mut data = Map::new();
                data.insert("func".to_owned(), Value::String(invoke.func));
                data.insert("args".to_owned(), invoke.args);
                self.link.emit(AgentEvent::Other {
                    kind: "invoke".to_owned(),
                    data: Some(Value::Object(data)),
                });
            }
            ServerFrame::Other { kind, data } => self.link.emit(AgentEvent::Other { kind, data }),
        }
    }
}
