//! The side-by-side table `compare` prints: one row per (group, metric), base and new
//! values and the relative change.

use std::fmt::Write as _;

use super::figures::{Figures, ReportFigures};

fn ms(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), |v| format!("{:.3} ms", v * 1e3))
}

fn change(base: Option<f64>, new: Option<f64>) -> String {
    match (base, new) {
        (Some(b), Some(n)) if b > 0.0 => format!("{:+.1}%", (n - b) / b * 100.0),
        (Some(b), Some(n)) if b == n => "+0.0%".to_string(),
        _ => "-".to_string(),
    }
}

fn errors(f: &Figures) -> String {
    match (f.errors, f.count) {
        (Some(e), Some(c)) if c > 0 => format!("{e} ({:.3}%)", e as f64 / c as f64 * 100.0),
        (Some(e), _) => e.to_string(),
        _ => "-".to_string(),
    }
}

fn rate(f: &Figures, secs: f64) -> Option<f64> {
    f.count.filter(|_| secs > 0.0).map(|c| c as f64 / secs)
}

fn per_second(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |v| format!("{v:.1}/s"))
}

/// A line of the table: six cells (the last: pass/fail of a check on that row, or empty), or
/// a section title on its own line.
enum Line {
    Cells([String; 6]),
    Title(String),
}

/// The table builder.
pub struct Table {
    rows: Vec<Line>,
}

impl Table {
    /// An empty table with its header.
    pub fn new() -> Table {
        Table {
            rows: vec![Line::Cells(
                ["group", "metric", "base", "new", "change", "check"].map(String::from),
            )],
        }
    }

    fn row(&mut self, group: &str, metric: &str, base: String, new: String, change: String) {
        self.rows.push(Line::Cells([
            group.to_string(),
            metric.to_string(),
            base,
            new,
            change,
            String::new(),
        ]));
    }

    /// Marks the row (`group`, `metric`) as checked: `✗ fail` when `failed`, else `✓ pass`.
    /// A row already failed stays failed.
    pub fn mark(&mut self, group: &str, metric: &str, failed: bool) {
        for line in &mut self.rows {
            if let Line::Cells(c) = line {
                if c[0] == group && c[1] == metric && c[5] != "✗ fail" {
                    c[5] = if failed { "✗ fail" } else { "✓ pass" }.to_string();
                }
            }
        }
    }

    /// Rows of one metric key: the key on its own line, then its rows under an empty group.
    pub fn key_group(&mut self, key: &str, b: &Figures, n: &Figures, b_secs: f64, n_secs: f64) {
        self.rows.push(Line::Title(key.to_string()));
        self.group("", b, n, b_secs, n_secs);
    }

    /// Rows of one group: p50, p90, p99, errors, rate.
    pub fn group(&mut self, name: &str, b: &Figures, n: &Figures, b_secs: f64, n_secs: f64) {
        for (metric, bv, nv) in [
            ("p50", b.p50, n.p50),
            ("p90", b.p90, n.p90),
            ("p99", b.p99, n.p99),
        ] {
            self.row(name, metric, ms(bv), ms(nv), change(bv, nv));
        }
        let err_rate = |f: &Figures| match (f.errors, f.count) {
            (Some(e), Some(c)) if c > 0 => Some(e as f64 / c as f64),
            _ => None,
        };
        let er_change = match (err_rate(b), err_rate(n)) {
            (Some(x), Some(y)) => format!("{:+.3} pt", (y - x) * 100.0),
            _ => "-".to_string(),
        };
        self.row(name, "errors", errors(b), errors(n), er_change);
        let (br, nr) = (rate(b, b_secs), rate(n, n_secs));
        self.row(name, "rate", per_second(br), per_second(nr), change(br, nr));
    }

    /// The run-wide rows: the groups' rows plus send lag and latency from the due instant.
    pub fn overall(&mut self, b: &ReportFigures, n: &ReportFigures) {
        self.group("all", &b.overall, &n.overall, b.duration_s, n.duration_s);
        if b.lag_p99.is_some() || n.lag_p99.is_some() {
            self.row(
                "all",
                "send lag p99",
                ms(b.lag_p99),
                ms(n.lag_p99),
                change(b.lag_p99, n.lag_p99),
            );
        }
        if b.scheduled_p99.is_some() || n.scheduled_p99.is_some() {
            self.row(
                "all",
                "p99 from due",
                ms(b.scheduled_p99),
                ms(n.scheduled_p99),
                change(b.scheduled_p99, n.scheduled_p99),
            );
        }
    }

    /// The aligned text.
    pub fn render(&self) -> String {
        let mut widths = [0usize; 6];
        for r in &self.rows {
            if let Line::Cells(r) = r {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let mut s = String::new();
        for r in &self.rows {
            let r = match r {
                Line::Cells(r) => r,
                Line::Title(t) => {
                    let _ = writeln!(s, "{t}");
                    continue;
                }
            };
            let line = format!(
                "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4]
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}
