//! The core's loop over its io_uring ring. It owns the schedule and the sockets: it
//! releases the requests that are due, writes them itself, handles the ring's completions,
//! and waits in its own ring (`io_uring_enter` with a timeout) until the earlier of a
//! completion or the next due instant less its lead ([`Lead`]). It then readies the
//! instant's requests, sleeps through what readying left of the lead but the last part,
//! and spins that part, so a request leaves at its instant with no other task in between (as
//! wrk2's loop does, on io_uring). glommio remains the executor of everything else on the
//! core (the tick, WATCHes); the loop hands it the thread when one of its timers is due or
//! when it drives sockets of its own.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::timer::Timer;

use super::super::schedule::{CheckGate, Schedule};
use super::super::{CoreCtx, QUEUE_CAP};
use crate::clock::{spin_until, SpinMargin};

/// Longest block in the ring: a bound in case the executor has no timer at all.
const MAX_BLOCK: Duration = Duration::from_millis(10);

/// Shortest block worth making: nearer the executor's next timer, the wait goes through
/// glommio, which fires it.
const MIN_BLOCK: Duration = Duration::from_micros(20);

/// Shortest wait through glommio (see `Wait::Executor`).
const MIN_EXECUTOR_WAIT: Duration = Duration::from_micros(1);

/// Shortest second sleep after readying: below it, a sleep's system call and context switches
/// cost more than spinning the time away.
const SLEEP_AFTER_READYING: Duration = Duration::from_micros(25);

/// How far ahead of a due instant the loop wakes, in two parts calibrated apart: `readying`
/// (from the wake-up it planned to the instant's requests readied, its lateness included
/// when the loop waited for it) and then `sleep` (how late the short sleep after readying
/// ends; an instant that spun through without one counts as on time). The loop sleeps
/// through what readying leaves of its part and spins only the last: a burst whose readying
/// takes long, or varies, costs a sleep, not a spinning core.
struct Lead {
    readying: SpinMargin,
    sleep: SpinMargin,
}

impl Lead {
    fn new(mode: crate::clock::TimingMode) -> Lead {
        Lead {
            readying: SpinMargin::for_readying(mode),
            sleep: SpinMargin::new(mode),
        }
    }

    /// The whole lead: when before a due instant the loop wakes for it.
    fn get(&self) -> Duration {
        self.readying.get() + self.sleep.get()
    }

    /// Until when the requests due at `due` may be readied: the sleep part is left after.
    fn ready_by(&self, due: Instant) -> Instant {
        due.checked_sub(self.sleep.get()).unwrap_or(due)
    }

    /// The requests due at `due` were readied by `ready_at`, the loop having come to them at
    /// `came` after a wait that ran to the wake-up (`waited_to_wake`) or not. Calibrates the
    /// readying part and returns how long to sleep before the sleep part, when that is worth a
    /// sleep. How late a wait to the wake-up ended is the machine's, and the readying part
    /// covers it; a loop busy past the wake-up times only its readying (a lead grown to cover
    /// a backlog would keep the loop asleep beside it).
    fn readied(
        &mut self,
        due: Instant,
        came: Instant,
        waited_to_wake: bool,
        ready_at: Instant,
    ) -> Option<Duration> {
        let woke_for = due.checked_sub(self.get()).unwrap_or(due);
        let from = if waited_to_wake {
            woke_for
        } else {
            came.max(woke_for)
        };
        let ready_by = self.ready_by(due);
        self.readying
            .observe(ready_at.saturating_duration_since(from));
        let left = ready_by.saturating_duration_since(ready_at);
        (left >= SLEEP_AFTER_READYING).then_some(left)
    }

    /// The sleep after readying that was to end at `ready_by` ended at `woke` (`None`: the
    /// loop spun through, and this instant needed none of the sleep part).
    fn slept(&mut self, ready_by: Instant, woke: Option<Instant>) {
        self.sleep
            .observe(woke.map_or(Duration::ZERO, |w| w.saturating_duration_since(ready_by)));
    }
}

/// How the loop waits for its next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Work is ready now.
    None,
    /// Spin until this due instant (it is nearer than the margin).
    Spin(Instant),
    /// Block in the ring until this instant or a completion.
    Ring(Instant),
    /// Wait through glommio (a timer of its own is near, or its sockets need the thread)
    /// until this instant, a completion, or a wake-up.
    Executor(Instant),
    /// A timer of glommio's is due: let the executor fire it and run the tasks it wakes,
    /// whatever completions wait (a loop that always has one would otherwise starve the
    /// tick, and with it the timeouts).
    Timers,
    /// Another task of the core is ready (woken by a timer the executor has already fired,
    /// or by the loop): let it run first, for the same reason.
    Yield,
}

/// How the loop waits, given the next due instant's wake-up time (`wake`, due less the
/// margin, and `due`), the executor's next timer, whether another task of the core is ready
/// (`tasks_ready`), and whether glommio drives sockets of this core.
///
/// Blocking in the ring is sound only while nothing else on this core can need the thread:
/// no other task is ready, and others become ready only through the loop, a timer (the block
/// ends before the next one is due: the tick, stop polls), or glommio I/O (none while this
/// core has no WATCH and no task worker). A timer the executor has fired is no longer
/// pending, so `next_timer` does not show it: its task is ready instead (a loaded machine
/// that keeps the thread off its CPU past several timers has the executor fire them all at
/// once, and the loop may run before the tick they woke).
fn plan_wait(
    now: Instant,
    next: Option<(Instant, Instant)>,
    next_timer: Option<Instant>,
    tasks_ready: bool,
    glommio_io: bool,
) -> Wait {
    // glommio fires a timer only when every task waits: once one is due, the loop waits
    // through glommio, however busy it is.
    if next_timer.is_some_and(|t| t <= now) {
        return Wait::Timers;
    }
    if tasks_ready {
        return Wait::Yield;
    }
    if let Some((wake, due)) = next {
        if due <= now {
            return Wait::None;
        }
        if wake <= now {
            return Wait::Spin(due);
        }
    }
    let wake = next.map(|(wake, _)| wake);
    if next_timer.is_some_and(|t| t <= now + MIN_BLOCK) {
        return Wait::Executor(wake.unwrap_or(now + MAX_BLOCK).min(now + MAX_BLOCK));
    }
    let until = [wake, next_timer]
        .into_iter()
        .flatten()
        .fold(now + MAX_BLOCK, Instant::min);
    if glommio_io {
        Wait::Executor(until)
    } else {
        Wait::Ring(until)
    }
}

/// The next due instant the loop waits for, as (its wake-up: due less the lead, due);
/// `None` while the timeline check is behind (`check_open` false), after the input, or while
/// the ready queue is full.
fn next_instant(
    ctx: &CoreCtx,
    schedule: &Schedule<'_>,
    lead: &Lead,
    check_open: bool,
) -> Option<(Instant, Instant)> {
    if !check_open || ctx.input_done.get() || ctx.queue.borrow().len() >= QUEUE_CAP {
        return None;
    }
    schedule
        .next_due()
        .map(|due| (due.checked_sub(lead.get()).unwrap_or(due), due))
}

/// Runs the core's replay over its ring: the schedule of global runs `runs`, until every
/// request was released (or a stop) and nothing is in flight.
pub(in crate::runtime) async fn drive(ctx: Rc<CoreCtx>, runs: Vec<usize>) {
    let source = ctx.shared.source.clone();
    let mut schedule = Schedule::new(&*source, &runs, ctx.start, ctx.shared.settings.scale);
    let mut lead = Lead::new(ctx.shared.settings.timing);
    let mut timer = Timer::new(Duration::ZERO);
    let mut spun = Duration::ZERO;
    // Whether the loop's last wait ran to the next instant's wake-up (see `Wait::Spin`).
    let mut waited_to_wake = false;
    // Since when the timeline check has been behind the next record (see `check_gate`).
    let mut check_behind = None;
    loop {
        let mut check_open = true;
        if !ctx.input_done.get() {
            let now = Instant::now();
            let gate = schedule.check_gate(now, &mut check_behind);
            if ctx.stop_requested() || gate == CheckGate::Closed {
                // The due requests still queued and those that never came due (after a
                // failed check: past the damage, or behind it in the queue).
                let unsent = ctx.queue.borrow_mut().clear() as u64 + schedule.remaining();
                ctx.unsent_on_stop.set(unsent);
                ctx.input_done.set(true);
            } else if gate == CheckGate::Wait {
                check_open = false;
            } else {
                schedule.release(&ctx, now);
                if schedule.is_exhausted() {
                    ctx.input_done.set(true);
                }
            }
        }
        // A batch of completions stops at the next due instant's wake-up, whose requests go
        // first.
        let wake = next_instant(&ctx, &schedule, &lead, check_open).map(|(wake, _)| wake);
        let (progressed, in_flight, fd, yielded) = {
            let mut guard = ctx.ring.borrow_mut();
            let Some(pool) = guard.as_mut() else { break };
            let (reaped, yielded) = pool.reap(&ctx, wake);
            let started = pool.start_jobs(&ctx);
            match pool.ring().submit() {
                Ok(()) => {}
                // The kernel's completion backlog is full: reaping makes room.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                    ) => {}
                Err(e) => {
                    // The ring itself failed (not one request): nothing more can be sent or
                    // received on this core; what is in flight and what comes is recorded
                    // as failed, so the run still ends with a complete report.
                    tracing::error!("io_uring submit failed: {e}");
                    pool.abandon(&ctx, e);
                }
            }
            if pool.is_done(&ctx) {
                break;
            }
            let progressed = reaped + started > 0 || pool.ring().has_completions();
            (progressed, pool.busy() > 0, pool.ring().fd(), yielded)
        };
        let glommio_io = !ctx.watches.borrow().is_empty() || !ctx.controls.borrow().is_empty();
        let next_timer = glommio::timer::next_deadline();
        let tasks_ready = glommio::executor().tasks_ready();
        if progressed && !yielded && !tasks_ready && next_timer.is_none_or(|t| t > Instant::now()) {
            if glommio_io {
                // Let the WATCHes and the task workers run between batches.
                future::yield_now().await;
            }
            continue;
        }
        // While the timeline check is behind, the loop looks again within `MAX_BLOCK`.
        let next = next_instant(&ctx, &schedule, &lead, check_open);
        let now = Instant::now();
        let planned_wake = next.map(|(wake, _)| wake);
        let to_wake = std::mem::take(&mut waited_to_wake);
        match plan_wait(now, next, next_timer, tasks_ready, glommio_io) {
            Wait::None => {}
            Wait::Spin(due) => {
                let ready_by = lead.ready_by(due);
                // The requests due at the instant are readied while it comes, so that at
                // the instant only their sends remain; those not readied by `ready_by` start
                // right after the instant, so the first of them leaves on time.
                if !ctx.input_done.get() && !ctx.stop_requested() {
                    // `release` lets go only what the timeline check has covered.
                    schedule.release(&ctx, due);
                }
                let armed = match ctx.ring.borrow_mut().as_mut() {
                    Some(pool) => pool.arm(&ctx, ready_by),
                    None => break,
                };
                let sleep = lead.readied(due, now, to_wake, Instant::now());
                // Not the ring's wait: a completion must not end it, and none may be handled
                // before the instant (it could flush what is readied).
                let woke = sleep.map(|d| {
                    std::thread::sleep(d);
                    Instant::now()
                });
                lead.slept(ready_by, woke);
                spun += spin_until(due);
                if armed > 0 {
                    if let Some(pool) = ctx.ring.borrow_mut().as_mut() {
                        pool.fire(&ctx);
                    }
                }
            }
            Wait::Ring(until) => {
                match ctx.ring.borrow_mut().as_mut() {
                    // Behind schedule against a busy server: a pause, then every answer
                    // that came is read at once (never past the next wake-up).
                    Some(pool) => match pool.gather_for(&ctx, now) {
                        Some(pause) => {
                            ctx.metrics.borrow_mut().backlog_pauses += 1;
                            std::thread::sleep(pause.min(until.saturating_duration_since(now)))
                        }
                        // However it ends (a completion or the time), the loop looks again.
                        None => {
                            pool.ring().wait(until.saturating_duration_since(now));
                        }
                    },
                    None => break,
                }
                waited_to_wake = planned_wake == Some(until) && Instant::now() >= until;
            }
            Wait::Timers => {
                // A timer wait suspends the loop so the executor fires its timers; the yield
                // then puts the loop behind the tasks they woke.
                timer.reset(MIN_EXECUTOR_WAIT);
                (&mut timer).await;
                future::yield_now().await;
            }
            // The core's tasks share one task queue: the loop goes behind them.
            Wait::Yield => future::yield_now().await,
            Wait::Executor(until) => {
                // At least 1 µs: a timer already due returns at once, without the executor
                // getting the thread to fire its own.
                timer.reset(until.saturating_duration_since(now).max(MIN_EXECUTOR_WAIT));
                let completion = async {
                    if !in_flight {
                        return future::pending().await;
                    }
                    if let Err(e) = glommio::io::readable(fd).await {
                        // Never seen; the timer and the tick keep the loop going.
                        tracing::debug!("waiting on the io_uring fd: {e}");
                        future::pending::<()>().await;
                    }
                };
                future::or(
                    async {
                        (&mut timer).await;
                    },
                    future::or(completion, ctx.ring_wake.notified()),
                )
                .await;
                waited_to_wake = planned_wake == Some(until) && Instant::now() >= until;
            }
        }
    }
    ctx.spun.set(ctx.spun.get() + spun);
    ctx.input_done.set(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_waits_in_its_ring_for_the_earliest_of_its_events() {
        let now = Instant::now();
        let us = Duration::from_micros;
        let ms = Duration::from_millis;
        // A due instant ahead, no timer: blocks until its wake-up.
        let next = Some((now + ms(3), now + ms(3) + us(50)));
        assert_eq!(
            plan_wait(now, next, None, false, false),
            Wait::Ring(now + ms(3))
        );
        // The tick comes first: blocks until it.
        assert_eq!(
            plan_wait(now, next, Some(now + ms(1)), false, false),
            Wait::Ring(now + ms(1))
        );
        // Nothing scheduled: bounded block.
        assert_eq!(
            plan_wait(now, None, None, false, false),
            Wait::Ring(now + MAX_BLOCK)
        );
        // Inside the margin: spin to the instant; at or past it: send now.
        assert_eq!(
            plan_wait(now, Some((now - us(1), now + us(20))), None, false, false),
            Wait::Spin(now + us(20))
        );
        assert_eq!(
            plan_wait(now, Some((now - us(60), now)), None, false, false),
            Wait::None
        );
        // A timer of the executor due: glommio must fire it, even before a due request.
        assert_eq!(
            plan_wait(now, Some((now - us(60), now)), Some(now), false, false),
            Wait::Timers
        );
        assert_eq!(
            plan_wait(now, next, Some(now + MIN_BLOCK / 2), false, false),
            Wait::Executor(now + ms(3))
        );
        // glommio drives sockets of this core: never block its reactor.
        assert_eq!(
            plan_wait(now, next, Some(now + ms(5)), false, true),
            Wait::Executor(now + ms(3))
        );
    }

    #[test]
    fn a_loop_busy_past_the_wake_up_times_its_readying_alone() {
        let us = Duration::from_micros;
        let due = Instant::now() + Duration::from_millis(5);
        let mut lead = Lead::new(crate::clock::TimingMode::Precise);
        let start = lead.readying.get();
        // Readied 5 µs after the loop came, 10 µs before the instant, long after its wake-up.
        let (came, ready_at) = (due - us(15), due - us(10));
        lead.readied(due, came, false, ready_at);
        assert!(lead.readying.get() < start, "{:?}", lead.readying.get());
        // The same readying after a wait to the wake-up: the wait's lateness is counted.
        let mut lead = Lead::new(crate::clock::TimingMode::Precise);
        lead.readied(due, came, true, ready_at);
        assert!(lead.readying.get() > start, "{:?}", lead.readying.get());
    }

    #[test]
    fn what_readying_leaves_is_slept_when_worth_a_sleep_and_a_spin_through_is_on_time() {
        let due = Instant::now() + Duration::from_millis(5);
        let mut lead = Lead::new(crate::clock::TimingMode::Precise);
        let ready_by = lead.ready_by(due);
        assert_eq!(ready_by, due - lead.sleep.get());
        let woke_for = due - lead.get();
        // Readied at once: the rest of the readying part is slept.
        assert_eq!(
            lead.readied(due, woke_for, true, woke_for),
            Some(ready_by - woke_for)
        );
        // Readied just before `ready_by`: spun through.
        let mut lead = Lead::new(crate::clock::TimingMode::Precise);
        let late = ready_by - SLEEP_AFTER_READYING / 2;
        assert_eq!(lead.readied(due, woke_for, true, late), None);
        let sleep = lead.sleep.get();
        lead.slept(ready_by, None);
        assert!(lead.sleep.get() < sleep);
        // A sleep that ended later than the sleep part raises it.
        lead.slept(ready_by, Some(ready_by + sleep * 2));
        assert!(lead.sleep.get() > sleep);
    }

    #[test]
    fn a_ready_task_goes_before_the_loop_blocks_or_sends() {
        let now = Instant::now();
        let us = Duration::from_micros;
        let ms = Duration::from_millis;
        // The tick woken by a timer already fired: no timer pending, yet the loop must not
        // block in its ring (it would until a completion, with the timeouts unchecked).
        assert_eq!(plan_wait(now, None, None, true, false), Wait::Yield);
        let next = Some((now + ms(3), now + ms(3) + us(50)));
        assert_eq!(
            plan_wait(now, next, Some(now + ms(1)), true, false),
            Wait::Yield
        );
        // Before a due request too, as a due timer is.
        assert_eq!(
            plan_wait(now, Some((now - us(60), now)), None, true, false),
            Wait::Yield
        );
        assert_eq!(
            plan_wait(now, next, Some(now + ms(5)), true, true),
            Wait::Yield
        );
        // A due timer still goes through the executor, which fires it.
        assert_eq!(plan_wait(now, None, Some(now), true, false), Wait::Timers);
    }

    /// The state the loop must see: the thread was away past two timers (a loaded machine),
    /// the executor fired both at once and runs the loop first. The tick's timer is no longer
    /// pending; only `tasks_ready` tells that the tick waits to run.
    #[test]
    fn a_timer_fired_while_the_thread_was_away_leaves_a_ready_task_not_a_pending_timer() {
        let ms = Duration::from_millis;
        let executor = glommio::LocalExecutorBuilder::default()
            .make()
            .expect("a glommio executor");
        let (seen, after) = executor.run(async move {
            let ticked = Rc::new(std::cell::Cell::new(false));
            // The loop's timer is the earlier one, so the executor wakes the loop first.
            let the_loop = {
                let ticked = ticked.clone();
                glommio::spawn_local(async move {
                    Timer::new(ms(1)).await;
                    let now = Instant::now();
                    let seen = (
                        glommio::timer::next_deadline().is_some_and(|t| t <= now),
                        glommio::executor().tasks_ready(),
                        ticked.get(),
                    );
                    future::yield_now().await;
                    (seen, (glommio::executor().tasks_ready(), ticked.get()))
                })
            };
            let tick = {
                let ticked = ticked.clone();
                glommio::spawn_local(async move {
                    glommio::timer::sleep(ms(2)).await;
                    ticked.set(true);
                })
            };
            // The thread off its CPU past both timers.
            glommio::spawn_local(async move { std::thread::sleep(ms(20)) }).detach();
            let result = the_loop.await;
            tick.await;
            result
        });
        // No due timer shows, the tick has not run, and it is ready.
        assert_eq!(seen, (false, true, false));
        // Once the loop yielded, the tick ran and nothing else is ready.
        assert_eq!(after, (false, true));
    }
}
