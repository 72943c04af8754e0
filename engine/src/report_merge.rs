//! `engine merge`: one report from the reports of distributed runners, exact from their
//! serialised histograms (kperf can only concatenate raw arrays, kperf weakness 24).
//!
//! Counters and `errorStats` add up, histograms are added, every percentile is recomputed
//! from the merged histograms, `duration` is the longest. Reports of different timelines
//! (or the same runner twice) are refused unless forced; kperf-only reports (no
//! histograms) are refused.

mod accumulate;
mod write;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::compare::read::{ReportFile, ReportReadError};
use crate::report::kreplay::HistogramCodecError;

pub use accumulate::MergedReport;

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// An input is missing, not JSON, or not a report.
    #[error(transparent)]
    Report(#[from] ReportReadError),
    /// The inputs do not belong together (override with `--force` where it says so).
    #[error("{0}")]
    Refused(String),
    /// A merged histogram could not be encoded.
    #[error(transparent)]
    Histogram(#[from] HistogramCodecError),
}

/// Options of `engine merge`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Merge reports of different timelines, settings or repeated runners anyway.
    pub force: bool,
    /// How many runners the replay had, when the caller knows (`engine job`); otherwise the
    /// reports' own `runnerCount`. Runners without a report are listed as missing.
    pub expected_runners: Option<u64>,
}

/// The identity of a report's replay: reports merge only when these agree.
fn identity(r: &ReportFile, by_id: bool) -> Result<[String; 3], MergeError> {
    let config = r
        .report
        .config()
        .ok_or_else(|| r.error("no kreplay.config: not a kreplay report"))?;
    // The content id where the reports have it: the same timeline copied to, or
    // preprocessed again on, each runner's machine has one id whatever its path.
    let timeline = match (by_id, &config.timeline_id) {
        (true, Some(id)) => id.clone(),
        (true, None) => return Err(r.error("kreplay.config has no string `timelineId`").into()),
        (false, _) => config.timeline_source.clone(),
    };
    Ok([
        timeline,
        config.timeline_description.clone(),
        config.speed.to_string(),
    ])
}

/// Checks that `reports` can merge: every one has histograms, they replay one timeline at
/// one speed, and no runner appears twice (the last two only without `force`).
fn check_inputs(reports: &[ReportFile], force: bool) -> Result<(), MergeError> {
    for r in reports {
        if r.report.histograms().is_none() {
            return Err(r
                .error(
                    "a kperf-format report (no kreplay.histograms): its percentiles cannot be merged exactly; \
                     merge reports written by `engine run`",
                )
                .into());
        }
    }
    if force {
        return Ok(());
    }
    // Reports written before timelineId existed are compared by their source path.
    let by_id = reports
        .iter()
        .all(|r| r.report.config().is_some_and(|c| c.timeline_id.is_some()));
    let first = identity(&reports[0], by_id)?;
    for r in &reports[1..] {
        let id = identity(r, by_id)?;
        if id != first {
            return Err(MergeError::Refused(format!(
                "{} and {} replay different timelines or speeds (timeline {:?} vs {:?}, timelineDescription {:?} vs {:?}, speed {} vs {}); use --force to merge anyway",
                reports[0].path.display(),
                r.path.display(),
                first[0],
                id[0],
                first[1],
                id[1],
                first[2],
                id[2]
            )));
        }
    }
    let mut seen = BTreeSet::new();
    for r in reports {
        let index = r.report.config().and_then(|c| c.runner_index);
        let runner = match index {
            Some(i) => format!("runner {i}"),
            None if reports.len() > 1 => {
                return Err(MergeError::Refused(format!(
                    "{} is a full run (no runnerIndex): merging it with other reports would count its runners twice; use --force to merge anyway",
                    r.path.display()
                )))
            }
            None => continue,
        };
        if !seen.insert(index) {
            return Err(MergeError::Refused(format!(
                "{} is {runner} again: it would be counted twice; use --force to merge anyway",
                r.path.display()
            )));
        }
    }
    Ok(())
}

/// A merged report.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The report's JSON text (`engine run`'s format).
    pub json: String,
    /// What had to be left out, for the user.
    pub notes: Vec<String>,
}

/// Merges the report files at `paths`.
pub fn merge_files(paths: &[PathBuf], opts: MergeOptions) -> Result<Merged, MergeError> {
    if paths.is_empty() {
        return Err(MergeError::Refused("no report to merge".into()));
    }
    let reports = paths
        .iter()
        .map(|p| ReportFile::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    check_inputs(&reports, opts.force)?;
    let mut merged = MergedReport::default();
    for r in &reports {
        merged.add(r)?;
    }
    // kperf's order: runner by runner, whatever order the files were given in.
    merged.raw_errors.sort_by_key(|(runner, _)| *runner);
    merged.note_missing_runners(opts.expected_runners);
    merged.add_keys(&reports)?;
    let json = merged.render()?;
    Ok(Merged {
        json,
        notes: merged.notes,
    })
}
