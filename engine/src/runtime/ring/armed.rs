//! Requests readied before their instant. In the last microseconds before a due instant,
//! the requests due at it are given idle connections (checked for a close), encoded and, over
//! TLS, sealed; at the instant only their sends remain, one system call each.

use std::time::Instant;

use super::super::failure::Failure;
use super::super::{CancelReason, CoreCtx};
use super::take_due_job;
use super::RingPool;

impl RingPool {
    /// Readies queued requests on idle connections without writing them, taking none after
    /// `until`; returns how many. Requests left over (no idle connection, or no time) start
    /// the usual way after the instant.
    pub(super) fn arm(&mut self, ctx: &CoreCtx, until: Instant) -> usize {
        if self.broken.is_some() {
            return 0;
        }
        let mut now = Instant::now();
        let mut armed = 0;
        while now < until {
            let Some(i) = self.take_idle_slot(now) else {
                break;
            };
            let Some((job, parts)) = take_due_job(ctx) else {
                // Checked and still idle: the next request takes it.
                self.idle.push(i);
                break;
            };
            self.busy += 1;
            armed += 1;
            let slot = &mut self.slots[i];
            slot.take_job(job);
            let sealed = match slot.tls.as_mut() {
                Some(tls) => {
                    ctx.encode_request(&mut self.encoded, &parts);
                    tls.seal(&self.encoded, &mut slot.cipher)
                }
                None => {
                    ctx.encode_request(&mut slot.request, &parts);
                    Ok(())
                }
            };
            match sealed {
                Ok(()) => self.armed.push(i),
                Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
            }
            now = Instant::now();
        }
        armed
    }

    /// Writes every readied request now (its send instant and lag are taken as it goes).
    pub(super) fn fire(&mut self, ctx: &CoreCtx) {
        // In the order they were readied (queue order); the list keeps its capacity.
        let mut armed = std::mem::take(&mut self.armed);
        for &i in &armed {
            debug_assert!(
                self.slots[i].op.is_none(),
                "a readied slot has no operation"
            );
            match self.slots[i].cancel {
                Some(CancelReason::Timeout) => self.fail(ctx, i, Failure::Timeout),
                Some(CancelReason::Interrupted) => self.fail(ctx, i, Failure::Interrupted),
                None => self.send(ctx, i),
            }
        }
        armed.clear();
        self.armed = armed;
    }
}
