//! What the client writes: a request's HEADERS (and CONTINUATION) and its body as far as the
//! flow-control windows allow, the rest when they open; a reset of a stream it gives up.

use super::super::frame::{self, code, flag, kind, HEAD_LEN};
use super::super::hpack::Encoder;
use super::{OpenStream, Protocol, STREAM_WINDOW};

impl Protocol {
    /// Opens a stream for `slot`: its HEADERS, the fields written by `fields` (with the
    /// encoder, into the block), and its `body` as far as the windows let it go. Returns the
    /// stream's id. The caller checked [`has_room`](Self::has_room).
    pub fn open(
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
    pub(super) fn send_pending(&mut self, i: usize) {
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
    pub fn cancel(&mut self, slot: usize) {
        if let Some(i) = self.streams.iter().position(|s| s.slot == slot) {
            let id = self.streams.swap_remove(i).id;
            frame::write_rst_stream(&mut self.out, id, code::CANCEL);
        }
    }

    /// Sends every stream's waiting body the windows now allow.
    pub(super) fn send_all_pending(&mut self) {
        for i in 0..self.streams.len() {
            self.send_pending(i);
        }
    }
}
