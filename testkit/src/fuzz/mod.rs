//! Checks behind the fuzz targets, shared with the corpus replays that run on stable: each
//! module turns bytes into a case with its own cursor and asserts what must hold for it. The
//! checks of the service (`rest_requests`, `server_addr`, `service_frames`) come with the
//! `service` feature.

pub mod input;
pub mod loginkey;
#[cfg(feature = "service")]
pub mod rest_requests;
#[cfg(feature = "service")]
pub mod server_addr;
#[cfg(feature = "service")]
pub mod service_frames;
pub mod token_expiry;
