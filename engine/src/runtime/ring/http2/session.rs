//! One HTTP/2 connection of the loop: its socket and TLS session, moved through the ring, and
//! `h2`'s handles over its [`Pipe`]. A connection is opened for the request that found every
//! stream taken (its opener), connects and shakes hands (TLS, then HTTP/2 with a PING, so the
//! server's SETTINGS and its stream limit are known) and then carries that request first.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use h2::PingPong;

use super::io::{Pipe, PipeIo};
use super::Http2Pool;
use crate::runtime::exchange::request_of;
use crate::runtime::failure::Failure;
use crate::runtime::ring::tls::{Plaintext, TlsSession};
use crate::runtime::ring::uring::{self, Completion, Op};
use crate::runtime::CoreCtx;
use crate::transport::http2::{client_builder, DriverState};
use crate::transport::Http2Error;

/// Room offered to rustls for each read of plaintext: one TLS record's worth.
const PLAINTEXT_ROOM: usize = 16 * 1024;

/// How many completions a reap handles between looks at the clock.
const REAP_CHECK_EVERY: usize = 8;

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

/// `h2`'s handles of a connection.
pub(super) struct H2Handles {
    pub(super) sender: SendRequest<Bytes>,
    connection: Connection<PipeIo, Bytes>,
    ping: Option<PingPong>,
}

/// One connection.
pub(super) struct Session {
    pub(super) phase: Phase,
    fd: Option<OwnedFd>,
    /// Bumped when the session is freed, so a stale completion is recognised.
    pub(super) generation: u32,
    tls: Option<Box<TlsSession>>,
    pipe: Rc<RefCell<Pipe>>,
    pub(super) h2: Option<H2Handles>,
    pub(super) driver: Rc<DriverState>,
    /// Streams in flight on it.
    pub(super) streams: usize,
    /// The stream slot of the request it was opened for, until that request starts on it.
    pub(super) opener: Option<usize>,
    connect_op: bool,
    recv_op: bool,
    send_op: bool,
    /// Ciphertext being sent (a ring send in flight reads it); `written` counts into it.
    sending: Vec<u8>,
    written: usize,
    /// Stream slots started since its last send: their first bytes leave with the next one.
    pub(super) unsent: Vec<usize>,
    /// Its sealed bytes wait for the next instant (`armed.rs`).
    held: bool,
    /// The server's stream limit, as of the last poll (asking `h2` takes a lock).
    max_streams: usize,
    /// Polled since its last flush (in `Http2Pool::dirty`).
    pub(super) dirty: bool,
    pub(super) waker: Waker,
}

impl Session {
    pub(super) fn new(waker: Waker) -> Session {
        Session {
            phase: Phase::Free,
            fd: None,
            generation: 0,
            tls: None,
            pipe: Rc::new(RefCell::new(Pipe::default())),
            h2: None,
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
            max_streams: 1,
            dirty: false,
            waker,
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
        self.phase == Phase::Ready && !self.driver.is_closed() && self.streams < self.max_streams
    }

    fn raw_fd(&self) -> i32 {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    fn tag(&self, index: usize, op: Op) -> u64 {
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
        session.pipe.borrow_mut().reset();
        session.driver = Rc::new(DriverState::default());
        let mut cx = Context::from_waker(&session.waker);
        let mut handshake =
            std::pin::pin!(client_builder().handshake::<_, Bytes>(PipeIo(session.pipe.clone())));
        // The pipe takes every write at once: the preface is buffered in one poll.
        let (sender, mut connection) = match handshake.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(handles)) => handles,
            Poll::Ready(Err(e)) => return Err(Failure::Transport(Http2Error::from_h2(e).into())),
            Poll::Pending => {
                return Err(Failure::Transport(
                    Http2Error::InvalidRequest("the HTTP/2 handshake did not complete".into())
                        .into(),
                ))
            }
        };
        let mut ping = connection.ping_pong();
        if let Some(p) = ping.as_mut() {
            p.send_ping(h2::Ping::opaque())
                .map_err(|e| Failure::Transport(Http2Error::from_h2(e).into()))?;
        }
        session.h2 = Some(H2Handles {
            sender,
            connection,
            ping,
        });
        session.phase = Phase::Settling;
        self.wake.set(self.streams.len() + s);
        // Records the server sent with its last handshake flight are already decrypted.
        self.take_plaintext(s);
        if !self.sessions[s].recv_op {
            self.recv(s);
        }
        Ok(())
    }

    /// Polls session `s`'s connection: reads what arrived, writes what its streams queued.
    pub(super) fn poll_session(&mut self, ctx: &CoreCtx, s: usize) {
        let session = &mut self.sessions[s];
        if !matches!(session.phase, Phase::Settling | Phase::Ready) {
            return;
        }
        let Some(h2) = session.h2.as_mut() else {
            return;
        };
        if !std::mem::replace(&mut session.dirty, true) {
            self.dirty.push(s);
        }
        let mut cx = Context::from_waker(&session.waker);
        if let Poll::Ready(result) = std::pin::Pin::new(&mut h2.connection).poll(&mut cx) {
            session.driver.ended(result);
            let error = session.driver.closed_error();
            return self.fail_session(ctx, s, Failure::Transport(error.into()));
        }
        session.max_streams = h2.sender.current_max_send_streams().max(1);
        if session.phase != Phase::Settling {
            return;
        }
        let pong = match h2.ping.as_mut() {
            Some(p) => p.poll_pong(&mut cx).map_ok(|_| ()),
            None => Poll::Ready(Ok(())),
        };
        match pong {
            Poll::Pending => {}
            Poll::Ready(Ok(())) => {
                session.phase = Phase::Ready;
                let open = self.open_sessions();
                self.peak = self.peak.max(open);
                if let Some(k) = self.sessions[s].opener.take() {
                    self.start_opener(ctx, s, k);
                }
            }
            Poll::Ready(Err(e)) => {
                let failure = Failure::Transport(Http2Error::from_h2(e).into());
                self.fail_session(ctx, s, failure);
            }
        }
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

    /// Session `s` cannot go on: its opener fails with `failure`, its streams learn it from
    /// `h2`, and it closes.
    pub(super) fn fail_session(&mut self, ctx: &CoreCtx, s: usize, failure: Failure) {
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
        session.h2 = None;
        session.pipe.borrow_mut().reset();
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
    fn handshake(&mut self, ctx: &CoreCtx, s: usize) {
        let session = &mut self.sessions[s];
        let Some(tls) = session.tls.as_mut() else {
            return;
        };
        if tls.wants_write() {
            session.sending.clear();
            session.written = 0;
            if let Err(e) = tls.records(&mut session.sending) {
                return self.fail_session(ctx, s, Failure::Response(e.into()));
            }
            return self.send_rest(ctx, s);
        }
        if tls.is_handshaking() {
            return self.recv(s);
        }
        if let Err(failure) = self.start_h2(s) {
            self.fail_session(ctx, s, failure);
        }
    }

    /// Hands what session `s`'s connection wrote to the kernel, sealed: one non-blocking
    /// `send`, the rest (if any) through the ring. The streams started since the last send
    /// have their first byte written now. A session whose bytes are held for the next
    /// instant (`armed.rs`) sends them then.
    pub(super) fn flush(&mut self, ctx: &CoreCtx, s: usize) {
        if !self.sessions[s].held && self.seal(s) {
            self.send_rest(ctx, s);
        }
    }

    /// Seals what session `s`'s connection wrote into its `sending` buffer, unless a send of
    /// it is in flight; returns whether sealed bytes wait to be sent.
    pub(super) fn seal(&mut self, s: usize) -> bool {
        let session = &mut self.sessions[s];
        if session.send_op || !matches!(session.phase, Phase::Settling | Phase::Ready) {
            return false;
        }
        if session.written < session.sending.len() {
            return true;
        }
        if !session.pipe.borrow().has_outbound() {
            return false;
        }
        let Some(tls) = session.tls.as_mut() else {
            return false;
        };
        session.written = 0;
        let sealed = {
            let mut pipe = session.pipe.borrow_mut();
            let sealed = tls.seal(pipe.outbound(), &mut session.sending);
            pipe.clear_outbound();
            sealed
        };
        if let Err(e) = sealed {
            session.sending.clear();
            self.socket_failed(s, e);
            return false;
        }
        true
    }

    /// Holds session `s`'s sealed bytes for the next instant when requests started on it
    /// since its last send (they leave with one `send` at the instant); returns whether it
    /// did.
    pub(super) fn hold(&mut self, s: usize) -> bool {
        let held = !self.sessions[s].unsent.is_empty() && self.seal(s);
        self.sessions[s].held = held;
        held
    }

    /// Sends session `s`'s held bytes, if any.
    pub(super) fn release_held(&mut self, ctx: &CoreCtx, s: usize) {
        if std::mem::take(&mut self.sessions[s].held) {
            self.send_rest(ctx, s);
        }
    }

    /// Sends what is left of session `s`'s `sending`: at once as far as the socket takes it,
    /// the rest through the ring.
    fn send_rest(&mut self, ctx: &CoreCtx, s: usize) {
        let session = &mut self.sessions[s];
        let rest = &session.sending[session.written..];
        if rest.is_empty() {
            return self.sent(ctx, s);
        }
        // The instant the first bytes are handed to the kernel: before the call, which on
        // loopback also carries them to the server.
        let at = (!session.unsent.is_empty()).then(Instant::now);
        match uring::send_now(session.raw_fd(), rest) {
            Ok(n) => {
                if let Some(at) = at.filter(|_| n > 0 && session.phase != Phase::Handshaking) {
                    self.record_sends(ctx, s, at);
                }
                let session = &mut self.sessions[s];
                session.written += n;
                if session.written == session.sending.len() {
                    return self.sent(ctx, s);
                }
                let rest = &session.sending[session.written..];
                let tag = session.tag(s, Op::Send);
                match self
                    .ring
                    .send(session.raw_fd(), rest.as_ptr(), rest.len(), tag)
                {
                    Ok(()) => session.send_op = true,
                    Err(e) => self.socket_failed(s, e),
                }
            }
            Err(e) => {
                if session.phase == Phase::Handshaking {
                    self.fail_session(ctx, s, Failure::Response(e.into()));
                } else {
                    self.socket_failed(s, e);
                }
            }
        }
    }

    /// All of session `s`'s `sending` is written.
    fn sent(&mut self, ctx: &CoreCtx, s: usize) {
        if self.sessions[s].phase == Phase::Handshaking {
            self.handshake(ctx, s);
        }
    }

    /// The first bytes of the streams started on session `s` since its last send went to
    /// the kernel at `now`.
    fn record_sends(&mut self, ctx: &CoreCtx, s: usize, now: Instant) {
        if self.sessions[s].unsent.is_empty() {
            return;
        }
        let mut unsent = std::mem::take(&mut self.sessions[s].unsent);
        for &k in &unsent {
            self.streams[k].record_send(ctx, now);
        }
        unsent.clear();
        self.sessions[s].unsent = unsent;
    }

    /// Session `s`'s socket failed with `e`: `h2` reads it as the connection's error (and
    /// fails its streams with it).
    fn socket_failed(&mut self, s: usize, e: std::io::Error) {
        self.sessions[s].pipe.borrow_mut().fail(e);
        self.wake.set(self.streams.len() + s);
    }

    /// Queues a receive of ciphertext for session `s`.
    fn recv(&mut self, s: usize) {
        let session = &mut self.sessions[s];
        let (tag, fd) = (session.tag(s, Op::Recv), session.raw_fd());
        let Some(tls) = session.tls.as_mut() else {
            return;
        };
        let into = &mut tls.inbound[..];
        match self.ring.recv(fd, None, into.as_mut_ptr(), into.len(), tag) {
            Ok(()) => session.recv_op = true,
            Err(e) => self.socket_failed(s, e),
        }
    }

    /// Moves the plaintext rustls holds for session `s` into its pipe; false once the TLS
    /// session has ended.
    fn take_plaintext(&mut self, s: usize) -> bool {
        let session = &mut self.sessions[s];
        let Some(tls) = session.tls.as_mut() else {
            return false;
        };
        let mut pipe = session.pipe.borrow_mut();
        loop {
            match tls.read_plaintext_into(pipe.spare(PLAINTEXT_ROOM)) {
                Ok(Plaintext::Read(k)) => pipe.filled(k),
                Ok(Plaintext::Drained) => return true,
                Ok(Plaintext::Closed) => {
                    pipe.end();
                    return false;
                }
                Err(e) => {
                    pipe.fail(e);
                    return false;
                }
            }
        }
    }

    /// `n` bytes of ciphertext arrived for session `s` (0: the server closed it).
    fn received(&mut self, s: usize, n: usize) {
        self.wake.set(self.streams.len() + s);
        if n == 0 {
            self.sessions[s].pipe.borrow_mut().end();
            return;
        }
        let mut from = 0;
        loop {
            if !self.take_plaintext(s) {
                return;
            }
            if from == n {
                break;
            }
            let session = &mut self.sessions[s];
            let Some(tls) = session.tls.as_mut() else {
                return;
            };
            if let Err(e) = tls.take_ciphertext(&mut from, n) {
                let e = std::io::Error::other(e.to_string());
                session.pipe.borrow_mut().fail(e);
                return;
            }
        }
        self.recv(s);
    }

    /// Handles the completions that wait; returns how many there were and whether it
    /// stopped early, at `yield_at` (a due instant's wake-up: its requests go first).
    pub(in crate::runtime::ring) fn reap(
        &mut self,
        ctx: &CoreCtx,
        yield_at: Option<Instant>,
    ) -> (usize, bool) {
        let mut n = 0;
        let mut yielded = false;
        while let Some(c) = self.ring.next_completion() {
            n += 1;
            self.complete(ctx, c);
            if n % REAP_CHECK_EVERY == 0 && yield_at.is_some_and(|t| Instant::now() >= t) {
                yielded = true;
                break;
            }
        }
        self.pump(ctx);
        (n, yielded)
    }

    /// A completion that came while the pool was being dropped: only its operation ends.
    pub(super) fn completed_while_closing(&mut self, c: Completion) {
        let s = c.slot as usize;
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        if !uring::same_generation(session.generation, &c) {
            return;
        }
        match c.op {
            Some(Op::Connect) => session.connect_op = false,
            Some(Op::Send) => session.send_op = false,
            Some(Op::Recv) => session.recv_op = false,
            Some(Op::Cancel) | None => {}
        }
    }

    fn complete(&mut self, ctx: &CoreCtx, c: Completion) {
        let s = c.slot as usize;
        let Some(session) = self.sessions.get_mut(s) else {
            return;
        };
        if c.op == Some(Op::Cancel) || !uring::same_generation(session.generation, &c) {
            return;
        }
        let os_error = || std::io::Error::from_raw_os_error(-c.result);
        match c.op {
            Some(Op::Connect) => session.connect_op = false,
            Some(Op::Send) => session.send_op = false,
            Some(Op::Recv) => session.recv_op = false,
            Some(Op::Cancel) | None => return,
        }
        if session.phase == Phase::Closed {
            return self.free_if_idle(s);
        }
        match c.op {
            Some(Op::Connect) if c.result < 0 => {
                self.fail_session(ctx, s, Failure::Connect(os_error()))
            }
            Some(Op::Connect) => {
                ctx.conns_opened.set(ctx.conns_opened.get() + 1);
                let (config, name) = self.tls.clone();
                match TlsSession::connect(config, name) {
                    Ok(tls) => {
                        let session = &mut self.sessions[s];
                        session.tls = Some(Box::new(tls));
                        session.phase = Phase::Handshaking;
                        self.handshake(ctx, s);
                    }
                    Err(e) => self.fail_session(ctx, s, Failure::Transport(e)),
                }
            }
            Some(Op::Send) if c.result < 0 => {
                if session.phase == Phase::Handshaking {
                    self.fail_session(ctx, s, Failure::Response(os_error().into()));
                } else {
                    self.socket_failed(s, os_error());
                }
            }
            Some(Op::Send) => {
                let first = session.written == 0;
                session.written += c.result as usize;
                if first && session.phase != Phase::Handshaking {
                    self.record_sends(ctx, s, Instant::now());
                }
                self.send_rest(ctx, s);
                // What the connection wrote while this send was in flight goes now.
                self.flush(ctx, s);
            }
            Some(Op::Recv) if c.result < 0 => {
                if session.phase == Phase::Handshaking {
                    self.fail_session(ctx, s, Failure::Response(os_error().into()));
                } else {
                    self.socket_failed(s, os_error());
                }
            }
            Some(Op::Recv) if session.phase == Phase::Handshaking => {
                self.handshake_received(ctx, s, c.result as usize)
            }
            Some(Op::Recv) => self.received(s, c.result as usize),
            Some(Op::Cancel) | None => {}
        }
    }

    /// Handshake records of session `s` arrived: `n` bytes in its inbound buffer (0: closed).
    fn handshake_received(&mut self, ctx: &CoreCtx, s: usize, n: usize) {
        let Some(tls) = self.sessions[s].tls.as_mut() else {
            return;
        };
        match tls.take_handshake(n) {
            Ok(()) => self.handshake(ctx, s),
            Err(failure) => self.fail_session(ctx, s, failure),
        }
    }
}
