//! Fuzz target: arbitrary bytes through both frame decoders (default size limit). Decoding must
//! never panic, and for every frame that decodes, decoding its encoding gives the same frame.
#![no_main]

use glance_presence_protocol::wire::{ClientFrame, ServerFrame, DEFAULT_MAX_FRAME_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ClientFrame::decode_bytes(data, DEFAULT_MAX_FRAME_BYTES) {
        assert!(!frame.kind().is_empty());
        let text = frame.encode();
        // The encoding may be longer than the input (escapes), so no limit here.
        let again = ClientFrame::decode_bytes(text.as_bytes(), usize::MAX);
        assert_eq!(
            again.as_ref(),
            Ok(&frame),
            "client frame re-encoded as {text}"
        );
    }
    if let Ok(frame) = ServerFrame::decode_bytes(data, DEFAULT_MAX_FRAME_BYTES) {
        assert!(!frame.kind().is_empty());
        let text = frame.encode();
        let again = ServerFrame::decode_bytes(text.as_bytes(), usize::MAX);
        assert_eq!(
            again.as_ref(),
            Ok(&frame),
            "server frame re-encoded as {text}"
        );
    }
});
