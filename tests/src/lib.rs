//! Workspace-level tests: the reference service and the blocking agent end to end over real
//! loopback sockets (the test files live in `tests/`; this library holds nothing yet).
