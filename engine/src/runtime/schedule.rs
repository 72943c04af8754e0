//! A core's schedule: its runs merged in due order, released into the ready queue as their
//! instants come. Both the io_uring loop and the dispatcher of the task workers read it.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::queue::Pending;
use super::{watch, CoreCtx, QUEUE_CAP};
use crate::clock::SpeedScale;
use crate::merge::RunMerger;
use crate::source::ReplaySource;

/// The requests of one core's runs that have not come due yet.
pub(super) struct Schedule<'a> {
    merger: RunMerger<'a>,
    /// Global run index of each of the merger's runs.
    runs: &'a [usize],
    start: Instant,
    scale: SpeedScale,
}

/// What one release let go.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Released {
    /// Requests pushed into the ready queue.
    pub(super) queued: usize,
    /// WATCHes started.
    pub(super) watches: usize,
}

impl<'a> Schedule<'a> {
    /// The schedule of global runs `runs` of `source`, from the replay's `start`.
    pub(super) fn new(
        source: &'a dyn ReplaySource,
        runs: &'a [usize],
        start: Instant,
        scale: SpeedScale,
    ) -> Schedule<'a> {
        let slices = runs
            .iter()
            .map(|&r| source.run_records(r).unwrap_or(&[]))
            .collect();
        Schedule {
            merger: RunMerger::new(slices),
            runs,
            start,
            scale,
        }
    }

    /// The due instant of the next request, `None` once every one was released.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.merger
            .peek_due()
            .map(|us| self.start + self.scale.offset(us))
    }

    /// Whether every request was released.
    pub(super) fn is_exhausted(&self) -> bool {
        self.merger.peek_due().is_none()
    }

    /// Requests not released yet (what a stop leaves unsent).
    pub(super) fn remaining(&self) -> u64 {
        self.merger.remaining()
    }

    /// Releases every request due at or before `now` into `ctx`'s ready queue (WATCHes are
    /// started), while the queue holds fewer than `QUEUE_CAP`. The first request the core
    /// writes after a release measures its wake error (`CoreCtx::record_send`).
    pub(super) fn release(&mut self, ctx: &Rc<CoreCtx>, now: Instant) -> Released {
        let mut released = Released::default();
        let progress = &ctx.shared.progress[ctx.index];
        let mut last_us = None;
        while let Some(us) = self.merger.peek_due() {
            let due = self.start + self.scale.offset(us);
            if due > now || ctx.queue.borrow().len() >= QUEUE_CAP {
                break;
            }
            let Some((cursor, record)) = self.merger.pop() else {
                break;
            };
            let run = self.runs[cursor.slot as usize] as u32;
            if record.is_watch() {
                watch::start(ctx, run, cursor.index, due);
                released.watches += 1;
            } else {
                ctx.queue.borrow_mut().push(Pending {
                    run,
                    index: cursor.index,
                    key: record.key_hash,
                    due,
                });
                released.queued += 1;
            }
            last_us = Some(us);
        }
        if let Some(us) = last_us {
            progress.position_us.store(us, Ordering::Relaxed);
        }
        if released.queued > 0 {
            ctx.awaiting_first_send.set(true);
        }
        released
    }
}
