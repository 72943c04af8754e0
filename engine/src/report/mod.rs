//! The run report: kperf's JSON report plus kreplay's own section. Its schema is [`model`];
//! `kperf` and `kreplay` fill it from a run's measurements, `json_writer` writes it as Go does.

pub mod gofmt;
pub mod histogram_codec;
pub mod json_writer;
pub mod model;
pub mod per_second;
pub mod percentile;
pub mod sorted_hdr;

pub mod kperf;
pub mod kreplay;
pub mod summary;
pub mod timing;

use std::time::Duration;

use crate::run::RunOutcome;
use crate::source::ReplaySource;

/// Settings echoed in the report's `kreplay.config`.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// `precise` or `relaxed`.
    pub timing: &'static str,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The runner replayed, in runner mode.
    pub runner_index: Option<u32>,
    /// The server URL (no credentials).
    pub server: String,
    /// The User-Agent sent.
    pub user_agent: String,
}

/// Everything the report is made from.
pub struct ReportContext<'a> {
    /// What the run measured.
    pub outcome: &'a RunOutcome,
    /// The replayed timeline (labels, spec).
    pub source: &'a dyn ReplaySource,
    /// Base URL inserted in metric keys (`None`: `--metric-base none`).
    pub base_url: Option<&'a str>,
    /// `--raw-data`.
    pub raw_data: bool,
    /// kperf's `runner replay` form (first eight keys only).
    pub runner_form: bool,
    /// Replay speed.
    pub speed: f64,
    /// Echoed settings.
    pub config: ReportConfig,
}

/// The report of the run in `ctx` (kperf's members, then `"kreplay"`).
pub fn build_report(
    ctx: &ReportContext<'_>,
) -> Result<model::Report, kreplay::HistogramCodecError> {
    let keys = kperf::ReportKeys::new(ctx);
    build_with_keys(ctx, &keys)
}

fn build_with_keys(
    ctx: &ReportContext<'_>,
    keys: &kperf::ReportKeys<'_>,
) -> Result<model::Report, kreplay::HistogramCodecError> {
    let mut report = kperf::kperf_members(ctx, keys);
    report.kreplay = Some(kreplay::kreplay_member(ctx, keys)?);
    Ok(report)
}

/// Renders the whole JSON report (kperf's members, then `"kreplay"`).
pub fn render_report(ctx: &ReportContext<'_>) -> Result<String, kreplay::HistogramCodecError> {
    let keys = kperf::ReportKeys::new(ctx);
    let report = build_with_keys(ctx, &keys)?;
    Ok(report.to_json(estimated_len(ctx, &keys)))
}

/// A generous guess of the report's length, so that its text is never copied to grow:
/// keys, percentiles and a label's two histograms (about two bytes a sample in V2, a
/// third more in base64), raw latencies and errors with `--raw-data`.
fn estimated_len(ctx: &ReportContext<'_>, keys: &kperf::ReportKeys<'_>) -> usize {
    let raw = ctx.raw_data;
    let per_label: usize = keys
        .entries
        .iter()
        .map(|e| {
            let samples = e.stats.latency.len() as usize;
            let histograms = match e.stats.latency.small_pairs() {
                Some(_) => 2 * (100 + 3 * samples) * 4 / 3,
                None => 32 * 1024,
            };
            let raw_text = if raw { 32 * samples } else { 0 };
            3 * e.key.len() + 400 + histograms + raw_text
        })
        .sum();
    64 * 1024 + per_label + ctx.outcome.metrics.errors.len() * 400
}

#[cfg(test)]
pub(crate) mod tests;

/// Where `engine run` writes its report without `--result`: `kreplay-report-<UTC time>.json` in
/// the current directory (`kreplay-report-20260102T150405Z.json`), so a person's terminal gets
/// the summary, not megabytes of JSON, and runs do not overwrite each other.
pub fn default_report_path(now: std::time::SystemTime) -> std::path::PathBuf {
    let t = time::OffsetDateTime::from(now);
    std::path::PathBuf::from(format!(
        "kreplay-report-{:04}{:02}{:02}T{:02}{:02}{:02}Z.json",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod default_path_tests {
    #[test]
    fn names_the_utc_instant() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_366_245);
        assert_eq!(
            super::default_report_path(t).to_str(),
            Some("kreplay-report-20260102T150405Z.json")
        );
    }
}
