//! Reading a report file (kreplay's or kperf's JSON) into the report model, for `compare`,
//! `merge`, the gates and `engine report`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report::model::{self, EncodedHistogram, Histograms, Kreplay, Report};

/// A report file that cannot be used, with the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportReadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// One report read from disk, into the report model.
#[derive(Debug, Clone)]
pub struct ReportFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The report.
    pub report: Report,
    /// `duration`, parsed from Go's duration text.
    pub duration: Duration,
}

impl ReportFile {
    /// Reads and checks a report: kperf's members (at least `total` and `duration`), and
    /// kreplay's member if it has one.
    pub fn load(path: &Path) -> Result<ReportFile, ReportReadError> {
        let err = |message: String| ReportReadError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| err(format!("cannot read the report: {e}")))?;
        ReportFile::from_bytes(path, &text)
    }

    /// Checks a report already in memory (`path` names it in messages).
    pub fn from_bytes(path: &Path, text: &[u8]) -> Result<ReportFile, ReportReadError> {
        let err = |message: String| ReportReadError {
            path: path.to_path_buf(),
            message,
        };
        let report = model::parse(text).map_err(|e| err(e.to_string()))?;
        let duration = parse_go_duration(&report.duration).ok_or_else(|| {
            err(format!(
                "field `duration`: {:?} is not a Go duration (e.g. 1.5s, 2m0.5s, 999µs)",
                report.duration
            ))
        })?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            report,
            duration,
        })
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> ReportReadError {
        ReportReadError {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The `kreplay` member, if this is a kreplay report.
    pub fn kreplay(&self) -> Option<&Kreplay> {
        self.report.kreplay.as_ref()
    }

    /// The histogram `pick` selects from `kreplay.histograms` (`field` names it in an
    /// error); `None` when the report does not have it.
    pub fn histogram(
        &self,
        field: &str,
        pick: impl FnOnce(&Histograms) -> Option<&EncodedHistogram>,
    ) -> Result<Option<Histogram<u64>>, ReportReadError> {
        let Some(encoded) = self.report.histograms().and_then(pick) else {
            return Ok(None);
        };
        encoded
            .decode()
            .map(Some)
            .map_err(|e| self.error(format!("field `kreplay.histograms.{field}`: {e}")))
    }
}

/// The value at percentile `p` in a list of pairs.
pub fn pair_value(pairs: &[(f64, f64)], p: f64) -> Option<f64> {
    pairs.iter().find(|(q, _)| *q == p).map(|(_, v)| *v)
}

/// Parses Go's duration text (`0s`, `1.5ms`, `999µs`, `2m0.5s`, `1h0m5s`) exactly, to the
/// nanosecond, with the one parser every flag uses. Returns `None` for anything else.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    preprocess::duration::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::gofmt::format_go_duration;

    #[test]
    fn go_durations_round_trip() {
        for ns in [
            0u64,
            999,
            1_500,
            999_000,
            1_500_000,
            1_234_567_891,
            59_999_999_999,
            120_500_000_000,
            3_605_000_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            assert_eq!(parse_go_duration(&format_go_duration(d)), Some(d), "{ns}");
        }
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        for bad in ["", "1", "s", "1.2.3s", "5 parsecs", "-1s", "1x"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
