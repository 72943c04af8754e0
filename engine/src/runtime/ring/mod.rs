//! A core's HTTP/1.1 pool, plain or TLS, driven by the core's loop over an io_uring ring of
//! its own (`driver.rs`): no task per connection. A request is written with one
//! non-blocking `send` (over TLS: sealed by rustls first, `tls.rs`); its response arrives
//! through receives queued in the ring, straight into the connection's buffer (over TLS:
//! ciphertext, decrypted into it), and is framed by the sans-IO [`ResponseParser`].
//! Against a task per connection there is no `recv` and armed poll per request, and no
//! task, waker or source per operation.
//!
//! The parts: `driver.rs` is the loop (schedule, waits, spin); this file takes requests
//! into slots and writes them; `armed.rs` readies the next instant's requests during the
//! spin; `connect.rs` opens connections (and runs TLS handshakes) through the ring;
//! `completion.rs` carries each finished operation on, up to the response's record;
//! `slot.rs` is one connection's state, `tls.rs` its rustls session, `uring.rs` the ring.
//!
//! Invariants that make the ring's raw pointers sound: a slot has at most one operation in
//! flight (`Slot::op`), its buffers and the target address are never moved, resized or
//! freed while it does, and a slot is reset only after that operation's completion.

mod armed;
mod completion;
mod connect;
mod driver;
mod http2;
mod pace;
mod pool;
mod slot;
mod tls;
mod uring;

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::conn::Conn;
use super::exchange::{request_of, Exchange};
use super::failure::Failure;
use super::{CancelReason, CoreCtx, QUEUE_RESUME};
use uring::{Op, Ring};

use completion::settle;
use connect::take_over;
pub(super) use driver::drive;
pub(crate) use pool::LoopPool;
use slot::{Job, Parked, Slot};
use tls::TlsSession;

/// A connection handed to the pool: its socket, and its TLS session over `https://`.
type OpenConnection = (OwnedFd, Option<TlsSession>);

/// The pool: slots (connections), which of them are free, and the ring.
pub(crate) struct RingPool {
    ring: Ring,
    /// Where connects go; boxed so its address stays put while a connect is in flight.
    addr: Box<socket2::SockAddr>,
    target: std::net::SocketAddr,
    slots: Vec<Slot>,
    /// The request being started, encoded: one buffer for all slots stays in the cache,
    /// where a slot's own (used once every `max_conns` requests) would miss on every write.
    encoded: Vec<u8>,
    /// Free slots with an open connection.
    idle: Vec<usize>,
    /// Free slots without one (never opened, or closed after an error or `close`).
    unconnected: Vec<usize>,
    busy: usize,
    max_conns: usize,
    /// While completions that were waiting are handled: when they were reaped (their end).
    reaped_at: Option<Instant>,
    /// Completions at the head of the queue that a reap which stopped early had already
    /// timed, and that time.
    stamped: Option<(usize, Instant)>,
    /// Set when the ring itself failed: every request is then recorded as failed with it.
    broken: Option<std::io::Error>,
    /// Requests waiting to be sent again (`--retries client-go`); counted in `busy`.
    parked: Vec<Parked>,
    /// TLS settings of new connections (`https://`), offering HTTP/1.1 only.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// Slots whose request is ready to be written at its instant (`armed.rs`).
    armed: Vec<usize>,
}

/// The pool the core's loop drives over the prewarmed connections `conns`: HTTP/2
/// connections when the server chose HTTP/2 (`http2`, or a prewarmed socket says so), else the
/// HTTP/1.1 pool. The connections come back when the loop cannot serve them (no io_uring, or
/// a TLS target none of whose connections opened); an HTTP/2 socket among them is dropped
/// then (the task workers open their own).
pub(crate) fn loop_pool(
    target: &crate::target::Target,
    prewarmed: super::conn::Prewarmed,
    max_conns: usize,
    max_in_flight: usize,
    http2: bool,
) -> Result<LoopPool, Vec<Option<Conn>>> {
    let super::conn::Prewarmed { conns, h2_sockets } = prewarmed;
    if !http2 && h2_sockets.is_empty() {
        return RingPool::over_prewarmed(target, conns, max_in_flight, false).map(LoopPool::Http1);
    }
    if !probe_ring("a task per request") {
        return Err(conns);
    }
    let server_name = server_name(target);
    let open = h2_sockets
        .into_iter()
        .filter_map(|stream| match take_over(stream, &server_name) {
            Some((fd, Some(tls))) => Some((fd, tls)),
            _ => None,
        })
        .collect();
    http2::Http2Pool::new(target, open, max_conns, max_in_flight)
        .map(LoopPool::Http2)
        .map_err(|e| {
            tracing::warn!("HTTP/2 loop unavailable ({e:?}); connections reopen");
            Vec::new()
        })
}

/// Whether this machine gives the core's loop an io_uring ring.
pub(crate) fn available() -> bool {
    uring::Ring::new(1).is_ok()
}

/// A probe ring, made before prewarmed connections are taken apart (on failure they are
/// still whole); logs, when there is none, what the core uses instead (`fallback`).
fn probe_ring(fallback: &str) -> bool {
    match uring::Ring::new(1) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!("io_uring pool unavailable ({e}); using {fallback}");
            false
        }
    }
}

/// The server name prewarmed TLS sessions were opened for (empty over plain HTTP).
fn server_name(target: &crate::target::Target) -> String {
    target
        .tls
        .as_ref()
        .map(|(_, n)| n.to_str().into_owned())
        .unwrap_or_default()
}

impl RingPool {
    /// A pool over the already open connections `fds` (`None`: a connection that failed
    /// to open, retried when a request needs it), growing up to `max_conns`.
    fn new(
        target: std::net::SocketAddr,
        fds: Vec<Option<OpenConnection>>,
        max_conns: usize,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> std::io::Result<RingPool> {
        let max_conns = max_conns.max(fds.len()).max(1);
        let mut pool = RingPool {
            ring: Ring::new(max_conns)?,
            addr: Box::new(socket2::SockAddr::from(target)),
            target,
            slots: Vec::with_capacity(max_conns),
            encoded: Vec::with_capacity(4096),
            idle: Vec::with_capacity(max_conns),
            unconnected: Vec::with_capacity(max_conns),
            busy: 0,
            max_conns,
            reaped_at: None,
            stamped: None,
            broken: None,
            parked: Vec::with_capacity(max_conns),
            tls,
            armed: Vec::with_capacity(max_conns),
        };
        for open in fds {
            let i = pool.slots.len();
            let (fd, session) = open.map_or((None, None), |(fd, s)| (Some(fd), s));
            let mut slot = Slot::new(fd);
            slot.tls = session.map(Box::new);
            if let Some(fd) = &slot.fd {
                slot.fixed = pool.ring.register_file(i, fd.as_raw_fd());
                pool.idle.push(i);
            } else {
                pool.unconnected.push(i);
            }
            pool.slots.push(slot);
        }
        // Taken from the back: the first connections are used first.
        pool.idle.reverse();
        pool.unconnected.reverse();
        Ok(pool)
    }

    /// The ring pool of an HTTP/1.1 target, plain or TLS, over the prewarmed connections
    /// (their sockets duplicated, their TLS sessions taken over). The connections come back
    /// when the pool cannot serve them: an HTTP/2 target (`http2`: its streams are the task
    /// workers'), a TLS target none of whose connections opened (the protocol is not known
    /// yet), or a ring that cannot be set up.
    pub(crate) fn over_prewarmed(
        target: &crate::target::Target,
        conns: Vec<Option<Conn>>,
        max_conns: usize,
        http2: bool,
    ) -> Result<RingPool, Vec<Option<Conn>>> {
        let http1 = conns.iter().any(|c| matches!(c, Some(Conn::Http1(_))));
        if http2
            || conns.iter().any(|c| matches!(c, Some(Conn::Http2(_))))
            || (target.tls.is_some() && !http1)
        {
            return Err(conns);
        }
        if !probe_ring("a task per connection") {
            return Err(conns);
        }
        let server_name = server_name(target);
        let mut open = Vec::with_capacity(conns.len());
        for c in conns {
            open.push(match c {
                Some(Conn::Http1(stream)) => take_over(stream, &server_name),
                _ => None,
            });
        }
        let tls = target.tls_http1.clone().or_else(|| target.tls.clone());
        RingPool::new(target.addr(), open, max_conns, tls).map_err(|e| {
            tracing::warn!("io_uring pool unavailable ({e}); connections reopen");
            Vec::new()
        })
    }

    /// Most connections open at once.
    pub(crate) fn peak(&self) -> usize {
        self.slots.len()
    }

    /// Requests in flight.
    pub(crate) fn busy(&self) -> usize {
        self.busy
    }

    /// Cancels, with `reason`, every request that started at or before `before` (every
    /// request with `None`); returns how many.
    pub(crate) fn cancel(&mut self, reason: CancelReason, before: Option<Instant>) -> usize {
        let mut cancelled = 0;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(job) = slot.job else { continue };
            if slot.cancel.is_some() || before.is_some_and(|b| job.started > b) {
                continue;
            }
            slot.cancel = Some(reason);
            cancelled += 1;
            if let Some(op) = slot.op {
                let target = slot.tag(i, op);
                let tag = slot.tag(i, Op::Cancel);
                // A full ring is submitted by `push`; an error here leaves the request to
                // finish on its own, which is all a cancellation could do anyway.
                let _ = self.ring.cancel(target, tag);
            }
        }
        cancelled
    }

    /// The ring failed: records every request in flight as failed with `error`, and every
    /// later one too. Slots with an operation in flight are never reused (see `Drop`).
    fn abandon(&mut self, ctx: &CoreCtx, error: std::io::Error) {
        let end = Instant::now();
        for slot in &mut self.slots {
            // Later completions of its operation (if any) are stale: the slot is dead.
            slot.generation = slot.generation.wrapping_add(1);
            if let Some(job) = slot.job.take() {
                self.busy -= 1;
                let failure = Failure::Response(clone_error(&error).into());
                settle(
                    ctx,
                    &job.exchange,
                    Err(failure),
                    slot.body_bytes,
                    &slot.error_body,
                    end,
                );
            }
        }
        self.idle.clear();
        self.unconnected.clear();
        self.max_conns = 0;
        self.broken = Some(error);
    }

    /// Gives free connections the requests the queue lets go; opens connections up to
    /// `max_conns` when all are busy. Returns how many requests started.
    fn start_jobs(&mut self, ctx: &CoreCtx) -> usize {
        let mut started = self.resend_parked(ctx);
        loop {
            let has_slot = self.broken.is_some()
                || !self.idle.is_empty()
                || !self.unconnected.is_empty()
                || self.slots.len() < self.max_conns;
            if !has_slot {
                break;
            }
            let Some((job, parts)) = take_due_job(ctx) else {
                break;
            };
            let now = job.started;
            if let Some(e) = &self.broken {
                let failure = Failure::Response(clone_error(e).into());
                settle(ctx, &job.exchange, Err(failure), 0, b"", now);
                continue;
            }
            self.busy += 1;
            started += 1;
            self.begin(ctx, job, &parts, now);
        }
        started
    }

    /// Puts `job` (request `parts`) on a free slot and sends it, or connects for it.
    fn begin(
        &mut self,
        ctx: &CoreCtx,
        job: Job,
        parts: &crate::source::RequestView<'_>,
        now: Instant,
    ) {
        let i = self.take_slot(now);
        let slot = &mut self.slots[i];
        slot.take_job(job);
        if slot.fd.is_some() && slot.tls.is_some() {
            ctx.encode_request(&mut self.encoded, parts);
            let sealed = match slot.tls.as_mut() {
                Some(tls) => tls.seal(&self.encoded, &mut slot.cipher),
                None => Ok(()),
            };
            match sealed {
                Ok(()) => self.send(ctx, i),
                Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
            }
        } else if slot.fd.is_some() {
            // The request leaves now: one clock read serves its start and its send.
            ctx.encode_request(&mut self.encoded, parts);
            self.send_encoded(ctx, i, now);
        } else {
            ctx.encode_request(&mut slot.request, parts);
            self.connect(ctx, i);
        }
    }

    /// Sends again the parked requests whose `Retry-After` has passed, while slots are free;
    /// after a stop, settles every parked request with the answer it got. Returns how many
    /// were sent.
    fn resend_parked(&mut self, ctx: &CoreCtx) -> usize {
        if self.parked.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let stopping = ctx.stop_requested() || self.broken.is_some();
        let mut sent = 0;
        let mut k = 0;
        while k < self.parked.len() {
            let p = self.parked[k];
            let has_slot = !self.idle.is_empty()
                || !self.unconnected.is_empty()
                || self.slots.len() < self.max_conns;
            if !stopping && (p.due > now || !has_slot) {
                k += 1;
                continue;
            }
            self.parked.swap_remove(k);
            let pending = p.job.exchange.pending;
            let parts = if stopping {
                None
            } else {
                request_of(ctx, pending.run, pending.index, false)
            };
            match parts {
                Some((_, parts)) => {
                    let mut job = p.job;
                    job.started = now;
                    self.begin(ctx, job, &parts, now);
                    sent += 1;
                }
                None => {
                    self.busy -= 1;
                    settle(ctx, &p.job.exchange, Ok(p.status), 0, b"", now);
                }
            }
        }
        sent
    }

    /// Whether a parked request is due to go again (the tick wakes the loop for it).
    pub(crate) fn has_due_retry(&self, now: Instant) -> bool {
        self.parked.iter().any(|p| p.due <= now)
    }

    /// A free slot for a request: an idle connection the server has not closed (those it
    /// closed are let go), else one to connect. `start_jobs` checked there is one.
    fn take_slot(&mut self, now: Instant) -> usize {
        if let Some(i) = self.take_idle_slot(now) {
            return i;
        }
        if let Some(i) = self.unconnected.pop() {
            return i;
        }
        self.slots.push(Slot::new(None));
        self.slots.len() - 1
    }

    /// An idle connection the server has not closed (those it closed are let go).
    fn take_idle_slot(&mut self, now: Instant) -> Option<usize> {
        while let Some(i) = self.idle.pop() {
            if !self.slots[i].unusable_while_idle(now) {
                return Some(i);
            }
            self.close(i);
        }
        None
    }

    /// Sends slot `i`'s request once more on a fresh connection when it failed with
    /// `failure` on a reused one before any response byte (Go's rule, see
    /// `Failure::retries_on_fresh_connection`); false when it does not qualify.
    fn retry_on_fresh(&mut self, ctx: &CoreCtx, i: usize, failure: &Failure) -> bool {
        let slot = &self.slots[i];
        let Some(mut job) = slot.job else {
            return false;
        };
        if job.retried
            || !slot.reused
            || slot.received_any
            || slot.cancel.is_some()
            || !failure.retries_on_fresh_connection(job.exchange.verb, slot.written > 0)
        {
            return false;
        }
        job.retried = true;
        self.close(i);
        // `close` made the slot unconnected: it keeps the request and connects again.
        if let Some(at) = self.unconnected.iter().rposition(|&u| u == i) {
            self.unconnected.swap_remove(at);
        }
        ctx.metrics.borrow_mut().connection_retries += 1;
        let pending = job.exchange.pending;
        let Some((_, parts)) = request_of(ctx, pending.run, pending.index, false) else {
            // Not decodable now (it was a moment ago): recorded as corrupt by `request_of`.
            self.slots[i].job = None;
            self.busy -= 1;
            ctx.queue.borrow_mut().release(pending.key);
            self.unconnected.push(i);
            return true;
        };
        let slot = &mut self.slots[i];
        slot.take_job(job);
        ctx.encode_request(&mut slot.request, &parts);
        self.connect(ctx, i);
        true
    }

    /// Writes slot `i`'s new request, encoded in `encoded`, on its open connection: one
    /// non-blocking `send` at `now`, the instant of its first byte.
    fn send_encoded(&mut self, ctx: &CoreCtx, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        let Some(job) = slot.job.as_mut() else { return };
        if job.first_send() {
            job.exchange.sent_at = now;
            ctx.record_send(now, job.exchange.pending.due);
        }
        match uring::send_now(slot.raw_fd(), &self.encoded) {
            Ok(n) if n == self.encoded.len() => {
                slot.written = n;
                self.recv(ctx, i);
            }
            Ok(n) => {
                // The socket is full (rare): the rest goes from the slot's own buffer, which
                // stays put while the ring sends it. Swapped, not copied: a large body's
                // buffer leaves the shared one.
                std::mem::swap(&mut slot.request, &mut self.encoded);
                slot.written = n;
                self.send_rest(ctx, i);
            }
            Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
        }
    }

    /// Writes what is left of slot `i`'s request from its own buffer: one non-blocking
    /// `send`, the rest (if any) through the ring. Its first byte leaves now if none has.
    fn send(&mut self, ctx: &CoreCtx, i: usize) {
        let slot = &mut self.slots[i];
        let Some(job) = slot.job.as_mut() else { return };
        // A retry keeps its first attempt's send instant and lag.
        if slot.written == 0 && job.first_send() {
            let ex = &mut job.exchange;
            ex.sent_at = Instant::now();
            ctx.record_send(ex.sent_at, ex.pending.due);
        }
        match uring::send_now(slot.raw_fd(), &slot.outgoing()[slot.written..]) {
            Ok(n) => {
                slot.written += n;
                self.send_rest(ctx, i);
            }
            Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
        }
    }

    /// Queues a ring send of what is left of slot `i`'s request, or its response's receive
    /// once all is written.
    fn send_rest(&mut self, ctx: &CoreCtx, i: usize) {
        let slot = &mut self.slots[i];
        if slot.written == slot.outgoing().len() {
            if slot.handshaking {
                return self.handshake(ctx, i);
            }
            return self.recv(ctx, i);
        }
        let rest = &slot.outgoing()[slot.written..];
        let tag = slot.tag(i, Op::Send);
        match self
            .ring
            .send(slot.raw_fd(), rest.as_ptr(), rest.len(), tag)
        {
            Ok(()) => slot.op = Some(Op::Send),
            Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
        }
    }

    /// Queues a receive into slot `i`'s buffer.
    fn recv(&mut self, ctx: &CoreCtx, i: usize) {
        let slot = &mut self.slots[i];
        let fd = slot.raw_fd();
        let fixed = slot.fixed.then_some(i as u32);
        let tag = slot.tag(i, Op::Recv);
        let into = match slot.tls.as_mut() {
            Some(tls) => Ok(&mut tls.inbound[..]),
            None => slot.input.spare(),
        };
        let queued = into.and_then(|spare| {
            self.ring
                .recv(fd, fixed, spare.as_mut_ptr(), spare.len(), tag)
        });
        match queued {
            Ok(()) => slot.op = Some(Op::Recv),
            Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
        }
    }

    /// Whether the pool has nothing in flight and nothing more will come.
    fn is_done(&self, ctx: &CoreCtx) -> bool {
        self.busy == 0 && ctx.input_done.get() && ctx.queue.borrow().is_empty()
    }
}

/// The next request the queue lets go, as a job taken now, and its parts; `None` when the
/// queue has none. A record that cannot be decoded is recorded as failed (by `request_of`)
/// and skipped.
fn take_due_job(ctx: &CoreCtx) -> Option<(Job, crate::source::RequestView<'_>)> {
    loop {
        ctx.prefetch_upcoming();
        let pending = ctx.queue.borrow_mut().take()?;
        if ctx.queue.borrow().len() < QUEUE_RESUME {
            ctx.space.notify();
        }
        let Some((record, parts)) = request_of(ctx, pending.run, pending.index, false) else {
            ctx.queue.borrow_mut().release(pending.key);
            continue;
        };
        let now = Instant::now();
        let exchange = Exchange {
            pending,
            verb: parts.verb,
            label: record.label,
            sent_at: now,
        };
        return Some((Job::new(exchange, now), parts));
    }
}

/// A copy of `e` (kind and text) for each request it fails.
fn clone_error(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

impl Drop for RingPool {
    fn drop(&mut self) {
        // The kernel may still write into a slot whose operation never completed (the run
        // ended abnormally): leak the buffers rather than free memory it could touch.
        if self.slots.iter().any(|s| s.op.is_some()) {
            std::mem::forget(std::mem::take(&mut self.slots));
            let addr = std::mem::replace(
                &mut self.addr,
                Box::new(socket2::SockAddr::from(self.target)),
            );
            std::mem::forget(addr);
        }
    }
}
