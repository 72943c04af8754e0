//! One HTTP/2 connection of the loop: its socket and TLS session, moved through the ring, and
//! its HTTP/2 state ([`Protocol`]). A connection is opened for the request that found every
//! stream taken (its opener), connects and shakes hands (TLS, then HTTP/2 with a PING, so the
//! server's SETTINGS and its stream limit are known) and then carries that request first.

use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use super::Http2Pool;
use crate::http2::{ConnectionError, Event, Protocol};
use crate::runtime::exchange::request_of;
use crate::runtime::failure::Failure;
use crate::runtime::ring::tls::TlsSession;
use crate::runtime::ring::uring::{self, Op};
use crate::runtime::CoreCtx;
use crate::transport::http2::DriverState;
use crate::transport::Http2Error;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No connection.
    Free,
    /// Its TCP connect is in flight.
    Connecting,
    /// Its TLS handshake is under way.
    Handshaking,
    /// Its HTTP/2 preface is out; waiting for the answer to its PING (after the server's
    /// SETTINGS).
    Settling,
    /// Takes requests.
    Ready,
    /// Ended; freed once nothing of it is in flight.
    Closed,
}

/// One connection.
pub(super) struct Session {
    pub(super) phase: Phase,
    pub(super) fd: Option<OwnedFd>,
    /// Bumped when the session is freed, so a stale completion is recognised.
    pub(super) generation: u32,
    pub(super) tls: Option<Box<TlsSession>>,
    /// Its HTTP/2 state, from the end of its TLS handshake.
    pub(super) proto: Option<Box<Protocol>>,
    /// How it ended, once it did (the errors of its requests).
    pub(super) driver: Rc<DriverState>,
    /// Streams in flight on it.
    pub(super) streams: usize,
    /// The stream slot of the request it was opened for, until that request starts on it.
    pub(super) opener: Option<usize>,
    pub(super) connect_op: bool,
    pub(super) recv_op: bool,
    pub(super) send_op: bool,
    /// Ciphertext being sent (a ring send in flight reads it); `written` counts into it.
    pub(super) sending: Vec<u8>,
    pub(super) written: usize,
    /// Stream slots started since its last send: their first bytes leave with the next one.
    pub(super) unsent: Vec<usize>,
    /// Its sealed bytes wait for the next instant (`armed.rs`).
    pub(super) held: bool,
    /// Has bytes to flush (it is in `Http2Pool::dirty`).
    pub(super) dirty: bool,
    /// Its socket or TLS session ended with this; the pool fails it when it next pumps.
    pub(super) ended: Option<Http2Error>,
}

impl Session {
    pub(super) fn new() -> Session {
        Session {
            phase: Phase::Free,
            fd: None,
            generation: 0,
            tls: None,
            proto: None,
            driver: Rc::new(DriverState::default()),
            streams: 0,
            opener: None,
            connect_op: false,
            recv_op: false,
            send_op: false,
            sending: Vec::new(),
            written: 0,
            unsent: Vec::new(),
            held: false,
            dirty: false,
            ended: None,
        }
    }

    /// Takes over an open TLS connection whose server chose `h2`.
    pub(super) fn adopt(&mut self, fd: OwnedFd, tls: TlsSession) {
        self.fd = Some(fd);
        self.tls = Some(Box::new(tls));
        self.phase = Phase::Handshaking;
    }

    /// Whether a ring operation of it is in flight.
    pub(super) fn has_op(&self) -> bool {
        self.connect_op || self.recv_op || self.send_op
    }

    /// Whether it is being opened (requests that find no room wait for it).
    pub(super) fn is_opening(&self) -> bool {
        matches!(
            self.phase,
            Phase::Connecting | Phase::Handshaking | Phase::Settling
        )
    }

    /// Whether it takes one more request, up to the server's stream limit (as Go's client).
    pub(super) fn has_room(&self) -> bool {
        self.phase == Phase::Ready
            && !self.driver.is_closed()
            && self.proto.as_ref().is_some_and(|p| p.has_room())
    }

    pub(super) fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    pub(super) fn tag(&self, index: usize, op: Op) -> u64 {
        uring::tag(index as u32, self.generation, op)
    }
}

impl Http2Pool {
    /// Opens a connection for the request on stream slot `k`.
    pub(super) fn open(&mut self, ctx: &CoreCtx, k: usize) {
        let s = self.new_session();
        self.streams[k].session = s;
        let opened = uring::open_socket(&self.target).and_then(|fd| {
            let tag = self.sessions[s].tag(s, Op::Connect);
            self.ring.connect(fd.as_raw_fd(), &self.addr, tag)?;
            Ok(fd)
        });
        match opened {
            Ok(fd) => {
                let session = &mut self.sessions[s];
                session.fd = Some(fd);
                session.connect_op = true;
                session.phase = Phase::Connecting;
                session.opener = Some(k);
            }
            Err(e) => self.finish(ctx, k, Err(Failure::Connect(e))),
        }
    }

    /// Session `s`'s TLS handshake is done: starts HTTP/2 over it (preface, SETTINGS, PING).
    pub(super) fn start_h2(&mut self, s: usize) -> Result<(), Failure> {
        let session = &mut self.sessions[s];
        if !session.tls.as_ref().is_some_and(|t| t.negotiated_h2()) {
            return Err(Failure::Connect(std::io::Error::other(
                "the server did not choose HTTP/2 (ALPN h2) on a new connection, as it did \
                 on the first",
            )));
        }
        session.driver = Rc::new(DriverState::default());
        session.proto = Some(Box::new(Protocol::new()));
        session.phase = Phase::Settling;
        self.mark_dirty(s);
        // Records the server sent with its last handshake flight are already decrypted: they
        // are read with the next ones (the answer to the PING is still to come).
        self.take_plaintext(s);
        if !self.sessions[s].recv_op {
            self.recv(s);
        }
        Ok(())
    }

    /// The request that opened session `s` (now ready) starts on it.
    fn start_opener(&mut self, ctx: &CoreCtx, s: usize, k: usize) {
        let Some(job) = self.streams[k].job else {
            return;
        };
        let pending = job.exchange.pending;
        match request_of(ctx, pending.run, pending.index, false) {
            Some((_, parts)) => self.begin(ctx, s, k, &parts),
            None => {
                // Not decodable now (it was a moment ago): recorded as corrupt by `request_of`.
                self.streams[k].release();
                self.free_streams.push(k);
                self.busy -= 1;
                ctx.queue.borrow_mut().release(pending.key);
            }
        }
    }

    /// Reads session `s`'s received frames and carries out what they meant.
    pub(super) fn read_frames(&mut self, ctx: &CoreCtx, s: usize) {
        let Some(proto) = self.sessions[s].proto.as_mut() else {
            return;
        };
        let result = proto.receive();
        let mut events = std::mem::take(&mut proto.events);
        if !proto.out.is_empty() {
            self.mark_dirty(s);
        }
        for event in events.drain(..) {
            self.on_event(ctx, s, event);
        }
        if let Some(proto) = self.sessions[s].proto.as_mut() {
            proto.events = events;
        }
        if let Err(ConnectionError(code)) = result {
            // The GOAWAY the protocol wrote goes first, as far as the socket takes it.
            self.flush(ctx, s);
            self.fail_session(ctx, s, Http2Error::Connection { code });
        }
    }

    fn on_event(&mut self, ctx: &CoreCtx, s: usize, event: Event) {
        match event {
            Event::Settled => {
                let session = &mut self.sessions[s];
                if session.phase != Phase::Settling {
                    return;
                }
                session.phase = Phase::Ready;
                let open = self.open_sessions();
                self.peak = self.peak.max(open);
                if let Some(k) = self.sessions[s].opener.take() {
                    self.start_opener(ctx, s, k);
                }
            }
            Event::Head {
                slot,
                status,
                retry_after,
                end,
            } => {
                self.streams[slot].head(status, retry_after);
                if end {
                    self.finish(ctx, slot, Ok(status));
                }
            }
            Event::Data {
                slot,
                start,
                len,
                end,
            } => {
                if let Some(proto) = self.sessions[s].proto.as_ref() {
                    self.streams[slot].body(proto.received_bytes(start, len));
                }
                if end {
                    let status = self.streams[slot].status();
                    self.finish(ctx, slot, Ok(status));
                }
            }
            Event::End { slot } => {
                let status = self.streams[slot].status();
                self.finish(ctx, slot, Ok(status));
            }
            Event::Reset { slot, code } => {
                let error = Http2Error::StreamReset { code };
                self.finish(ctx, slot, Err(Failure::Transport(error.into())));
            }
            Event::GoAway { code, debug } => self.sessions[s].driver.record_goaway(code, &debug),
            Event::Refused { slot } => {
                let error = self.sessions[s].driver.closed_error();
                self.finish(ctx, slot, Err(Failure::Transport(error.into())));
            }
        }
    }

    /// Session `s` cannot go on (`error`): its opener and its streams fail, and it closes.
    pub(super) fn fail_session(&mut self, ctx: &CoreCtx, s: usize, error: Http2Error) {
        self.sessions[s].driver.fail(error);
        self.end_session(ctx, s);
    }

    /// Session `s` has ended (its driver says how): its opener and its streams fail with
    /// that, and it closes.
    pub(super) fn end_session(&mut self, ctx: &CoreCtx, s: usize) {
        let mut slots = std::mem::take(&mut self.ending);
        slots.clear();
        if let Some(k) = self.sessions[s].opener.take() {
            slots.push(k);
        }
        if let Some(proto) = self.sessions[s].proto.as_mut() {
            proto.drain_streams(|k| slots.push(k));
        }
        for &k in &slots {
            let error = self.sessions[s].driver.closed_error();
            self.finish(ctx, k, Err(Failure::Transport(error.into())));
        }
        self.ending = slots;
        self.close(s);
    }

    /// Session `s` failed before HTTP/2 began (connect, TLS): its opener fails with `failure`.
    pub(super) fn fail_opening(&mut self, ctx: &CoreCtx, s: usize, failure: Failure) {
        if let Some(k) = self.sessions[s].opener.take() {
            self.finish(ctx, k, Err(failure));
        }
        self.close(s);
    }

    /// Ends session `s`'s connection; it is freed once nothing of it is in flight.
    pub(super) fn close(&mut self, s: usize) {
        let session = &mut self.sessions[s];
        if session.phase == Phase::Free {
            return;
        }
        session.phase = Phase::Closed;
        if session.connect_op {
            let target = session.tag(s, Op::Connect);
            let tag = session.tag(s, Op::Cancel);
            let _ = self.ring.cancel(target, tag);
        } else if let Some(fd) = &session.fd {
            // Ends a receive in flight; the descriptor closes when the session is freed.
            // SAFETY: a valid descriptor; shutdown does not close it.
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
        self.free_if_idle(s);
    }

    /// Frees closed session `s` once no operation and no stream of it remains.
    pub(super) fn free_if_idle(&mut self, s: usize) {
        let session = &mut self.sessions[s];
        if session.phase != Phase::Closed || session.has_op() || session.streams > 0 {
            return;
        }
        session.fd = None;
        session.tls = None;
        session.proto = None;
        session.ended = None;
        session.unsent.clear();
        session.held = false;
        session.sending.clear();
        session.written = 0;
        session.generation = session.generation.wrapping_add(1);
        session.phase = Phase::Free;
    }

    /// The opener of session `s` was cancelled: the connection is given up.
    pub(super) fn interrupt(&mut self, s: usize) {
        self.sessions[s].opener = None;
        self.close(s);
    }

    /// Moves session `s`'s TLS handshake on: sends what rustls has to send, receives what
    /// it waits for, and once it is done starts HTTP/2.
    pub(super) fn handshake(&mut self, ctx: &CoreCtx, s: usize) {
        let session = &mut self.sessions[s];
        let Some(tls) = session.tls.as_mut() else {
            return;
        };
        if tls.wants_write() {
            session.sending.clear();
            session.written = 0;
            if let Err(e) = tls.records(&mut session.sending) {
                return self.fail_opening(ctx, s, Failure::Response(e.into()));
            }
            return self.send_rest(ctx, s);
        }
        if tls.is_handshaking() {
            return self.recv(s);
        }
        if let Err(failure) = self.start_h2(s) {
            self.fail_opening(ctx, s, failure);
        }
    }

    /// Handshake records of session `s` arrived: `n` bytes in its inbound buffer (0: closed).
    pub(super) fn handshake_received(&mut self, ctx: &CoreCtx, s: usize, n: usize) {
        let Some(tls) = self.sessions[s].tls.as_mut() else {
            return;
        };
        match tls.take_handshake(n) {
            Ok(()) => self.handshake(ctx, s),
            Err(failure) => self.fail_opening(ctx, s, failure),
        }
    }
}
