//! The report's schema, once: serde types for kperf's members ([`Report`]) and the `kreplay`
//! member ([`Kreplay`]). `engine run` fills a [`Report`] from its measurements
//! (`report::build_report`), `engine merge` reads reports into it and fills a merged one
//! (`report_merge`), and `compare`, the gates and `engine report` read its fields. Every
//! report is written by [`Report::to_json`] through [`GoFormatter`](super::json_writer::GoFormatter),
//! Go's `json.MarshalIndent` byte for byte (docs/kperf-compatibility.md §12).
//!
//! **Adding a field is one edit here**, and the compiler names the rest. The field's place
//! among its struct's fields is its place in the text. Written, read back, round-tripped and
//! checked by this module's tests (every member of every struct must appear in a full report)
//! with no other edit; a [`Config`] member also shows in `engine report`'s configuration line.
//! What it cannot know is the value: the structs are filled with complete struct literals for
//! a run (`report::kperf`, `report::kreplay`) and for a merge (`report_merge::write`), and
//! `report_merge::accumulate` destructures every input [`Report`], [`Kreplay`],
//! [`RunCounters`] and [`Config`] member by member, so a new field fails to compile until
//! its value and its merge rule (add, take the largest, keep the first) are written. Key
//! order is field order; maps are `BTreeMap`s, sorted bytewise as Go sorts map keys; an
//! `Option` member left `None` is absent, as Go's `omitempty` leaves it.
//!
//! Reading is tolerant where reports differ legitimately (kperf's reports have no `kreplay`,
//! its `runner replay` form stops after `percentileLatenciesByURL`, older kreplay reports lack
//! later members: those default) and ignores members it does not know, as the
//! `serde_json::Value` readers it replaces did. A member of the wrong type is an error naming
//! its path ([`parse`]).

mod kreplay;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

pub use kreplay::{
    Config, CoreTiming, HistogramPair, Histograms, Kreplay, LagSummary, PerSecond, Quantiles, Rate,
    RunCounters, SendLag, SparseBuckets, VerbFigures, WatchFigures,
};

use super::json_writer::to_go_json;
use super::kreplay::{decode_histogram, encode_histogram, HistogramCodecError};

/// kperf's `[percentile, seconds]` pairs (`percentileLatencies` and the like).
pub type Percentiles = Vec<(f64, f64)>;

/// A whole report: kperf's members in kperf's order, then `kreplay`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Requests in the replay (kperf: scheduled).
    pub total: u64,
    /// The replay's wall time, as Go's `time.Duration.String()`.
    pub duration: String,
    /// Every failure (`--raw-data`), runner by runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorEntry>>,
    /// Failures by kperf's error key (`http/404`, `connection/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_stats: Option<BTreeMap<String, u64>>,
    /// Response bytes received.
    #[serde(default)]
    pub total_received_bytes: u64,
    /// Every latency by metric key, seconds, ascending (`--raw-data`).
    #[serde(
        rename = "latenciesByURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub latencies_by_url: Option<BTreeMap<String, Vec<f64>>>,
    /// kperf's percentiles of every latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile_latencies: Option<Percentiles>,
    /// kperf's percentiles by metric key.
    #[serde(
        rename = "percentileLatenciesByURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub percentile_latencies_by_url: Option<BTreeMap<String, Percentiles>>,
    /// Runners of the replay (absent in kperf's `runner replay` form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_count: Option<u64>,
    /// Requests run, successes and failures (absent in the runner form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_run: Option<u64>,
    /// Requests failed (absent in the runner form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_failed: Option<u64>,
    /// kreplay's member; `None` in kperf's own reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kreplay: Option<Kreplay>,
}

/// One failure as kperf records it (`--raw-data`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    /// kperf's method label (`GET`, `POST`, ...).
    pub method: String,
    /// The request URL.
    pub url: String,
    /// When it failed, RFC 3339 with nanoseconds.
    pub timestamp: String,
    /// How long it took, seconds.
    pub duration: f64,
    /// kperf's error type (`http`, `connection`, `unknown`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status, 0 for other failures.
    pub code: i64,
    /// The error's text.
    pub message: String,
}

/// A histogram as the report holds it: HdrHistogram V2 in a zlib stream, base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncodedHistogram(pub String);

impl EncodedHistogram {
    /// Encodes `h` (see [`encode_histogram`]).
    pub fn encode(h: &Histogram<u64>) -> Result<Self, HistogramCodecError> {
        encode_histogram(h).map(EncodedHistogram)
    }

    /// The histogram back.
    pub fn decode(&self) -> Result<Histogram<u64>, HistogramCodecError> {
        decode_histogram(&self.0)
    }
}

impl Report {
    /// The report's text: Go's `json.MarshalIndent(report, "", "  ")` and a newline.
    /// `capacity`: a guess of its length.
    pub fn to_json(&self, capacity: usize) -> String {
        to_go_json(self, capacity)
    }

    /// Whether this is a kreplay report (it has the `kreplay` member).
    pub fn is_kreplay(&self) -> bool {
        self.kreplay.is_some()
    }

    /// `kreplay.config`, when the report has it.
    pub fn config(&self) -> Option<&Config> {
        self.kreplay.as_ref().and_then(|k| k.config.as_ref())
    }

    /// `kreplay.histograms`, when the report has them.
    pub fn histograms(&self) -> Option<&Histograms> {
        self.kreplay.as_ref().and_then(|k| k.histograms.as_ref())
    }
}

/// kperf's two members every report has: what a text without them is not.
const EXPECTED: &str = "expected kperf's report with `total` and `duration`";

/// Why a report's text is not a report.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The text is not JSON at all.
    #[error("not JSON ({0}); expected a kperf or kreplay report")]
    NotJson(serde_json::Error),
    /// JSON, but not an object.
    #[error("not a report: the JSON is not an object ({EXPECTED})")]
    NotAnObject,
    /// An object without kperf's `total`.
    #[error("not a report: no integer `total` ({EXPECTED})")]
    NoTotal,
    /// An object without kperf's `duration`.
    #[error("not a report: no string `duration` ({EXPECTED})")]
    NoDuration,
    /// A member is missing or of another type than `engine run` writes.
    #[error("{}: {message} (as `engine run` writes it)", if path.is_empty() { "the report" } else { path.as_str() })]
    Member {
        /// Where, as a dotted path from the top (`kreplay.verbs.GET.count`).
        path: String,
        /// serde's account: what was found and what was expected.
        message: String,
    },
}

/// Reads a report's text into the model. The common case pays for one typed parse; only a
/// failure parses again, to name the member at fault.
pub fn parse(text: &[u8]) -> Result<Report, ParseError> {
    let first = match serde_json::from_slice(text) {
        Ok(report) => return Ok(report),
        Err(e) if e.is_syntax() || e.is_eof() => return Err(ParseError::NotJson(e)),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_slice(text);
    let (path, message) = match serde_path_to_error::deserialize::<_, Report>(&mut de) {
        Err(at) => {
            let path = at.path().to_string();
            (
                path.trim_start_matches('.').to_string(),
                at.into_inner().to_string(),
            )
        }
        // Not expected: the same text, the same types.
        Ok(_) => (String::new(), first.to_string()),
    };
    // kperf's own two members missing or mistyped: not a report at all (or not JSON: `[1, 2`
    // fails as a report's fields before it fails as JSON).
    let top = serde_json::from_slice::<serde_json::Value>(text).map_err(ParseError::NotJson)?;
    let Some(top) = top.as_object() else {
        return Err(ParseError::NotAnObject);
    };
    if !top.get("total").is_some_and(serde_json::Value::is_u64) {
        return Err(ParseError::NoTotal);
    }
    if !top
        .get("duration")
        .is_some_and(serde_json::Value::is_string)
    {
        return Err(ParseError::NoDuration);
    }
    Err(ParseError::Member { path, message })
}
