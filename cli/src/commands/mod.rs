//! One module per subcommand, plus the flag-to-configuration helpers they share.

pub mod auth;
pub mod common;
pub mod conformance;
pub mod demo;
pub mod oneshot;
pub mod serve;
pub mod visitor;
pub mod watch;
