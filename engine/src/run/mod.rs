//! Runs a replay: picks the runs, starts one pinned glommio executor per core, fixes
//! the common start instant, shows progress, and merges what the cores measured.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use glommio::{LocalExecutorBuilder, Placement};

mod limits;
mod placement;
mod progress_line;
mod sizing;

use crate::clock::{SpeedScale, TimingMode};
use crate::http1::RequestTemplate;
use crate::metrics::{CoreMetrics, SecondCounts};
use crate::plan::{assign_runs, split_evenly, RunnerSelection};
use crate::runtime::progress::{CoreProgress, GateTicket, ReplayEnd, StartGate};
use crate::runtime::{run_core, run_watch_lane, CorePlan, CoreSettings, Shared};
use crate::source::ReplaySource;
use crate::target::Target;
use limits::{
    raise_memlock_soft_limit, raise_nofile_soft_limit, watch_descriptors, NOFILE_RESERVE,
};
use progress_line::progress_loop;
pub use sizing::{config_warnings, pool_sizes, replayed_runners, PoolSizes};

/// How to run a replay.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Executors (cores); 0 = one per CPU of `cpus`.
    pub cores: usize,
    /// CPUs to pin executors to (`--cpus`); `None`: this process's affinity mask.
    pub cpus: Option<Vec<usize>>,
    /// Allow more executors than CPUs (round robin); they then compete for CPU time.
    pub share_cpus: bool,
    /// Serve Prometheus exposition here during the run (`--metrics-listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Total pool connections over all cores (default: connsPerRunner × replayed runners).
    pub conns: Option<usize>,
    /// Total connection cap over all cores (default: 4 × conns).
    pub max_conns: Option<usize>,
    /// Total requests in flight over all cores before a due request waits for a connection
    /// (default: the larger of `max_conns` and kperf's max(clientsPerRunner, connsPerRunner) ×
    /// replayed runners; at least `conns`).
    pub max_in_flight: Option<usize>,
    /// Whether 429/5xx answers with `Retry-After` are retried (`--retries`).
    pub retries: RetryPolicy,
    /// Which WATCHes share pool connections (`--watch-connections`).
    pub watch_connections: WatchConnections,
    /// Where the WATCHes run (`--watch-executor`).
    pub watch_executor: WatchExecutor,
    /// CPUs of the WATCH executor (`--watch-cpus`); `None`: the CPUs of `cpus` (else of the
    /// affinity mask) that no core uses, else the cores'.
    pub watch_cpus: Option<Vec<usize>>,
    /// Replay speed (> 0).
    pub speed: f64,
    /// Waiting mode.
    pub timing: TimingMode,
    /// Wall-clock start (default: as soon as every core is connected).
    pub start_at: Option<SystemTime>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Time given to in-flight requests after Ctrl-C / SIGTERM.
    pub grace: Duration,
    /// Keep raw latencies and error records (`--raw-data`).
    pub raw_data: bool,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Runners to replay.
    pub selection: RunnerSelection,
    /// Show a progress line on stderr (only if it is a terminal).
    pub progress: bool,
}

/// `--retries`: what a 429 or 5xx answer carrying `Retry-After` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RetryPolicy {
    /// The first answer is the outcome.
    #[default]
    None,
    /// client-go's rule: sent again after the seconds `Retry-After` says, up to 10 times.
    ClientGo,
}

/// `--watch-connections`: which WATCHes ride on pool connections (HTTP/2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WatchConnections {
    /// kperf's rule: the first connsPerRunner WATCHes of a runner share pool connections,
    /// later ones open their own.
    #[default]
    Kperf,
    /// Every WATCH takes a stream on a pool connection when one has room.
    Shared,
    /// Every WATCH opens its own connection.
    Own,
}

/// `--watch-executor`: which executor opens, holds and reads the WATCHes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WatchExecutor {
    /// One executor of their own (the WATCH lane), on a thread of the lowest CPU priority
    /// (on CPUs no core uses when there are some, `--watch-cpus`), with connections of its
    /// own: the cores' schedule does not wait for the WATCHes' connects, streams or events.
    #[default]
    Separate,
    /// Each core holds the WATCHes of its runs, on its own connections (WATCHes that share
    /// take streams on the connections of its requests).
    Cores,
}

/// A replay that could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An option is out of range.
    #[error("{0}")]
    Invalid(String),
    /// A core's executor could not be started.
    #[error("cannot start the executor of core {core} (CPU {cpu}): {message} (glommio needs RLIMIT_MEMLOCK >= 512 KiB per process: `ulimit -l`, or the container's memlock limit)")]
    Executor {
        /// Core number.
        core: usize,
        /// CPU it was pinned to.
        cpu: usize,
        /// The cause.
        message: String,
    },
    /// The preflight `GET /version` failed: nothing of the timeline was sent.
    #[error(transparent)]
    Preflight(#[from] crate::runtime::preflight::PreflightError),
    /// The source failed its check before the start (nothing was sent).
    #[error("{0}; nothing was sent (preprocess the profile again)")]
    Damaged(#[from] crate::source::DamagedSource),
    /// A core stopped abnormally.
    #[error("core {core} failed: {message}")]
    CoreFailed {
        /// Core number.
        core: usize,
        /// The cause.
        message: String,
    },
}

/// What a replay measured, merged over cores, with the facts the report needs.
#[derive(Debug)]
pub struct RunOutcome {
    /// Merged measurements.
    pub metrics: CoreMetrics,
    /// Wall-clock start instant.
    pub start_wall: SystemTime,
    /// From the start instant to the end of the last request.
    pub duration: Duration,
    /// Whether the run was stopped by a signal.
    pub interrupted: bool,
    /// The timeline check failed after the start (or fell too far behind): the dispatchers
    /// stopped before the part it had not covered, so every request sent was checked.
    pub check_failure: Option<crate::source::DamagedSource>,
    /// Executors used.
    pub cores: usize,
    /// The CPU each executor was pinned to, by core.
    pub cpus: Vec<usize>,
    /// The CPUs the WATCH executor's thread was allowed, as it read them back (no WATCH
    /// executor: `None`).
    pub watch_cpus: Option<Vec<usize>>,
    /// Pool connections opened at the start, total.
    pub conns: usize,
    /// Connection cap, total.
    pub max_conns: usize,
    /// Requests in flight allowed, total.
    pub max_in_flight: usize,
    /// Requests in the replayed runs.
    pub scheduled: u64,
    /// Due time of the last replayed request, µs.
    pub scheduled_span_us: u64,
    /// Replayed requests per second of wall time since the start, as scheduled.
    pub scheduled_per_second: SecondCounts,
    /// Requests never sent because of a stop (due and queued, or not yet due).
    pub unsent_on_stop: u64,
    /// Connections opened, total (pool, replacements, WATCHes).
    pub conns_opened: u64,
    /// Largest pool size per core, summed.
    pub peak_conns: usize,
    /// Connections opened by each core (pool, replacements, WATCHes).
    pub conns_opened_per_core: Vec<u64>,
    /// Most streams seen at once on one HTTP/2 connection (0: no HTTP/2).
    pub max_streams: u64,
    /// How each core kept its schedule, by core.
    pub per_core: Vec<crate::report::timing::CoreTiming>,
}

/// How often the main thread looks at the stop flag while it waits before the start.
const START_WAIT_STEP: Duration = Duration::from_millis(10);

/// Accept header for the timeline's content type.
fn accept_of(source: &dyn ReplaySource) -> &'static str {
    source.info().spec.content_type.accept()
}

/// Runs the replay to the end (or until `stop` is set and the grace period passed), without
/// a preflight check (what `--no-preflight` asks for).
pub fn run(
    source: Arc<dyn ReplaySource>,
    target: Arc<Target>,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, RunError> {
    run_checked(source, target, opts, false, stop)
}

/// Like [`run`], but first each core sends `GET /version` through the replay's target,
/// TLS, credentials and protocol; a wrong CA, a 401/403, an unreachable server or no answer
/// within min(`--timeout`, 10 s) returns [`RunError::Preflight`] before anything is sent.
pub fn run_with_preflight(
    source: Arc<dyn ReplaySource>,
    target: Arc<Target>,
    opts: &RunOptions,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, RunError> {
    run_checked(source, target, opts, true, stop)
}

fn run_checked(
    source: Arc<dyn ReplaySource>,
    target: Arc<Target>,
    opts: &RunOptions,
    preflight: bool,
    stop: Arc<AtomicBool>,
) -> Result<RunOutcome, RunError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(RunError::Invalid(format!(
            "--speed must be > 0, got {}",
            opts.speed
        )));
    }
    let placement::ExecutorCpus {
        cores: cpus,
        watches: watch_cpus,
    } = placement::place_executors(opts)?;
    let cores = cpus.len();
    let info = source.info().clone();
    let runs: Vec<(usize, u64)> = source
        .runs()
        .iter()
        .enumerate()
        .filter(|(_, r)| opts.selection.includes(r.runner))
        .map(|(i, r)| (i, r.len))
        .collect();
    let scheduled: u64 = runs.iter().map(|r| r.1).sum();
    let scheduled_span_us = runs
        .iter()
        .filter_map(|&(i, _)| {
            source
                .run_records(i)
                .and_then(|r| r.last())
                .map(|r| r.due_us)
        })
        .max()
        .unwrap_or(0);
    let scale = SpeedScale::new(opts.speed);
    let per_core_runs = assign_runs(&runs, cores);
    let PoolSizes {
        conns,
        max_conns,
        max_in_flight,
    } = pool_sizes(&info.spec, info.runner_count, opts, cores);
    let watches = match opts.selection {
        RunnerSelection::All => info.watch_count,
        RunnerSelection::One(_) => runs
            .iter()
            .filter_map(|&(i, _)| source.run_records(i))
            .map(|records| records.iter().filter(|r| r.is_watch()).count() as u64)
            .sum(),
    };
    let watch_sockets = watch_descriptors(
        watches,
        opts.watch_connections,
        u64::from(info.spec.conns_per_runner) * replayed_runners(info.runner_count, opts) as u64,
    );
    if let Some(limit) = raise_nofile_soft_limit() {
        let planned = conns as u64 + watch_sockets + NOFILE_RESERVE + cores as u64 * 4;
        if planned > limit {
            return Err(RunError::Invalid(format!(
                "the run needs about {planned} file descriptors ({conns} connections, {watch_sockets} for \
                 {watches} WATCHes, \
                 {NOFILE_RESERVE}+ for the engine) but the open-file limit is {limit} even after raising \
                 the soft limit to the hard one: lower --conns, replay one runner (--runner-index), \
                 or raise the hard limit (ulimit -Hn, the container's nofile limit)"
            )));
        }
    }
    if let Some(at) = opts.start_at {
        let span = scale.offset(info.duration_us);
        let ends = at.checked_add(span).unwrap_or(at);
        if ends < SystemTime::now() {
            return Err(RunError::Invalid(format!(
                "--start-at is {:.1} s in the past, more than the replay lasts ({:.1} s): every \
                 request would be late; give a future instant or leave --start-at out",
                SystemTime::now()
                    .duration_since(at)
                    .unwrap_or_default()
                    .as_secs_f64(),
                span.as_secs_f64()
            )));
        }
    }
    let core_conns = split_evenly(conns, cores, 1);
    let core_max = split_evenly(max_conns, cores, 1);
    let core_in_flight = split_evenly(max_in_flight, cores, 1);

    // Refused before anything starts: a User-Agent with a CR or LF would add headers on the wire.
    let template = RequestTemplate::new(
        target.base_path.clone(),
        target.host_header.clone(),
        &opts.user_agent,
        accept_of(source.as_ref()),
    )
    .map_err(|e| RunError::Invalid(e.to_string()))?;
    // Every part of the source the replay reads is checked block by block in due order, from
    // now on (beside the preflight and the connects) and a bounded lead ahead of the replay;
    // the dispatchers send nothing the check has not covered, so a damaged block stops the
    // run before anything of it is sent, and the start does not wait for the whole file.
    let mut check = crate::timeline_check::TimelineCheck::spawn(source.clone(), scale)
        .map_err(|e| RunError::Invalid(format!("cannot start the timeline check: {e}")))?;
    // Every WATCH on an executor of its own (`--watch-executor separate`).
    let has_lane = watches > 0 && opts.watch_executor == WatchExecutor::Separate;
    let gate = Arc::new(StartGate::default());
    let shared = Arc::new(Shared {
        source,
        target,
        template,
        stop: stop.clone(),
        replay_end: ReplayEnd::new(cores),
        // One entry per core, and the WATCH lane's after them.
        progress: (0..cores + usize::from(has_lane))
            .map(|_| CoreProgress::default())
            .collect(),
        watches_started: (0..info.runner_count)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect(),
        settings: CoreSettings {
            timing: opts.timing,
            scale,
            timeout: opts.timeout,
            grace: opts.grace,
            raw_data: opts.raw_data,
            preflight,
            retries: opts.retries,
            watch_connections: opts.watch_connections,
            watch_executor: opts.watch_executor,
        },
    });

    // Dropped (stopped) when this function returns, after the cores' last publication.
    let _metrics_server = match opts.metrics_listen {
        Some(addr) => {
            Some(crate::live_metrics::serve(addr, shared.clone()).map_err(RunError::Invalid)?)
        }
        None => None,
    };

    raise_memlock_soft_limit();
    let mut handles = Vec::with_capacity(cores);
    let mut spawn_error = None;
    for (i, runs) in per_core_runs.into_iter().enumerate() {
        let plan = CorePlan {
            index: i,
            runs,
            conns: core_conns[i],
            max_conns: core_max[i].max(core_conns[i]),
            max_in_flight: core_in_flight[i].max(core_conns[i]),
        };
        let cpu = cpus[i];
        let ticket = GateTicket::new(gate.clone());
        let sh = shared.clone();
        let spawned = LocalExecutorBuilder::new(Placement::Fixed(cpu))
            .name(&format!("kreplay-core-{i}"))
            .io_memory(1 << 20)
            .spawn(move || async move { run_core(sh, plan, ticket).await });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                spawn_error.get_or_insert(RunError::Executor {
                    core: i,
                    cpu,
                    message: e.to_string(),
                });
            }
        }
    }
    // The WATCH lane: every replayed WATCH, on its own executor, fenced to its CPUs.
    let lane = if has_lane {
        let ticket = GateTicket::new(gate.clone());
        let sh = shared.clone();
        let lane_runs: Vec<usize> = runs.iter().map(|&(i, _)| i).collect();
        let placement = glommio::CpuSet::online()
            .map(|set| set.filter(|l| watch_cpus.contains(&l.cpu)))
            .ok()
            .filter(|set| !set.is_empty())
            .map_or(Placement::Unbound, Placement::Fenced);
        match LocalExecutorBuilder::new(placement)
            .name("kreplay-watches")
            .io_memory(1 << 20)
            .spawn(move || async move {
                // Read back on the lane's own thread: where it was fenced, for the report.
                let fenced_to = crate::cpu_set::allowed_cpus();
                (
                    run_watch_lane(sh, cores, lane_runs, ticket).await,
                    fenced_to,
                )
            }) {
            Ok(h) => Some(h),
            Err(e) => {
                spawn_error.get_or_insert(RunError::Executor {
                    core: cores,
                    cpu: cpus.first().copied().unwrap_or(0),
                    message: format!("the WATCH executor: {e}"),
                });
                None
            }
        }
    } else {
        None
    };
    let arrivals = cores + usize::from(lane.is_some());
    let connected = gate.wait_all(arrivals) && spawn_error.is_none();
    let stopping = || stop.load(Ordering::Relaxed);
    // A check that has already failed refuses the start (nothing is sent); one still going
    // is paced by the replay's clock from the start on.
    let mut damaged = None;
    if connected {
        damaged = check.failed_already();
    }
    let start_wall = opts
        .start_at
        .unwrap_or(SystemTime::now() + Duration::from_millis(2));
    // The wait for --start-at happens here, in steps, so that a signal ends it.
    if connected && damaged.is_none() {
        while !stopping() {
            match start_wall.duration_since(SystemTime::now()) {
                Ok(ahead) if ahead > START_WAIT_STEP * 5 => {
                    std::thread::sleep((ahead - START_WAIT_STEP * 5).min(START_WAIT_STEP))
                }
                _ => break,
            }
        }
    }
    let stopped_before_start = stopping();
    let ok = connected && damaged.is_none() && !stopped_before_start;
    let now = Instant::now();
    let sys_now = SystemTime::now();
    let start = if ok {
        let start = match start_wall.duration_since(sys_now) {
            Ok(ahead) => now + ahead,
            Err(behind) => now.checked_sub(behind.duration()).unwrap_or(now),
        };
        check.replay_starts(start);
        gate.release(Some(start));
        Some(start)
    } else {
        let _ = check.finish();
        gate.release(None);
        None
    };

    let show = opts.progress && std::io::stderr().is_terminal() && start.is_some();
    if show {
        progress_loop(
            &shared,
            scheduled,
            scheduled_span_us,
            start.unwrap_or_else(Instant::now),
            opts.speed,
        );
    }

    let mut merged = CoreMetrics::new(info.label_count, opts.raw_data);
    let mut end = start.unwrap_or_else(Instant::now);
    let mut unsent = 0;
    let mut opened = 0;
    let mut peak = 0;
    let mut opened_per_core = Vec::with_capacity(cores);
    let mut max_streams = 0;
    let mut per_core = Vec::with_capacity(cores);
    let mut join_error = None;
    let mut preflight_error = None;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(r) => {
                if let Some(e) = r.preflight_error {
                    preflight_error.get_or_insert(e);
                }
                per_core.push(crate::report::timing::CoreTiming::new(
                    cpus.get(i).copied(),
                    &r.load,
                    &r.metrics.lag,
                    &r.metrics.wake_error,
                ));
                merged.merge(r.metrics);
                end = end.max(r.end);
                unsent += r.unsent_on_stop;
                opened += r.conns_opened;
                opened_per_core.push(r.conns_opened);
                max_streams = max_streams.max(r.max_streams as u64);
                peak += r.peak_conns;
            }
            Err(e) => {
                join_error.get_or_insert(RunError::CoreFailed {
                    core: i,
                    message: e.to_string(),
                });
            }
        }
    }
    let mut lane_cpus = None;
    if let Some(h) = lane {
        match h.join() {
            Ok((r, fenced_to)) => {
                lane_cpus = Some(fenced_to);
                merged.merge(r.metrics);
                end = end.max(r.end);
                unsent += r.unsent_on_stop;
                // Its connections count in the total, not in any core's.
                opened += r.conns_opened;
                max_streams = max_streams.max(r.max_streams as u64);
            }
            Err(e) => {
                join_error.get_or_insert(RunError::CoreFailed {
                    core: cores,
                    message: format!("the WATCH executor: {e}"),
                });
            }
        }
    }
    merged.finish();
    // The cores are done: the check stops where it is (a replay that sent everything was
    // covered to its end), and a failure it found during the run is the run's.
    let mut check_failure = match check.finish() {
        Some(Err(e)) if start.is_some() => Some(e),
        _ => None,
    };
    let interrupted = stop.load(Ordering::Relaxed);
    if check_failure.is_none() && start.is_some() && unsent > 0 && !interrupted {
        check_failure = Some(crate::source::DamagedSource {
            origin: format!("{} (timeline check)", info.source),
            message: format!(
                "the check fell more than {} s behind the replay; the {unsent} requests it had \
                 not covered were not sent",
                crate::source::CHECK_WAIT_LIMIT.as_secs()
            ),
        });
    }
    if let Some(e) = spawn_error.or(join_error) {
        return Err(e);
    }
    if let Some(e) = damaged {
        return Err(RunError::Damaged(e));
    }
    if let Some(e) = preflight_error {
        return Err(RunError::Preflight(e));
    }
    if start.is_none() && !stopped_before_start {
        return Err(RunError::Invalid(
            "a core failed to start; nothing was sent".to_string(),
        ));
    }
    let duration = start.map_or(Duration::ZERO, |s| end.saturating_duration_since(s));
    // Counted after the run, not before the start: a scan of every record would delay the
    // start (0.24 s for 10M requests) and map the whole timeline before anything is sent.
    let mut scheduled_per_second = SecondCounts::default();
    for &(i, _) in &runs {
        for r in shared.source.run_records(i).unwrap_or(&[]) {
            scheduled_per_second.add(scale.offset(r.due_us));
        }
    }
    Ok(RunOutcome {
        metrics: merged,
        start_wall,
        duration,
        interrupted,
        check_failure,
        cores,
        cpus,
        watch_cpus: lane_cpus,
        conns,
        max_conns,
        max_in_flight,
        scheduled,
        scheduled_span_us,
        scheduled_per_second,
        unsent_on_stop: unsent,
        conns_opened: opened,
        peak_conns: peak,
        conns_opened_per_core: opened_per_core,
        max_streams,
        per_core,
    })
}
