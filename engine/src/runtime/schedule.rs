//! A core's schedule: its runs merged in due order, released into the ready queue as their
//! instants come. Both the io_uring loop and the dispatcher of the task workers read it.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::source::VerifyState;

use super::queue::Pending;
use super::{watch, CoreCtx, QUEUE_CAP};
use crate::clock::SpeedScale;
use crate::merge::RunMerger;
use crate::source::{ReplaySource, CHECK_WAIT_LIMIT};

/// The requests of one core's runs that have not come due yet. Only records the timeline
/// check has covered are released (`crate::timeline_check`).
pub(super) struct Schedule<'a> {
    source: &'a dyn ReplaySource,
    merger: RunMerger<'a>,
    /// Due time of the last record released: a record due before it lies past the checked
    /// part of its run (a damaged due time), and waits for the check's verdict.
    taken_us: u64,
    /// The timeline check failed (or fell behind for good): nothing more is released.
    halted: bool,
    /// Global run index of each of the merger's runs.
    runs: &'a [usize],
    start: Instant,
    scale: SpeedScale,
}

/// How often a loop looks again at a timeline check that is behind its next record.
pub(super) const CHECK_POLL: Duration = Duration::from_millis(1);

/// Whether the timeline check lets the next record go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckGate {
    /// Checked: it may go at its instant.
    Open,
    /// Not checked yet: look again after `CHECK_POLL`.
    Wait,
    /// The check failed: nothing more goes.
    Closed,
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
            source,
            merger: RunMerger::new(slices),
            taken_us: 0,
            halted: false,
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

    /// Whether every request was released, or none more will be (a failed check).
    pub(super) fn is_exhausted(&self) -> bool {
        self.halted || self.merger.peek_due().is_none()
    }

    /// Whether the timeline check stopped the schedule.
    pub(super) fn is_halted(&self) -> bool {
        self.halted
    }

    /// Whether the next record may be released as far as the timeline check goes: `Wait`
    /// while the check is behind it (poll again after `CHECK_POLL`), `Closed` once the check
    /// failed or has been behind for `CHECK_WAIT_LIMIT` since `*waiting_since` (which the
    /// caller keeps between polls). One atomic load.
    pub(super) fn check_gate(
        &mut self,
        now: Instant,
        waiting_since: &mut Option<Instant>,
    ) -> CheckGate {
        if self.halted {
            return CheckGate::Closed;
        }
        let Some(next_us) = self.merger.peek_due() else {
            return CheckGate::Open;
        };
        let need_us = if next_us < self.taken_us {
            u64::MAX
        } else {
            next_us
        };
        let state = self.source.verify_state();
        if state.covers(need_us) {
            *waiting_since = None;
            return CheckGate::Open;
        }
        let since = *waiting_since.get_or_insert(now);
        if matches!(state, VerifyState::Failed)
            || now.saturating_duration_since(since) >= CHECK_WAIT_LIMIT
        {
            self.halted = true;
            return CheckGate::Closed;
        }
        CheckGate::Wait
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
        if self.halted {
            return released;
        }
        let progress = &ctx.shared.progress[ctx.index];
        let mut last_us = None;
        let checked = self.source.verify_state();
        while let Some(us) = self.merger.peek_due() {
            let due = self.start + self.scale.offset(us);
            if due > now
                || ctx.queue.borrow().len() >= QUEUE_CAP
                || !checked.covers(us)
                || us < self.taken_us
            {
                break;
            }
            self.taken_us = us;
            let Some((cursor, record)) = self.merger.pop() else {
                break;
            };
            let run = self.runs[cursor.run_pos as usize] as u32;
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
