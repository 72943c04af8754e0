//! The connections a core's loop drives: its HTTP/1.1 pool (plain or TLS) or its HTTP/2
//! connections. The loop (`driver.rs`) is the same for both; this is where it tells them apart.

use std::time::Instant;

use super::http2::Http2Pool;
use super::uring::Ring;
use super::RingPool;
use crate::runtime::{CancelReason, CoreCtx};

/// A core's connections, of the kind the target speaks.
pub(crate) enum LoopPool {
    Http1(RingPool),
    Http2(Http2Pool),
}

impl LoopPool {
    /// Most connections open at once.
    pub(crate) fn peak(&self) -> usize {
        match self {
            LoopPool::Http1(p) => p.peak(),
            LoopPool::Http2(p) => p.peak(),
        }
    }

    /// Requests in flight.
    pub(crate) fn busy(&self) -> usize {
        match self {
            LoopPool::Http1(p) => p.busy(),
            LoopPool::Http2(p) => p.busy(),
        }
    }

    /// Cancels, with `reason`, every request that started at or before `before` (every
    /// request with `None`); returns how many.
    pub(crate) fn cancel(&mut self, reason: CancelReason, before: Option<Instant>) -> usize {
        match self {
            LoopPool::Http1(p) => p.cancel(reason, before),
            LoopPool::Http2(p) => p.cancel(reason, before),
        }
    }

    /// Whether a parked request is due to go again.
    pub(crate) fn has_due_retry(&self, now: Instant) -> bool {
        match self {
            LoopPool::Http1(p) => p.has_due_retry(now),
            LoopPool::Http2(p) => p.has_due_retry(now),
        }
    }

    /// How long to pause before reading completions, when the core is behind and the server
    /// is its limit (see `pace.rs`). Over HTTP/1.1 each request has its own connection, so
    /// its sends and receives stay one per request whatever the loop gathers: no pause.
    pub(super) fn gather_for(&self, ctx: &CoreCtx, now: Instant) -> Option<std::time::Duration> {
        match self {
            LoopPool::Http1(_) => None,
            LoopPool::Http2(p) => p.gather_for(ctx, now),
        }
    }

    /// The ring the loop waits in.
    pub(super) fn ring(&mut self) -> &mut Ring {
        match self {
            LoopPool::Http1(p) => &mut p.ring,
            LoopPool::Http2(p) => p.ring(),
        }
    }

    /// Handles the completions that wait (see `RingPool::reap`).
    pub(super) fn reap(&mut self, ctx: &CoreCtx, yield_at: Option<Instant>) -> (usize, bool) {
        match self {
            LoopPool::Http1(p) => p.reap(ctx, yield_at),
            LoopPool::Http2(p) => p.reap(ctx, yield_at),
        }
    }

    /// Starts the requests the queue lets go; returns how many.
    pub(super) fn start_jobs(&mut self, ctx: &CoreCtx) -> usize {
        match self {
            LoopPool::Http1(p) => p.start_jobs(ctx),
            LoopPool::Http2(p) => p.start_jobs(ctx),
        }
    }

    /// The ring failed: every request in flight, and every later one, fails with `error`.
    pub(super) fn abandon(&mut self, ctx: &CoreCtx, error: std::io::Error) {
        match self {
            LoopPool::Http1(p) => p.abandon(ctx, error),
            LoopPool::Http2(p) => p.abandon(ctx, error),
        }
    }

    /// Whether nothing is in flight and nothing more will come.
    pub(super) fn is_done(&self, ctx: &CoreCtx) -> bool {
        match self {
            LoopPool::Http1(p) => p.is_done(ctx),
            LoopPool::Http2(p) => p.is_done(ctx),
        }
    }

    /// Readies the next instant's requests before it, taking none after `until`; returns how
    /// many.
    pub(super) fn arm(&mut self, ctx: &CoreCtx, until: Instant) -> usize {
        match self {
            LoopPool::Http1(p) => p.arm(ctx, until),
            LoopPool::Http2(p) => p.arm(ctx, until),
        }
    }

    /// Writes the readied requests.
    pub(super) fn fire(&mut self, ctx: &CoreCtx) {
        match self {
            LoopPool::Http1(p) => p.fire(ctx),
            LoopPool::Http2(p) => p.fire(ctx),
        }
    }
}
