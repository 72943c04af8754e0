//! The WATCH lane: a glommio executor of its own, on a thread of the lowest CPU priority
//! (`SCHED_IDLE`), which opens, holds and reads every WATCH of the replay
//! (`--watch-executor separate`, the default). It runs on the engine's CPUs that no core uses
//! (or those of `--watch-cpus`), so the timed cores do none of its work; where every CPU has a
//! core it shares theirs. Its priority stays the lowest either way: it never takes CPU time
//! from a core, nor from what else runs on its CPUs (a server on the same machine, in a lab).
//!
//! Why: a core that also holds the WATCHes (`--watch-executor cores`) lends them its
//! HTTP/2 connections and its one-at-a-time connect gate, so with tens of thousands of
//! WATCHes its requests wait for streams and connects the WATCHes took, and every event the
//! server sends a WATCH is read between two due requests. Here the lane has its own
//! connections (WATCHes that share under `--watch-connections` share the lane's), its own
//! task queue and its own thread; the kernel runs it only when the cores' threads do not
//! need the CPU, so the cores keep their schedule and the WATCHes get what is left.
//! What the lane measured is merged with the cores' results like one more core's.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;

use super::progress::{GateTicket, CROSS_CORE_POLL};
use super::{conn, watch, CoreCtx, CoreResult, CtxShape, Shared};
use crate::clock::{DueWaiter, TimingMode};
use crate::merge::RunMerger;
use crate::metrics::CoreMetrics;

/// Credentials are re-read this often (as the cores do).
const AUTH_EVERY: Duration = Duration::from_secs(1);

/// Progress is published this often (as the cores do).
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Puts the calling thread in the `SCHED_IDLE` class: it runs only when no thread of a
/// normal class wants its CPU, and a waking core thread takes the CPU from it at once.
/// Best effort: without it the lane still runs apart, at normal priority.
fn lower_to_idle_priority() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system call on the calling thread (pid 0) with a valid parameter.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

/// Runs every WATCH of `runs` (global run indexes, all the cores') to the end of the
/// replay, publishing its progress as entry `index` of `Shared::progress` (the one after the
/// cores'). Must run inside a glommio executor; arrives at the start gate like a core.
pub async fn run_watch_lane(
    shared: Arc<Shared>,
    index: usize,
    runs: Vec<usize>,
    ticket: GateTicket,
) -> CoreResult {
    // Marks the lane finished however it ends, for the progress line.
    let _finished = super::FinishedFlag(shared.clone(), index);
    lower_to_idle_priority();
    let Some(start) = ticket.arrive_and_wait(true) else {
        return CoreResult::unstarted(&shared, 0, 0, None);
    };
    let ctx = CoreCtx::new(
        shared,
        CtxShape {
            index,
            start,
            queue_cap: 0,
            max_in_flight: 1,
            max_conns: 1,
            conns_opened: 0,
            h2_pool: Rc::new(RefCell::new(Vec::new())),
        },
    );
    let ticker = glommio::spawn_local(tick(ctx.clone())).detach();
    let unsent = start_watches(&ctx, &runs).await;
    // WATCHes end when every core's normal traffic has ended (or on stop).
    while !ctx.shared.replay_end.all_done() && !ctx.stop_requested() {
        sleep(CROSS_CORE_POLL).await;
    }
    for stop in ctx.watch_stops.borrow().iter() {
        stop.notify();
    }
    let watches: Vec<_> = ctx.watches.borrow_mut().drain(..).collect();
    for w in watches {
        w.await;
    }
    ctx.finished.set(true);
    ticker.await;
    super::publish(&ctx);
    let metrics = std::mem::replace(&mut *ctx.metrics.borrow_mut(), CoreMetrics::new(0, false));
    CoreResult {
        metrics,
        end: ctx.last_end.get(),
        unsent_on_stop: unsent,
        conns_opened: ctx.conns_opened.get(),
        peak_conns: 0,
        max_streams: conn::take_peak_streams(),
        preflight_error: None,
        load: super::CoreLoad::default(),
    }
}

/// Starts each WATCH of `runs` at its due instant (relaxed waits: a WATCH's lag includes its
/// connect anyway). Returns the WATCHes never started because of a stop.
async fn start_watches(ctx: &Rc<CoreCtx>, runs: &[usize]) -> u64 {
    let source = ctx.shared.source.clone();
    let slices = runs
        .iter()
        .map(|&r| source.run_records(r).unwrap_or(&[]))
        .collect();
    let mut merger = RunMerger::new(slices);
    let scale = ctx.shared.settings.scale;
    let mut waiter = DueWaiter::new(TimingMode::Relaxed);
    let stop = || ctx.stop_requested();
    // Due time of the last record taken: one due before it lies past the checked part of
    // its run (a damaged due time) and waits for the check's verdict, as the cores do.
    let mut taken_us = 0;
    while let Some(next_us) = merger.peek_due() {
        // No WATCH leaves from a part of the timeline the check has not covered.
        let need_us = if next_us < taken_us {
            u64::MAX
        } else {
            next_us
        };
        if !crate::source::wait_until_checked(&*source, need_us, &mut waiter, &stop).await {
            // A failed check (or a stop): the cores count what is left unsent.
            return 0;
        }
        taken_us = next_us;
        let Some((cursor, record)) = merger.pop() else {
            break;
        };
        if !record.is_watch() {
            continue;
        }
        let due = ctx.start + scale.offset(next_us);
        waiter.wait_until(due, &stop).await;
        if stop() {
            // The cores count what had not come due when they stopped (WATCHes too); the
            // lane counts the WATCHes that had come due and were never started.
            let now = Instant::now();
            let late = |us: u64| ctx.start + scale.offset(us) <= now;
            let rest = std::iter::from_fn(|| merger.pop())
                .filter(|(_, r)| r.is_watch() && late(r.due_us))
                .count() as u64;
            return rest + u64::from(due <= now);
        }
        watch::spawn(ctx, runs[cursor.run_pos as usize] as u32, cursor.index, due);
    }
    0
}

/// Until the lane finishes: publishes its progress (the progress line, live metrics) every
/// [`PUBLISH_EVERY`], and re-reads the credentials every [`AUTH_EVERY`] (exec plugins and
/// token files rotate).
async fn tick(ctx: Rc<CoreCtx>) {
    let step = Duration::from_millis(50);
    let (mut since_auth, mut since_publish) = (Duration::ZERO, Duration::ZERO);
    while !ctx.finished.get() {
        sleep(step).await;
        since_publish += step;
        if since_publish >= PUBLISH_EVERY {
            since_publish = Duration::ZERO;
            super::publish(&ctx);
        }
        since_auth += step;
        if since_auth >= AUTH_EVERY {
            since_auth = Duration::ZERO;
            ctx.reread_credentials();
        }
    }
}
