//! The WebSocket frames of the Glance Presence protocol as typed values, and their codec.
//!
//! Every frame is one JSON object in one WebSocket text frame. [`ClientFrame`] is what an agent
//! or a visitor sends to the service; [`ServerFrame`] is what the service sends back (its own
//! frames, and visitor frames forwarded to agents).
//!
//! Decoding follows Glance's shipped clients: the frame's name is `mtype || type` (`mtype` wins
//! when it is a non-empty string), the payload is `data`, unknown fields are ignored and `null`
//! counts as absent. A type this module does not know decodes to an `Other` value that keeps the
//! type and the payload, so newer peers never break older ones. Every failure is a typed
//! [`DecodeError`]: a decoder never panics, whatever the input. The size limit is checked before
//! anything is parsed, and the input is parsed exactly once.
//!
//! Encoding writes exactly the keys Glance's clients write, in their order, and nothing else.
//!
//! Module map: `frames` (the frame types), `error` ([`DecodeError`]), `envelope` (the one
//! serde pass over the text), `decode` (envelope to typed frame), `encode` (typed frame to
//! text).
//!
//! This module is a codec only: no IO, no state, no policy (which frames a role may send, or
//! which `invoke` functions are allowed, is the caller's business; [`invoke_func_allowed`] is
//! offered as a helper).

mod decode;
mod encode;
mod envelope;
mod error;
mod frames;

pub use error::DecodeError;
pub use frames::{invoke_func_allowed, ClientFrame, ConnectFrame, InvokeRequest, ServerFrame};

/// Default largest frame the decoders accept: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
