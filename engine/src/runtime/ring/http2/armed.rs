//! HTTP/2 requests readied before their instant. In the last microseconds before a due
//! instant, the requests due at it are given streams on one connection while it has room
//! (see [`Http2Pool::session_for`]), encoded, framed and sealed; at the instant one `send`
//! remains, and every request of the instant leaves in it.

use std::time::Instant;

use super::Http2Pool;
use crate::runtime::ring::take_due_job;
use crate::runtime::CoreCtx;

impl Http2Pool {
    /// Readies queued requests on connections with room, their bytes held until
    /// [`fire`](Self::fire), taking none after `until`; returns how many. Requests left over
    /// start the usual way after the instant.
    pub(in crate::runtime::ring) fn arm(&mut self, ctx: &CoreCtx, until: Instant) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        let mut armed = 0;
        let mut now = Instant::now();
        while !self.free_streams.is_empty() && now < until {
            let Some(s) = self.session_for(ctx, now) else {
                break;
            };
            let Some((job, parts)) = take_due_job(ctx) else {
                break;
            };
            let k = self.take_stream(job);
            self.begin(ctx, s, k, &parts);
            armed += 1;
            now = Instant::now();
        }
        if armed > 0 {
            // Their HEADERS are in their sessions' outbound bytes: sealed and held.
            for i in 0..self.dirty.len() {
                self.hold(self.dirty[i]);
            }
        }
        armed
    }

    /// Sends every held connection's bytes now (the readied requests' sends are recorded),
    /// then carries on with whatever the readying woke.
    pub(in crate::runtime::ring) fn fire(&mut self, ctx: &CoreCtx) {
        for i in 0..self.dirty.len() {
            self.release_held(ctx, self.dirty[i]);
        }
        self.pump(ctx);
    }
}
