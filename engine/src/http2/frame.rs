//! HTTP/2 frames on the wire (RFC 9113 §4, §6): the 9-byte frame head, the frame types and
//! flags the client uses, and writers for the frames it sends. Hand-written rather than taken
//! from `h2`: the loop writes and reads frames in its own buffers, with no allocation per frame.

/// The client connection preface (RFC 9113 §3.4).
pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame head.
pub(super) const HEAD_LEN: usize = 9;

/// The frame size every peer must accept, and the largest this client accepts (it never
/// raises SETTINGS_MAX_FRAME_SIZE).
pub(super) const DEFAULT_MAX_FRAME: usize = 16_384;

/// The initial flow-control window of a connection and of a stream (RFC 9113 §6.9.2).
pub(super) const DEFAULT_WINDOW: i64 = 65_535;

/// The largest flow-control window (2^31 - 1).
pub(super) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types.
pub(super) mod kind {
    pub(crate) const DATA: u8 = 0x0;
    pub(crate) const HEADERS: u8 = 0x1;
    pub(crate) const PRIORITY: u8 = 0x2;
    pub(crate) const RST_STREAM: u8 = 0x3;
    pub(crate) const SETTINGS: u8 = 0x4;
    pub(crate) const PUSH_PROMISE: u8 = 0x5;
    pub(crate) const PING: u8 = 0x6;
    pub(crate) const GOAWAY: u8 = 0x7;
    pub(crate) const WINDOW_UPDATE: u8 = 0x8;
    pub(crate) const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(super) mod flag {
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const ACK: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const PADDED: u8 = 0x8;
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// SETTINGS parameters (RFC 9113 §6.5.2).
pub(super) mod setting {
    pub(crate) const HEADER_TABLE_SIZE: u16 = 0x1;
    pub(crate) const ENABLE_PUSH: u16 = 0x2;
    pub(crate) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub(crate) const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub(crate) const MAX_FRAME_SIZE: u16 = 0x5;
    pub(crate) const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Error codes (RFC 9113 §7).
pub(super) mod code {
    pub(crate) const NO_ERROR: u32 = 0x0;
    pub(crate) const PROTOCOL_ERROR: u32 = 0x1;
    pub(crate) const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub(crate) const FRAME_SIZE_ERROR: u32 = 0x6;
    pub(crate) const CANCEL: u32 = 0x8;
    pub(crate) const COMPRESSION_ERROR: u32 = 0x9;
    pub(crate) const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// A frame's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) len: usize,
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
}

impl Head {
    /// Reads the head at the start of `bytes` (at least [`HEAD_LEN`] long).
    pub(super) fn parse(bytes: &[u8]) -> Head {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        Head {
            len,
            kind: bytes[3],
            flags: bytes[4],
            stream,
        }
    }

    /// Whether `flag` is set.
    pub(super) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Appends a frame head.
pub(super) fn write_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24, "a frame's length has 24 bits");
    let len = (len as u32).to_be_bytes();
    out.extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a SETTINGS frame with `params`.
pub(super) fn write_settings(out: &mut Vec<u8>, params: &[(u16, u32)]) {
    write_head(out, params.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in params {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a SETTINGS acknowledgement.
pub(super) fn write_settings_ack(out: &mut Vec<u8>) {
    write_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends a WINDOW_UPDATE of `increment` for `stream` (0: the connection).
pub(super) fn write_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    debug_assert!(increment > 0 && i64::from(increment) <= MAX_WINDOW);
    write_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends a PING (or its acknowledgement) carrying `payload`.
pub(super) fn write_ping(out: &mut Vec<u8>, ack: bool, payload: [u8; 8]) {
    write_head(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&payload);
}

/// Appends an RST_STREAM of `stream` with `code`.
pub(super) fn write_rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    write_head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends a GOAWAY naming `last_stream` (the last stream the client processed) and `code`.
pub(super) fn write_goaway(out: &mut Vec<u8>, last_stream: u32, code: u32) {
    write_head(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last_stream.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_head_parses_back_and_the_reserved_bit_is_ignored() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            0x01_02_03,
            kind::HEADERS,
            flag::END_HEADERS,
            0x7fff_fff1,
        );
        assert_eq!(out.len(), HEAD_LEN);
        let head = Head::parse(&out);
        assert_eq!(
            head,
            Head {
                len: 0x01_02_03,
                kind: kind::HEADERS,
                flags: flag::END_HEADERS,
                stream: 0x7fff_fff1
            }
        );
        out[5] |= 0x80;
        assert_eq!(Head::parse(&out).stream, 0x7fff_fff1);
    }

    #[test]
    fn control_frames_have_their_rfc_layout() {
        let mut out = Vec::new();
        write_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, 1 << 22),
            ],
        );
        assert_eq!(
            out,
            [0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 4, 0, 0x40, 0, 0]
        );
        out.clear();
        write_window_update(&mut out, 3, 0x10000);
        assert_eq!(out, [0, 0, 4, 8, 0, 0, 0, 0, 3, 0, 1, 0, 0]);
        out.clear();
        write_rst_stream(&mut out, 5, code::CANCEL);
        assert_eq!(out, [0, 0, 4, 3, 0, 0, 0, 0, 5, 0, 0, 0, 8]);
        out.clear();
        write_ping(&mut out, true, *b"kreplay!");
        assert_eq!(&out[..HEAD_LEN], [0, 0, 8, 6, 1, 0, 0, 0, 0]);
        assert_eq!(&out[HEAD_LEN..], b"kreplay!");
        out.clear();
        write_goaway(&mut out, 7, code::PROTOCOL_ERROR);
        assert_eq!(out, [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1]);
    }
}
