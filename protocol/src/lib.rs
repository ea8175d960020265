//! # glance-presence-protocol
//!
//! The sans-IO core of a Glance Presence client: validated ids, the WebSocket frame codec, the
//! REST and authorization request/response codecs, LoginKeys, and the `AgentProtocol` and
//! `VisitorProtocol` state machines.
//!
//! This crate performs no IO: no sockets, no threads, no clock, no global randomness. Callers
//! pass the time in, feed received bytes and transport events, and carry out the outputs the
//! core describes. The transports (`glance-presence-blocking`, `glance-presence-async`) and the
//! reference service are built on it.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod agent;
pub mod backoff;
pub mod config_error;
pub mod ids;
pub mod io;
pub mod link;
pub mod loginkey;
pub mod presence;
pub mod rest;
pub mod secret;
pub mod timer;
pub mod visitor;
pub mod wire;

pub use ids::{GroupId, IdError, IdKind, PartnerUserId, UniqueId, VisitorId};
pub use presence::{PresenceData, PresenceValue, TermsStatus, Visibility};
pub use rest::{HttpRequest, RestError, ServerAddr};
pub use secret::{ApiKey, AuthToken, LoginKey};
pub use visitor::{VisitorConfig, VisitorEvent, VisitorProtocol};
pub use wire::{ClientFrame, ConnectFrame, DecodeError, InvokeRequest, ServerFrame};
