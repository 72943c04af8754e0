//! One connection's HTTP/2 state, sans I/O: what the client writes (preface, SETTINGS,
//! requests' HEADERS and DATA, acknowledgements, window updates, resets) goes into `out`, which
//! the loop seals and sends; what the server sent is appended to the inbound buffer, and
//! [`Protocol::receive`] turns its whole frames into [`Event`]s for the pool, keyed by the
//! stream slot that owns each stream. No task, no waker, no lock and no allocation per
//! request (why not `h2`: see the module above).

mod receive;
mod send;

use super::frame::{self, setting};
use super::hpack::{Decoder, Encoder};

/// The stream receive window this client advertises: large enough that a LIST of a few MiB
/// is not throttled by WINDOW_UPDATE round trips.
pub const STREAM_WINDOW: u32 = 4 << 20;
/// The connection receive window, shared by all streams.
pub const CONNECTION_WINDOW: u32 = 16 << 20;
/// The largest response header list this client takes (SETTINGS_MAX_HEADER_LIST_SIZE, and
/// the bound on a header block's encoded bytes): Go's client default, 10 MiB.
pub const MAX_HEADER_LIST: u32 = 10 << 20;
/// HPACK table size this client's decoder keeps (the protocol's default).
const DECODER_TABLE: usize = 4096;
/// The payload of the client's PING: its answer means the server's SETTINGS were read.
const PING_PAYLOAD: [u8; 8] = *b"kreplay2";
/// The highest stream id a client may open.
const LAST_STREAM_ID: u32 = (1 << 31) - 1;

/// What the server's frames meant, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The answer to the client's PING: the server's SETTINGS were applied; requests may go.
    Settled,
    /// The response head (a final status) of the stream of `slot`; `end`: it has no body.
    Head {
        slot: usize,
        status: u16,
        retry_after: Option<u32>,
        end: bool,
    },
    /// Body bytes of the stream of `slot`, at `start..start + len` in the inbound buffer
    /// ([`Protocol::received_bytes`]); `end`: the response ends with them.
    Data {
        slot: usize,
        start: usize,
        len: usize,
        end: bool,
    },
    /// Trailers ended the response of `slot`.
    End { slot: usize },
    /// The server reset the stream of `slot` with `code`.
    Reset { slot: usize, code: u32 },
    /// The server refused the stream of `slot`: its id is above the GOAWAY's last one.
    Refused { slot: usize },
    /// A GOAWAY: no new streams on this connection.
    GoAway { code: u32, debug: String },
}

/// Why the connection cannot go on: the client found the server's frames malformed (the
/// RFC 9113 error code it closes the connection with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionError(pub u32);

/// A stream the client opened and has not seen the end of.
#[derive(Debug)]
struct OpenStream {
    id: u32,
    slot: usize,
    /// The server's window for this stream's request body.
    send_window: i64,
    /// Bytes of the response body not yet given back with a WINDOW_UPDATE.
    unacked: u32,
    /// What the server may still send before a WINDOW_UPDATE.
    recv_window: i64,
    /// A final response head arrived.
    has_head: bool,
    /// Body bytes waiting for window (rare: bodies are small); empty once all are out.
    pending: Vec<u8>,
    /// The request's END_STREAM is still to be sent (with the last pending byte).
    open_local: bool,
}

/// The connection's HTTP/2 state.
pub struct Protocol {
    encoder: Encoder,
    decoder: Decoder,
    /// What the client has to send, plaintext.
    pub out: Vec<u8>,
    /// Received plaintext; `inbound[read..filled]` is not parsed yet. It stays initialised
    /// to its length, so receiving into its spare room zeroes nothing.
    inbound: Vec<u8>,
    read: usize,
    filled: usize,
    /// A header block spread over CONTINUATION frames: its stream, its END_STREAM and
    /// the block so far.
    continuing: Option<(u32, bool)>,
    block: Vec<u8>,
    streams: Vec<OpenStream>,
    next_id: u32,
    /// The server's limits.
    max_streams: usize,
    initial_send_window: i64,
    max_frame: usize,
    send_window: i64,
    recv_window: i64,
    unacked: u32,
    /// The GOAWAY's last stream id, once one came.
    goaway_last: Option<u32>,
    pub events: Vec<Event>,
}

impl Default for Protocol {
    fn default() -> Protocol {
        Protocol::new()
    }
}

impl Protocol {
    /// A new connection's state, its preface, SETTINGS, window and PING already in `out`.
    pub fn new() -> Protocol {
        let mut p = Protocol {
            encoder: Encoder::new(),
            decoder: Decoder::new(DECODER_TABLE),
            out: Vec::with_capacity(4096),
            inbound: Vec::new(),
            read: 0,
            filled: 0,
            continuing: None,
            block: Vec::new(),
            streams: Vec::new(),
            next_id: 1,
            max_streams: usize::MAX,
            initial_send_window: frame::DEFAULT_WINDOW,
            max_frame: frame::DEFAULT_MAX_FRAME,
            send_window: frame::DEFAULT_WINDOW,
            recv_window: i64::from(CONNECTION_WINDOW),
            unacked: 0,
            goaway_last: None,
            events: Vec::with_capacity(64),
        };
        p.out.extend_from_slice(frame::PREFACE);
        frame::write_settings(
            &mut p.out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (setting::MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
            ],
        );
        let raise = CONNECTION_WINDOW - frame::DEFAULT_WINDOW as u32;
        frame::write_window_update(&mut p.out, 0, raise);
        frame::write_ping(&mut p.out, false, PING_PAYLOAD);
        p
    }

    /// Whether one more stream may be opened: the server's limit, no GOAWAY, ids left.
    pub fn has_room(&self) -> bool {
        self.goaway_last.is_none()
            && self.streams.len() < self.max_streams
            && self.next_id <= LAST_STREAM_ID
    }

    /// Forgets every stream (the connection failed); returns their slots through `each`.
    pub fn drain_streams(&mut self, mut each: impl FnMut(usize)) {
        for s in self.streams.drain(..) {
            each(s.slot);
        }
    }

    /// At least `n` bytes of room for received plaintext; the caller reports what it wrote
    /// with [`filled`](Self::filled).
    pub fn spare(&mut self, n: usize) -> &mut [u8] {
        if self.read == self.filled {
            self.read = 0;
            self.filled = 0;
        }
        if self.inbound.len() - self.filled < n && self.read > 0 {
            self.inbound.copy_within(self.read..self.filled, 0);
            self.filled -= self.read;
            self.read = 0;
        }
        if self.inbound.len() - self.filled < n {
            self.inbound.resize(self.filled + n, 0);
        }
        &mut self.inbound[self.filled..]
    }

    /// `n` bytes were written at the start of the last [`spare`](Self::spare).
    pub fn filled(&mut self, n: usize) {
        self.filled += n;
        debug_assert!(self.filled <= self.inbound.len());
    }

    /// The received bytes of an [`Event::Data`] (valid until the next `spare`).
    pub fn received_bytes(&self, start: usize, len: usize) -> &[u8] {
        &self.inbound[start..start + len]
    }
}

#[cfg(test)]
mod tests;
