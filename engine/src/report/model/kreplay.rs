//! The `kreplay` member: what kperf's report cannot tell (send lag, latency from the due
//! instant, per-verb figures, rates, per-interval series, configuration) and every histogram,
//! so that reports merge exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{EncodedHistogram, Percentiles};

/// The `kreplay` member, in the order `engine run` writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kreplay {
    /// The kreplay version that wrote the report.
    #[serde(default)]
    pub version: String,
    /// Send lag of every request.
    #[serde(default)]
    pub send_lag: SendLag,
    /// The scheduler's own precision (wake error), seconds.
    #[serde(default)]
    pub wake_error: LagSummary,
    /// Some core worked at least `SATURATED_BUSY` of the replay: lag is the client's.
    #[serde(default)]
    pub client_saturated: bool,
    /// Each core's timing, runner by runner in a merged report.
    #[serde(default)]
    pub per_core: Vec<CoreTiming>,
    /// kperf's percentiles of the latency from the due instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_latency: Option<Percentiles>,
    /// Figures by verb (`GET`, `LIST`, `CREATE`, ...), verbs that ran only.
    #[serde(default)]
    pub verbs: BTreeMap<String, VerbFigures>,
    /// Requests per second achieved and scheduled.
    #[serde(default)]
    pub rate: Rate,
    /// Per-second counts and per-interval series.
    #[serde(default)]
    pub per_second: PerSecond,
    /// What the replay did: counters and how it ended.
    #[serde(default)]
    pub run: RunCounters,
    /// Events and bytes of WATCHes, by metric key; absent when no WATCH received any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<BTreeMap<String, WatchFigures>>,
    /// The settings of the replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
    /// Every histogram, what `engine merge` adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<Histograms>,
}

/// Percentiles of a latency or lateness histogram, seconds; absent when it has no values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    /// Median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    /// 90th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90: Option<f64>,
    /// 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// 99.9th percentile (lateness only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p999: Option<f64>,
    /// Largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A lateness histogram's count and percentiles (send lag, wake error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSummary {
    /// Values recorded.
    #[serde(default)]
    pub count: u64,
    /// Their percentiles.
    #[serde(flatten)]
    pub quantiles: Quantiles,
}

/// `kreplay.sendLag`: every request's send lag, the late counts and, when WATCHes were sent,
/// the lag of WATCHes (which includes their connect) and of the rest apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendLag {
    /// Count and percentiles of every request's lag.
    #[serde(flatten)]
    pub all: LagSummary,
    /// Requests sent more than 1 ms late.
    #[serde(default, rename = "lateOver1ms")]
    pub late_over_1ms: u64,
    /// Requests sent more than 10 ms late.
    #[serde(default, rename = "lateOver10ms")]
    pub late_over_10ms: u64,
    /// The WATCHes' lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watches: Option<LagSummary>,
    /// The lag of every request but WATCHes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub without_watches: Option<LagSummary>,
}

/// One core's timing, as `kreplay.perCore` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreTiming {
    /// The CPU it was pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// Fraction of the replay its thread worked, spinning excluded (written to 4 decimals).
    #[serde(serialize_with = "four_decimals")]
    pub busy_fraction: f64,
    /// CPU time of its thread, s.
    pub cpu_seconds: f64,
    /// Of it, time spent spinning for due instants, s.
    pub spin_seconds: f64,
    /// Send lag of its requests.
    pub send_lag: LagSummary,
    /// Wake error of its releases.
    pub wake_error: LagSummary,
}

/// A fraction to 4 decimals: the report's precision, whatever the measurement's.
fn four_decimals<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((x * 1e4).round() / 1e4)
}

/// One verb's figures (`kreplay.verbs.GET`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerbFigures {
    /// Requests run.
    #[serde(default)]
    pub count: u64,
    /// Of them, failed.
    #[serde(default)]
    pub errors: u64,
    /// Percentiles of its service latency (no p99.9).
    #[serde(flatten)]
    pub latency: Quantiles,
}

/// `kreplay.rate`, requests per second, rounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// Requests run / duration.
    #[serde(default)]
    pub achieved_per_second: f64,
    /// Requests / the timeline's span at the replay's speed (runners' rates add up).
    #[serde(default)]
    pub scheduled_per_second: f64,
}

/// `kreplay.perSecond`: counts per second since the start, then the per-interval series
/// (members from `intervalSeconds` on: absent when the run sized none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerSecond {
    /// Requests due in each second.
    #[serde(default)]
    pub scheduled: Vec<u64>,
    /// Requests sent in each second.
    #[serde(default)]
    pub sent: Vec<u64>,
    /// Seconds per interval of the series below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u64>,
    /// Successes per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Vec<u64>>,
    /// Failures per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<u64>>,
    /// Body bytes per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Vec<u64>>,
    /// p99 service latency per interval, seconds (`null`: nothing completed); derived from
    /// `latencyBuckets`, which readers use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<Vec<Option<f64>>>,
    /// p99 send lag per interval, seconds; derived from `lagBuckets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99: Option<Vec<Option<f64>>>,
    /// Service latency histogram per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_buckets: Option<Vec<SparseBuckets>>,
    /// Send-lag histogram per interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_buckets: Option<Vec<SparseBuckets>>,
}

/// One interval's histogram as sparse `[bucket, count]` pairs, buckets ascending. Written on
/// one line (`[[3,5],[9,1]]`), unlike the rest of the report: a series has thousands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SparseBuckets(pub Vec<(u64, u64)>);

impl Serialize for SparseBuckets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(2 + 12 * self.0.len());
        text.push('[');
        for (i, (b, c)) in self.0.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(text, "{sep}[{b},{c}]");
        }
        text.push(']');
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SparseBuckets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<(u64, u64)>::deserialize(d).map(SparseBuckets)
    }
}

/// `kreplay.run`: what the replay did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCounters {
    /// Pauses a core's loop made before reading its answers while behind its schedule
    /// against a busy server (HTTP/2): answers read after one carry a latency up to the
    /// pause (20-200 µs) late.
    #[serde(default)]
    pub backlog_pauses: u64,
    /// Requests that got an answer.
    #[serde(default)]
    pub completed: u64,
    /// Connections opened again after a failure.
    #[serde(default)]
    pub connection_retries: u64,
    /// Connections opened.
    #[serde(default)]
    pub connections_opened: u64,
    /// Connections opened by each core, runner by runner in a merged report.
    #[serde(default)]
    pub connections_per_core: Vec<u64>,
    /// Bytes of error bodies read.
    #[serde(default)]
    pub error_body_bytes: u64,
    /// The replay was stopped (signal or `--duration`).
    #[serde(default)]
    pub interrupted: bool,
    /// Most HTTP/2 streams on one connection.
    #[serde(default)]
    pub max_streams_per_connection: u64,
    /// Requests sent again.
    #[serde(default)]
    pub retries: u64,
    /// Requests sent.
    #[serde(default)]
    pub sent: u64,
    /// Only in a run the timeline check stopped: the file, the damaged part, and that nothing
    /// past it was sent (a merged report: each stopped run's, prefixed with its report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_damage: Option<String>,
    /// Requests never sent because the replay stopped.
    #[serde(default)]
    pub unsent_on_stop: u64,
}

/// One metric key's WATCH figures (`kreplay.watches`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WatchFigures {
    /// Event bytes received.
    #[serde(default)]
    pub bytes: u64,
    /// Events received.
    #[serde(default)]
    pub events: u64,
}

/// `kreplay.config`: the replay's settings; a merged report adds its own members at the end.
/// Reports merge only when `timelineSource` (or `timelineId`), `timelineDescription` and
/// `speed` agree, so those are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Cores replaying.
    #[serde(default)]
    pub cores: u64,
    /// The CPUs they were pinned to (absent in a merged report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<u64>>,
    /// The CPUs the WATCH executor ran on (absent without one, and in a merged report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_cpus: Option<Vec<u64>>,
    /// Connections per core at the start.
    #[serde(default)]
    pub conns: u64,
    /// Connections allowed per core.
    #[serde(default)]
    pub max_conns: u64,
    /// Requests in flight allowed per core.
    #[serde(default)]
    pub max_in_flight: u64,
    /// Replay speed.
    pub speed: f64,
    /// `precise` or `relaxed` (a merged report: every input's, comma-separated).
    #[serde(default)]
    pub timing: String,
    /// The start instant, RFC 3339 (a merged report: the earliest).
    #[serde(default)]
    pub start: String,
    /// Per-request timeout, seconds.
    #[serde(default)]
    pub timeout_seconds: f64,
    /// The runner replayed, in runner mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_index: Option<u64>,
    /// Runners of the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_count: Option<u64>,
    /// The server URL, no credentials (a merged report: every input's, comma-separated).
    #[serde(default)]
    pub server: String,
    /// The timeline's content id (`xxh3:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline_id: Option<String>,
    /// Where the timeline was read from.
    pub timeline_source: String,
    /// The timeline's description.
    pub timeline_description: String,
    /// The User-Agent sent.
    #[serde(default)]
    pub user_agent: String,
    /// In a merged report: how many reports it merges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_reports: Option<u64>,
    /// In a merged report: the runners merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_indexes: Option<Vec<u64>>,
    /// In a merged report: runners expected but without a report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_runners: Option<Vec<u64>>,
}

/// `kreplay.histograms`: service latency and latency from the due instant (µs), overall, by
/// metric key and by verb; send lag (µs), wake error (ns) and the WATCHes' send lag (µs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Histograms {
    /// Every request.
    #[serde(default)]
    pub all: HistogramPair,
    /// By metric key, keys with latencies only.
    #[serde(rename = "byURL", default, skip_serializing_if = "Option::is_none")]
    pub by_url: Option<BTreeMap<String, HistogramPair>>,
    /// By verb, verbs with latencies only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_verb: Option<BTreeMap<String, HistogramPair>>,
    /// Send lag, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag: Option<EncodedHistogram>,
    /// Wake error, ns (a few µs: finer than the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_error: Option<EncodedHistogram>,
    /// The WATCHes' send lag, µs (also in `sendLag`), when WATCHes were sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_lag: Option<EncodedHistogram>,
}

/// A group's two latency histograms, µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramPair {
    /// From the due instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<EncodedHistogram>,
    /// From the send (service latency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<EncodedHistogram>,
}
