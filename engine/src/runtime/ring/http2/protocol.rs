//! One connection's HTTP/2 state, sans I/O: what the client writes (preface, SETTINGS,
//! requests' HEADERS and DATA, acknowledgements, window updates, resets) goes into `out`, which
//! the loop seals and sends; what the server sent is appended to the inbound buffer, and
//! [`Protocol::receive`] turns its whole frames into [`Event`]s for the pool, keyed by the
//! stream slot that owns each stream. A codec of its own rather than `h2`'s: no task, no
//! waker, no lock and no allocation per request (the `h2` path cost about half the client's
//! CPU per request in its stream bookkeeping, HPACK and buffers).

use super::frame::{self, code, flag, kind, setting, Head, HEAD_LEN};
use super::hpack::{Decoder, Encoder};

/// The stream receive window this client advertises: large enough that a LIST of a few MiB
/// is not throttled by WINDOW_UPDATE round trips.
pub(super) const STREAM_WINDOW: u32 = 4 << 20;
/// The connection receive window, shared by all streams.
pub(super) const CONNECTION_WINDOW: u32 = 16 << 20;
/// HPACK table size this client's decoder keeps (the protocol's default).
const DECODER_TABLE: usize = 4096;
/// The payload of the client's PING: its answer means the server's SETTINGS were read.
const PING_PAYLOAD: [u8; 8] = *b"kreplay2";
/// The highest stream id a client may open.
const LAST_STREAM_ID: u32 = (1 << 31) - 1;

/// What the server's frames meant, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Event {
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
pub(super) struct ConnectionError(pub(super) u32);

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
pub(super) struct Protocol {
    encoder: Encoder,
    decoder: Decoder,
    /// What the client has to send, plaintext.
    pub(super) out: Vec<u8>,
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
    pub(super) events: Vec<Event>,
}

impl Protocol {
    /// A new connection's state, its preface, SETTINGS, window and PING already in `out`.
    pub(super) fn new() -> Protocol {
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
            ],
        );
        let raise = CONNECTION_WINDOW - frame::DEFAULT_WINDOW as u32;
        frame::write_window_update(&mut p.out, 0, raise);
        frame::write_ping(&mut p.out, false, PING_PAYLOAD);
        p
    }

    /// Whether one more stream may be opened: the server's limit, no GOAWAY, ids left.
    pub(super) fn has_room(&self) -> bool {
        self.goaway_last.is_none()
            && self.streams.len() < self.max_streams
            && self.next_id <= LAST_STREAM_ID
    }

    /// Opens a stream for `slot`: its HEADERS, the fields written by `fields` (with the
    /// encoder, into the block), and its `body` as far as the windows let it go. Returns the
    /// stream's id. The caller checked [`has_room`](Self::has_room).
    pub(super) fn open(
        &mut self,
        slot: usize,
        body: &[u8],
        fields: impl FnOnce(&mut Encoder, &mut Vec<u8>),
    ) -> u32 {
        debug_assert!(
            self.has_room(),
            "a stream opened beyond the server's limits"
        );
        let id = self.next_id;
        self.next_id += 2;
        let end = if body.is_empty() { flag::END_STREAM } else { 0 };
        // The block is encoded in place after a head written with a length of 0, patched
        // once the length is known; a block longer than a frame is split afterwards.
        let at = self.out.len();
        frame::write_head(&mut self.out, 0, kind::HEADERS, end | flag::END_HEADERS, id);
        self.encoder.begin_block(&mut self.out);
        fields(&mut self.encoder, &mut self.out);
        let len = self.out.len() - at - HEAD_LEN;
        if len <= self.max_frame {
            self.out[at..at + 3].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        } else {
            self.block.clear();
            self.block.extend_from_slice(&self.out[at + HEAD_LEN..]);
            self.out.truncate(at);
            self.write_long_block(id, end);
        }
        self.streams.push(OpenStream {
            id,
            slot,
            send_window: self.initial_send_window,
            unacked: 0,
            recv_window: i64::from(STREAM_WINDOW),
            has_head: false,
            pending: Vec::new(),
            open_local: !body.is_empty(),
        });
        if !body.is_empty() {
            // Written at once as far as the windows allow; only the rest is copied to wait.
            let i = self.streams.len() - 1;
            let sent = self.write_body(i, body);
            self.streams[i].pending.extend_from_slice(&body[sent..]);
        }
        id
    }

    /// Writes the header block in `self.block` as HEADERS and CONTINUATION frames.
    fn write_long_block(&mut self, id: u32, end: u8) {
        let mut chunks = self.block.chunks(self.max_frame).peekable();
        let mut first = true;
        while let Some(chunk) = chunks.next() {
            let last = if chunks.peek().is_none() {
                flag::END_HEADERS
            } else {
                0
            };
            let (kind, flags) = if first {
                (kind::HEADERS, end | last)
            } else {
                (kind::CONTINUATION, last)
            };
            frame::write_head(&mut self.out, chunk.len(), kind, flags, id);
            self.out.extend_from_slice(chunk);
            first = false;
        }
    }

    /// Writes `bytes`, the rest of stream `i`'s request body, as DATA frames as far as the
    /// windows allow (END_STREAM with the last byte); returns how many were written.
    fn write_body(&mut self, i: usize, bytes: &[u8]) -> usize {
        let stream = &mut self.streams[i];
        let mut sent = 0;
        while sent < bytes.len() {
            let room = self.send_window.min(stream.send_window).max(0) as usize;
            let n = (bytes.len() - sent).min(room).min(self.max_frame);
            if n == 0 {
                break;
            }
            let last = sent + n == bytes.len();
            let flags = if last { flag::END_STREAM } else { 0 };
            frame::write_head(&mut self.out, n, kind::DATA, flags, stream.id);
            self.out.extend_from_slice(&bytes[sent..sent + n]);
            self.send_window -= n as i64;
            stream.send_window -= n as i64;
            sent += n;
        }
        stream.open_local = sent < bytes.len();
        sent
    }

    /// Sends what stream `i`'s waiting body the windows now allow.
    fn send_pending(&mut self, i: usize) {
        if !self.streams[i].open_local {
            return;
        }
        let mut pending = std::mem::take(&mut self.streams[i].pending);
        let sent = self.write_body(i, &pending);
        pending.drain(..sent);
        self.streams[i].pending = pending;
    }

    /// Ends the stream of `slot` before its response did (timeout, Ctrl-C): RST_STREAM
    /// CANCEL. Frames the server still sends for it are read and dropped.
    pub(super) fn cancel(&mut self, slot: usize) {
        if let Some(i) = self.streams.iter().position(|s| s.slot == slot) {
            let id = self.streams.swap_remove(i).id;
            frame::write_rst_stream(&mut self.out, id, code::CANCEL);
        }
    }

    /// Forgets every stream (the connection failed); returns their slots through `each`.
    pub(super) fn drain_streams(&mut self, mut each: impl FnMut(usize)) {
        for s in self.streams.drain(..) {
            each(s.slot);
        }
    }

    /// At least `n` bytes of room for received plaintext; the caller reports what it wrote
    /// with [`filled`](Self::filled).
    pub(super) fn spare(&mut self, n: usize) -> &mut [u8] {
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
    pub(super) fn filled(&mut self, n: usize) {
        self.filled += n;
        debug_assert!(self.filled <= self.inbound.len());
    }

    /// The received bytes of an [`Event::Data`] (valid until the next `spare`).
    pub(super) fn received_bytes(&self, start: usize, len: usize) -> &[u8] {
        &self.inbound[start..start + len]
    }

    /// Reads every whole frame received, replacing [`events`](Self::events) with what they
    /// meant; acknowledgements and window updates go into `out`. A malformed frame ends
    /// the connection: GOAWAY is written and the error returned.
    pub(super) fn receive(&mut self) -> Result<(), ConnectionError> {
        self.events.clear();
        let result = self.read_frames();
        if let Err(ConnectionError(code)) = result {
            let last = self.next_id.saturating_sub(2);
            frame::write_goaway(&mut self.out, last, code);
        }
        self.give_back_connection_window();
        result
    }

    fn read_frames(&mut self) -> Result<(), ConnectionError> {
        while self.filled - self.read >= HEAD_LEN {
            let head = Head::parse(&self.inbound[self.read..]);
            if head.len > frame::DEFAULT_MAX_FRAME {
                return Err(ConnectionError(code::FRAME_SIZE_ERROR));
            }
            if self.filled - self.read < HEAD_LEN + head.len {
                break;
            }
            let start = self.read + HEAD_LEN;
            self.read = start + head.len;
            if self.continuing.is_some() && head.kind != kind::CONTINUATION {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            match head.kind {
                kind::DATA => self.on_data(head, start)?,
                kind::HEADERS => self.on_headers(head, start)?,
                kind::CONTINUATION => self.on_continuation(head, start)?,
                kind::RST_STREAM => self.on_reset(head, start)?,
                kind::SETTINGS => self.on_settings(head, start)?,
                kind::PING => self.on_ping(head, start)?,
                kind::GOAWAY => self.on_goaway(head, start)?,
                kind::WINDOW_UPDATE => self.on_window_update(head, start)?,
                // Push was disabled in the client's SETTINGS.
                kind::PUSH_PROMISE => return Err(ConnectionError(code::PROTOCOL_ERROR)),
                kind::PRIORITY if head.len != 5 => {
                    return Err(ConnectionError(code::FRAME_SIZE_ERROR))
                }
                // PRIORITY is advisory; unknown types are ignored (RFC 9113 §4.1).
                _ => {}
            }
        }
        Ok(())
    }

    /// The payload of a frame at `start` without its padding (and the priority fields of a
    /// HEADERS frame), as `(start, len)`.
    fn unpadded(
        &self,
        head: Head,
        start: usize,
        priority: bool,
    ) -> Result<(usize, usize), ConnectionError> {
        let mut from = start;
        let mut len = head.len;
        let mut pad = 0;
        if head.has(flag::PADDED) {
            if len == 0 {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            pad = usize::from(self.inbound[from]);
            from += 1;
            len -= 1;
        }
        if priority {
            if len < 5 {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            from += 5;
            len -= 5;
        }
        if pad > len {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        Ok((from, len - pad))
    }

    /// The index of open stream `id`; an error for a stream the client never opened (an id
    /// it closed itself is `None`: its late frames are dropped).
    fn stream(&self, id: u32) -> Result<Option<usize>, ConnectionError> {
        if id == 0 || id.is_multiple_of(2) || id >= self.next_id {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        Ok(self.streams.iter().position(|s| s.id == id))
    }

    fn on_data(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        let i = self.stream(head.stream)?;
        // Flow control counts the whole payload, padding included (RFC 9113 §6.9.1).
        let counted = head.len as i64;
        self.recv_window -= counted;
        if self.recv_window < 0 {
            return Err(ConnectionError(code::FLOW_CONTROL_ERROR));
        }
        self.unacked += head.len as u32;
        let (from, len) = self.unpadded(head, start, false)?;
        let Some(i) = i else { return Ok(()) };
        let stream = &mut self.streams[i];
        stream.recv_window -= counted;
        if stream.recv_window < 0 || !stream.has_head {
            return Err(ConnectionError(if stream.has_head {
                code::FLOW_CONTROL_ERROR
            } else {
                code::PROTOCOL_ERROR
            }));
        }
        let end = head.has(flag::END_STREAM);
        let slot = stream.slot;
        if end {
            self.close(i);
        } else {
            stream.unacked += head.len as u32;
            if stream.unacked >= STREAM_WINDOW / 2 {
                let (id, n) = (stream.id, stream.unacked);
                stream.recv_window += i64::from(n);
                stream.unacked = 0;
                frame::write_window_update(&mut self.out, id, n);
            }
        }
        if len > 0 || end {
            self.events.push(Event::Data {
                slot,
                start: from,
                len,
                end,
            });
        }
        Ok(())
    }

    /// Gives the server back the connection window its DATA used, once half is used.
    fn give_back_connection_window(&mut self) {
        if self.unacked >= CONNECTION_WINDOW / 2 {
            frame::write_window_update(&mut self.out, 0, self.unacked);
            self.recv_window += i64::from(self.unacked);
            self.unacked = 0;
        }
    }

    /// The stream is over on both sides: forgotten (a body still pending is dropped, with a
    /// reset, since the server has answered without it).
    fn close(&mut self, i: usize) {
        let stream = self.streams.swap_remove(i);
        if stream.open_local {
            frame::write_rst_stream(&mut self.out, stream.id, code::NO_ERROR);
        }
    }

    fn on_headers(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        self.stream(head.stream)?;
        let (from, len) = self.unpadded(head, start, head.has(flag::PRIORITY))?;
        let end = head.has(flag::END_STREAM);
        if head.has(flag::END_HEADERS) {
            return self.on_block(head.stream, end, from, len, false);
        }
        self.block.clear();
        self.block
            .extend_from_slice(&self.inbound[from..from + len]);
        self.continuing = Some((head.stream, end));
        Ok(())
    }

    fn on_continuation(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        let Some((id, end)) = self.continuing else {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        };
        if head.stream != id {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        self.block
            .extend_from_slice(&self.inbound[start..start + head.len]);
        if head.has(flag::END_HEADERS) {
            self.continuing = None;
            return self.on_block(id, end, 0, self.block.len(), true);
        }
        Ok(())
    }

    /// A whole header block of stream `id` (`inbound[from..from + len]`, or `block` when
    /// `joined`): decoded (every block is, for HPACK's table) and turned into an event.
    fn on_block(
        &mut self,
        id: u32,
        end: bool,
        from: usize,
        len: usize,
        joined: bool,
    ) -> Result<(), ConnectionError> {
        let bytes = if joined {
            &self.block[..]
        } else {
            &self.inbound[from..from + len]
        };
        let mut status: Option<u16> = None;
        let mut retry_after = None;
        self.decoder
            .decode(bytes, |name, value| {
                if name == b":status" {
                    status = parse_status(value);
                } else if name == b"retry-after" {
                    retry_after = crate::http1::parse_retry_after(value.trim_ascii());
                }
            })
            .map_err(|_| ConnectionError(code::COMPRESSION_ERROR))?;
        let Some(i) = self.streams.iter().position(|s| s.id == id) else {
            return Ok(());
        };
        let stream = &mut self.streams[i];
        let slot = stream.slot;
        if stream.has_head {
            // Trailers: they end the response.
            if !end {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            self.close(i);
            self.events.push(Event::End { slot });
            return Ok(());
        }
        match status {
            // An informational head (100 Continue, 103 Early Hints): the final one follows.
            Some(s) if s < 200 && !end => Ok(()),
            Some(status) if status >= 200 => {
                stream.has_head = true;
                if end {
                    self.close(i);
                }
                self.events.push(Event::Head {
                    slot,
                    status,
                    retry_after,
                    end,
                });
                Ok(())
            }
            // No valid :status: the response is malformed (RFC 9113 §8.1.1).
            _ => {
                let id = stream.id;
                self.streams.swap_remove(i);
                frame::write_rst_stream(&mut self.out, id, code::PROTOCOL_ERROR);
                self.events.push(Event::Reset {
                    slot,
                    code: code::PROTOCOL_ERROR,
                });
                Ok(())
            }
        }
    }

    fn on_reset(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        if head.len != 4 {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        let i = self.stream(head.stream)?;
        let code = read_u32(&self.inbound[start..]);
        if let Some(i) = i {
            let slot = self.streams.swap_remove(i).slot;
            self.events.push(Event::Reset { slot, code });
        }
        Ok(())
    }

    fn on_settings(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        if head.stream != 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        if head.has(flag::ACK) {
            return if head.len == 0 {
                Ok(())
            } else {
                Err(ConnectionError(code::FRAME_SIZE_ERROR))
            };
        }
        if !head.len.is_multiple_of(6) {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        for k in (start..start + head.len).step_by(6) {
            let id = u16::from_be_bytes([self.inbound[k], self.inbound[k + 1]]);
            let value = read_u32(&self.inbound[k + 2..]);
            match id {
                setting::HEADER_TABLE_SIZE => self.encoder.set_peer_table_size(value as usize),
                setting::MAX_CONCURRENT_STREAMS => self.max_streams = value as usize,
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > frame::MAX_WINDOW {
                        return Err(ConnectionError(code::FLOW_CONTROL_ERROR));
                    }
                    let delta = i64::from(value) - self.initial_send_window;
                    self.initial_send_window = i64::from(value);
                    for s in &mut self.streams {
                        s.send_window += delta;
                    }
                    self.send_all_pending();
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME as u32..1 << 24).contains(&value) {
                        return Err(ConnectionError(code::PROTOCOL_ERROR));
                    }
                    self.max_frame = value as usize;
                }
                setting::ENABLE_PUSH if value > 1 => {
                    return Err(ConnectionError(code::PROTOCOL_ERROR))
                }
                _ => {}
            }
        }
        frame::write_settings_ack(&mut self.out);
        Ok(())
    }

    fn on_ping(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        if head.stream != 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        if head.len != 8 {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        let mut payload = [0; 8];
        payload.copy_from_slice(&self.inbound[start..start + 8]);
        if !head.has(flag::ACK) {
            frame::write_ping(&mut self.out, true, payload);
        } else if payload == PING_PAYLOAD {
            self.events.push(Event::Settled);
        }
        Ok(())
    }

    fn on_goaway(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        if head.stream != 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        if head.len < 8 {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        let last = read_u32(&self.inbound[start..]) & 0x7fff_ffff;
        let code = read_u32(&self.inbound[start + 4..]);
        self.goaway_last = Some(self.goaway_last.map_or(last, |l| l.min(last)));
        let debug = &self.inbound[start + 8..start + head.len];
        // Escaped as `h2` shows it (and as the glommio path's reports have it).
        let shown = format!("{:?}", bytes::Bytes::copy_from_slice(debug));
        let debug = shown[2..shown.len() - 1].to_string();
        self.events.push(Event::GoAway { code, debug });
        let mut i = 0;
        while i < self.streams.len() {
            if self.streams[i].id > last {
                let slot = self.streams.swap_remove(i).slot;
                self.events.push(Event::Refused { slot });
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, start: usize) -> Result<(), ConnectionError> {
        if head.len != 4 {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        let increment = i64::from(read_u32(&self.inbound[start..]) & 0x7fff_ffff);
        if head.stream == 0 {
            if increment == 0 {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            self.send_window += increment;
            if self.send_window > frame::MAX_WINDOW {
                return Err(ConnectionError(code::FLOW_CONTROL_ERROR));
            }
            self.send_all_pending();
            return Ok(());
        }
        let Some(i) = self.stream(head.stream)? else {
            return Ok(());
        };
        let stream = &mut self.streams[i];
        if increment == 0 || stream.send_window + increment > frame::MAX_WINDOW {
            let (id, slot) = (stream.id, stream.slot);
            let code = if increment == 0 {
                code::PROTOCOL_ERROR
            } else {
                code::FLOW_CONTROL_ERROR
            };
            self.streams.swap_remove(i);
            frame::write_rst_stream(&mut self.out, id, code);
            self.events.push(Event::Reset { slot, code });
            return Ok(());
        }
        stream.send_window += increment;
        self.send_pending(i);
        Ok(())
    }

    /// Sends every stream's waiting body the windows now allow.
    fn send_all_pending(&mut self) {
        for i in 0..self.streams.len() {
            self.send_pending(i);
        }
    }
}

fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// A `:status` value: three digits.
fn parse_status(value: &[u8]) -> Option<u16> {
    match value {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
