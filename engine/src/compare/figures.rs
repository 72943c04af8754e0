//! The figures `compare` reads from one report: overall, per verb (or kperf method label)
//! and per metric key, each known or missing with a reason.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::read::{pair_value, ReportFile, ReportReadError};
use crate::metrics::new_histogram;
use crate::report::model::{Percentiles, VerbFigures};
use crate::report::percentile::kperf_percentiles;

/// How requests are grouped below the overall row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// kreplay's verbs (`GET`, `LIST`, `CREATE`, `APPLY`, ...): both reports are kreplay's.
    Verbs,
    /// kperf's method labels (`GET`, `LIST`, `POST`, `DELETE`, `PATCH`, `WATCH`).
    MethodLabels,
}

/// kperf's method label of a kreplay verb name.
pub fn method_label(verb: &str) -> &str {
    match verb {
        "CREATE" => "POST",
        "DELETECOLLECTION" => "DELETE",
        "APPLY" => "PATCH",
        other => other,
    }
}

/// Figures of one group of requests; `None` where the report cannot tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Requests run (successes and failures).
    pub count: Option<u64>,
    /// Failures.
    pub errors: Option<u64>,
    /// Service latency percentiles, seconds.
    pub p50: Option<f64>,
    /// p90, seconds.
    pub p90: Option<f64>,
    /// p99, seconds.
    pub p99: Option<f64>,
}

impl Figures {
    fn from_pairs(pairs: &[(f64, f64)]) -> Figures {
        Figures {
            p50: pair_value(pairs, 0.5),
            p90: pair_value(pairs, 0.9),
            p99: pair_value(pairs, 0.99),
            ..Figures::default()
        }
    }

    fn from_histogram(h: &Histogram<u64>) -> Figures {
        if h.is_empty() {
            return Figures::default();
        }
        let q = |p: f64| Some(h.value_at_quantile(p) as f64 / 1e6);
        Figures {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            ..Figures::default()
        }
    }
}

/// Everything `compare` uses from one report.
#[derive(Debug, Clone)]
pub struct ReportFigures {
    /// Whether the report has kreplay's section.
    pub is_kreplay: bool,
    /// Run duration, seconds.
    pub duration_s: f64,
    /// The whole run.
    pub overall: Figures,
    /// p99 send lag, seconds (kreplay only).
    pub lag_p99: Option<f64>,
    /// p99 latency from the due instant, seconds (kreplay only).
    pub scheduled_p99: Option<f64>,
    /// Per verb or method label.
    pub groups: BTreeMap<String, Figures>,
    /// Per metric key with the server URL removed.
    pub urls: BTreeMap<String, Figures>,
    /// Figures that could not be read, and why.
    pub notes: Vec<String>,
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl Figures {
    /// The larger latency of each percentile; counts stay `self`'s.
    fn upper(&self, other: &Figures) -> Figures {
        Figures {
            p50: max_opt(self.p50, other.p50),
            p90: max_opt(self.p90, other.p90),
            p99: max_opt(self.p99, other.p99),
            ..self.clone()
        }
    }
}

/// The top of the spread of two base reports: each latency figure is the larger of the two
/// (groups found in only one report keep that one's figures). Counts, duration and rates stay
/// `a`'s: they describe the same timeline.
pub fn upper_envelope(mut a: ReportFigures, b: &ReportFigures) -> ReportFigures {
    a.overall = a.overall.upper(&b.overall);
    a.lag_p99 = max_opt(a.lag_p99, b.lag_p99);
    a.scheduled_p99 = max_opt(a.scheduled_p99, b.scheduled_p99);
    for (map, other) in [(&mut a.groups, &b.groups), (&mut a.urls, &b.urls)] {
        for (k, f) in other {
            let merged = match map.get(k) {
                Some(mine) => mine.upper(f),
                None => f.clone(),
            };
            map.insert(k.clone(), merged);
        }
    }
    a.notes.extend(b.notes.iter().cloned());
    a
}

/// A metric key without its server URL: `"<METHOD> <path>"`, so reports of different
/// servers line up.
pub fn normalise_key(key: &str) -> String {
    let Some((method, url)) = key.split_once(' ') else {
        return key.to_string();
    };
    let path = ["http://", "https://"]
        .iter()
        .find_map(|s| url.strip_prefix(s))
        .map(|rest| rest.find('/').map_or("", |i| &rest[i..]))
        .unwrap_or(url);
    format!("{method} {path}")
}

/// Reads the figures of `report`, grouped by `grouping`; per-key figures only with `per_url`.
pub fn read_figures(
    report: &ReportFile,
    grouping: Grouping,
    per_url: bool,
) -> Result<ReportFigures, ReportReadError> {
    let r = &report.report;
    let mut notes = Vec::new();
    let name = report.path.display().to_string();
    let mut overall = Figures::from_pairs(r.percentile_latencies.as_deref().unwrap_or_default());
    let verbs = r.kreplay.as_ref().map(|k| &k.verbs);
    let verb_sum = |field: fn(&VerbFigures) -> u64| verbs.map(|v| v.values().map(field).sum());
    let stats_failed: u64 = r.error_stats.iter().flat_map(|s| s.values()).sum();
    overall.count = match (r.total_run, verb_sum(|v| v.count)) {
        (Some(n), _) | (None, Some(n)) => Some(n),
        (None, None) => {
            notes.push(format!(
                "{name}: no totalRun (a runner report): `total` used as the count"
            ));
            Some(r.total)
        }
    };
    overall.errors = match (r.total_failed, verb_sum(|v| v.errors)) {
        (Some(n), _) | (None, Some(n)) => Some(n),
        (None, None) => {
            notes.push(format!(
                "{name}: no totalFailed (a runner report): errors summed from errorStats"
            ));
            Some(stats_failed)
        }
    };

    let (lag_p99, scheduled_p99) = match &r.kreplay {
        Some(k) => (
            k.send_lag.all.quantiles.p99,
            k.scheduled_latency
                .as_ref()
                .and_then(|p| pair_value(p, 0.99)),
        ),
        None => (None, None),
    };

    let empty = BTreeMap::new();
    let by_url = r.percentile_latencies_by_url.as_ref().unwrap_or(&empty);
    let raw = r.latencies_by_url.as_ref();
    let mut urls = BTreeMap::new();
    for (k, pairs) in by_url.iter().filter(|_| per_url) {
        let mut f = Figures::from_pairs(pairs);
        if let Some(raw) = raw {
            f.count = raw.get(k).map(|v| v.len() as u64);
        } else if r.is_kreplay() {
            f.count = report
                .histogram(&format!("byURL.{k}.service"), |h| {
                    h.by_url.as_ref()?.get(k)?.service.as_ref()
                })?
                .map(|h| h.len());
        }
        urls.insert(normalise_key(k), f);
    }

    let groups = match (verbs, grouping) {
        (Some(verbs), Grouping::Verbs) => kreplay_verb_groups(verbs),
        (Some(verbs), Grouping::MethodLabels) => kreplay_label_groups(report, verbs)?,
        (None, _) => kperf_label_groups(report, by_url, raw, &mut notes),
    };

    Ok(ReportFigures {
        is_kreplay: r.is_kreplay(),
        duration_s: report.duration.as_secs_f64(),
        overall,
        lag_p99,
        scheduled_p99,
        groups,
        urls,
        notes,
    })
}

fn kreplay_verb_groups(verbs: &BTreeMap<String, VerbFigures>) -> BTreeMap<String, Figures> {
    verbs
        .iter()
        .map(|(verb, v)| {
            let f = Figures {
                count: Some(v.count),
                errors: Some(v.errors),
                p50: v.latency.p50,
                p90: v.latency.p90,
                p99: v.latency.p99,
            };
            (verb.clone(), f)
        })
        .collect()
}

/// kreplay verbs folded into kperf method labels: counts add, percentiles come from the
/// verbs' merged histograms (exact).
fn kreplay_label_groups(
    report: &ReportFile,
    verbs: &BTreeMap<String, VerbFigures>,
) -> Result<BTreeMap<String, Figures>, ReportReadError> {
    let per_verb = kreplay_verb_groups(verbs);
    let mut hists: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for (verb, f) in &per_verb {
        let label = method_label(verb).to_string();
        let g = out.entry(label.clone()).or_default();
        g.count = Some(g.count.unwrap_or(0) + f.count.unwrap_or(0));
        g.errors = Some(g.errors.unwrap_or(0) + f.errors.unwrap_or(0));
        let field = format!("byVerb.{verb}.service");
        let service = report.histogram(&field, |h| h.by_verb.as_ref()?.get(verb)?.service.as_ref());
        if let Some(h) = service? {
            // An auto-resizing sum accepts every verb's range.
            hists
                .entry(label)
                .or_insert_with(new_histogram)
                .add(&h)
                .map_err(|e| report.error(format!("kreplay.histograms.byVerb.{verb}: {e:?}")))?;
        }
    }
    for (label, h) in &hists {
        if let Some(g) = out.get_mut(label) {
            let p = Figures::from_histogram(h);
            (g.p50, g.p90, g.p99) = (p.p50, p.p90, p.p99);
        }
    }
    Ok(out)
}

fn label_of(key: &str) -> &str {
    key.split_once(' ').map_or(key, |(m, _)| m)
}

/// kperf method-label groups from a kperf report's keys: exact from raw latencies when
/// the report has them, else only for labels with a single key.
fn kperf_label_groups(
    report: &ReportFile,
    by_url: &BTreeMap<String, Percentiles>,
    raw: Option<&BTreeMap<String, Vec<f64>>>,
    notes: &mut Vec<String>,
) -> BTreeMap<String, Figures> {
    let r = &report.report;
    let name = report.path.display().to_string();
    let mut keys: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for k in by_url.keys() {
        keys.entry(label_of(k).to_string()).or_default().push(k);
    }
    // Failures per method: from the raw error records, or zero when nothing failed.
    let mut errors: Option<BTreeMap<String, u64>> = None;
    if let Some(list) = &r.errors {
        let mut m = BTreeMap::new();
        for e in list {
            *m.entry(e.method.clone()).or_insert(0) += 1;
            keys.entry(e.method.clone()).or_default();
        }
        errors = Some(m);
    } else if r.error_stats.is_none() {
        errors = Some(BTreeMap::new());
    } else {
        notes.push(format!(
            "{name}: kperf report without raw error records (--raw-data): per-verb errors unknown"
        ));
    }
    let mut out = BTreeMap::new();
    for (label, ks) in &keys {
        let mut f = match raw {
            Some(raw) => {
                let mut all: Vec<f64> = ks
                    .iter()
                    .filter_map(|k| raw.get(*k))
                    .flatten()
                    .copied()
                    .collect();
                all.sort_by(f64::total_cmp);
                let mut f = Figures::from_pairs(&kperf_percentiles(&all));
                f.count = Some(all.len() as u64);
                f
            }
            None if ks.len() == 1 => Figures::from_pairs(&by_url[ks[0]]),
            None => {
                if !ks.is_empty() {
                    notes.push(format!(
                        "{name}: {label} has {} metric keys and the kperf report has no raw latencies (--raw-data): its percentiles cannot be pooled",
                        ks.len()
                    ));
                }
                Figures::default()
            }
        };
        f.errors = errors.as_ref().map(|m| m.get(label).copied().unwrap_or(0));
        if let (Some(c), Some(e)) = (f.count, f.errors) {
            f.count = Some(c + e);
        } else {
            f.count = None;
        }
        out.insert(label.clone(), f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lose_their_server_url() {
        assert_eq!(
            normalise_key("LIST https://10.0.0.1:6443/api/v1/pods?labelSelector=a%3Db"),
            "LIST /api/v1/pods?labelSelector=a%3Db"
        );
        assert_eq!(normalise_key("GET http://127.0.0.1:8080"), "GET ");
        assert_eq!(normalise_key("GET /api"), "GET /api");
        assert_eq!(method_label("APPLY"), "PATCH");
        assert_eq!(method_label("LIST"), "LIST");
    }

    #[test]
    fn verbs_fold_into_labels_whatever_their_histogram_ranges() {
        use crate::metrics::record_value;
        use crate::report::kreplay::encode_histogram;
        // APPLY (read first) holds only small values, PATCH far larger ones.
        let (mut apply, mut patch) = (new_histogram(), new_histogram());
        record_value(&mut apply, 5);
        for v in [2_000_000u64, 3_000_000] {
            record_value(&mut patch, v);
        }
        let hist =
            |h: &Histogram<u64>| serde_json::json!({ "service": encode_histogram(h).unwrap() });
        let report = serde_json::json!({
            "total": 3, "duration": "1s",
            "kreplay": {
                "verbs": {
                    "APPLY": { "count": 1, "errors": 0 },
                    "PATCH": { "count": 3, "errors": 1 }
                },
                "histograms": { "byVerb": { "APPLY": hist(&apply), "PATCH": hist(&patch) } }
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, report.to_string()).unwrap();
        let file = ReportFile::load(&path).unwrap();
        let f = read_figures(&file, Grouping::MethodLabels, false).unwrap();
        let g = &f.groups["PATCH"];
        assert_eq!((g.count, g.errors), (Some(4), Some(1)));
        assert!((g.p99.unwrap() - 3.0).abs() < 0.01, "{g:?}");
        assert!(g.p50.unwrap() > 1.9, "{g:?}");
        assert!(!f.groups.contains_key("APPLY"));
    }
}
