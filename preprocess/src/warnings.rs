//! kperf's configuration warnings (`validateAndWarnConfig` in kperf's replay scheduler),
//! with kperf's thresholds, phrased with what to change. `preprocess` gives them about the
//! profile; `engine run` about the profile with its flags in force. Never fatal.

use crate::profile::Spec;

/// Connections per runner above which kperf warns.
pub const WARN_CONNS_PER_RUNNER: u64 = 50;
/// Connections over all runners above which kperf warns.
pub const WARN_TOTAL_CONNECTIONS: u64 = 1000;
/// Requests per second kperf assumes one worker serves.
const QPS_PER_WORKER: f64 = 10.0;
/// Requests per second kperf assumes one connection serves.
const QPS_PER_CONN: f64 = 100.0;

/// The connections and workers a runner has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerCapacity {
    /// Connections per runner.
    pub conns: u64,
    /// Workers (requests in flight) per runner.
    pub workers: u64,
}

impl RunnerCapacity {
    /// What kperf gives a runner of `spec`: `connsPerRunner` connections and
    /// `clientsPerRunner` workers (`connsPerRunner` when 0).
    pub fn of_spec(spec: &Spec) -> RunnerCapacity {
        let conns = u64::from(spec.conns_per_runner);
        let workers = match spec.clients_per_runner {
            0 => conns,
            w => u64::from(w),
        };
        RunnerCapacity { conns, workers }
    }
}

/// Whose settings a warning tells the user to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// The profile's `spec` (what `preprocess` and kperf itself can say).
    Profile,
    /// `engine run`'s flags (`--conns`, `--max-in-flight`), with `runners` replayed runners.
    EngineFlags {
        /// Runners this engine replays (the flags are totals over them).
        runners: u64,
    },
}

/// kperf's warnings for runners with `runner_requests[i]` requests each over a profile whose
/// last request is due at `duration_us`, given each runner `capacity`; `runner_count` is the
/// profile's runner count (for the total-connections check). Runner numbers are
/// `first_runner + i`.
pub fn config_warnings(
    runner_requests: &[u64],
    first_runner: u64,
    runner_count: u64,
    duration_us: u64,
    capacity: RunnerCapacity,
    advice: Advice,
) -> Vec<String> {
    let mut out = Vec::new();
    // kperf: duration = last timestamp in ms / 1000, skipped when not positive.
    let duration = (duration_us / 1000) as f64 / 1000.0;
    let RunnerCapacity { conns, workers } = capacity;
    for (i, &requests) in runner_requests.iter().enumerate() {
        if requests == 0 || duration <= 0.0 {
            continue;
        }
        let runner = first_runner + i as u64;
        let qps = requests as f64 / duration;
        if conns > WARN_CONNS_PER_RUNNER {
            let fix = match advice {
                Advice::Profile => {
                    "raise spec.runnerCount and lower spec.connsPerRunner".to_string()
                }
                Advice::EngineFlags { runners } => format!(
                    "lower --conns to at most {} or replay with more runners",
                    WARN_CONNS_PER_RUNNER * runners
                ),
            };
            out.push(format!(
                "runner {runner}: {conns} connections per runner exceed kperf's recommended \
                 maximum of {WARN_CONNS_PER_RUNNER} and may overwhelm the API server: {fix}"
            ));
        }
        let want_workers = (qps / QPS_PER_WORKER) as u64 + QPS_PER_WORKER as u64;
        if workers < want_workers {
            let fix = match advice {
                Advice::Profile => format!("set spec.clientsPerRunner to at least {want_workers}"),
                Advice::EngineFlags { runners } => format!(
                    "pass --max-in-flight {} (or set spec.clientsPerRunner to {want_workers})",
                    want_workers * runners
                ),
            };
            out.push(format!(
                "runner {runner}: {workers} workers per runner may be insufficient for \
                 {qps:.0} requests/s (kperf recommends at least {want_workers}): {fix}"
            ));
        }
        let want_conns = ((qps / QPS_PER_CONN) as u64 + 5).min(WARN_CONNS_PER_RUNNER);
        if conns < want_conns {
            let fix = match advice {
                Advice::Profile => format!("set spec.connsPerRunner to at least {want_conns}"),
                Advice::EngineFlags { runners } => {
                    format!("pass --conns {} or more", want_conns * runners)
                }
            };
            out.push(format!(
                "runner {runner}: {conns} connections per runner may be insufficient for \
                 {qps:.0} requests/s (kperf recommends at least {want_conns}): {fix}"
            ));
        }
    }
    let total = conns * runner_count;
    if total > WARN_TOTAL_CONNECTIONS {
        let fix = match advice {
            Advice::Profile => "lower spec.connsPerRunner or spec.runnerCount",
            Advice::EngineFlags { .. } => "lower --conns or spec.runnerCount",
        };
        out.push(format!(
            "{total} connections over all {runner_count} runners may overwhelm the API server \
             (kperf recommends fewer than {WARN_TOTAL_CONNECTIONS}): {fix}"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: RunnerCapacity = RunnerCapacity {
        conns: 2,
        workers: 2,
    };

    #[test]
    fn thresholds_are_kperfs() {
        // 100 requests over 1 s: qps 100 → 20 workers, 6 connections recommended.
        let w = config_warnings(&[100], 0, 1, 1_000_000, CAP, Advice::Profile);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("at least 20") && w[0].contains("spec.clientsPerRunner"));
        assert!(w[1].contains("at least 6") && w[1].contains("spec.connsPerRunner"));
        let enough = RunnerCapacity {
            conns: 6,
            workers: 20,
        };
        assert!(config_warnings(&[100], 0, 1, 1_000_000, enough, Advice::Profile).is_empty());
        // Exactly 50 connections is fine, 51 is not; 20 runners × 51 > 1000.
        let many = RunnerCapacity {
            conns: 51,
            workers: 60,
        };
        let w = config_warnings(&[10], 0, 20, 1_000_000, many, Advice::Profile);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("51 connections per runner exceed"));
        assert!(w[1].contains("1020 connections over all 20 runners"));
    }

    #[test]
    fn empty_runners_and_zero_durations_are_skipped_and_engine_advice_names_flags() {
        assert!(config_warnings(&[0], 0, 1, 1_000_000, CAP, Advice::Profile).is_empty());
        assert!(config_warnings(&[100], 0, 1, 999, CAP, Advice::Profile).is_empty());
        let w = config_warnings(
            &[100],
            3,
            4,
            1_000_000,
            CAP,
            Advice::EngineFlags { runners: 1 },
        );
        assert!(w[0].starts_with("runner 3:") && w[0].contains("--max-in-flight 20"));
        assert!(w[1].contains("--conns 6"));
    }
}
