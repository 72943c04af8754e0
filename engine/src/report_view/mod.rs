//! `engine report REPORT.json`: what a person wants from a saved report (a run's, a merged
//! one, or kperf's own without a kreplay section) — a terminal summary, and with `--html` one
//! self-contained page of plots ([`html`]).

pub mod html;
mod svg;

use std::fmt::Write as _;

use crate::compare::read::{pair_value, ReportFile};
use crate::metrics::per_second::PerSecondSeries;
use crate::report::json_writer::to_go_json;
use crate::report::model::Report;

/// Labels shown in the "slowest labels" list.
pub const TOP_LABELS: usize = 10;

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

fn pair_line(p: &[(f64, f64)]) -> String {
    if p.is_empty() {
        return "-".into();
    }
    p.iter()
        .map(|(q, v)| {
            let name = match *q {
                0.0 => "min".to_string(),
                1.0 => "max".to_string(),
                q => format!("p{}", q * 100.0),
            };
            format!("{name} {}", ms(*v))
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// The figures a view shows, read once from a report.
pub struct ReportView {
    /// The report.
    pub file: ReportFile,
    /// Its per-interval series (empty for kperf reports and older kreplay ones).
    pub series: PerSecondSeries,
}

impl ReportView {
    /// Reads `file`'s figures.
    pub fn new(file: ReportFile) -> Result<ReportView, String> {
        let series = match file.kreplay() {
            Some(k) => k
                .per_second
                .series()
                .map_err(|e| format!("{}: {e}", file.path.display()))?,
            None => PerSecondSeries::default(),
        };
        Ok(ReportView { file, series })
    }

    fn report(&self) -> &Report {
        &self.file.report
    }

    /// What kind of report this is.
    pub fn kind(&self) -> &'static str {
        match (self.file.kreplay(), self.report().config()) {
            (None, _) => "kperf report (no kreplay section: no send lag, no per-second series)",
            (_, Some(c)) if c.merged_reports.is_some() => "kreplay report, merged from runners",
            (_, Some(c)) if c.runner_index.is_some() => "kreplay report of one runner",
            (Some(_), _) => "kreplay report",
        }
    }

    /// `(verb, count, errors, p50, p90, p99, max)` rows, by verb name.
    pub fn verb_rows(&self) -> Vec<(String, u64, u64, [Option<f64>; 4])> {
        let Some(k) = self.file.kreplay() else {
            return Vec::new();
        };
        k.verbs
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    v.count,
                    v.errors,
                    [v.latency.p50, v.latency.p90, v.latency.p99, v.latency.max],
                )
            })
            .collect()
    }

    /// The slowest metric labels by p99: `(label, p50, p99)`.
    pub fn top_labels(&self, n: usize) -> Vec<(String, f64, f64)> {
        let Some(by) = &self.report().percentile_latencies_by_url else {
            return Vec::new();
        };
        let mut rows: Vec<(String, f64, f64)> = by
            .iter()
            .map(|(k, p)| {
                let at = |q: f64| pair_value(p, q).unwrap_or(0.0);
                (k.clone(), at(0.5), at(0.99))
            })
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        rows.truncate(n);
        rows
    }

    /// `errorStats`, most frequent first.
    pub fn errors(&self) -> Vec<(String, u64)> {
        let mut rows: Vec<(String, u64)> = self
            .report()
            .error_stats
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }

    /// Overall service latency percentiles (kperf's list).
    pub fn latency_pairs(&self) -> Vec<(f64, f64)> {
        self.report()
            .percentile_latencies
            .clone()
            .unwrap_or_default()
    }

    /// `kreplay.config` as `key=value` items, keys sorted, values as JSON writes them: every
    /// member the model has, with no list of names here to keep up to date.
    fn config_items(&self) -> Option<Vec<String>> {
        let config = self.report().config()?;
        let text = to_go_json(config, 1024);
        let members: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).ok()?;
        let items = members.iter().map(|(k, v)| match v {
            serde_json::Value::String(t) => format!("{k}={t}"),
            other => format!("{k}={other}"),
        });
        Some(items.collect())
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let r = self.report();
        let k = self.file.kreplay();
        let run = r.total_run.unwrap_or(r.total);
        let failed = r
            .total_failed
            .unwrap_or_else(|| self.errors().iter().map(|e| e.1).sum());
        let secs = self.file.duration.as_secs_f64();
        let _ = writeln!(s, "{} — {}", self.file.path.display(), self.kind());
        let _ = writeln!(
            s,
            "  requests      {run} run, {} succeeded, {failed} failed ({:.3}%), {} bytes received, in {:.3} s",
            run.saturating_sub(failed),
            if run > 0 { failed as f64 / run as f64 * 100.0 } else { 0.0 },
            r.total_received_bytes,
            secs
        );
        match k.map(|k| (k.rate.achieved_per_second, k.rate.scheduled_per_second)) {
            Some((a, sch)) => {
                let _ = writeln!(
                    s,
                    "  rate          {a:.0}/s achieved, {sch:.0}/s scheduled ({:.1}%)",
                    if sch > 0.0 { a / sch * 100.0 } else { 0.0 }
                );
            }
            _ if secs > 0.0 => {
                let _ = writeln!(s, "  rate          {:.0}/s achieved", run as f64 / secs);
            }
            _ => {}
        }
        let _ = writeln!(s, "  latency       {}", pair_line(&self.latency_pairs()));
        let due = k.and_then(|k| k.scheduled_latency.as_deref());
        if let Some(due) = due.filter(|d| !d.is_empty()) {
            let _ = writeln!(s, "  from due      {}", pair_line(due));
        }
        if let Some(lag) = k.map(|k| &k.send_lag) {
            let f = |v: Option<f64>| v.map_or("-".into(), ms);
            let l = &lag.all.quantiles;
            let _ = writeln!(
                s,
                "  send lag      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (late >1ms: {}, >10ms: {})",
                f(l.p50),
                f(l.p90),
                f(l.p99),
                f(l.p999),
                f(l.max),
                lag.late_over_1ms,
                lag.late_over_10ms
            );
        }
        let verbs = self.verb_rows();
        if !verbs.is_empty() {
            let _ = writeln!(
                s,
                "  per verb      {:<18} {:>9} {:>8} {:>11} {:>11} {:>11} {:>11}",
                "", "count", "errors", "p50", "p90", "p99", "max"
            );
            for (name, count, errors, p) in &verbs {
                let c = |v: Option<f64>| v.map_or("-".into(), ms);
                let _ = writeln!(
                    s,
                    "                {name:<18} {count:>9} {errors:>8} {:>11} {:>11} {:>11} {:>11}",
                    c(p[0]),
                    c(p[1]),
                    c(p[2]),
                    c(p[3])
                );
            }
        }
        let top = self.top_labels(TOP_LABELS);
        if !top.is_empty() {
            let _ = writeln!(s, "  slowest labels (p99, top {TOP_LABELS}):");
            for (label, p50, p99) in top {
                let _ = writeln!(s, "    {:>11} (p50 {:>11})  {label}", ms(p99), ms(p50));
            }
        }
        let errors = self.errors();
        if !errors.is_empty() {
            let _ = writeln!(s, "  errors:");
            for (k, n) in errors.iter().take(20) {
                let _ = writeln!(s, "    {n:>10}  {k}");
            }
            if errors.len() > 20 {
                let _ = writeln!(s, "    ... and {} more kinds", errors.len() - 20);
            }
        }
        if let Some(w) = k.and_then(|k| k.watches.as_ref()) {
            let events: u64 = w.values().map(|v| v.events).sum();
            let bytes: u64 = w.values().map(|v| v.bytes).sum();
            let _ = writeln!(
                s,
                "  watches       {} keys, {events} events, {bytes} bytes",
                w.len()
            );
        }
        if !self.series.is_empty() {
            let n = self.series.used_len();
            let peak = self.series.completed[..n]
                .iter()
                .max()
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                s,
                "  per interval  {n} intervals of {} s; peak {peak} completed in one; `--html` plots them",
                self.series.interval_s
            );
        }
        if let Some(items) = self.config_items() {
            let _ = writeln!(s, "  configuration {}", items.join("  "));
        }
        s
    }
}

/// Reads a report and renders its summary (for `engine report` and `engine merge`).
pub fn summary_of(path: &std::path::Path) -> Result<String, String> {
    let file = ReportFile::load(path).map_err(|e| e.to_string())?;
    Ok(ReportView::new(file)?.summary())
}
