//! Sending: a message goes out at once on an open socket (from the `connect` frame on, not
//! waiting for `connected`), or waits in a bounded queue that is flushed right after the next
//! socket's `connect` frame.

use crate::io::{Output, SocketId};
use crate::presence::Visibility;
use crate::wire::{ClientFrame, ConnectFrame};

use super::{CommandError, Link, VisitorProtocol};

/// A message waiting for a socket, already encoded.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    /// A partial presence frame (dropped when the whole presence is sent instead).
    pub(crate) presence: bool,
    pub(crate) text: String,
}

impl VisitorProtocol {
    /// The socket messages go to now, if any: open and `connect` sent.
    pub(crate) fn sending_socket(&self) -> Option<SocketId> {
        match self.link.state {
            Link::Handshaking(socket) | Link::Up(socket) => Some(socket),
            _ => None,
        }
    }

    pub(crate) fn send_now(&mut self, socket: SocketId, text: String) {
        self.link.out.push_back(Output::SendFrame { socket, text });
    }

    /// Encodes `frame` (refusing it when over the frame limit), then sends it or queues it
    /// (refusing it when the queue is full). Nothing changes when it is refused.
    pub(crate) fn send_or_queue(&mut self, frame: ClientFrame) -> Result<(), CommandError> {
        let text = frame.encode();
        self.check_len(text.len())?;
        let presence = matches!(frame, ClientFrame::Presence(_));
        if let Some(socket) = self.sending_socket() {
            self.send_now(socket, text);
            if presence {
                self.resend_presence = true;
            }
            return Ok(());
        }
        let bound = self.config.role.outgoing_queue_bound;
        if self.queue.len() >= bound {
            return Err(CommandError::QueueFull { bound });
        }
        self.queue.push_back(Queued { presence, text });
        Ok(())
    }

    /// The socket opened: `connect`, then `visibility visible` after a show, the whole
    /// presence when the service has had presence before, and the queue.
    pub(crate) fn send_connect(&mut self, socket: SocketId) {
        let Some(visitor) = self.visitor.clone() else {
            return;
        };
        let frame = ClientFrame::Connect(ConnectFrame {
            authorization: None,
            group: self.config.group,
            group_as_string: false,
            visitor,
            guest_token: self
                .unique
                .as_ref()
                .and_then(|grant| grant.guest_token.clone()),
            version: self.config.client_version.clone(),
        });
        self.send_now(socket, frame.encode());
        if self.announce_visible {
            self.announce_visible = false;
            self.send_now(
                socket,
                ClientFrame::Visibility(Visibility::Visible).encode(),
            );
        }
        if self.resend_presence && !self.presence.is_empty() {
            let text = ClientFrame::Presence(self.presence.clone()).encode();
            self.send_now(socket, text);
            self.queue.retain(|queued| !queued.presence);
        }
        while let Some(queued) = self.queue.pop_front() {
            if queued.presence {
                self.resend_presence = true;
            }
            self.send_now(socket, queued.text);
        }
        if self.queue.capacity() > 16 {
            self.queue.shrink_to_fit();
        }
    }
}
