//! The one [`SansIo`] implementation of this crate: every core built around a [`SocketLink`]
//! (the agent and the visitor) says what it adds through [`LinkCore`], and the blanket
//! implementation here does the rest (the clock, stopping, the drain of the single output
//! queue, the timer table). `LinkCore` is sealed: it lives in a private module.

use std::time::Instant;

use super::{Link, LinkEvent, LinkInput, LinkTimer, SocketLink};
use crate::io::{CloseReason, HttpRequestId, Output, SansIo, SocketId, TransportInput};
use crate::timer::TimerKey;
use crate::wire::{DecodeError, ServerFrame};

/// Output slots kept allocated once the queue is drained: room for the usual output of a
/// frame, so the hot path does not reallocate, without holding what a burst (connect,
/// reconnect) needed.
const OUTPUT_QUEUE_KEPT: usize = 1;

/// A protocol core built around one [`SocketLink`] (the agent and the visitor): what it adds to
/// the link. The crate's one [`SansIo`] implementation, below, drives every such core, so the
/// drain contract, the clock and stopping are written once.
#[allow(private_bounds, private_interfaces)] // sealed: `pub` only so the blanket `SansIo` impl may name it
pub trait LinkCore {
    /// The core's timer keys.
    type Timer: TimerKey + From<LinkTimer>;
    /// What the core tells the application.
    type Event: From<LinkEvent>;
    /// The link.
    fn link(&self) -> &SocketLink<Self::Timer, Self::Event>;
    /// The link, to change.
    fn link_mut(&mut self) -> &mut SocketLink<Self::Timer, Self::Event>;
    /// A socket opened (the one being opened, or a stale one).
    fn on_socket_opened(&mut self, socket: SocketId);
    /// A socket closed (the current one, or a stale one).
    fn on_socket_closed(&mut self, socket: SocketId, reason: CloseReason);
    /// A frame from the current socket, decoded.
    fn on_frame(&mut self, frame: Result<ServerFrame, DecodeError>);
    /// An HTTP answer (status and body) or failure.
    fn on_http(&mut self, id: HttpRequestId, result: Result<(u16, Vec<u8>), String>);
    /// One expired timer.
    fn on_timer(&mut self, timer: Self::Timer);
    /// Whatever the new state allows (the next connect step, waiting requests...); nothing
    /// once stopped.
    fn after_input(&mut self);
}

impl<C: LinkCore> SansIo for C {
    type Event = C::Event;

    fn handle_input(&mut self, now: Instant, input: TransportInput) {
        self.link_mut().tick(now);
        if self.link().state == Link::Stopped {
            return;
        }
        match self.link().sort_input(input) {
            LinkInput::Opened(socket) => self.on_socket_opened(socket),
            LinkInput::Frame(frame) => self.on_frame(frame),
            LinkInput::Activity => self.link_mut().on_inbound(),
            LinkInput::Closed(socket, reason) => self.on_socket_closed(socket, reason),
            LinkInput::Http(id, result) => self.on_http(id, result),
            LinkInput::Stale => {}
        }
        self.after_input();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.link_mut().tick(now);
        if self.link().state == Link::Stopped {
            return;
        }
        let now = self.link().now;
        let expired = self.link_mut().timers.take_expired(now);
        for timer in expired {
            if self.link().state == Link::Stopped {
                return;
            }
            self.on_timer(timer);
        }
        self.after_input();
    }

    fn poll_output(&mut self) -> Option<Output<C::Event>> {
        let out = &mut self.link_mut().out;
        let output = out.pop_front();
        if out.is_empty() && out.capacity() > OUTPUT_QUEUE_KEPT {
            out.shrink_to(OUTPUT_QUEUE_KEPT);
        }
        output
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.link().state == Link::Stopped {
            return None;
        }
        self.link().timers.next_timeout()
    }
}
