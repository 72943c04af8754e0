//! Which runs this process replays (runner selection) and which core replays each run.

/// Which runners' partitions this process replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerSelection {
    /// Every runner (kperf `replay run`, local mode).
    All,
    /// One runner (kperf `runner replay`, one process per index).
    One(u32),
}

/// A runner index that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// JOB_COMPLETION_INDEX is set but not a base-10 integer.
    #[error("JOB_COMPLETION_INDEX={0:?} is not a base-10 integer")]
    BadEnv(String),
    /// The index is outside `0..runner_count`.
    #[error("runner index {index} from {origin} is outside 0..{runner_count} (the timeline has {runner_count} runners)")]
    OutOfRange {
        /// The index given.
        index: i64,
        /// `--runner-index` or `JOB_COMPLETION_INDEX`.
        origin: &'static str,
        /// Runners in the timeline.
        runner_count: u32,
    },
}

impl RunnerSelection {
    /// kperf's rule: `--runner-index` beats `JOB_COMPLETION_INDEX` (base 10, sign allowed);
    /// neither → all runners locally. Unlike kperf, an index outside `0..runner_count` is an error.
    pub fn resolve(
        flag: Option<i64>,
        env: Option<&str>,
        runner_count: u32,
    ) -> Result<RunnerSelection, SelectionError> {
        let (index, origin) = match (flag, env) {
            (Some(i), _) => (i, "--runner-index"),
            (None, Some(text)) => {
                let i = text
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SelectionError::BadEnv(text.to_string()))?;
                (i, "JOB_COMPLETION_INDEX")
            }
            (None, None) => return Ok(RunnerSelection::All),
        };
        match u32::try_from(index) {
            Ok(i) if i < runner_count => Ok(RunnerSelection::One(i)),
            _ => Err(SelectionError::OutOfRange {
                index,
                origin,
                runner_count,
            }),
        }
    }

    /// Whether runner `r` is replayed.
    pub fn includes(self, r: u32) -> bool {
        match self {
            RunnerSelection::All => true,
            RunnerSelection::One(i) => i == r,
        }
    }
}

/// Assigns runs to `cores` cores balanced by request count (longest first, each to
/// the least-loaded core). Input: `(run index, len)`; output: run indexes per core.
pub fn assign_runs(runs: &[(usize, u64)], cores: usize) -> Vec<Vec<usize>> {
    let cores = cores.max(1);
    let mut sorted: Vec<(usize, u64)> = runs.iter().copied().filter(|r| r.1 > 0).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut load = vec![0u64; cores];
    let mut out = vec![Vec::new(); cores];
    for (run, len) in sorted {
        let (core, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (**l, *i))
            .unwrap_or((0, &0));
        load[core] += len;
        out[core].push(run);
    }
    for runs in &mut out {
        runs.sort_unstable();
    }
    out
}

/// Splits `total` into `parts` shares that differ by at most one, each at least `min`.
pub fn split_evenly(total: usize, parts: usize, min: usize) -> Vec<usize> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| (total / parts + usize::from(i < total % parts)).max(min))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_env_and_range_is_checked() {
        assert_eq!(
            RunnerSelection::resolve(None, None, 3),
            Ok(RunnerSelection::All)
        );
        assert_eq!(
            RunnerSelection::resolve(Some(1), Some("2"), 3),
            Ok(RunnerSelection::One(1))
        );
        assert_eq!(
            RunnerSelection::resolve(None, Some("+2"), 3),
            Ok(RunnerSelection::One(2))
        );
        assert!(matches!(
            RunnerSelection::resolve(None, Some("3"), 3),
            Err(SelectionError::OutOfRange {
                index: 3,
                origin: "JOB_COMPLETION_INDEX",
                ..
            })
        ));
        assert!(matches!(
            RunnerSelection::resolve(Some(-1), None, 3),
            Err(SelectionError::OutOfRange {
                index: -1,
                origin: "--runner-index",
                ..
            })
        ));
        assert_eq!(
            RunnerSelection::resolve(None, Some("0x1"), 3),
            Err(SelectionError::BadEnv("0x1".to_string()))
        );
    }

    #[test]
    fn runs_balance_across_cores() {
        let runs: Vec<(usize, u64)> = (0..64).map(|i| (i, 10 + (i as u64 * 7) % 13)).collect();
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let out = assign_runs(&runs, 4);
        let mut seen: Vec<usize> = out.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        let loads: Vec<u64> = out
            .iter()
            .map(|c| c.iter().map(|&r| runs[r].1).sum())
            .collect();
        let max = *loads.iter().max().unwrap();
        // LPT is within the largest run of the mean.
        assert!(max <= total / 4 + 22, "loads {loads:?}");
        assert!(assign_runs(&[(0, 0), (1, 5)], 2)[0] == vec![1]);
    }

    #[test]
    fn even_split_with_minimum() {
        assert_eq!(split_evenly(10, 3, 1), vec![4, 3, 3]);
        assert_eq!(split_evenly(1, 3, 1), vec![1, 1, 1]);
        assert_eq!(split_evenly(0, 2, 0), vec![0, 0]);
    }
}
