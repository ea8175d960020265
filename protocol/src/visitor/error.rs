//! Errors returned at once by the visitor's commands: the caller misused the API or hit a
//! local limit. Nothing was sent or queued, and no state changed, when a command returns one.
//!
//! Failures that happen later (the transport broke, the service refused, the peer sent
//! garbage) are reported as events, never as these errors.

/// A command was refused before anything was sent or queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The visitor has stopped (after `disconnect` or `serverclose`); make a new one.
    #[error("the visitor has stopped; create a new one to start again")]
    Stopped,
    /// No socket is open and the queue of messages waiting for one is full.
    #[error("{bound} messages are already waiting for a socket; try again once connected")]
    QueueFull {
        /// The configured bound.
        bound: usize,
    },
    /// The message would exceed the frame limit. For `presence`, the limit applies to the
    /// merged presence, which is re-sent whole after every reconnect.
    #[error("the message would be {len} bytes on the wire, over the {limit}-byte frame limit")]
    TooLarge {
        /// Its encoded length.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// `fire` with a type that cannot be used for a custom message.
    #[error("custom message type {kind:?} refused: {reason}")]
    InvalidKind {
        /// The type given.
        kind: String,
        /// Why.
        reason: &'static str,
    },
}
