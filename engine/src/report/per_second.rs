//! `kreplay.perSecond`: a run's per-interval series into the report model, and back for
//! `engine merge` and `engine report`.

use super::model::{PerSecond, SparseBuckets};
use crate::metrics::per_second::{quantile_micros, PerSecondSeries, BUCKETS};

impl PerSecond {
    /// `kreplay.perSecond` of per-second `scheduled` and `sent` counts and a series: its
    /// intervals up to the last one used, each interval's p99s, and its histograms as sparse
    /// `[bucket, count]` pairs (what `engine merge` adds up exactly).
    pub fn of(scheduled: Vec<u64>, sent: Vec<u64>, s: &PerSecondSeries) -> PerSecond {
        // No series when the run sized none: every member after `sent` is absent.
        let sized = s.interval_s > 0;
        let n = if sized { s.used_len() } else { 0 };
        let counts = |v: &[u64]| sized.then(|| v[..n].to_vec());
        let p99s = |at: fn(&PerSecondSeries, usize) -> &[u32]| {
            sized.then(|| {
                (0..n)
                    .map(|i| quantile_micros(at(s, i), 0.99).map(|us| us as f64 / 1e6))
                    .collect()
            })
        };
        let sparse = |at: fn(&PerSecondSeries, usize) -> &[u32]| {
            sized.then(|| {
                (0..n)
                    .map(|i| {
                        let pairs = at(s, i).iter().enumerate().filter(|(_, c)| **c > 0);
                        SparseBuckets(pairs.map(|(b, &c)| (b as u64, u64::from(c))).collect())
                    })
                    .collect()
            })
        };
        PerSecond {
            scheduled,
            sent,
            interval_seconds: sized.then_some(s.interval_s),
            completed: counts(&s.completed),
            failed: counts(&s.failed),
            bytes: counts(&s.bytes),
            latency_p99: p99s(PerSecondSeries::latency_at),
            lag_p99: p99s(PerSecondSeries::lag_at),
            latency_buckets: sparse(PerSecondSeries::latency_at),
            lag_buckets: sparse(PerSecondSeries::lag_at),
        }
    }

    /// Reads the series back from a report's `kreplay.perSecond` (empty when the report has
    /// none, e.g. one written before the series existed); an error names the field.
    pub fn series(&self) -> Result<PerSecondSeries, String> {
        let per_second = self;
        let Some(interval_s) = per_second.interval_seconds else {
            return Ok(PerSecondSeries::default());
        };
        if interval_s == 0 {
            return Err("kreplay.perSecond.intervalSeconds is not a positive integer".into());
        }
        let counts = |v: &Option<Vec<u64>>, key: &str| -> Result<Vec<u64>, String> {
            v.clone()
                .ok_or_else(|| format!("kreplay.perSecond.{key} is not an array of counts"))
        };
        let completed = counts(&per_second.completed, "completed")?;
        let failed = counts(&per_second.failed, "failed")?;
        let bytes = counts(&per_second.bytes, "bytes")?;
        let n = completed.len();
        if failed.len() != n || bytes.len() != n {
            return Err("kreplay.perSecond: completed, failed and bytes differ in length".into());
        }
        let buckets = |list: &Option<Vec<SparseBuckets>>, key: &str| -> Result<Vec<u32>, String> {
            let bad =
                || format!("kreplay.perSecond.{key} is not an array of [bucket, count] lists");
            let list = list.as_ref().filter(|a| a.len() == n).ok_or_else(bad)?;
            let mut out = vec![0u32; n * BUCKETS];
            for (i, pairs) in list.iter().enumerate() {
                for &(b, c) in &pairs.0 {
                    let b = usize::try_from(b)
                        .ok()
                        .filter(|&b| b < BUCKETS)
                        .ok_or_else(bad)?;
                    out[i * BUCKETS + b] += u32::try_from(c).map_err(|_| bad())?;
                }
            }
            Ok(out)
        };
        let mut series = PerSecondSeries::default();
        series.interval_s = interval_s;
        series.latency = buckets(&per_second.latency_buckets, "latencyBuckets")?;
        series.lag = buckets(&per_second.lag_buckets, "lagBuckets")?;
        (series.completed, series.failed, series.bytes) = (completed, failed, bytes);
        Ok(series)
    }
}
