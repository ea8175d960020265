//! # glance-presence-service
//!
//! The reference Glance Presence service: a local stand-in for Glance's Presence service that
//! the end-to-end tests, the demo and the benchmarks run against, and that agent-console
//! developers can run instead of a Glance group.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod core;
