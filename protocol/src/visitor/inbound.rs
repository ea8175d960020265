//! Frames from the service on the visitor's socket.
//!
//! Every decoded frame is acted on or surfaced: `connected`, `signal`, `invoke`, `blur`,
//! `redirect`, `scaledown`, `serverclose` and `error` are acted on; frames meant for agents and
//! unknown types become [`VisitorEvent::Other`]; frames that cannot be decoded become
//! [`VisitorEvent::ProtocolViolation`] (never a panic, never silently dropped).

use serde_json::{Map, Value};

use crate::wire::{invoke_func_allowed, DecodeError, ServerFrame};

use super::event::VisitorEvent;
use super::VisitorProtocol;

impl VisitorProtocol {
    /// One frame from the current socket.
    pub(crate) fn read_frame(&mut self, frame: Result<ServerFrame, DecodeError>) {
        self.on_inbound();
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                self.link.emit(VisitorEvent::ProtocolViolation {
                    detail: error.to_string(),
                });
                return;
            }
        };
        match frame {
            ServerFrame::Connected { keepalive, .. } => self.on_connected(keepalive),
            ServerFrame::Signal(data) => self.link.emit(VisitorEvent::Signal { data }),
            ServerFrame::Invoke(invoke) => {
                if invoke_func_allowed(&invoke.func) {
                    self.link.emit(VisitorEvent::Invoke {
                        func: invoke.func,
                        args: with_remote(invoke.args),
                    });
                } else {
                    self.link
                        .emit(VisitorEvent::InvokeRefused { func: invoke.func });
                }
            }
            ServerFrame::Blur => self.on_blur(),
            ServerFrame::Redirect { direct } => self.on_redirect(direct),
            ServerFrame::ScaleDown => self.on_scaledown(),
            ServerFrame::ServerClose => self.on_server_close(),
            ServerFrame::Error { error, detail } => {
                let guest_token_refused =
                    error == "connfail" && detail.as_deref() == Some("guesttoken");
                self.link.emit(VisitorEvent::Error {
                    error,
                    detail: detail.unwrap_or_default(),
                });
                if guest_token_refused {
                    self.guest_token_refused();
                }
            }
            ServerFrame::Other { kind, data } => self.link.emit(VisitorEvent::Other { kind, data }),
            // Frames meant for agents: kept as they came.
            other => {
                let kind = other.kind().to_owned();
                let data = serde_json::from_str::<Value>(&other.encode())
                    .ok()
                    .and_then(|mut value| value.get_mut("data").map(Value::take));
                self.link.emit(VisitorEvent::Other { kind, data });
            }
        }
    }
}

/// Glance's script sets `args.remote = true` before it calls the function.
fn with_remote(args: Value) -> Value {
    match args {
        Value::Object(mut map) => {
            map.insert("remote".to_owned(), Value::Bool(true));
            Value::Object(map)
        }
        Value::Null => {
            let mut map = Map::new();
            map.insert("remote".to_owned(), Value::Bool(true));
            Value::Object(map)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_is_added_to_objects_and_null() {
        assert_eq!(
            with_remote(json!({"sessionKey":"1234"})),
            json!({"sessionKey":"1234","remote":true})
        );
        assert_eq!(with_remote(Value::Null), json!({"remote":true}));
        assert_eq!(with_remote(json!([1, 2])), json!([1, 2]));
        assert_eq!(
            with_remote(json!({"remote":false,"a":1})),
            json!({"remote":true,"a":1})
        );
    }
}
