//! Shared helpers for the workspace-level tests (end-to-end, simulation, conformance).
