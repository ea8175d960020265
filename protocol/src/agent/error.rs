//! Errors returned at once by the agent's commands: the caller misused the API or hit a local
//! limit. Nothing was sent when a command returns one of these.
//!
//! Failures that happen later (the service refused, the transport broke, the peer sent
//! garbage) are reported as events, never as these errors.

/// A command was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The agent has stopped (after `disconnect`, `serverclose` or a fatal authorization
    /// failure); make a new one.
    #[error("the agent has stopped; create a new one to start again")]
    Stopped,
    /// The link is down and the queue of commands waiting for it is full.
    #[error("{bound} commands are already waiting for the link; try again once connected")]
    QueueFull {
        /// The configured bound.
        bound: usize,
    },
    /// `invoke` of a function outside `GLANCE.` / `GLANCE_COBROWSE.Custom.`.
    #[error("invoke of {func:?} refused: only functions under GLANCE. or GLANCE_COBROWSE.Custom. may be invoked")]
    InvokeNotAllowed {
        /// The function asked for.
        func: String,
    },
    /// A socket-route signal or invoke while `connect` has not been called: there is no
    /// socket to send it on.
    #[error("the signal route is the socket, and connect has not been called")]
    NotConnected,
}
