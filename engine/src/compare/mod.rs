//! `engine compare`: two reports side by side, and a regression gate.
//!
//! Checks: p99 latency regression (new − base) / base, overall and per verb; the new
//! run's error rate (failed / run), overall and per verb; the new run's p99 send lag
//! (kreplay reports only). Checks a report cannot support are listed, not guessed.

pub mod figures;
pub mod read;
pub mod table;
pub mod thresholds;

use std::path::Path;

use figures::{read_figures, Figures, Grouping, ReportFigures};
use read::{ReportFile, ReportReadError};
use table::Table;
use thresholds::{Limits, Thresholds};

/// Why a comparison could not be made (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A report file is missing, not JSON, or not a report.
    #[error(transparent)]
    Report(#[from] ReportReadError),
    /// The thresholds file is unusable.
    #[error(transparent)]
    Thresholds(#[from] thresholds::ThresholdError),
}

/// What `compare` found.
#[derive(Debug, Clone)]
pub struct CompareOutcome {
    /// The side-by-side table.
    pub table: String,
    /// Thresholds crossed, one sentence each.
    pub crossings: Vec<String>,
    /// Checks that could not be made, and why.
    pub unchecked: Vec<String>,
    /// Figures read in a weaker way than usual (e.g. a runner report without `totalRun`).
    pub notes: Vec<String>,
}

/// Options of one comparison.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// The thresholds in force (flags already applied).
    pub thresholds: Thresholds,
    /// Add one group per metric key (display only).
    pub per_url: bool,
}

/// Compares two report files.
pub fn compare_files(
    base: &Path,
    new: &Path,
    opts: &CompareOptions,
) -> Result<CompareOutcome, CompareError> {
    let base = ReportFile::load(base)?;
    let new = ReportFile::load(new)?;
    let grouping = if base.kreplay().is_some() && new.kreplay().is_some() {
        Grouping::Verbs
    } else {
        Grouping::MethodLabels
    };
    let b = read_figures(&base, grouping, opts.per_url)?;
    let n = read_figures(&new, grouping, opts.per_url)?;
    Ok(compare_figures(
        &b,
        &n,
        &base.path.display().to_string(),
        &new.path.display().to_string(),
        opts,
    ))
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

fn check_group(
    name: &str,
    b: &Figures,
    n: &Figures,
    limits: &Limits,
    crossings: &mut Vec<String>,
    unchecked: &mut Vec<String>,
) {
    if let Some(limit) = limits.max_p99_regression {
        match (b.p99, n.p99) {
            (Some(bv), Some(nv)) if bv > 0.0 => {
                let change = (nv - bv) / bv;
                if change > limit {
                    crossings.push(format!(
                        "p99 latency of {name} regressed {:+.1}% ({:.3} ms -> {:.3} ms), limit +{}",
                        change * 100.0,
                        bv * 1e3,
                        nv * 1e3,
                        pct(limit)
                    ));
                }
            }
            (Some(_), Some(_)) => {
                unchecked.push(format!("p99 regression of {name}: the base p99 is 0"))
            }
            (None, _) => unchecked.push(format!(
                "p99 regression of {name}: no p99 in the base report"
            )),
            (_, None) => unchecked.push(format!(
                "p99 regression of {name}: no p99 in the new report"
            )),
        }
    }
    if let Some(limit) = limits.max_error_rate {
        match (n.errors, n.count) {
            (Some(e), Some(c)) if c > 0 => {
                let rate = e as f64 / c as f64;
                if rate > limit {
                    crossings.push(format!(
                        "error rate of {name} is {} ({e} of {c}), limit {}",
                        pct(rate),
                        pct(limit)
                    ));
                }
            }
            (Some(_), Some(_)) => {}
            _ => unchecked.push(format!(
                "error rate of {name}: the new report has no failure count for it"
            )),
        }
    }
}

/// Compares figures already read; `base_name` and `new_name` name the reports in messages.
pub fn compare_figures(
    b: &ReportFigures,
    n: &ReportFigures,
    base_name: &str,
    new_name: &str,
    opts: &CompareOptions,
) -> CompareOutcome {
    let mut crossings = Vec::new();
    let mut unchecked: Vec<String> = Vec::new();
    let mut notes: Vec<String> = b.notes.iter().chain(&n.notes).cloned().collect();
    notes.dedup();
    let t = &opts.thresholds;

    let mut table = Table::new();
    table.overall(b, n);
    check_group(
        "all requests",
        &b.overall,
        &n.overall,
        &t.global,
        &mut crossings,
        &mut unchecked,
    );
    if let Some(limit) = t.global.max_lag_p99 {
        match n.lag_p99 {
            Some(lag) if lag > limit.as_secs_f64() => crossings.push(format!(
                "p99 send lag is {:.3} ms, limit {:.3} ms",
                lag * 1e3,
                limit.as_secs_f64() * 1e3
            )),
            Some(_) => {}
            None if !n.is_kreplay => unchecked.push(format!(
                "send lag: {new_name} is a kperf report (kperf does not record send lag)"
            )),
            None => unchecked.push(format!("send lag: {new_name} has no sendLag.p99")),
        }
    }

    let names: std::collections::BTreeSet<&String> =
        b.groups.keys().chain(n.groups.keys()).collect();
    let empty = Figures::default();
    for name in names {
        let (bg, ng) = (b.groups.get(name), n.groups.get(name));
        table.group(
            name,
            bg.unwrap_or(&empty),
            ng.unwrap_or(&empty),
            b.duration_s,
            n.duration_s,
        );
        match (bg, ng) {
            (Some(bg), Some(ng)) => {
                check_group(
                    name,
                    bg,
                    ng,
                    &t.for_verb(name),
                    &mut crossings,
                    &mut unchecked,
                );
            }
            (None, _) => unchecked.push(format!("{name}: only in {new_name}, nothing to compare")),
            (_, None) => unchecked.push(format!("{name}: only in {base_name}, nothing to compare")),
        }
    }

    if opts.per_url {
        let keys: std::collections::BTreeSet<&String> =
            b.urls.keys().chain(n.urls.keys()).collect();
        for k in keys {
            table.key_group(
                k,
                b.urls.get(k).unwrap_or(&empty),
                n.urls.get(k).unwrap_or(&empty),
                b.duration_s,
                n.duration_s,
            );
        }
    }

    unchecked.sort();
    unchecked.dedup();
    CompareOutcome {
        table: table.render(),
        crossings,
        unchecked,
        notes,
    }
}
