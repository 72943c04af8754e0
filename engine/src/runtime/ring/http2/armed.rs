//! HTTP/2 requests readied before their instant. While the loop spins the last microseconds
//! before a due instant, the requests due at it are given streams on connections with room
//! and their heads are built (the allocating part); at the instant they are handed to `h2`
//! and leave together in one `send` per connection.

use bytes::Bytes;

use super::Http2Pool;
use crate::runtime::exchange::{request_of, Exchange};
use crate::runtime::failure::Failure;
use crate::runtime::ring::slot::Job;
use crate::runtime::{CancelReason, CoreCtx, QUEUE_RESUME};

/// A request readied on stream slot `k` (attached to its session).
pub(super) struct Armed {
    k: usize,
    head: http::Request<()>,
    body: Option<Bytes>,
}

impl Http2Pool {
    /// Readies queued requests on connections with room, without handing them to `h2`;
    /// returns how many. Requests left over start the usual way after the instant.
    pub(in crate::runtime::ring) fn arm(&mut self, ctx: &CoreCtx) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        let mut armed = 0;
        while !self.free_streams.is_empty() {
            let Some(s) = self.session_with_room() else {
                break;
            };
            ctx.prefetch_upcoming();
            let taken = ctx.queue.borrow_mut().take();
            let Some(pending) = taken else { break };
            if ctx.queue.borrow().len() < QUEUE_RESUME {
                ctx.space.notify();
            }
            let Some((record, parts)) = request_of(ctx, pending.run, pending.index, false) else {
                ctx.queue.borrow_mut().release(pending.key);
                continue;
            };
            let now = std::time::Instant::now();
            let job = Job {
                exchange: Exchange {
                    pending,
                    verb: parts.verb,
                    label: record.label,
                    sent_at: now,
                },
                started: now,
                retried: false,
                attempts: 0,
                refusals: 0,
                recorded: false,
            };
            let k = self.take_stream(job);
            self.attach(s, k);
            match self.head_of(ctx, &parts) {
                Ok(head) => {
                    let body = (!parts.body.is_empty()).then(|| Bytes::copy_from_slice(parts.body));
                    self.armed.push(Armed { k, head, body });
                    armed += 1;
                }
                Err(failure) => self.finish(ctx, k, Err(failure)),
            }
        }
        armed
    }

    /// Hands every readied request to `h2` and writes them (one `send` per connection).
    pub(in crate::runtime::ring) fn fire(&mut self, ctx: &CoreCtx) {
        let mut armed = std::mem::take(&mut self.armed);
        for Armed { k, head, body } in armed.drain(..) {
            match self.streams[k].cancel {
                Some(CancelReason::Timeout) => self.finish(ctx, k, Err(Failure::Timeout)),
                Some(CancelReason::Interrupted) => self.finish(ctx, k, Err(Failure::Interrupted)),
                None => self.send_head(ctx, k, head, body),
            }
        }
        self.armed = armed;
        self.pump(ctx);
    }
}
