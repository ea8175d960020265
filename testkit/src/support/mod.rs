//! Test support shared by the agent and the visitor tests: scripted fake peers with a virtual
//! clock and transcript recorder ([`harness`] for the agent, [`visitor`] for the visitor), the
//! transcript lines both write ([`describe`]), arbitrary input sequences with the invariant
//! checks used by the property tests, the fuzz targets and the corpus replays ([`ops`] for the
//! agent, `visitor::ops` for the visitor), and the arbitrary wire material both draw from
//! ([`gen`]).

pub mod describe;
pub mod gen;
pub mod harness;
pub mod ops;
pub mod visitor;
