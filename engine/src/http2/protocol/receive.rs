//! What the server's frames mean: each whole frame is checked and turned into events, window
//! updates and acknowledgements; a malformed one is a connection error.

use super::super::frame::{self, code, flag, kind, setting, Head, HEAD_LEN};
use super::{
    ConnectionError, Event, Protocol, CONNECTION_WINDOW, MAX_HEADER_LIST, PING_PAYLOAD,
    STREAM_WINDOW,
};

impl Protocol {
    /// Reads every whole frame received, replacing [`events`](Self::events) with what they
    /// meant; acknowledgements and window updates go into `out`. A malformed frame ends
    /// the connection: GOAWAY is written and the error returned.
    pub fn receive(&mut self) -> Result<(), ConnectionError> {
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
        // A flood of CONTINUATION frames ends at the limit this client announced.
        if self.block.len() + head.len > MAX_HEADER_LIST as usize {
            return Err(ConnectionError(code::ENHANCE_YOUR_CALM));
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
        // Counted as RFC 9113 counts a header list: a small block can name a big table entry
        // again and again.
        let mut list_size = 0usize;
        self.decoder
            .decode(bytes, |name, value| {
                list_size += name.len() + value.len() + 32;
                if name == b":status" {
                    status = parse_status(value);
                } else if name == b"retry-after" {
                    retry_after = crate::http1::parse_retry_after(value.trim_ascii());
                }
            })
            .map_err(|_| ConnectionError(code::COMPRESSION_ERROR))?;
        if list_size > MAX_HEADER_LIST as usize {
            return Err(ConnectionError(code::ENHANCE_YOUR_CALM));
        }
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
