//! Reading a report file (kreplay's or kperf's JSON) for `compare` and `merge`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

use crate::report::kreplay::decode_histogram;

/// A report file that cannot be used, with the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ReportReadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong and what would be valid.
    pub message: String,
}

/// One report read from disk: its top-level JSON object.
#[derive(Debug, Clone)]
pub struct ReportFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The top-level object.
    pub root: Map<String, Value>,
    /// `duration`, parsed from Go's duration text.
    pub duration: Duration,
}

impl ReportFile {
    /// Reads and checks a report: a JSON object with kperf's `total` and `duration`.
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
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            err(format!(
                "not JSON ({e}); expected a kperf or kreplay report"
            ))
        })?;
        let Value::Object(root) = value else {
            return Err(err(
                "not a report: the JSON is not an object (expected kperf's report with `total` and `duration`)"
                    .into(),
            ));
        };
        if !root.get("total").is_some_and(Value::is_u64) {
            return Err(err(
                "not a report: no integer `total` (expected kperf's report with `total` and `duration`)"
                    .into(),
            ));
        }
        let duration = root
            .get("duration")
            .and_then(Value::as_str)
            .ok_or_else(|| err("not a report: no string `duration`".into()))?;
        let duration = parse_go_duration(duration).ok_or_else(|| {
            err(format!(
                "field `duration`: {duration:?} is not a Go duration (e.g. 1.5s, 2m0.5s, 999µs)"
            ))
        })?;
        let file = ReportFile {
            path: path.to_path_buf(),
            root,
            duration,
        };
        if let Some(k) = file.root.get("kreplay") {
            if !k.is_object() {
                return Err(file.error("field `kreplay` is not an object"));
            }
        }
        Ok(file)
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> ReportReadError {
        ReportReadError {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The `kreplay` section, if this is a kreplay report.
    pub fn kreplay(&self) -> Option<&Map<String, Value>> {
        self.root.get("kreplay").and_then(Value::as_object)
    }

    /// A top-level unsigned integer; absent is `None`, another type an error.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, ReportReadError> {
        opt_u64_in(&self.root, key).map_err(|m| self.error(m))
    }

    /// kperf's `total`.
    pub fn total(&self) -> u64 {
        self.root.get("total").and_then(Value::as_u64).unwrap_or(0)
    }

    /// `errorStats` as (key, count) pairs.
    pub fn error_stats(&self) -> Result<Vec<(String, u64)>, ReportReadError> {
        let Some(v) = self.root.get("errorStats") else {
            return Ok(Vec::new());
        };
        let obj = v
            .as_object()
            .ok_or_else(|| self.error("field `errorStats` is not an object"))?;
        obj.iter()
            .map(|(k, v)| {
                v.as_u64().map(|n| (k.clone(), n)).ok_or_else(|| {
                    self.error(format!("errorStats[{k:?}] is not a non-negative integer"))
                })
            })
            .collect()
    }

    /// The `[p, seconds]` pairs at `value` (a percentile list), checked.
    pub fn percentile_pairs(
        &self,
        value: &Value,
        field: &str,
    ) -> Result<Vec<(f64, f64)>, ReportReadError> {
        let bad = || {
            self.error(format!(
                "field `{field}` is not a list of [percentile, seconds] pairs"
            ))
        };
        let list = value.as_array().ok_or_else(bad)?;
        list.iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([p, v]) => Ok((p.as_f64().ok_or_else(bad)?, v.as_f64().ok_or_else(bad)?)),
                _ => Err(bad()),
            })
            .collect()
    }

    /// A serialised histogram at `kreplay.histograms.<path...>`; `None` when absent.
    pub fn histogram(&self, path: &[&str]) -> Result<Option<Histogram<u64>>, ReportReadError> {
        let mut v = match self.kreplay().and_then(|k| k.get("histograms")) {
            Some(v) => v,
            None => return Ok(None),
        };
        for p in path {
            match v.get(p) {
                Some(next) => v = next,
                None => return Ok(None),
            }
        }
        let field = format!("kreplay.histograms.{}", path.join("."));
        let text = v
            .as_str()
            .ok_or_else(|| self.error(format!("field `{field}` is not a string")))?;
        decode_histogram(text)
            .map(Some)
            .map_err(|e| self.error(format!("field `{field}`: {e}")))
    }
}

/// `obj[key]` as an unsigned integer; absent is `None`, another type an error message.
pub fn opt_u64_in(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("field `{key}` is not a non-negative integer")),
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
