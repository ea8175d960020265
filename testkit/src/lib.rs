//! Test support of the workspace, in one crate that the protocol's tests, the service's tests
//! and the fuzz targets all depend on (the fuzz targets and the service's tests with the
//! `service` feature).
//!
//! [`support`] drives the sans-IO cores: a scripted fake peer with a virtual clock and a
//! transcript, and arbitrary input runs with their invariant checks. [`fuzz`] holds the fuzz
//! targets' checks, and [`corpus`] replays a target's corpus on stable with them.
//!
//! Not a library for applications: nothing here is stable API, and it panics freely (it is
//! test code).
#![forbid(unsafe_code)]

pub mod corpus;
pub mod fuzz;
pub mod support;
