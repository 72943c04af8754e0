//! How precisely each core kept its schedule: `kreplay.wakeError`, `kreplay.perCore` and
//! `kreplay.clientSaturated`, written by `run` and by `merge` through the same types.

use hdrhistogram::Histogram;
use serde::Deserialize;

use super::json_writer::GoJsonWriter;
use crate::runtime::CoreLoad;

/// A core whose thread worked (spinning excluded) at least this fraction of the replay
/// could not keep up: its lag is the client's, not the server's.
pub const SATURATED_BUSY: f64 = 0.95;

/// Percentiles of a lateness histogram, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LagSummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    #[serde(default)]
    pub p50: Option<f64>,
    /// 90th percentile.
    #[serde(default)]
    pub p90: Option<f64>,
    /// 99th percentile.
    #[serde(default)]
    pub p99: Option<f64>,
    /// 99.9th percentile.
    #[serde(default)]
    pub p999: Option<f64>,
    /// Largest value.
    #[serde(default)]
    pub max: Option<f64>,
}

impl LagSummary {
    /// The summary of `h`, whose values are in units of `1 / per_second` s.
    pub fn of(h: &Histogram<u64>, per_second: f64) -> LagSummary {
        let at = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / per_second);
        LagSummary {
            count: h.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: (!h.is_empty()).then(|| h.max() as f64 / per_second),
        }
    }

    /// Writes the summary as an object (percentiles only when there are values).
    pub fn write(&self, w: &mut GoJsonWriter) {
        w.begin_object();
        w.key("count").uint(self.count);
        for (name, v) in [
            ("p50", self.p50),
            ("p90", self.p90),
            ("p99", self.p99),
            ("p999", self.p999),
            ("max", self.max),
        ] {
            if let Some(v) = v {
                w.key(name).float(v);
            }
        }
        w.end_object();
    }
}

/// One core's timing, as `kreplay.perCore` lists it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreTiming {
    /// The CPU it was pinned to.
    #[serde(default)]
    pub cpu: Option<u64>,
    /// Fraction of the replay its thread worked, spinning excluded.
    pub busy_fraction: f64,
    /// CPU time of its thread, s.
    pub cpu_seconds: f64,
    /// Of it, time spent spinning for due instants, s.
    pub spin_seconds: f64,
    /// Send lag of its requests.
    pub send_lag: LagSummary,
    /// Wake error of its releases.
    pub wake_error: LagSummary,
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

    fn write(&self, w: &mut GoJsonWriter) {
        w.begin_object();
        if let Some(cpu) = self.cpu {
            w.key("cpu").uint(cpu);
        }
        w.key("busyFraction")
            .float((self.busy_fraction * 1e4).round() / 1e4);
        w.key("cpuSeconds").float(self.cpu_seconds);
        w.key("spinSeconds").float(self.spin_seconds);
        w.key("sendLag");
        self.send_lag.write(w);
        w.key("wakeError");
        self.wake_error.write(w);
        w.end_object();
    }
}

/// Writes `kreplay.wakeError`, `kreplay.clientSaturated` and `kreplay.perCore`.
pub fn write_timing(w: &mut GoJsonWriter, wake_error: &LagSummary, cores: &[CoreTiming]) {
    w.key("wakeError");
    wake_error.write(w);
    w.key("clientSaturated")
        .bool(cores.iter().any(CoreTiming::saturated));
    w.key("perCore").begin_array();
    for c in cores {
        c.write(w);
    }
    w.end_array();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record_value};
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
        assert!((core.wake_error.p50.unwrap() - 50e-6).abs() < 0.1e-6);
        assert!((core.send_lag.p50.unwrap() - 500e-6).abs() < 1e-6);
        let busy = CoreTiming {
            busy_fraction: 0.97,
            ..core.clone()
        };
        let mut w = GoJsonWriter::with_capacity(1024);
        w.begin_object();
        write_timing(&mut w, &core.wake_error, &[core.clone(), busy.clone()]);
        w.end_object();
        let v: serde_json::Value = serde_json::from_str(&w.finish()).unwrap();
        assert_eq!(v["clientSaturated"], true);
        let back: Vec<CoreTiming> = serde_json::from_value(v["perCore"].clone()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].cpu, Some(3));
        assert_eq!(back[0].wake_error, core.wake_error);
        assert_eq!(back[1].busy_fraction, 0.97);
        let empty = LagSummary::of(&new_histogram(), 1e6);
        assert_eq!((empty.count, empty.p99), (0, None));
    }
}
