//! A core's HTTP/2 connections, driven by the core's loop like its HTTP/1.1 ones: no task per
//! request and no driver task per connection. Each connection's HTTP/2 state is kreplay's own
//! sans-I/O codec ([`crate::http2::Protocol`]): the loop appends what
//! the ring received (decrypted by rustls) and reads the frames as events, and it seals and
//! sends what the codec wrote. A request due at an instant is encoded and written by the loop
//! at that instant; the requests due at one instant share a connection and leave in one
//! `send` (see `armed.rs`).
//!
//! The parts: this file takes requests and gives them streams; `session.rs` is one connection
//! (connect, TLS and HTTP/2 handshakes, its frames' events, its end); `transfer.rs` moves its
//! bytes through the ring (seal and send, receive and decrypt, completions); `armed.rs`
//! readies an instant's requests during the spin; `stream.rs` is one request's stream, from
//! its head to the end of its response.
//!
//! The ring's raw pointers are sound by the same rule as the HTTP/1.1 pool's: a session's
//! buffers are never moved or freed while an operation of its is in flight, and a session is
//! reset only once none is.

mod armed;
mod session;
mod stream;
mod transfer;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::uri::Authority;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::super::exchange::request_of;
use super::super::failure::Failure;
use super::super::{CancelReason, CoreCtx};
use super::completion::settle;
use super::pace::{Pace, BACKLOG};
use super::slot::Job;
use super::take_due_job;
use super::tls::TlsSession;
use super::uring::Ring;
use session::{Phase, Session};
use stream::StreamSlot;

/// Most times a request refused over HTTP/2 is sent again (Go's transport: 6).
const REFUSED_RETRIES: u8 = 6;

/// A request waiting to be sent again: after its `Retry-After` (`--retries client-go`), or
/// after an HTTP/2 refusal (at once, then after 1, 2, 4, 8 and 16 s, as Go's transport).
struct Parked {
    job: Job,
    due: Instant,
    /// Its outcome if the run stops before it goes again.
    answer: Result<u16, Failure>,
}

/// The pool: connections (sessions), request streams, and the ring.
pub(crate) struct Http2Pool {
    ring: Ring,
    addr: Box<socket2::SockAddr>,
    target: std::net::SocketAddr,
    /// TLS settings of new connections (ALPN offers `h2`).
    tls: (Arc<ClientConfig>, ServerName<'static>),
    authority: Authority,
    sessions: Vec<Session>,
    max_conns: usize,
    streams: Vec<StreamSlot>,
    /// Stream slots without a request.
    free_streams: Vec<usize>,
    /// Stream slots cancelled since the last pump.
    cancelled: Vec<usize>,
    /// Scratch list of a failing session's stream slots (kept for its capacity).
    ending: Vec<usize>,
    /// Scratch `:path` of the request being encoded (kept for its capacity).
    path: Vec<u8>,
    /// Requests in flight: on streams, parked, or waiting for the connection they opened.
    busy: usize,
    parked: Vec<Parked>,
    /// Where the next search for the session with the fewest streams starts (ties go round,
    /// so a paced replay spreads its instants over every connection).
    next_session: usize,
    /// The due instant of the last request given a stream on time, and its session (see
    /// [`session_for`](Self::session_for)).
    instant_session: Option<(Instant, usize)>,
    /// Set when the ring itself failed: every request is then recorded as failed with it.
    broken: Option<std::io::Error>,
    /// Most sessions open at once.
    peak: usize,
    /// Sessions with bytes to send (or an end to carry out) since their last flush.
    dirty: Vec<usize>,
    /// The server's pace (see `ring/pace.rs`).
    pace: Pace,
}

impl Http2Pool {
    /// A pool over the TLS connections `open` whose server chose `h2` (their HTTP/2
    /// handshakes start at once), opening more up to `max_conns`, with up to `max_streams`
    /// requests in flight.
    pub(super) fn new(
        target: &crate::target::Target,
        open: Vec<(OwnedFd, TlsSession)>,
        max_conns: usize,
        max_streams: usize,
    ) -> Result<Http2Pool, Failure> {
        let tls = target.tls.clone().ok_or_else(|| {
            Failure::Connect(std::io::Error::other("HTTP/2 needs an https:// target"))
        })?;
        let authority = crate::transport::http2::parse_authority(&target.host_header)
            .map_err(|e| Failure::Transport(e.into()))?;
        let max_conns = max_conns.max(open.len()).max(1);
        let max_streams = max_streams.max(1);
        let ring = Ring::new(max_conns).map_err(Failure::Connect)?;
        let streams = (0..max_streams).map(|_| StreamSlot::new()).collect();
        let mut pool = Http2Pool {
            ring,
            addr: Box::new(socket2::SockAddr::from(target.addr())),
            target: target.addr(),
            tls,
            authority,
            sessions: Vec::with_capacity(max_conns),
            max_conns,
            streams,
            free_streams: (0..max_streams).rev().collect(),
            cancelled: Vec::with_capacity(max_streams),
            ending: Vec::with_capacity(max_streams),
            path: Vec::with_capacity(256),
            busy: 0,
            parked: Vec::new(),
            next_session: 0,
            instant_session: None,
            broken: None,
            peak: 0,
            dirty: Vec::with_capacity(max_conns),
            pace: Pace::default(),
        };
        for (fd, tls) in open {
            let s = pool.new_session();
            pool.sessions[s].adopt(fd, tls);
            if let Err(e) = pool.start_h2(s) {
                tracing::debug!("HTTP/2 over a prewarmed connection: {e:?}");
                pool.close(s);
            }
        }
        Ok(pool)
    }

    /// A free session (one whose connection ended and has nothing in flight), or a new one.
    fn new_session(&mut self) -> usize {
        if let Some(s) = self.sessions.iter().position(|s| s.phase == Phase::Free) {
            return s;
        }
        let s = self.sessions.len();
        self.sessions.push(Session::new());
        s
    }

    fn open_sessions(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.phase != Phase::Free && s.phase != Phase::Closed)
            .count()
    }

    /// Most connections open at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// Requests in flight.
    pub(crate) fn busy(&self) -> usize {
        self.busy
    }

    /// The ring.
    pub(super) fn ring(&mut self) -> &mut Ring {
        &mut self.ring
    }

    /// Whether the pool has nothing in flight and nothing more will come.
    pub(super) fn is_done(&self, ctx: &CoreCtx) -> bool {
        self.busy == 0 && ctx.input_done.get() && ctx.queue.borrow().is_empty()
    }

    /// Whether a parked request is due to go again (the tick wakes the loop for it).
    pub(crate) fn has_due_retry(&self, now: Instant) -> bool {
        self.parked.iter().any(|p| p.due <= now)
    }

    /// Cancels, with `reason`, every request that started at or before `before` (every
    /// request with `None`); returns how many. The loop settles them when it next runs.
    pub(crate) fn cancel(&mut self, reason: CancelReason, before: Option<Instant>) -> usize {
        let mut cancelled = 0;
        for k in 0..self.streams.len() {
            let slot = &mut self.streams[k];
            let covered = slot
                .job
                .as_ref()
                .is_some_and(|job| before.is_none_or(|b| job.started <= b));
            if slot.cancel.is_none() && covered {
                slot.cancel = Some(reason);
                self.cancelled.push(k);
                cancelled += 1;
            }
        }
        cancelled
    }

    /// The ring failed: records every request in flight as failed with `error`, and every
    /// later one too. Sessions with an operation in flight are never reused (see `Drop`).
    pub(super) fn abandon(&mut self, ctx: &CoreCtx, error: std::io::Error) {
        let end = Instant::now();
        let failure = || Failure::Response(super::clone_error(&error).into());
        for k in 0..self.streams.len() {
            if let Some(job) = self.streams[k].release() {
                self.busy -= 1;
                settle(ctx, &job.exchange, Err(failure()), 0, b"", end);
            }
        }
        for session in &mut self.sessions {
            session.opener = None;
            session.proto = None;
            session.streams = 0;
            session.generation = session.generation.wrapping_add(1);
            session.phase = Phase::Closed;
        }
        for p in std::mem::take(&mut self.parked) {
            self.busy -= 1;
            settle(ctx, &p.job.exchange, Err(failure()), 0, b"", end);
        }
        self.max_conns = 0;
        self.broken = Some(error);
    }

    /// Gives the requests the queue lets go streams on connections with room; opens a
    /// connection (one at a time) when none has. Returns how many requests started.
    pub(super) fn start_jobs(&mut self, ctx: &CoreCtx) -> usize {
        let mut started = self.resend_parked(ctx);
        let now = Instant::now();
        loop {
            if self.free_streams.is_empty() {
                break;
            }
            let session = self.session_for(ctx, now);
            if session.is_none() && self.broken.is_none() && !self.may_open() {
                break;
            }
            let Some((job, parts)) = take_due_job(ctx) else {
                break;
            };
            if let Some(e) = &self.broken {
                let failure = Failure::Response(super::clone_error(e).into());
                settle(ctx, &job.exchange, Err(failure), 0, b"", job.started);
                continue;
            }
            started += 1;
            let k = self.take_stream(job);
            match session {
                Some(s) => self.begin(ctx, s, k, &parts),
                None => self.open(ctx, k),
            }
        }
        self.pump(ctx);
        // The pace is looked at once the freed streams are taken again: whether requests wait
        // now says whether the server stays short of nothing until the next answers.
        if self.pace.has_news() {
            let waiting = self.is_full() && !ctx.queue.borrow().is_empty();
            self.pace.look(Instant::now(), waiting);
        }
        started
    }

    /// Whether a new connection may be opened now: none is being opened (so requests that
    /// all find every stream taken share the one the first of them opens) and the pool is
    /// below `max_conns`.
    fn may_open(&self) -> bool {
        !self.sessions.iter().any(Session::is_opening) && self.open_sessions() < self.max_conns
    }

    /// The session for the next queued request, at `now`. Requests due at one instant share
    /// the session the first of them took, while it has room: one `send` then carries them
    /// all, where one each would queue the last behind every other's system call. The first
    /// takes the session with the fewest streams (ties going round), so that successive
    /// instants spread over every connection, and so does every request of a core behind its
    /// schedule (due [`BACKLOG`] ago or more), whose requests are spread by load.
    fn session_for(&mut self, ctx: &CoreCtx, now: Instant) -> Option<usize> {
        let due = ctx.queue.borrow().front_due();
        let on_time = due.filter(|&due| now.saturating_duration_since(due) < BACKLOG);
        if let (Some(due), Some((at, s))) = (on_time, self.instant_session) {
            if at == due && self.sessions[s].has_room() {
                return Some(s);
            }
        }
        let s = self.session_with_room()?;
        self.instant_session = on_time.map(|due| (due, s));
        Some(s)
    }

    /// The ready session with the fewest streams in flight that has room for one more.
    fn session_with_room(&mut self) -> Option<usize> {
        let n = self.sessions.len();
        let start = self.next_session % n.max(1);
        let mut best: Option<usize> = None;
        for j in 0..n {
            let s = (start + j) % n;
            if self.sessions[s].has_room()
                && best.is_none_or(|b| self.sessions[s].streams < self.sessions[b].streams)
            {
                best = Some(s);
                // None has fewer: a paced replay, whose connections are mostly idle, stops
                // at the first idle one.
                if self.sessions[s].streams == 0 {
                    break;
                }
            }
        }
        let s = best?;
        self.next_session = s + 1;
        Some(s)
    }

    /// Sends parked requests whose time has come, while streams are free; after a stop,
    /// settles every parked request with the answer it got. Returns how many were sent.
    fn resend_parked(&mut self, ctx: &CoreCtx) -> usize {
        if self.parked.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let stopping = ctx.stop_requested() || self.broken.is_some();
        let mut sent = 0;
        let mut i = 0;
        while i < self.parked.len() {
            let due = self.parked[i].due <= now;
            let session = if stopping || !due || self.free_streams.is_empty() {
                None
            } else {
                self.session_with_room()
            };
            let opens = !stopping
                && due
                && session.is_none()
                && !self.free_streams.is_empty()
                && self.may_open();
            if !stopping && session.is_none() && !opens {
                i += 1;
                continue;
            }
            let p = self.parked.swap_remove(i);
            let pending = p.job.exchange.pending;
            let parts = if stopping {
                None
            } else {
                request_of(ctx, pending.run, pending.index, false)
            };
            let Some((_, parts)) = parts else {
                self.busy -= 1;
                settle(ctx, &p.job.exchange, p.answer, 0, b"", now);
                continue;
            };
            // Held in `busy` while parked: the stream slot takes it over.
            self.busy -= 1;
            let mut job = p.job;
            job.started = now;
            let k = self.take_stream(job);
            match session {
                Some(s) => {
                    self.begin(ctx, s, k, &parts);
                    sent += 1;
                }
                None => self.open(ctx, k),
            }
        }
        sent
    }

    /// Puts `job` on a free stream slot (the caller checked there is one).
    fn take_stream(&mut self, job: Job) -> usize {
        let k = self
            .free_streams
            .pop()
            .expect("a free stream slot was checked for");
        self.streams[k].take_job(job);
        self.busy += 1;
        k
    }

    /// Whether no waiting request can start now: every stream slot is taken, or every
    /// connection is full and no new one may open.
    fn is_full(&self) -> bool {
        self.free_streams.is_empty()
            || (!self.sessions.iter().any(Session::has_room) && !self.may_open())
    }

    /// How long the loop pauses before it reads its completions (see `ring/pace.rs`).
    pub(super) fn gather_for(&self, ctx: &CoreCtx, now: Instant) -> Option<Duration> {
        let waiting_since = ctx.queue.borrow().front_due();
        self.pace
            .pause(now, waiting_since, self.is_full(), self.busy)
    }

    /// Marks session `s` as having bytes to send (or an end to carry out).
    fn mark_dirty(&mut self, s: usize) {
        if !std::mem::replace(&mut self.sessions[s].dirty, true) {
            self.dirty.push(s);
        }
    }

    /// Settles cancelled requests, fails the sessions whose connection ended, and hands what
    /// the others wrote to the kernel.
    fn pump(&mut self, ctx: &CoreCtx) {
        self.settle_cancelled(ctx);
        while let Some(s) = self.dirty.pop() {
            self.sessions[s].dirty = false;
            match self.sessions[s].ended.take() {
                Some(why) => self.fail_session(ctx, s, why),
                None => self.flush(ctx, s),
            }
        }
    }
}

impl Drop for Http2Pool {
    fn drop(&mut self) {
        // Every open connection has a receive in flight: end them and wait (briefly) for
        // their completions, so that their buffers are no longer the kernel's.
        for s in 0..self.sessions.len() {
            self.close(s);
        }
        let limit = Instant::now() + std::time::Duration::from_millis(200);
        while self.sessions.iter().any(Session::has_op) && Instant::now() < limit {
            let _ = self.ring.submit();
            self.ring
                .wait(limit.saturating_duration_since(Instant::now()));
            while let Some(c) = self.ring.next_completion() {
                self.completed_while_closing(c);
            }
        }
        // Still in flight: leak the buffers rather than free memory the kernel could touch.
        if self.sessions.iter().any(Session::has_op) {
            std::mem::forget(std::mem::take(&mut self.sessions));
            let addr = std::mem::replace(
                &mut self.addr,
                Box::new(socket2::SockAddr::from(self.target)),
            );
            std::mem::forget(addr);
        }
    }
}
