//! Replays every file of the `wire_decode` fuzz corpus on stable, with the fuzz target's
//! assertions: no panic, and every frame that decodes reads back unchanged from its encoding.

use std::path::PathBuf;

use glance_presence_protocol::wire::{ClientFrame, ServerFrame, DEFAULT_MAX_FRAME_BYTES};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/wire_decode")
}

/// The fuzz target's body. Returns how many of the two decoders accepted the input.
fn check(data: &[u8]) -> usize {
    let mut accepted = 0;
    if let Ok(frame) = ClientFrame::decode_bytes(data, DEFAULT_MAX_FRAME_BYTES) {
        assert!(!frame.kind().is_empty());
        let text = frame.encode();
        let again = ClientFrame::decode_bytes(text.as_bytes(), usize::MAX);
        assert_eq!(
            again.as_ref(),
            Ok(&frame),
            "client frame re-encoded as {text}"
        );
        accepted += 1;
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
        accepted += 1;
    }
    accepted
}

#[test]
fn replay_wire_decode_corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "seed corpus has {} files", files.len());
    let mut accepted = 0;
    let mut refused = 0;
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let n = check(&data);
        accepted += n;
        if name.starts_with("bad_") {
            // Seeds named bad_* are refused by the decoder their frame is meant for.
            assert!(n < 2, "{name} decoded by both decoders");
            refused += 1;
        } else if name.starts_with("client_") {
            assert!(
                ClientFrame::decode_bytes(&data, DEFAULT_MAX_FRAME_BYTES).is_ok(),
                "{name}"
            );
        } else if name.starts_with("server_") {
            assert!(
                ServerFrame::decode_bytes(&data, DEFAULT_MAX_FRAME_BYTES).is_ok(),
                "{name}"
            );
        }
    }
    assert!(accepted > 0 && refused > 0);
}
