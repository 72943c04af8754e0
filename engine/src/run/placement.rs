//! Which CPUs a replay's executors run on: the cores' (`--cpus`, `--cores`, the affinity mask,
//! the runner's index) and the WATCH lane's (`--watch-cpus`).

use super::{RunError, RunOptions, WatchExecutor};
use crate::cpu_set::{allowed_cpus, choose_cpus, choose_watch_cpus};
use crate::plan::RunnerSelection;

/// The CPUs chosen for a replay.
pub(super) struct ExecutorCpus {
    /// One per core, in core order.
    pub(super) cores: Vec<usize>,
    /// The WATCH lane's (used only when there is a lane).
    pub(super) watches: Vec<usize>,
}

/// Chooses the cores' and the WATCH lane's CPUs for `opts`.
pub(super) fn place_executors(opts: &RunOptions) -> Result<ExecutorCpus, RunError> {
    let mut allowed = allowed_cpus();
    // Runners that share a host's CPUs (pods without an exclusive cpuset, several engines on
    // one machine) begin at different CPUs instead of all pinning to the first ones.
    if let (None, RunnerSelection::One(index)) = (&opts.cpus, opts.selection) {
        if !allowed.is_empty() {
            let per_runner = if opts.cores == 0 {
                allowed.len()
            } else {
                opts.cores
            };
            let shift = (index as usize).wrapping_mul(per_runner) % allowed.len();
            allowed.rotate_left(shift);
        }
    }
    let cores = choose_cpus(opts.cpus.as_deref(), &allowed, opts.cores, opts.share_cpus)
        .map_err(RunError::Invalid)?;
    if opts.watch_cpus.is_some() && opts.watch_executor == WatchExecutor::Cores {
        return Err(RunError::Invalid(
            "--watch-cpus places the WATCH executor, but --watch-executor cores holds the WATCHes on the cores; drop one of the two".into(),
        ));
    }
    let watches = choose_watch_cpus(
        opts.watch_cpus.as_deref(),
        &allowed,
        opts.cpus.as_deref().unwrap_or(&allowed),
        &cores,
    )
    .map_err(RunError::Invalid)?;
    Ok(ExecutorCpus { cores, watches })
}
