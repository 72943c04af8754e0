//! How precisely each core kept its schedule: `kreplay.wakeError`, `kreplay.perCore` and
//! `kreplay.clientSaturated` ([`LagSummary`] and [`CoreTiming`] of the report model),
//! measured.

use hdrhistogram::Histogram;

pub use super::model::{CoreTiming, LagSummary, Quantiles};
use crate::runtime::CoreLoad;

/// A core whose thread worked (spinning excluded) at least this fraction of the replay
/// could not keep up: its lag is the client's, not the server's.
pub const SATURATED_BUSY: f64 = 0.95;

impl LagSummary {
    /// The summary of `h`, whose values are in units of `1 / per_second` s.
    pub fn of(h: &Histogram<u64>, per_second: f64) -> LagSummary {
        LagSummary {
            count: h.len(),
            quantiles: Quantiles::of(h, per_second, true),
        }
    }
}

impl Quantiles {
    /// p50, p90, p99 (and p99.9 with `p999`) and the maximum of `h`, whose values are in
    /// units of `1 / per_second` s; all `None` when it is empty.
    pub fn of(h: &Histogram<u64>, per_second: f64, p999: bool) -> Quantiles {
        let at = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / per_second);
        Quantiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: if p999 { at(0.999) } else { None },
            max: (!h.is_empty()).then(|| h.max() as f64 / per_second),
        }
    }
}

impl CoreTiming {
    /// The timing of a core pinned to `cpu`, from its load and its histograms (send lag in
    /// µs, wake error in ns).
    pub fn new(
        cpu: Option<usize>,
        load: &CoreLoad,
        lag_us: &Histogram<u64>,
        wake_ns: &Histogram<u64>,
    ) -> CoreTiming {
        CoreTiming {
            cpu: cpu.map(|c| c as u64),
            busy_fraction: load.busy_fraction(),
            cpu_seconds: load.cpu.as_secs_f64(),
            spin_seconds: load.spun.as_secs_f64(),
            send_lag: LagSummary::of(lag_us, 1e6),
            wake_error: LagSummary::of(wake_ns, 1e9),
        }
    }

    /// Whether the core could not keep up with its schedule.
    pub fn saturated(&self) -> bool {
        self.busy_fraction >= SATURATED_BUSY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record_value};
    use crate::report::json_writer::to_go_json;
    use std::time::Duration;

    #[test]
    fn a_core_timing_reads_back_as_written() {
        let (mut lag, mut wake) = (new_histogram(), new_histogram());
        for v in 1..=1000 {
            record_value(&mut lag, v);
            record_value(&mut wake, v * 100);
        }
        let load = CoreLoad {
            wall: Duration::from_secs(10),
            cpu: Duration::from_secs(9),
            spun: Duration::from_millis(500),
        };
        let core = CoreTiming::new(Some(3), &load, &lag, &wake);
        assert!((core.busy_fraction - 0.85).abs() < 1e-9);
        assert!(!core.saturated());
        assert_eq!(core.wake_error.count, 1000);
        // 50,000 ns = 50 µs at the median.
        assert!((core.wake_error.quantiles.p50.unwrap() - 50e-6).abs() < 0.1e-6);
        assert!((core.send_lag.quantiles.p50.unwrap() - 500e-6).abs() < 1e-6);
        let busy = CoreTiming {
            busy_fraction: 0.971_234_5,
            ..core.clone()
        };
        assert!(busy.saturated());
        let text = to_go_json(&[core.clone(), busy.clone()], 1024);
        let back: Vec<CoreTiming> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].cpu, Some(3));
        assert_eq!(back[0].wake_error, core.wake_error);
        // Written to four decimals.
        assert_eq!(back[1].busy_fraction, 0.9712);
        let empty = LagSummary::of(&new_histogram(), 1e6);
        assert_eq!((empty.count, empty.quantiles.p99), (0, None));
        assert_eq!(to_go_json(&empty, 16), "{\n  \"count\": 0\n}\n");
    }
}
