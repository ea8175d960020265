//! Test support shared by the agent and the visitor tests: one scripted fake peer with a virtual
//! clock and transcript recorder generic over the core ([`harness`]), each core's side of it
//! with its arbitrary input runs and their invariant checks ([`agent`], [`visitor`]), the
//! transcript lines both write ([`describe`]), the pieces both cores' runs share ([`runs`]) and
//! the arbitrary wire material both draw from ([`gen`]).
//!
//! Not the cores' own unit tests, and not a general-purpose transport simulator.

pub mod agent;
pub mod describe;
pub mod gen;
pub mod harness;
pub mod runs;
pub mod visitor;
