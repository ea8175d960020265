//! One transcript line per transport input and per output, for both cores' harnesses (HTTP
//! requests with their secrets redacted; events as their JSON). Not the transcript itself: the
//! harness writes the lines, with their times and arrows.

use std::fmt::Write as _;

use glance_presence_protocol::io::{Output, TransportInput};
use serde::Serialize;

/// One line for an input.
pub fn describe_input(input: &TransportInput) -> String {
    match input {
        TransportInput::SocketOpened { socket } => format!("opened {socket}"),
        TransportInput::Frame { socket, text } => format!("frame {socket} {text}"),
        TransportInput::BinaryFrame { socket, data } => {
            format!("binary frame {socket} {}", String::from_utf8_lossy(data))
        }
        TransportInput::Pong { socket } => format!("pong {socket}"),
        TransportInput::Ping { socket } => format!("ping from the peer on {socket}"),
        TransportInput::SocketClosed { socket, reason } => format!("closed {socket}: {reason}"),
        TransportInput::HttpResponse { id, status, body } => {
            format!("{id} {status} {}", String::from_utf8_lossy(body))
        }
        TransportInput::HttpFailed { id, detail } => format!("{id} failed: {detail}"),
        other => format!("{other:?}"),
    }
}

/// One line for an output (secrets in HTTP requests redacted).
pub fn describe_output<E: Serialize>(output: &Output<E>) -> String {
    match output {
        Output::OpenSocket {
            socket,
            url,
            headers,
        } => {
            let mut text = format!("open {socket} {url}");
            for (name, value) in headers {
                let _ = write!(text, " [{name}: {value}]");
            }
            text
        }
        Output::SendFrame { socket, text } => format!("send {socket} {text}"),
        Output::SendPing { socket } => format!("ping {socket}"),
        Output::CloseSocket { socket } => format!("close {socket}"),
        Output::Http { id, request } => format!(
            "{id} {}",
            request
                .redacted()
                .replace("\n\n", " | ")
                .replace('\n', " | ")
        ),
        Output::Event(event) => format!(
            "event {}",
            serde_json::to_string(event).expect("events serialize")
        ),
    }
}
