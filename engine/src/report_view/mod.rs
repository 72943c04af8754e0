//! `engine report REPORT.json`: what a person wants from a saved report (a run's, a merged
//! one, or kperf's own without a kreplay section) — a terminal summary, and with `--html` one
//! self-contained page of plots ([`html`]).

pub mod html;
mod svg;

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::compare::read::ReportFile;
use crate::metrics::per_second::PerSecondSeries;

/// Labels shown in the "slowest labels" list.
pub const TOP_LABELS: usize = 10;

/// One percentile list (`[[quantile, seconds], …]`) of a report.
fn pairs(v: Option<&Value>) -> Vec<(f64, f64)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

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
        let series = match file.kreplay().and_then(|k| k.get("perSecond")) {
            Some(ps) => PerSecondSeries::from_json(ps)
                .map_err(|e| format!("{}: {e}", file.path.display()))?,
            None => PerSecondSeries::default(),
        };
        Ok(ReportView { file, series })
    }

    fn root(&self) -> &Map<String, Value> {
        &self.file.root
    }

    fn k(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self.file.root.get("kreplay")?;
        for p in path {
            v = v.get(p)?;
        }
        Some(v)
    }

    fn u(&self, key: &str) -> Option<u64> {
        self.root().get(key).and_then(Value::as_u64)
    }

    /// What kind of report this is.
    pub fn kind(&self) -> &'static str {
        match self.file.kreplay() {
            None => "kperf report (no kreplay section: no send lag, no per-second series)",
            Some(k)
                if k.get("config")
                    .and_then(|c| c.get("mergedReports"))
                    .is_some() =>
            {
                "kreplay report, merged from runners"
            }
            Some(k) if k.get("config").and_then(|c| c.get("runnerIndex")).is_some() => {
                "kreplay report of one runner"
            }
            Some(_) => "kreplay report",
        }
    }

    /// `(verb, count, errors, p50, p90, p99, max)` rows, by verb name.
    pub fn verb_rows(&self) -> Vec<(String, u64, u64, [Option<f64>; 4])> {
        let Some(verbs) = self.k(&["verbs"]).and_then(Value::as_object) else {
            return Vec::new();
        };
        verbs
            .iter()
            .map(|(name, v)| {
                let f = |k: &str| v.get(k).and_then(Value::as_f64);
                (
                    name.clone(),
                    v.get("count").and_then(Value::as_u64).unwrap_or(0),
                    v.get("errors").and_then(Value::as_u64).unwrap_or(0),
                    [f("p50"), f("p90"), f("p99"), f("max")],
                )
            })
            .collect()
    }

    /// The slowest metric labels by p99: `(label, p50, p99)`.
    pub fn top_labels(&self, n: usize) -> Vec<(String, f64, f64)> {
        let Some(by) = self
            .root()
            .get("percentileLatenciesByURL")
            .and_then(Value::as_object)
        else {
            return Vec::new();
        };
        let mut rows: Vec<(String, f64, f64)> = by
            .iter()
            .map(|(k, v)| {
                let p = pairs(Some(v));
                let at = |q: f64| p.iter().find(|x| x.0 == q).map_or(0.0, |x| x.1);
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
            .root()
            .get("errorStats")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rows
    }

    /// Overall service latency percentiles (kperf's list).
    pub fn latency_pairs(&self) -> Vec<(f64, f64)> {
        pairs(self.root().get("percentileLatencies"))
    }

    /// The terminal summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let total = self.file.total();
        let run = self.u("totalRun").unwrap_or(total);
        let failed = self
            .u("totalFailed")
            .unwrap_or_else(|| self.errors().iter().map(|e| e.1).sum());
        let secs = self.file.duration.as_secs_f64();
        let _ = writeln!(s, "{} — {}", self.file.path.display(), self.kind());
        let _ = writeln!(
            s,
            "  requests      {run} run, {} succeeded, {failed} failed ({:.3}%), {} bytes received, in {:.3} s",
            run.saturating_sub(failed),
            if run > 0 { failed as f64 / run as f64 * 100.0 } else { 0.0 },
            self.u("totalReceivedBytes").unwrap_or(0),
            secs
        );
        let achieved = self
            .k(&["rate", "achievedPerSecond"])
            .and_then(Value::as_f64);
        let scheduled = self
            .k(&["rate", "scheduledPerSecond"])
            .and_then(Value::as_f64);
        match (achieved, scheduled) {
            (Some(a), Some(sch)) => {
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
        let due = pairs(self.k(&["scheduledLatency"]));
        if !due.is_empty() {
            let _ = writeln!(s, "  from due      {}", pair_line(&due));
        }
        if let Some(lag) = self.k(&["sendLag"]) {
            let f = |k: &str| lag.get(k).and_then(Value::as_f64).map_or("-".into(), ms);
            let _ = writeln!(
                s,
                "  send lag      p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (late >1ms: {}, >10ms: {})",
                f("p50"),
                f("p90"),
                f("p99"),
                f("p999"),
                f("max"),
                lag.get("lateOver1ms").and_then(Value::as_u64).unwrap_or(0),
                lag.get("lateOver10ms").and_then(Value::as_u64).unwrap_or(0)
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
        if let Some(w) = self.k(&["watches"]).and_then(Value::as_object) {
            let (mut events, mut bytes) = (0, 0);
            for v in w.values() {
                events += v.get("events").and_then(Value::as_u64).unwrap_or(0);
                bytes += v.get("bytes").and_then(Value::as_u64).unwrap_or(0);
            }
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
        if let Some(c) = self.k(&["config"]).and_then(Value::as_object) {
            let items: Vec<String> = c
                .iter()
                .map(|(k, v)| match v {
                    Value::String(t) => format!("{k}={t}"),
                    other => format!("{k}={other}"),
                })
                .collect();
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
