//! Watching the bytes a client WebSocket reads for the peer's Close frame ([`CloseSniffer`]),
//! so that a close is reported as what the peer sent, not as the answer the WebSocket library
//! gave it. Shared by the blocking and async transports; it parses frame headers only.

use glance_presence_protocol::io::CloseReason;

/// Watches the bytes a client WebSocket reads, frame header by frame header, for the first
/// Close frame the peer sends, and keeps its payload (shared by the blocking and async
/// transports). It is fed from the first byte of the server's handshake answer: the HTTP
/// header (up to the blank line) is skipped, and frames start right after it, including any
/// that came in the same read as the answer.
///
/// The WebSocket library answers a close with a code that must not be sent (1006, ...) as a
/// protocol error and hands back its own answer (1002 "Protocol violation") instead of what
/// arrived, and it fails on a malformed close payload without showing it; the transports read
/// the peer's frame from here instead. Only headers are parsed: payloads are skipped without
/// being copied, except the close frame's (at most [`CAPTURED_CLOSE_BYTES`] bytes).
#[derive(Debug, Clone, Default)]
pub struct CloseSniffer {
    /// How much of the blank line that ends the handshake answer (`\r\n\r\n`) was seen; 4
    /// once frames have started.
    handshake_end: u8,
    /// Header bytes of the frame being read (2 to 14).
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    remaining: u64,
    /// The current frame is a close frame: its payload so far, and its masking key.
    capturing: Option<(Vec<u8>, Option<[u8; 4]>)>,
    /// The first close frame's payload, once complete.
    close: Option<Vec<u8>>,
}

/// How much of a close frame's payload [`CloseSniffer`] keeps: a valid one has at most 125
/// bytes; a longer one is kept in part, enough to report it as invalid.
pub const CAPTURED_CLOSE_BYTES: usize = 256;

impl CloseSniffer {
    /// A sniffer at the start of the server's handshake answer.
    pub fn new() -> Self {
        CloseSniffer::default()
    }

    /// Feeds bytes read from the peer, in order. Stops looking once a close frame is complete.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        const BLANK_LINE: &[u8; 4] = b"\r\n\r\n";
        while self.handshake_end < 4 {
            let Some((&byte, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
            self.handshake_end = if byte == BLANK_LINE[usize::from(self.handshake_end)] {
                self.handshake_end + 1
            } else if byte == b'\r' {
                1
            } else {
                0
            };
        }
        while !bytes.is_empty() && self.close.is_none() {
            if self.remaining > 0 {
                let take = usize::try_from(self.remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let (chunk, rest) = bytes.split_at(take);
                if let Some((payload, _)) = &mut self.capturing {
                    let room = CAPTURED_CLOSE_BYTES.saturating_sub(payload.len());
                    payload.extend_from_slice(&chunk[..room.min(chunk.len())]);
                }
                self.remaining -= take as u64;
                bytes = rest;
                if self.remaining == 0 {
                    self.end_frame();
                }
                continue;
            }
            let (&byte, rest) = match bytes.split_first() {
                Some(split) => split,
                None => return,
            };
            bytes = rest;
            self.header.push(byte);
            self.header_step();
        }
    }

    /// Called after each header byte: once the header is complete, starts its payload.
    fn header_step(&mut self) {
        let [first, second, ..] = self.header[..] else {
            return;
        };
        let extended = match second & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let masked = second & 0x80 != 0;
        let needed = 2 + extended + if masked { 4 } else { 0 };
        if self.header.len() < needed {
            return;
        }
        let length = match extended {
            2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            8 => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(bytes)
            }
            _ => u64::from(second & 0x7F),
        };
        let key = masked.then(|| {
            let at = 2 + extended;
            [
                self.header[at],
                self.header[at + 1],
                self.header[at + 2],
                self.header[at + 3],
            ]
        });
        self.header.clear();
        // Opcode 0x8: close.
        self.capturing = (first & 0x0F == 0x8).then(|| (Vec::new(), key));
        self.remaining = length;
        if length == 0 {
            self.end_frame();
        }
    }

    fn end_frame(&mut self) {
        if let Some((mut payload, key)) = self.capturing.take() {
            if let Some(key) = key {
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= key[i % 4];
                }
            }
            self.close = Some(payload);
        }
    }

    /// The peer's close frame as the core reads it
    /// ([`CloseReason::from_close_payload`]), once one has been read in full.
    pub fn peer_close(&self) -> Option<CloseReason> {
        self.close.as_deref().map(CloseReason::from_close_payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    fn frame(opcode: u8, payload: &[u8], key: Option<[u8; 4]>) -> Vec<u8> {
        let mut bytes = vec![0x80 | opcode];
        let mask = if key.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => bytes.push(mask | n as u8),
            n if n <= usize::from(u16::MAX) => {
                bytes.push(mask | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                bytes.push(mask | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match key {
            Some(key) => {
                bytes.extend_from_slice(&key);
                bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => bytes.extend_from_slice(payload),
        }
        bytes
    }

    fn close_payload(code: u16, reason: &str) -> Vec<u8> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        payload
    }

    fn stream(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = ANSWER.to_vec();
        for f in frames {
            bytes.extend_from_slice(f);
        }
        bytes
    }

    /// Feeds `bytes` in chunks of every size from 1 to 7 and checks they all agree.
    fn sniff(bytes: &[u8]) -> Option<CloseReason> {
        let mut whole = CloseSniffer::new();
        whole.feed(bytes);
        for size in 1..=7 {
            let mut parts = CloseSniffer::new();
            for chunk in bytes.chunks(size) {
                parts.feed(chunk);
            }
            assert_eq!(parts.peer_close(), whole.peer_close(), "chunks of {size}");
        }
        whole.peer_close()
    }

    #[test]
    fn finds_the_close_frame_after_other_frames_of_every_length() {
        let text = frame(0x1, &[b'x'; 200_042], None);
        let medium = frame(0x2, &[7; 300], None);
        let ping = frame(0x9, b"p", None);
        let close = frame(0x8, &close_payload(1006, ""), None);
        assert_eq!(
            sniff(&stream(&[text, medium, ping, close])),
            Some(CloseReason::ClosedByPeerInvalid {
                code: Some(1006),
                reason: String::new(),
                detail: "close code 1006 must not be sent on the wire".to_owned()
            })
        );
        let close = frame(0x8, &close_payload(4001, "bye"), Some([1, 2, 3, 4]));
        assert_eq!(
            sniff(&stream(&[close])),
            Some(CloseReason::ClosedByPeer {
                code: Some(4001),
                reason: "bye".to_owned()
            })
        );
    }

    #[test]
    fn only_a_whole_close_frame_counts_and_the_first_one_wins() {
        assert_eq!(sniff(&stream(&[frame(0x1, b"{}", None)])), None);
        let close = frame(0x8, &close_payload(1000, "done"), None);
        assert_eq!(sniff(&stream(&[close[..close.len() - 1].to_vec()])), None);
        let second = frame(0x8, &close_payload(1001, ""), None);
        assert!(matches!(
            sniff(&stream(&[close, second])),
            Some(CloseReason::ClosedByPeer {
                code: Some(1000),
                ..
            })
        ));
        // A close frame without a payload, and one of a single byte.
        assert_eq!(
            sniff(&stream(&[frame(0x8, b"", None)])),
            Some(CloseReason::ClosedByPeer {
                code: None,
                reason: String::new()
            })
        );
        assert!(matches!(
            sniff(&stream(&[frame(0x8, &[3], None)])),
            Some(CloseReason::ClosedByPeerInvalid { code: None, .. })
        ));
        // Nothing before the end of the handshake answer is a frame.
        let mut sniffer = CloseSniffer::new();
        sniffer.feed(&frame(0x8, &close_payload(1000, ""), None));
        assert_eq!(sniffer.peer_close(), None);
    }
}
