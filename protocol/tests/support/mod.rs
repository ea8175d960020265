//! Test support shared by the agent tests (and, later, the visitor tests): a scripted fake
//! peer with a virtual clock and transcript recorder ([`harness`]), and arbitrary input
//! sequences with the invariant checks used by the property tests, the fuzz target and the
//! corpus replay ([`ops`]).
#![allow(dead_code)]

pub mod harness;
pub mod ops;
