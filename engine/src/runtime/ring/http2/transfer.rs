//! A session's bytes through the ring: what its protocol wrote is sealed by rustls and sent
//! (held for the next instant when requests were readied for it), what the server sent is
//! received, decrypted and read as frames, and each finished ring operation carries its
//! session on.

use std::time::Instant;

use super::session::Phase;
use super::Http2Pool;
use crate::runtime::failure::Failure;
use crate::runtime::ring::tls::{Plaintext, TlsSession};
use crate::runtime::ring::uring::{self, Completion, Op};
use crate::runtime::CoreCtx;

/// Room offered to rustls for each read of plaintext: one TLS record's worth.
const PLAINTEXT_ROOM: usize = 16 * 1024;

/// How many completions a reap handles between looks at the clock.
const REAP_CHECK_EVERY: usize = 8;

impl Http2Pool {
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
        let (Some(tls), Some(proto)) = (session.tls.as_mut(), session.proto.as_mut()) else {
            return false;
        };
        if proto.out.is_empty() {
            return false;
        }
        session.written = 0;
        let sealed = tls.seal(&proto.out, &mut session.sending);
        proto.out.clear();
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
    pub(super) fn send_rest(&mut self, ctx: &CoreCtx, s: usize) {
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
                    self.fail_opening(ctx, s, Failure::Response(e.into()));
                } else {
                    self.socket_failed(s, e);
                }
            }
        }
    }

    /// All of session `s`'s `sending` is written.
    pub(super) fn sent(&mut self, ctx: &CoreCtx, s: usize) {
        if self.sessions[s].phase == Phase::Handshaking {
            self.handshake(ctx, s);
        }
    }

    /// The first bytes of the streams started on session `s` since its last send went to
    /// the kernel at `now`.
    pub(super) fn record_sends(&mut self, ctx: &CoreCtx, s: usize, now: Instant) {
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

    /// Session `s`'s socket failed with `e`: the session fails with it when the pool next
    /// pumps (its requests learn it then).
    pub(super) fn socket_failed(&mut self, s: usize, e: std::io::Error) {
        self.ended(s, crate::transport::Http2Error::Io(e));
    }

    /// Session `s`'s connection ended (`why`); the first reason stands.
    pub(super) fn ended(&mut self, s: usize, why: crate::transport::Http2Error) {
        self.sessions[s].ended.get_or_insert(why);
        self.mark_dirty(s);
    }

    /// Queues a receive of ciphertext for session `s`.
    pub(super) fn recv(&mut self, s: usize) {
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

    /// Moves the plaintext rustls holds for session `s` into its protocol's inbound bytes;
    /// false once the TLS session has ended.
    pub(super) fn take_plaintext(&mut self, s: usize) -> bool {
        let session = &mut self.sessions[s];
        let (Some(tls), Some(proto)) = (session.tls.as_mut(), session.proto.as_mut()) else {
            return false;
        };
        let ended = loop {
            match tls.read_plaintext_into(proto.spare(PLAINTEXT_ROOM)) {
                Ok(Plaintext::Read(k)) => proto.filled(k),
                Ok(Plaintext::Drained) => return true,
                Ok(Plaintext::Closed) => break crate::transport::Http2Error::ConnectionLost,
                Err(e) => break crate::transport::Http2Error::Io(e),
            }
        };
        self.ended(s, ended);
        false
    }

    /// `n` bytes of ciphertext arrived for session `s` (0: the server closed it).
    pub(super) fn received(&mut self, ctx: &CoreCtx, s: usize, n: usize) {
        if n == 0 {
            return self.ended(s, crate::transport::Http2Error::ConnectionLost);
        }
        let mut from = 0;
        let mut open = true;
        loop {
            if !self.take_plaintext(s) {
                open = false;
                break;
            }
            if from == n {
                break;
            }
            let Some(tls) = self.sessions[s].tls.as_mut() else {
                return;
            };
            if let Err(e) = tls.take_ciphertext(&mut from, n) {
                let e = std::io::Error::other(e.to_string());
                return self.socket_failed(s, e);
            }
        }
        // Frames that arrived before the end are read first: their responses count.
        self.read_frames(ctx, s);
        if open && self.sessions[s].phase != Phase::Closed {
            self.recv(s);
        }
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

    pub(super) fn complete(&mut self, ctx: &CoreCtx, c: Completion) {
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
                self.fail_opening(ctx, s, Failure::Connect(os_error()))
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
                    Err(e) => self.fail_opening(ctx, s, Failure::Transport(e)),
                }
            }
            Some(Op::Send) if c.result < 0 => {
                if session.phase == Phase::Handshaking {
                    self.fail_opening(ctx, s, Failure::Response(os_error().into()));
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
                    self.fail_opening(ctx, s, Failure::Response(os_error().into()));
                } else {
                    self.socket_failed(s, os_error());
                }
            }
            Some(Op::Recv) if session.phase == Phase::Handshaking => {
                self.handshake_received(ctx, s, c.result as usize)
            }
            Some(Op::Recv) => self.received(ctx, s, c.result as usize),
            Some(Op::Cancel) | None => {}
        }
    }
}
