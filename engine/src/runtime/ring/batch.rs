//! Late requests' sends, batched: when the replay is behind its schedule by
//! [`BATCH_LATE`] or more, the pool packs the sends of the requests it starts together
//! into one `io_uring_enter` instead of one `send` each (~5 % less CPU per request in an
//! unpaced replay; bench/RESULTS.md). On-time requests never wait for a batch.

use std::time::{Duration, Instant};

use super::super::failure::Failure;
use super::super::worker::request_of;
use super::super::CoreCtx;
use super::uring::Op;
use super::{is_transient, RingPool};

/// A request this late (or later) when it gets a connection is sent in a batch: the
/// batch's sends go out in one `io_uring_enter` instead of one `send` each. On-time
/// requests are always sent alone, at their instant, and timed exactly.
pub(super) const BATCH_LATE: Duration = Duration::from_millis(1);
/// Most sends in one batch: bounds how long its first send waits for the others to be
/// encoded, and how far apart the sends of one submission leave.
pub(super) const BATCH_MAX: usize = 16;
/// Largest body a batched request may carry: a larger one might not fit the socket at
/// once, and is sent alone.
pub(super) const BATCH_BODY_MAX: usize = 4096;

/// A send waiting in the batch: its slot and its bytes in `RingPool::batch_buf`.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchedSend {
    pub(super) slot: usize,
    pub(super) offset: usize,
    pub(super) len: usize,
}

impl RingPool {
    /// Submits the batched sends, and whatever else is queued, in one `io_uring_enter`;
    /// returns whether the batch buffer is free again (the kernel took every entry).
    ///
    /// The sends never wait (`Ring::send_nowait`), so the kernel has written each before the
    /// call returns, one after the other: a send's instant is estimated by its place in the
    /// batch, between the clock reads around the call (a few µs apart per send). Only
    /// requests already `BATCH_LATE` late are batched.
    pub(super) fn flush_batch(&mut self, ctx: &CoreCtx) -> bool {
        if self.batch.is_empty() {
            return !self.batch_queued;
        }
        let base = self.batch_buf.as_ptr();
        let mut queued = 0;
        for n in 0..self.batch.len() {
            let b = self.batch[n];
            let slot = &self.slots[b.slot];
            let tag = slot.tag(b.slot, Op::Send);
            // The bytes stay put: `batch_buf` is not written again until every entry that
            // points into it has been submitted (checked below and in `start_jobs`).
            let bytes = base.wrapping_add(b.offset);
            match self.ring.send_nowait(slot.raw_fd(), bytes, b.len, tag) {
                Ok(()) => {
                    self.batch[queued] = b;
                    queued += 1;
                }
                Err(e) => {
                    let slot = &mut self.slots[b.slot];
                    slot.op = None;
                    slot.batched_len = 0;
                    self.fail(ctx, b.slot, Failure::Response(e.into()));
                }
            }
        }
        self.batch.truncate(queued);
        let before = Instant::now();
        if let Err(e) = self.ring.submit() {
            if !is_transient(&e) {
                tracing::error!("io_uring submit failed: {e}");
                self.batch.clear();
                self.batch_queued = true;
                self.abandon(ctx, e);
                return false;
            }
        }
        let after = Instant::now();
        let whole = self.ring.all_submitted();
        let k = self.batch.len() as u32;
        for (n, b) in self.batch.drain(..).enumerate() {
            let slot = &mut self.slots[b.slot];
            slot.batched_timed = whole;
            if let Some(job) = slot.job.as_mut() {
                job.exchange.sent_at = before + (after - before) * n as u32 / k;
            }
        }
        if whole {
            self.batch_buf.clear();
        } else {
            self.batch_queued = true;
        }
        whole
    }

    /// Slot `i`'s batched send completed with `result` (bytes written, or a negated errno).
    pub(super) fn batch_sent(&mut self, ctx: &CoreCtx, i: usize, result: i32) {
        let slot = &mut self.slots[i];
        let len = std::mem::take(&mut slot.batched_len);
        let timed = std::mem::take(&mut slot.batched_timed);
        let written = match result {
            n if n >= 0 => n as usize,
            e if -e == libc::EAGAIN => 0,
            e => {
                let error = std::io::Error::from_raw_os_error(-e);
                return self.fail(ctx, i, Failure::Response(error.into()));
            }
        };
        let Some(job) = slot.job.as_mut() else { return };
        if written > 0 {
            if !timed {
                // Its batch went out over several calls: the completion bounds the instant.
                job.exchange.sent_at = Instant::now();
            }
            ctx.record_send(job.exchange.sent_at, job.exchange.pending.due);
        }
        slot.written = written;
        if written >= len {
            return self.recv(ctx, i);
        }
        // The socket took part of it, or none: the rest goes from the slot's own buffer,
        // encoded again (the batch buffer has been reused).
        let pending = job.exchange.pending;
        match request_of(ctx, pending.run, pending.index, false) {
            Some((_, parts)) => ctx.encode_request(&mut slot.request, &parts),
            None => {
                let error = std::io::Error::other("the request's record became unreadable");
                return self.fail(ctx, i, Failure::Response(error.into()));
            }
        }
        self.send(ctx, i);
    }
}
