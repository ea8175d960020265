//! Runnable examples of glance-presence (see `examples/`): a hand-written loop over the
//! sans-IO core with no runtime, a blocking script, a fleet watching 1,000 visitors, and the
//! reference service embedded in a test. Each starts what it needs in process; CI runs them.
