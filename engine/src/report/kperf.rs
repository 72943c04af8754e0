//! kperf's members of a run's report (docs/kperf-compatibility.md §12): the metric keys,
//! kperf's percentiles, and the model's kperf half filled from the measurements.

use std::collections::BTreeMap;
use std::ops::Range;

use hdrhistogram::Histogram;

use super::gofmt::{format_go_duration, format_rfc3339_nano};
use super::model::{ErrorEntry, Report};
use super::percentile::{kperf_percentiles, KPERF_PERCENTILES};
use super::sorted_hdr::{self, SortedSamples};
use super::ReportContext;
use crate::metrics::LabelStats;

/// kperf's six percentiles of a µs histogram, in seconds. p0 is the minimum and p1 the
/// maximum; the others are HDR's value at the quantile (3 significant digits).
pub fn hdr_percentiles(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    percentile_pairs(h.min(), h.max(), |p| h.value_at_quantile(p))
}

/// `hdr_percentiles` of samples (µs, ascending) as if recorded into a histogram.
pub fn sorted_percentiles(sorted: &[u32]) -> Vec<(f64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    percentile_pairs(sorted_hdr::min(sorted), sorted_hdr::max(sorted), |p| {
        sorted_hdr::value_at_quantile(sorted, p)
    })
}

/// kperf's (percentile, seconds) pairs: exact ends, the rest at `at(p)` µs.
fn percentile_pairs(min: u64, max: u64, at: impl Fn(f64) -> u64) -> Vec<(f64, f64)> {
    KPERF_PERCENTILES
        .iter()
        .map(|&p| {
            let us = if p == 0.0 {
                min
            } else if p == 1.0 {
                max
            } else {
                at(p)
            };
            (p, us as f64 / 1e6)
        })
        .collect()
}

/// The metric key of a label: `"<METHOD> <base URL><metric path>"`, or the label itself
/// without a base URL (`--metric-base none`).
pub fn metric_key(label: &str, base_url: Option<&str>) -> String {
    match (base_url, label.split_once(' ')) {
        (Some(base), Some((method, path))) => {
            let mut key = String::with_capacity(label.len() + base.len());
            key.push_str(method);
            key.push(' ');
            key.push_str(base);
            key.push_str(path);
            key
        }
        _ => label.to_string(),
    }
}

/// Per-key statistics, keys sorted bytewise (Go's map order).
pub fn by_key<'a>(ctx: &ReportContext<'a>) -> BTreeMap<String, &'a LabelStats> {
    let mut out = BTreeMap::new();
    for (id, stats) in ctx.outcome.metrics.labels.iter().enumerate() {
        let Some(stats) = stats else { continue };
        let label = ctx
            .source
            .label(id as u32)
            .map(str::to_string)
            .unwrap_or_else(|_| format!("label#{id}"));
        out.insert(metric_key(&label, ctx.base_url), stats.as_ref());
    }
    out
}

/// One metric key of the report.
#[derive(Debug)]
pub struct KeyEntry<'a> {
    /// `metric_key` of the label.
    pub key: String,
    /// The label's statistics.
    pub stats: &'a LabelStats,
    /// Where a small label's sorted samples are in `ReportKeys::samples`.
    small: Option<Range<usize>>,
}

/// The report's metric keys in Go's map order (`by_key`), with each small label's samples
/// sorted: built once, for both halves of the report.
#[derive(Debug)]
pub struct ReportKeys<'a> {
    /// The keys, sorted bytewise.
    pub entries: Vec<KeyEntry<'a>>,
    samples: SortedSamples,
}

impl<'a> ReportKeys<'a> {
    /// The keys of the run in `ctx`.
    pub fn new(ctx: &ReportContext<'a>) -> Self {
        let keys = by_key(ctx);
        let pairs = keys
            .values()
            .filter_map(|s| s.latency.small_pairs())
            .map(<[_]>::len)
            .sum();
        let mut samples = SortedSamples::with_capacity(pairs);
        let entries = keys
            .into_iter()
            .map(|(key, stats)| KeyEntry {
                key,
                stats,
                small: stats.latency.small_pairs().map(|p| samples.push(p)),
            })
            .collect();
        ReportKeys { entries, samples }
    }

    /// A small label's (service, scheduled) samples, each ascending; `None` for a label
    /// kept as histograms.
    pub fn sorted(&self, e: &KeyEntry<'_>) -> Option<(&[u32], &[u32])> {
        let at = e.small.clone()?;
        Some((self.samples.service(at.clone()), self.samples.scheduled(at)))
    }
}

/// Percentiles of one key: from raw latencies when kept, else from the histogram.
fn key_percentiles(keys: &ReportKeys<'_>, e: &KeyEntry<'_>, raw: bool) -> Vec<(f64, f64)> {
    if raw {
        kperf_percentiles(&sorted_seconds(&e.stats.raw_seconds))
    } else if let Some((service, _)) = keys.sorted(e) {
        sorted_percentiles(service)
    } else {
        hdr_percentiles(&e.stats.latency.histograms().service)
    }
}

/// `v`, ascending (kperf sorts raw latencies before listing them).
pub(crate) fn sorted_seconds(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// kperf's members of the run in `ctx` (`kreplay` left `None`).
pub fn kperf_members(ctx: &ReportContext<'_>, keys: &ReportKeys<'_>) -> Report {
    let o = ctx.outcome;
    let m = &o.metrics;
    let raw = ctx.raw_data;
    let errors = (raw && !m.errors.is_empty()).then(|| {
        m.errors
            .iter()
            .map(|e| ErrorEntry {
                method: e.method.to_string(),
                url: e.url.clone(),
                timestamp: format_rfc3339_nano(e.timestamp, 0),
                duration: e.duration,
                kind: e.kind.to_string(),
                code: i64::from(e.code),
                message: e.message.clone(),
            })
            .collect()
    });
    let with_latencies: Vec<&KeyEntry<'_>> = keys
        .entries
        .iter()
        .filter(|e| !e.stats.latency.is_empty())
        .collect();
    let latencies_by_url = (raw && !with_latencies.is_empty()).then(|| {
        with_latencies
            .iter()
            .map(|e| (e.key.clone(), sorted_seconds(&e.stats.raw_seconds)))
            .collect()
    });
    let pooled = if raw {
        let all: Vec<f64> = keys
            .entries
            .iter()
            .flat_map(|e| e.stats.raw_seconds.iter().copied())
            .collect();
        kperf_percentiles(&sorted_seconds(&all))
    } else {
        hdr_percentiles(&m.all.service)
    };
    let by_url = (!with_latencies.is_empty()).then(|| {
        with_latencies
            .iter()
            .map(|e| (e.key.clone(), key_percentiles(keys, e, raw)))
            .collect()
    });
    let full = !ctx.runner_form;
    Report {
        total: o.scheduled,
        duration: format_go_duration(o.duration),
        errors,
        error_stats: (!m.error_stats.is_empty()).then(|| m.error_stats.clone()),
        total_received_bytes: m.bytes_received,
        latencies_by_url,
        percentile_latencies: (!pooled.is_empty()).then_some(pooled),
        percentile_latencies_by_url: by_url,
        runner_count: full.then(|| u64::from(ctx.source.info().runner_count)),
        total_run: full.then_some(m.run),
        total_failed: full.then_some(m.failed),
        kreplay: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn keys_insert_the_base_after_the_method() {
        assert_eq!(
            metric_key(
                "LIST /api/v1/pods?labelSelector=a%3Db",
                Some("https://127.0.0.1:6443")
            ),
            "LIST https://127.0.0.1:6443/api/v1/pods?labelSelector=a%3Db"
        );
        assert_eq!(metric_key("GET /api", None), "GET /api");
    }

    #[test]
    fn hdr_percentiles_are_monotone_with_exact_ends() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            crate::metrics::record_value(&mut h, v * 10);
        }
        let p = hdr_percentiles(&h);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0], (0.0, 10.0 / 1e6));
        assert!(p.windows(2).all(|w| w[0].1 <= w[1].1), "{p:?}");
        assert!((p[1].1 - 0.005).abs() < 0.005 * 0.002, "{p:?}");
        assert_eq!(p[5].0, 1.0);
        assert!(hdr_percentiles(&new_histogram()).is_empty());
    }
}
