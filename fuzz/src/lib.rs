//! Checks behind the fuzz targets, shared with the corpus replays that run on stable: each
//! module turns bytes into a case with its own cursor and asserts what must hold for it.
#![forbid(unsafe_code)]

pub mod input;
pub mod loginkey;
pub mod rest_requests;
pub mod server_addr;
pub mod service_frames;
pub mod token_expiry;
