//! One core's replay: a dispatcher that releases requests at their due instants into a
//! ready queue, a pool of connection workers that send them, and WATCH tasks.
//!
//! Everything here lives on one glommio executor (single thread): state is in `Rc`,
//! `Cell` and `RefCell`, never in locks or atomics, except the progress counters this
//! core publishes and the start/stop signals.

pub mod conn;
mod core_ctx;
mod exchange;
pub mod failure;
mod h2_request;
pub mod notify;
pub mod preflight;
pub mod progress;
pub mod queue;
mod request_url;
mod ring;
mod schedule;
mod watch;
mod watch_lane;
mod worker;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::task::JoinHandle;
use glommio::timer::sleep;

use crate::clock::{set_precise_timer_slack, DueWaiter, SpeedScale, TimingMode};
use crate::http1::RequestTemplate;
use crate::metrics::CoreMetrics;
use crate::source::ReplaySource;
use crate::target::Target;
use conn::Conn;
pub(crate) use core_ctx::{CancelReason, CoreCtx, CtxShape, WorkerControl};
use progress::{CoreProgress, GateTicket, ReplayEnd, CROSS_CORE_POLL};
use schedule::{CheckGate, Schedule, CHECK_POLL};
pub use watch_lane::run_watch_lane;

/// Most due requests waiting for a connection on one core; the dispatcher pauses beyond it.
const QUEUE_CAP: usize = 16 * 1024;
/// A dispatcher held back by a full queue resumes once fewer requests than this wait.
const QUEUE_RESUME: usize = QUEUE_CAP / 2;
/// How often a core checks timeouts and publishes progress.
const TICK: Duration = Duration::from_millis(10);
/// Progress (lag p99) is recomputed every this many ticks.
const PUBLISH_EVERY: u32 = 10;
/// Longest preflight check (bounded by `--timeout` too).
const PREFLIGHT_LIMIT: Duration = Duration::from_secs(10);
/// Credentials are re-read every this many ticks.
const AUTH_EVERY: u32 = 100;

/// Settings every core shares.
#[derive(Debug, Clone)]
pub struct CoreSettings {
    /// How the dispatcher waits.
    pub timing: TimingMode,
    /// Profile time → wall time.
    pub scale: SpeedScale,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Time given to in-flight requests after a stop.
    pub grace: Duration,
    /// Keep raw latencies and error records.
    pub raw_data: bool,
    /// Check the target with `GET /version` before the start (see `preflight`).
    pub preflight: bool,
    /// `--retries`.
    pub retries: crate::run::RetryPolicy,
    /// `--watch-connections`.
    pub watch_connections: crate::run::WatchConnections,
    /// `--watch-executor`: the cores or the WATCH lane (`watch_lane`) hold the WATCHes.
    pub watch_executor: crate::run::WatchExecutor,
}

/// client-go's most retries of one request (`rest.Request`'s default `maxRetries`).
pub(crate) const CLIENT_GO_MAX_RETRIES: u8 = 10;

impl CoreSettings {
    /// How long to wait before sending again a request answered `status` with `Retry-After:
    /// retry_after` after `attempts` retries, under `--retries client-go` (client-go's
    /// rule: a 429 or 5xx carrying an integer `Retry-After`, at most 10 times); `None`:
    /// the answer is the outcome.
    pub(crate) fn retry_delay(
        &self,
        status: u16,
        retry_after: Option<u32>,
        attempts: u8,
    ) -> Option<Duration> {
        let retryable = status == 429 || status >= 500;
        (self.retries == crate::run::RetryPolicy::ClientGo
            && retryable
            && attempts < CLIENT_GO_MAX_RETRIES)
            .then_some(())
            .and(retry_after)
            .map(|s| Duration::from_secs(u64::from(s)))
    }
}

/// What all cores share (read-only, or atomics).
pub struct Shared {
    /// The requests.
    pub source: Arc<dyn ReplaySource>,
    /// The server.
    pub target: Arc<Target>,
    /// Fixed request headers.
    pub template: RequestTemplate,
    /// Set on SIGINT/SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// End of normal traffic over all cores.
    pub replay_end: ReplayEnd,
    /// One entry per core, then the WATCH lane's if it runs.
    pub progress: Box<[CoreProgress]>,
    /// WATCHes started per runner, over all cores (kperf's WATCH connection rule).
    pub watches_started: Box<[std::sync::atomic::AtomicU32]>,
    /// Settings.
    pub settings: CoreSettings,
}

/// One core's share of the work.
#[derive(Debug, Clone)]
pub struct CorePlan {
    /// Core number (index into `Shared::progress`).
    pub index: usize,
    /// Global run indexes this core replays.
    pub runs: Vec<usize>,
    /// Connections opened before the start.
    pub conns: usize,
    /// Most connections this core may open.
    pub max_conns: usize,
    /// Most requests in flight on this core (HTTP/1.1: its most connections).
    pub max_in_flight: usize,
}

/// What a core hands back at the end.
#[derive(Debug)]
pub struct CoreResult {
    /// Its measurements.
    pub metrics: CoreMetrics,
    /// When its last request finished.
    pub end: Instant,
    /// Due requests dropped unsent because of a stop.
    pub unsent_on_stop: u64,
    /// Connections opened (including replacements and WATCH connections).
    pub conns_opened: u64,
    /// Largest number of pool connections at once.
    pub peak_conns: usize,
    /// Most streams seen at once on one HTTP/2 connection.
    pub max_streams: usize,
    /// Why the preflight stopped this core (then nothing was sent).
    pub preflight_error: Option<preflight::PreflightError>,
    /// How busy the core's thread was while it replayed.
    pub load: CoreLoad,
}

impl CoreResult {
    /// The result of a core that never started its replay: nothing measured, `unsent`
    /// requests left unsent, `conns_opened` connections opened before the start.
    pub(super) fn unstarted(
        shared: &Shared,
        unsent: u64,
        conns_opened: u64,
        preflight_error: Option<preflight::PreflightError>,
    ) -> CoreResult {
        CoreResult {
            metrics: CoreMetrics::new(shared.source.info().label_count, shared.settings.raw_data),
            end: Instant::now(),
            unsent_on_stop: unsent,
            conns_opened,
            peak_conns: 0,
            max_streams: conn::take_peak_streams(),
            preflight_error,
            load: CoreLoad::default(),
        }
    }
}

/// How much of a core's thread the replay used, from its start to the end of its normal
/// traffic (WATCHes after it are not counted).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreLoad {
    /// Wall time.
    pub wall: Duration,
    /// CPU time of the thread (user and system).
    pub cpu: Duration,
    /// Of `cpu`, the time spent spinning for due instants (precise timing's price).
    pub spun: Duration,
}

impl CoreLoad {
    /// The fraction of the wall time the thread worked, spinning excluded: near 1, the
    /// core could not keep up with its schedule.
    pub fn busy_fraction(&self) -> f64 {
        if self.wall.is_zero() {
            return 0.0;
        }
        (self.cpu.saturating_sub(self.spun).as_secs_f64() / self.wall.as_secs_f64()).min(1.0)
    }
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `work`, or `None` as soon as `stop` is set (`work` is then dropped, its sockets closed).
async fn unless_stopped<T>(
    stop: &AtomicBool,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        while !stop.load(Ordering::Relaxed) {
            sleep(STOP_POLL).await;
        }
        None
    })
    .await
}

/// How often a core looks at the stop flag while it connects.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Runs one core's replay to the end. Must run inside a glommio executor.
pub async fn run_core(shared: Arc<Shared>, plan: CorePlan, ticket: GateTicket) -> CoreResult {
    // Marks the core finished however it ends (also on a panic), for the progress line.
    let _finished = FinishedFlag(shared.clone(), plan.index);
    if shared.settings.timing == TimingMode::Precise {
        set_precise_timer_slack();
    }
    let prewarm_timeout = shared.settings.timeout.min(Duration::from_secs(5));
    let h2_pool: Rc<conn::H2Pool> = Rc::new(RefCell::new(Vec::new()));
    let mut checked = None;
    // What a run that never starts leaves unsent: every record of this core's runs.
    let planned: u64 = plan
        .runs
        .iter()
        .filter_map(|&r| shared.source.runs().get(r))
        .map(|r| r.len)
        .sum();
    // Ctrl-C / SIGTERM during the preflight or the connects: this core arrives at the gate
    // with nothing opened and the main thread ends the run before its start.
    let stopped_before_start = |ticket: GateTicket| {
        let _ = ticket.arrive_and_wait(true);
        CoreResult::unstarted(&shared, planned, 0, None)
    };
    if shared.settings.preflight {
        let limit = shared.settings.timeout.min(PREFLIGHT_LIMIT);
        match unless_stopped(&shared.stop, preflight::check(&shared, &h2_pool, limit)).await {
            None => return stopped_before_start(ticket),
            Some(Ok(conn)) => checked = conn,
            Some(Err(e)) => {
                // Nothing is sent: the main thread aborts the start and reports `e`.
                let _ = ticket.arrive_and_wait(false);
                return CoreResult::unstarted(&shared, 0, 0, Some(e));
            }
        }
    }
    let more = plan.conns.saturating_sub(usize::from(checked.is_some()));
    // The loop runs HTTP/2 itself: its connections are prewarmed as sockets.
    let for_loop = ring::available();
    let prewarm = conn::prewarm(&shared.target, &h2_pool, more, prewarm_timeout, for_loop);
    let Some(mut prewarmed) = unless_stopped(&shared.stop, prewarm).await else {
        return stopped_before_start(ticket);
    };
    if checked.is_some() {
        prewarmed.conns.push(checked);
    }
    // Connections, not workers: HTTP/2 workers hold slots of the pool's shared connections.
    let opened = (prewarmed
        .conns
        .iter()
        .filter(|c| matches!(c, Some(Conn::Http1(_))))
        .count()
        + prewarmed.h2_sockets.len()
        + h2_pool.borrow().len()) as u64;
    let Some(start) = ticket.arrive_and_wait(true) else {
        return CoreResult::unstarted(&shared, planned, opened, None);
    };
    let ctx = CoreCtx::new(
        shared,
        CtxShape {
            index: plan.index,
            start,
            queue_cap: QUEUE_CAP + 1024,
            max_in_flight: plan.max_in_flight.max(plan.conns).max(1),
            max_conns: plan.max_conns.max(plan.conns).max(1),
            conns_opened: opened,
            h2_pool,
        },
    );
    let cpu_at_start = thread_cpu_time();
    let ticker = glommio::spawn_local(tick_loop(ctx.clone())).detach();
    let http2 = !ctx.h2_pool.borrow().is_empty();
    let pool = ring::loop_pool(
        &ctx.shared.target,
        prewarmed,
        ctx.max_conns,
        ctx.max_in_flight,
        http2,
    );
    match pool {
        Ok(pool) => {
            *ctx.ring.borrow_mut() = Some(pool);
            // The ring's loop reads the schedule itself: no task between an instant and
            // its send.
            let runs = plan.runs.clone();
            let driver = glommio::spawn_local(ring::drive(ctx.clone(), runs)).detach();
            ctx.workers.borrow_mut().push(driver);
        }
        Err(conns) => {
            for c in conns {
                ctx.spawn_worker(c);
            }
            dispatch(&ctx, &plan.runs).await;
        }
    }

    // Normal traffic: wait for the pool, with `--grace` after a stop.
    let workers: Vec<JoinHandle<()>> = ctx.workers.borrow_mut().drain(..).collect();
    let all_workers = async {
        for w in workers {
            w.await;
        }
        // Workers spawned while we waited (pool growth) are joined too.
        loop {
            let more: Vec<JoinHandle<()>> = ctx.workers.borrow_mut().drain(..).collect();
            if more.is_empty() {
                break;
            }
            for w in more {
                w.await;
            }
        }
    };
    futures_lite::pin!(all_workers);
    let stopped = async {
        while !ctx.stop_requested() {
            sleep(CROSS_CORE_POLL * 4).await;
        }
        sleep(ctx.shared.settings.grace).await;
    };
    if future::or(
        async {
            (&mut all_workers).await;
            true
        },
        async {
            stopped.await;
            false
        },
    )
    .await
    {
    } else {
        ctx.cancel_busy(CancelReason::Interrupted);
        all_workers.await;
    }
    let peak_conns =
        ctx.controls.borrow().len() + ctx.ring.borrow().as_ref().map_or(0, ring::LoopPool::peak);
    let load = CoreLoad {
        wall: ctx.last_end.get().saturating_duration_since(start),
        cpu: thread_cpu_time().saturating_sub(cpu_at_start),
        spun: ctx.spun.get(),
    };

    // WATCHes end when every core's normal traffic has ended (or on stop).
    ctx.shared.replay_end.core_done();
    while !ctx.shared.replay_end.all_done() && !ctx.stop_requested() {
        sleep(CROSS_CORE_POLL).await;
    }
    for stop in ctx.watch_stops.borrow().iter() {
        stop.notify();
    }
    let watches: Vec<JoinHandle<()>> = ctx.watches.borrow_mut().drain(..).collect();
    for w in watches {
        w.await;
    }
    ctx.finished.set(true);
    ticker.await;
    publish(&ctx);
    ctx.shared.progress[ctx.index]
        .finished
        .store(true, Ordering::Release);

    let end = ctx.last_end.get();
    let conns_opened = ctx.conns_opened.get();
    let unsent = ctx.unsent_on_stop.get();
    let metrics = std::mem::replace(&mut *ctx.metrics.borrow_mut(), CoreMetrics::new(0, false));
    CoreResult {
        metrics,
        end,
        unsent_on_stop: unsent,
        conns_opened,
        peak_conns,
        max_streams: conn::take_peak_streams(),
        preflight_error: None,
        load,
    }
}

/// Sets the core's `finished` progress flag when dropped.
struct FinishedFlag(Arc<Shared>, usize);

impl Drop for FinishedFlag {
    fn drop(&mut self) {
        if let Some(p) = self.0.progress.get(self.1) {
            p.finished.store(true, Ordering::Release);
        }
    }
}

/// Releases this core's requests at their due instants to the task workers (the ring's
/// loop reads the schedule itself). A stop leaves the rest unsent (`unsent_on_stop`).
async fn dispatch(ctx: &Rc<CoreCtx>, runs: &[usize]) {
    let source = ctx.shared.source.clone();
    let mut schedule = Schedule::new(&*source, runs, ctx.start, ctx.shared.settings.scale);
    let mut waiter = DueWaiter::new(ctx.shared.settings.timing);
    let stop = || ctx.stop_requested();
    while let Some(due) = schedule.next_due() {
        // Nothing the timeline check has not covered is sent (it runs far ahead: this
        // rarely waits).
        let mut give_up = None;
        loop {
            match schedule.check_gate(Instant::now(), &mut give_up) {
                CheckGate::Open => break,
                CheckGate::Wait => waiter.pause(CHECK_POLL).await,
                CheckGate::Closed => break,
            }
            if stop() {
                break;
            }
        }
        if schedule.is_halted() {
            break;
        }
        waiter.wait_until(due, &stop).await;
        if stop() {
            break;
        }
        let pushed = schedule.release(ctx, Instant::now()).queued;
        ctx.wake_or_grow(pushed);
        // Let the workers and the reactor run before the next batch; when the queue is
        // full, wait until the pool has taken some of it.
        if ctx.queue.borrow().len() >= QUEUE_CAP {
            ctx.space.clear();
            while ctx.queue.borrow().len() >= QUEUE_RESUME && !stop() {
                future::or(
                    ctx.space.notified(),
                    waiter.pause(Duration::from_millis(50)),
                )
                .await;
            }
        } else {
            waiter.pause(Duration::from_micros(1)).await;
        }
    }
    // After a stop: the due requests still queued and those that never came due.
    if stop() || schedule.is_halted() {
        ctx.unsent_on_stop
            .set(ctx.queue.borrow_mut().clear() as u64 + schedule.remaining());
    }
    ctx.spun.set(ctx.spun.get() + waiter.spun());
    ctx.input_done.set(true);
    ctx.wake_all_idle();
}

/// Publishes this core's progress counters.
fn publish(ctx: &CoreCtx) {
    let m = ctx.metrics.borrow();
    let p99 = if m.lag.is_empty() {
        0
    } else {
        m.lag.value_at_quantile(0.99)
    };
    let progress = &ctx.shared.progress[ctx.index];
    progress.publish(m.sent, m.completed + m.failed, m.failed, p99);
    // Pool connections: the slot pool's, plus the io_uring pool's largest size so far.
    let conns =
        ctx.controls.borrow().len() + ctx.ring.borrow().as_ref().map_or(0, ring::LoopPool::peak);
    progress.live.publish(&m, conns);
}

/// Timeouts, progress and credential refresh, every `TICK` until the core finishes.
async fn tick_loop(ctx: Rc<CoreCtx>) {
    let timeout = ctx.shared.settings.timeout;
    let (mut to_publish, mut to_auth) = (PUBLISH_EVERY, AUTH_EVERY);
    while !ctx.finished.get() {
        sleep(TICK).await;
        let now = Instant::now();
        if let Some(pool) = ctx.ring.borrow_mut().as_mut() {
            let started_before = now.checked_sub(timeout);
            if started_before.is_some() && pool.cancel(CancelReason::Timeout, started_before) > 0 {
                ctx.ring_wake.notify();
            }
            // A request waiting for its Retry-After (`--retries client-go`), or a stop that
            // ends the wait, needs the pool's loop.
            if pool.has_due_retry(now) || (ctx.stop_requested() && pool.busy() > 0) {
                ctx.ring_wake.notify();
            }
        }
        for slot in ctx.controls.borrow().iter() {
            if let Some(since) = slot.busy_since.get() {
                if now.saturating_duration_since(since) >= timeout && !slot.cancel.is_set() {
                    slot.cancel_reason.set(CancelReason::Timeout);
                    slot.cancel.notify();
                }
            }
        }
        to_publish -= 1;
        if to_publish == 0 {
            to_publish = PUBLISH_EVERY;
            publish(&ctx);
        }
        to_auth -= 1;
        if to_auth == 0 {
            to_auth = AUTH_EVERY;
            ctx.reread_credentials();
        }
    }
}
