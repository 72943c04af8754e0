//! The kperf part of the report (docs/kperf-compatibility.md §12), byte-compatible with
//! kperf's JSON.

use std::collections::BTreeMap;
use std::ops::Range;

use hdrhistogram::Histogram;

use super::gofmt::{format_go_duration, format_rfc3339_nano};
use super::json_writer::GoJsonWriter;
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

/// Writes kperf's `[p, seconds]` pairs.
pub(crate) fn write_pairs(w: &mut GoJsonWriter, pairs: &[(f64, f64)]) {
    w.begin_array();
    for &(p, v) in pairs {
        w.begin_array().float(p).float(v).end_array();
    }
    w.end_array();
}

/// Percentiles of one key: from raw latencies when kept, else from the histogram.
fn key_percentiles(keys: &ReportKeys<'_>, e: &KeyEntry<'_>, raw: bool) -> Vec<(f64, f64)> {
    if raw {
        let mut v = e.stats.raw_seconds.clone();
        v.sort_by(f64::total_cmp);
        kperf_percentiles(&v)
    } else if let Some((service, _)) = keys.sorted(e) {
        sorted_percentiles(service)
    } else {
        hdr_percentiles(&e.stats.latency.histograms().service)
    }
}

/// Writes kperf's members into the open top-level object of `w`.
pub fn write_kperf_members(w: &mut GoJsonWriter, ctx: &ReportContext<'_>, keys: &ReportKeys<'_>) {
    let o = ctx.outcome;
    let m = &o.metrics;
    let raw = ctx.raw_data;
    w.key("total").uint(o.scheduled);
    w.key("duration").string(&format_go_duration(o.duration));
    if raw && !m.errors.is_empty() {
        w.key("errors").begin_array();
        for e in &m.errors {
            w.begin_object();
            w.key("method").string(e.method);
            w.key("url").string(&e.url);
            w.key("timestamp")
                .string(&format_rfc3339_nano(e.timestamp, 0));
            w.key("duration").float(e.duration);
            w.key("type").string(e.kind);
            w.key("code").int(i64::from(e.code));
            w.key("message").string(&e.message);
            w.end_object();
        }
        w.end_array();
    }
    if !m.error_stats.is_empty() {
        w.key("errorStats").begin_object();
        for (k, v) in &m.error_stats {
            w.key(k).uint(*v);
        }
        w.end_object();
    }
    w.key("totalReceivedBytes").uint(m.bytes_received);
    let with_latencies: Vec<&KeyEntry<'_>> = keys
        .entries
        .iter()
        .filter(|e| !e.stats.latency.is_empty())
        .collect();
    if raw && !with_latencies.is_empty() {
        w.key("latenciesByURL").begin_object();
        for e in &with_latencies {
            let mut v = e.stats.raw_seconds.clone();
            v.sort_by(f64::total_cmp);
            w.key(&e.key).begin_array();
            for x in v {
                w.float(x);
            }
            w.end_array();
        }
        w.end_object();
    }
    let pooled = if raw {
        let mut all: Vec<f64> = keys
            .entries
            .iter()
            .flat_map(|e| e.stats.raw_seconds.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        kperf_percentiles(&all)
    } else {
        hdr_percentiles(&m.all.service)
    };
    if !pooled.is_empty() {
        w.key("percentileLatencies");
        write_pairs(w, &pooled);
    }
    if !with_latencies.is_empty() {
        w.key("percentileLatenciesByURL").begin_object();
        for e in &with_latencies {
            w.key(&e.key);
            write_pairs(w, &key_percentiles(keys, e, raw));
        }
        w.end_object();
    }
    if !ctx.runner_form {
        w.key("runnerCount")
            .uint(u64::from(ctx.source.info().runner_count));
        w.key("totalRun").uint(m.run);
        w.key("totalFailed").uint(m.failed);
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
