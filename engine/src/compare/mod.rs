//! `engine compare`: reports side by side, and a regression gate.
//!
//! Checks: p99 latency regression (new − base) / base, overall and per verb; the new
//! run's error rate (failed / run), overall and per verb; the new run's p99 send lag
//! (kreplay reports only); and any `--fail-on` expression ([`crate::gate`]): any percentile,
//! max, absolute or relative to the base. Checks a report cannot support are listed, not
//! guessed. Reports of different timelines or speeds are refused unless forced. With several
//! base reports, the base of each figure is the top of their spread (the largest value), so
//! one noisy base run neither hides nor causes a regression on its own.

pub mod figures;
pub mod output;
pub mod read;
pub mod table;
pub mod thresholds;

use std::path::{Path, PathBuf};

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
    /// The reports do not describe the same replay (timeline or speed differ).
    #[error("{0}; pass --force to compare them anyway")]
    Mismatch(String),
}

/// One check and its verdict, for the JSON and JUnit outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// What was checked (`p99 latency regression of GET`, `p99(GET)>200ms`).
    pub name: String,
    /// Whether the check failed.
    pub failed: bool,
    /// The figures behind the verdict.
    pub detail: String,
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
    /// Every check made, passed or failed.
    pub checks: Vec<CheckResult>,
}

/// Options of one comparison.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// The thresholds in force (flags already applied).
    pub thresholds: Thresholds,
    /// Add one group per metric key (display only).
    pub per_url: bool,
    /// `--fail-on` expressions.
    pub gates: Vec<crate::gate::Gate>,
    /// Compare reports of different timelines or speeds.
    pub force: bool,
}

/// Compares the report `new` with one or more base reports.
pub fn compare_files(
    bases: &[PathBuf],
    new: &Path,
    opts: &CompareOptions,
) -> Result<CompareOutcome, CompareError> {
    let base_files = bases
        .iter()
        .map(|b| ReportFile::load(b))
        .collect::<Result<Vec<_>, _>>()?;
    let new = ReportFile::load(new)?;
    if !opts.force {
        for b in &base_files {
            same_replay(b, &new)?;
        }
    }
    let all_kreplay = new.report.is_kreplay() && base_files.iter().all(|b| b.report.is_kreplay());
    let grouping = if all_kreplay {
        Grouping::Verbs
    } else {
        Grouping::MethodLabels
    };
    let mut b = read_figures(&base_files[0], grouping, opts.per_url)?;
    for other in &base_files[1..] {
        b = figures::upper_envelope(b, &read_figures(other, grouping, opts.per_url)?);
    }
    let n = read_figures(&new, grouping, opts.per_url)?;
    let base_name = if base_files.len() == 1 {
        base_files[0].path.display().to_string()
    } else {
        format!("the {} base reports", base_files.len())
    };
    let mut outcome = compare_figures(&b, &n, &base_name, &new.path.display().to_string(), opts);
    if base_files.len() > 1 {
        outcome.notes.push(format!(
            "{} base reports: each base figure is the largest of them (the top of their spread)",
            base_files.len()
        ));
    }
    let base_refs: Vec<&ReportFile> = base_files.iter().collect();
    for g in &opts.gates {
        let v = crate::gate::check_against(g, &base_refs, &new);
        if v.failed {
            outcome
                .crossings
                .push(format!("{}: {}", v.gate, v.observed));
        }
        outcome.checks.push(CheckResult {
            name: v.gate.clone(),
            failed: v.failed,
            detail: v.observed.clone(),
        });
    }
    Ok(outcome)
}

/// The identity of the replay a report describes: `kreplay.config.timelineId` and `speed`.
fn replay_identity(r: &ReportFile) -> (Option<String>, Option<f64>) {
    let config = r.report.config();
    (
        config.and_then(|c| c.timeline_id.clone()),
        config.map(|c| c.speed),
    )
}

/// Refuses to compare reports of different timelines or speeds (figures of another
/// workload say nothing about a regression).
fn same_replay(base: &ReportFile, new: &ReportFile) -> Result<(), CompareError> {
    let (bt, bs) = replay_identity(base);
    let (nt, ns) = replay_identity(new);
    let (b, n) = (base.path.display(), new.path.display());
    if let (Some(bt), Some(nt)) = (&bt, &nt) {
        if bt != nt {
            return Err(CompareError::Mismatch(format!(
                "{b} and {n} replayed different timelines (kreplay.config.timelineId {bt} vs {nt})"
            )));
        }
    }
    if let (Some(bs), Some(ns)) = (bs, ns) {
        if bs != ns {
            return Err(CompareError::Mismatch(format!(
                "{b} and {n} replayed at different speeds ({bs} vs {ns})"
            )));
        }
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x * 100.0)
}

/// Where check verdicts go: the crossing sentences, the table's check column, the list.
struct Verdicts<'a> {
    crossings: &'a mut Vec<String>,
    checks: &'a mut Vec<CheckResult>,
    table: &'a mut Table,
}

impl Verdicts<'_> {
    fn record(&mut self, row: (&str, &str), name: String, failed: bool, detail: String) {
        self.table.mark(row.0, row.1, failed);
        if failed {
            self.crossings.push(detail.clone());
        }
        self.checks.push(CheckResult {
            name,
            failed,
            detail,
        });
    }
}

fn check_group(
    name: &str,
    row_group: &str,
    b: &Figures,
    n: &Figures,
    limits: &Limits,
    verdicts: &mut Verdicts<'_>,
    unchecked: &mut Vec<String>,
) {
    if let Some(limit) = limits.max_p99_regression {
        match (b.p99, n.p99) {
            (Some(bv), Some(nv)) if bv > 0.0 => {
                let change = (nv - bv) / bv;
                verdicts.record(
                    (row_group, "p99"),
                    format!("p99 latency regression of {name}"),
                    change > limit,
                    format!(
                        "p99 latency of {name} regressed {:+.1}% ({:.3} ms -> {:.3} ms), limit +{}",
                        change * 100.0,
                        bv * 1e3,
                        nv * 1e3,
                        pct(limit)
                    ),
                );
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
                verdicts.record(
                    (row_group, "errors"),
                    format!("error rate of {name}"),
                    rate > limit,
                    format!(
                        "error rate of {name} is {} ({e} of {c}), limit {}",
                        pct(rate),
                        pct(limit)
                    ),
                );
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

    let mut checks = Vec::new();
    let mut table = Table::new();
    table.overall(b, n);
    let mut verdicts = Verdicts {
        crossings: &mut crossings,
        checks: &mut checks,
        table: &mut table,
    };
    check_group(
        "all requests",
        "all",
        &b.overall,
        &n.overall,
        &t.global,
        &mut verdicts,
        &mut unchecked,
    );
    if let Some(limit) = t.global.max_lag_p99 {
        match n.lag_p99 {
            Some(lag) => verdicts.record(
                ("all", "send lag p99"),
                "p99 send lag".into(),
                lag > limit.as_secs_f64(),
                format!(
                    "p99 send lag is {:.3} ms, limit {:.3} ms",
                    lag * 1e3,
                    limit.as_secs_f64() * 1e3
                ),
            ),
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
        verdicts.table.group(
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
                    name,
                    bg,
                    ng,
                    &t.for_verb(name),
                    &mut verdicts,
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
        checks,
    }
}
