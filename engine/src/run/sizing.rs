//! How big a replay's pools are: connections opened before the start, the most a core may
//! grow to, the requests in flight (never fewer than kperf allows), and kperf's configuration
//! warnings for those sizes.

use super::RunOptions;
use crate::plan::RunnerSelection;
use crate::source::ReplaySource;

/// Connection and concurrency sizes of a run, totals over all cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSizes {
    /// Pool connections opened before the start (at least one per core).
    pub conns: usize,
    /// Most connections (HTTP/2: opened only when every connection's streams are taken).
    pub max_conns: usize,
    /// Most requests in flight before a due request waits (HTTP/1.1: also the most
    /// connections, grown on demand).
    pub max_in_flight: usize,
}

/// The runners `opts` replays.
pub fn replayed_runners(runner_count: u32, opts: &RunOptions) -> usize {
    match opts.selection {
        RunnerSelection::All => runner_count as usize,
        RunnerSelection::One(_) => 1,
    }
}

/// Sizes the pools: `--conns` (default connsPerRunner × replayed runners), `--max-conns`
/// (default 4 × conns), `--max-in-flight` (default never below what kperf allows in flight,
/// max(clientsPerRunner, connsPerRunner) × runners, so a request is never later than under kperf).
pub fn pool_sizes(
    spec: &preprocess::profile::Spec,
    runner_count: u32,
    opts: &RunOptions,
    cores: usize,
) -> PoolSizes {
    let runners = replayed_runners(runner_count, opts);
    let conns = opts
        .conns
        .unwrap_or(spec.conns_per_runner as usize * runners)
        .max(cores);
    let max_conns = opts.max_conns.unwrap_or(conns * 4).max(conns);
    let kperf_workers = spec.clients_per_runner.max(spec.conns_per_runner) as usize * runners;
    let max_in_flight = opts
        .max_in_flight
        .unwrap_or(max_conns.max(kperf_workers))
        .max(conns);
    PoolSizes {
        conns,
        max_conns,
        max_in_flight,
    }
}

/// kperf's configuration warnings (`preprocess::warnings`) for the runners `opts` replays,
/// with the connections and requests in flight the flags give each of them.
pub fn config_warnings(source: &dyn ReplaySource, opts: &RunOptions) -> Vec<String> {
    use preprocess::warnings::{config_warnings, Advice, RunnerCapacity};
    let info = source.info();
    let runners = replayed_runners(info.runner_count, opts) as u64;
    // Per core sizes do not matter here: one core keeps the totals as given.
    let sizes = pool_sizes(&info.spec, info.runner_count, opts, 1);
    let first = match opts.selection {
        RunnerSelection::All => 0,
        RunnerSelection::One(i) => i,
    };
    let mut per_runner = vec![0u64; runners as usize];
    for run in source.runs() {
        if opts.selection.includes(run.runner) {
            if let Some(n) = per_runner.get_mut((run.runner - first) as usize) {
                *n += run.len;
            }
        }
    }
    let capacity = RunnerCapacity {
        conns: sizes.conns as u64 / runners.max(1),
        workers: sizes.max_in_flight as u64 / runners.max(1),
    };
    config_warnings(
        &per_runner,
        u64::from(first),
        u64::from(info.runner_count),
        info.duration_us,
        capacity,
        Advice::EngineFlags { runners },
    )
}
