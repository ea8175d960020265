//! # glance-presence-conformance
//!
//! Conformance suites for the Glance Presence protocol as PROTOCOL.md states it.
//!
//! * [`requirements`]: the numbered requirements the suites check (ids such as `SRV-SIGNAL-2`;
//!   the full list, with sources and levels, lives beside PROTOCOL.md and a test keeps the
//!   three in step).
//! * [`server`]: the server suite. It runs visitors and agents against any presence service
//!   (the reference service, or Glance's own with a real group) and checks every server
//!   requirement it can observe. It is safe against a production service: its visitor ids are
//!   its own (`gpconf-<run>-<n>`), it opens a handful of sockets and a few dozen requests, and
//!   [`server::plan`] says what it would do without doing it.
//! * [`client`]: the client suite. It starts the reference service on loopback with its test
//!   controls on, names the server and credentials an agent under test should use, plays
//!   numbered scenarios (dropped socket, redirect, scaledown, refused and slow REST calls, a
//!   signal to an absent visitor, invalid frames, a short-lived token, a silent link,
//!   serverclose) and checks the `AGT-*` requirements on what the service saw.
//! * [`report`]: the outcome table and its JSON form.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod client;
pub mod probe;
pub mod report;
pub mod requirements;
pub mod server;

pub use report::{Outcome, Report, Status};
pub use requirements::{Level, Requirement, REQUIREMENTS};
