//! Folding reports into one: counters add up, histograms are added.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Map, Value};

use super::MergeError;
use crate::compare::read::{opt_u64_in, ReportFile};
use crate::metrics::new_histogram;
use crate::report::kperf::hdr_percentiles;
use crate::report::kreplay::encode_histogram;

/// Service and scheduled latency histograms of one group.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    pub service: Histogram<u64>,
    pub scheduled: Histogram<u64>,
}

impl Default for Pair {
    fn default() -> Self {
        Pair {
            service: new_histogram(),
            scheduled: new_histogram(),
        }
    }
}

/// One metric key after the merge: what the report shows of it. Kept instead of its
/// histograms (tens of KiB each) so that high-cardinality reports merge in little memory.
#[derive(Debug, Clone)]
pub(super) struct MergedKey {
    /// kperf's percentiles of the merged service histogram.
    pub percentiles: Vec<(f64, f64)>,
    /// The merged service histogram, serialised.
    pub service: String,
    /// The merged scheduled histogram, serialised.
    pub scheduled: String,
}

/// One kperf error record (`--raw-data`), kept to be written again unchanged.
#[derive(Debug, Clone)]
pub(super) struct ErrorEntry {
    pub method: String,
    pub url: String,
    pub timestamp: String,
    pub duration: f64,
    pub kind: String,
    pub code: i64,
    pub message: String,
    /// The input's runner index (`None` for a full run): errors are listed runner by runner.
    pub runner: Option<u64>,
}

/// The merged report under construction.
#[derive(Debug, Default)]
pub struct MergedReport {
    pub(super) reports: usize,
    pub(super) total: u64,
    pub(super) duration: Duration,
    pub(super) error_stats: BTreeMap<String, u64>,
    pub(super) bytes: u64,
    pub(super) runner_count: Option<u64>,
    pub(super) run: u64,
    pub(super) failed: u64,
    /// Raw data (`--raw-data`): error records and latencies per key.
    pub(super) raw_errors: Vec<ErrorEntry>,
    pub(super) raw_latencies: BTreeMap<String, Vec<f64>>,
    pub(super) raw_seen: bool,
    pub(super) raw_missing: bool,
    pub(super) lag: Option<Histogram<u64>>,
    /// Wake error, ns.
    pub(super) wake_error: Option<Histogram<u64>>,
    /// Send lag of the WATCHes alone (also counted in `lag`).
    pub(super) watch_lag: Option<Histogram<u64>>,
    /// Every report's `perCore` by its runner index, like `conns_per_core`.
    pub(super) per_core: Vec<(u64, Vec<crate::report::timing::CoreTiming>)>,
    pub(super) late_1ms: u64,
    pub(super) late_10ms: u64,
    pub(super) all: Pair,
    pub(super) by_url: BTreeMap<String, MergedKey>,
    pub(super) by_verb: BTreeMap<String, Pair>,
    pub(super) verbs: BTreeMap<String, (u64, u64)>,
    pub(super) scheduled_rate: f64,
    pub(super) completed: u64,
    pub(super) conns_opened: u64,
    pub(super) connection_retries: u64,
    pub(super) error_body_bytes: u64,
    /// Every report's `connectionsPerCore` by its runner index (a full run: after them, in
    /// the order given), concatenated at render time.
    pub(super) conns_per_core: Vec<(u64, Vec<u64>)>,
    pub(super) max_streams: u64,
    pub(super) retries: u64,
    pub(super) sent: u64,
    pub(super) unsent: u64,
    pub(super) interrupted: bool,
    /// Each stopped run's `timelineDamage`, prefixed with its report's path.
    pub(super) timeline_damage: Vec<String>,
    pub(super) watches: BTreeMap<String, (u64, u64)>,
    pub(super) cores: u64,
    pub(super) conns: u64,
    pub(super) max_conns: u64,
    pub(super) max_in_flight: u64,
    pub(super) speed: f64,
    pub(super) timings: BTreeSet<String>,
    pub(super) start: Option<(time::OffsetDateTime, String)>,
    pub(super) timeout: f64,
    pub(super) runner_indexes: BTreeSet<u64>,
    /// Runners expected but not among the inputs (`engine job` knows how many there were).
    pub(super) missing_runners: Vec<u64>,
    pub(super) servers: Vec<String>,
    pub(super) timeline_source: String,
    pub(super) timeline_description: String,
    pub(super) user_agent: String,
    pub(super) timeline_id: Option<String>,
    /// Each report's start and `kreplay.perSecond` (scheduled, sent), aligned at render time.
    pub(super) per_second: Vec<(time::OffsetDateTime, Vec<u64>, Vec<u64>)>,
    /// Each report's start and per-interval series.
    pub(super) series: Vec<(
        time::OffsetDateTime,
        crate::metrics::per_second::PerSecondSeries,
    )>,
    /// What the merge had to leave out, for the user.
    pub notes: Vec<String>,
}

fn object<'a>(
    r: &ReportFile,
    v: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, MergeError> {
    match v {
        None => Ok(None),
        Some(v) => v
            .as_object()
            .map(Some)
            .ok_or_else(|| r.error(format!("field `{field}` is not an object")).into()),
    }
}

fn add_into(
    r: &ReportFile,
    acc: &mut Histogram<u64>,
    h: Option<Histogram<u64>>,
    field: &str,
) -> Result<(), MergeError> {
    if let Some(h) = h {
        acc.add(&h)
            .map_err(|e| r.error(format!("{field}: cannot add the histogram ({e:?})")))?;
    }
    Ok(())
}

/// Adds the histogram `kreplay.histograms.NAME` of `r`, if it has one, into `acc`.
fn add_optional(
    r: &ReportFile,
    acc: &mut Option<Histogram<u64>>,
    name: &str,
) -> Result<(), MergeError> {
    if let Some(h) = r.histogram(&[name])? {
        let field = format!("kreplay.histograms.{name}");
        add_into(r, acc.get_or_insert_with(new_histogram), Some(h), &field)?;
    }
    Ok(())
}

/// A report's `kreplay.config.runnerIndex` (a full run: after every runner).
fn runner_index(k: &Map<String, Value>) -> u64 {
    k.get("config")
        .and_then(|c| c.get("runnerIndex"))
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX)
}

fn add_pair(r: &ReportFile, acc: &mut Pair, path: &[&str]) -> Result<(), MergeError> {
    let field = format!("kreplay.histograms.{}", path.join("."));
    let mut p: Vec<&str> = path.to_vec();
    p.push("service");
    add_into(r, &mut acc.service, r.histogram(&p)?, &field)?;
    p.pop();
    p.push("scheduled");
    add_into(r, &mut acc.scheduled, r.histogram(&p)?, &field)?;
    Ok(())
}

fn add_shifted(acc: &mut Vec<u64>, counts: &[u64], shift: usize) {
    if acc.len() < shift + counts.len() {
        acc.resize(shift + counts.len(), 0);
    }
    for (a, c) in acc[shift..].iter_mut().zip(counts) {
        *a += c;
    }
}

fn uint(r: &ReportFile, obj: &Map<String, Value>, key: &str, at: &str) -> Result<u64, MergeError> {
    Ok(opt_u64_in(obj, key)
        .map_err(|m| r.error(format!("{at}: {m}")))?
        .unwrap_or(0))
}

impl MergedReport {
    /// Lists the runner indexes below the runner count that no input report covers (only
    /// when the inputs are runner reports), with a note for the user.
    pub(super) fn note_missing_runners(&mut self, expected: Option<u64>) {
        if self.runner_indexes.is_empty() {
            return;
        }
        let Some(count) = expected.or(self.runner_count) else {
            return;
        };
        self.missing_runners = (0..count)
            .filter(|i| !self.runner_indexes.contains(i))
            .collect();
        if !self.missing_runners.is_empty() {
            self.notes.push(format!(
                "runners {:?} of {count} have no report: the merged report covers the others only (kreplay.config.missingRunners)",
                self.missing_runners
            ));
        }
    }

    /// Adds one report (already checked to carry kreplay's histograms).
    pub fn add(&mut self, r: &ReportFile) -> Result<(), MergeError> {
        let empty = Map::new();
        let k = r.kreplay().unwrap_or(&empty);
        self.reports += 1;
        self.total += r.total();
        self.duration = self.duration.max(r.duration);
        for (key, n) in r.error_stats()? {
            *self.error_stats.entry(key).or_insert(0) += n;
        }
        self.bytes += r.opt_u64("totalReceivedBytes")?.unwrap_or(0);
        if let Some(n) = r.opt_u64("runnerCount")? {
            self.runner_count = Some(self.runner_count.map_or(n, |c| c.max(n)));
        }
        self.add_raw(r)?;

        let verbs = object(r, k.get("verbs"), "kreplay.verbs")?.unwrap_or(&empty);
        let (mut run, mut failed) = (0, 0);
        for (verb, v) in verbs {
            let at = format!("kreplay.verbs.{verb}");
            let v = object(r, Some(v), &at)?.unwrap_or(&empty);
            let (c, e) = (uint(r, v, "count", &at)?, uint(r, v, "errors", &at)?);
            let slot = self.verbs.entry(verb.clone()).or_insert((0, 0));
            slot.0 += c;
            slot.1 += e;
            run += c;
            failed += e;
        }
        // Runner reports have no totalRun/totalFailed (kperf's runner form): the verbs add up to them.
        self.run += r.opt_u64("totalRun")?.unwrap_or(run);
        self.failed += r.opt_u64("totalFailed")?.unwrap_or(failed);

        let lag = object(r, k.get("sendLag"), "kreplay.sendLag")?.unwrap_or(&empty);
        self.late_1ms += uint(r, lag, "lateOver1ms", "kreplay.sendLag")?;
        self.late_10ms += uint(r, lag, "lateOver10ms", "kreplay.sendLag")?;
        add_optional(r, &mut self.lag, "sendLag")?;
        add_optional(r, &mut self.wake_error, "wakeError")?;
        add_optional(r, &mut self.watch_lag, "watchLag")?;
        add_pair(r, &mut self.all, &["all"])?;
        let hists = object(r, k.get("histograms"), "kreplay.histograms")?.unwrap_or(&empty);
        let by_verb = object(r, hists.get("byVerb"), "kreplay.histograms.byVerb")?;
        for verb in by_verb.unwrap_or(&empty).keys() {
            add_pair(
                r,
                self.by_verb.entry(verb.clone()).or_default(),
                &["byVerb", verb],
            )?;
        }

        let rate = object(r, k.get("rate"), "kreplay.rate")?.unwrap_or(&empty);
        self.scheduled_rate += rate
            .get("scheduledPerSecond")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let runs = object(r, k.get("run"), "kreplay.run")?.unwrap_or(&empty);
        self.completed += uint(r, runs, "completed", "kreplay.run")?;
        self.conns_opened += uint(r, runs, "connectionsOpened", "kreplay.run")?;
        self.connection_retries += uint(r, runs, "connectionRetries", "kreplay.run")?;
        self.error_body_bytes += uint(r, runs, "errorBodyBytes", "kreplay.run")?;
        self.retries += uint(r, runs, "retries", "kreplay.run")?;
        self.max_streams =
            self.max_streams
                .max(uint(r, runs, "maxStreamsPerConnection", "kreplay.run")?);
        if let Some(per_core) = runs.get("connectionsPerCore") {
            let counts = per_core.as_array().ok_or_else(|| {
                r.error("kreplay.run.connectionsPerCore: expected an array of counts".to_string())
            })?;
            let mut mine = Vec::with_capacity(counts.len());
            for c in counts {
                mine.push(c.as_u64().ok_or_else(|| {
                    r.error(format!(
                        "kreplay.run.connectionsPerCore: {c} is not a count"
                    ))
                })?);
            }
            let runner = runner_index(k);
            // Stable: equal runners (a forced merge) keep the order given.
            let at = self.conns_per_core.partition_point(|(i, _)| *i <= runner);
            self.conns_per_core.insert(at, (runner, mine));
        }
        if let Some(cores) = k.get("perCore") {
            let cores: Vec<crate::report::timing::CoreTiming> =
                serde_json::from_value(cores.clone()).map_err(|e| {
                    r.error(format!(
                        "kreplay.perCore: {e} (expected the array `engine run` writes)"
                    ))
                })?;
            let runner = runner_index(k);
            let at = self.per_core.partition_point(|(i, _)| *i <= runner);
            self.per_core.insert(at, (runner, cores));
        }
        self.sent += uint(r, runs, "sent", "kreplay.run")?;
        self.unsent += uint(r, runs, "unsentOnStop", "kreplay.run")?;
        self.interrupted |= runs
            .get("interrupted")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match runs.get("timelineDamage") {
            None => {}
            Some(Value::String(d)) => self
                .timeline_damage
                .push(format!("{}: {d}", r.path.display())),
            Some(_) => {
                return Err(r
                    .error(
                        "kreplay.run.timelineDamage: expected a string, as `engine run` writes it",
                    )
                    .into())
            }
        }
        for (key, w) in object(r, k.get("watches"), "kreplay.watches")?.unwrap_or(&empty) {
            let at = format!("kreplay.watches[{key:?}]");
            let w = object(r, Some(w), &at)?.unwrap_or(&empty);
            let slot = self.watches.entry(key.clone()).or_insert((0, 0));
            slot.0 += uint(r, w, "bytes", &at)?;
            slot.1 += uint(r, w, "events", &at)?;
        }
        let start = self.add_config(
            r,
            object(r, k.get("config"), "kreplay.config")?.unwrap_or(&empty),
        )?;
        let per_second = object(r, k.get("perSecond"), "kreplay.perSecond")?.unwrap_or(&empty);
        let counts = |key: &str| -> Result<Vec<u64>, MergeError> {
            match per_second.get(key) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
                    .ok_or_else(|| {
                        r.error(format!(
                            "kreplay.perSecond.{key} is not an array of non-negative integers"
                        ))
                        .into()
                    }),
            }
        };
        self.per_second
            .push((start, counts("scheduled")?, counts("sent")?));
        let series = crate::metrics::per_second::PerSecondSeries::from_json(&Value::Object(
            per_second.clone(),
        ))
        .map_err(|m| MergeError::from(r.error(m)))?;
        if let Some((_, first)) = self.series.iter().find(|(_, s)| !s.is_empty()) {
            if !series.is_empty() && first.interval_s != series.interval_s {
                return Err(r
                    .error(format!(
                        "kreplay.perSecond.intervalSeconds is {}, another report's is {}: reports of different timelines",
                        series.interval_s, first.interval_s
                    ))
                    .into());
            }
        }
        self.series.push((start, series));
        Ok(())
    }

    /// The merged `kreplay.perSecond` (scheduled, sent): each report's counts shifted by
    /// the whole seconds between its start and the earliest start, then added.
    pub(super) fn per_second_totals(&self) -> (Vec<u64>, Vec<u64>) {
        let Some(earliest) = self.per_second.iter().map(|p| p.0).min() else {
            return (Vec::new(), Vec::new());
        };
        let (mut scheduled, mut sent) = (Vec::new(), Vec::new());
        for (start, s, n) in &self.per_second {
            let shift = usize::try_from((*start - earliest).whole_seconds()).unwrap_or(0);
            add_shifted(&mut scheduled, s, shift);
            add_shifted(&mut sent, n, shift);
        }
        (scheduled, sent)
    }

    /// The merged per-interval series: each report's shifted by the whole intervals between its
    /// start and the earliest start, then added (exact: counts and histogram buckets add).
    pub(super) fn series_total(&self) -> crate::metrics::per_second::PerSecondSeries {
        let mut total = crate::metrics::per_second::PerSecondSeries::default();
        let Some(earliest) = self.series.iter().map(|p| p.0).min() else {
            return total;
        };
        // Interval widths were checked equal as the reports were added.
        for (start, s) in self.series.iter().filter(|(_, s)| !s.is_empty()) {
            let secs = u64::try_from((*start - earliest).whole_seconds()).unwrap_or(0);
            total.merge_shifted(s, (secs / s.interval_s) as usize);
        }
        total
    }

    /// Merges the per-key histograms of `reports` one key at a time (see [`MergedKey`]).
    pub fn add_keys(&mut self, reports: &[ReportFile]) -> Result<(), MergeError> {
        let empty = Map::new();
        let mut keys = BTreeSet::new();
        for r in reports {
            let hists = r.kreplay().and_then(|k| k.get("histograms"));
            let hists = object(r, hists, "kreplay.histograms")?.unwrap_or(&empty);
            let by_url = object(r, hists.get("byURL"), "kreplay.histograms.byURL")?;
            keys.extend(by_url.unwrap_or(&empty).keys().cloned());
        }
        for key in keys {
            let mut pair = Pair::default();
            for r in reports {
                add_pair(r, &mut pair, &["byURL", &key])?;
            }
            if pair.service.is_empty() {
                continue;
            }
            let merged = MergedKey {
                percentiles: hdr_percentiles(&pair.service),
                service: encode_histogram(&pair.service)?,
                scheduled: encode_histogram(&pair.scheduled)?,
            };
            self.by_url.insert(key, merged);
        }
        Ok(())
    }

    /// Folds one report's `kreplay.config` in; returns that report's start.
    fn add_config(
        &mut self,
        r: &ReportFile,
        c: &Map<String, Value>,
    ) -> Result<time::OffsetDateTime, MergeError> {
        let first = self.reports == 1;
        self.cores += uint(r, c, "cores", "kreplay.config")?;
        self.conns += uint(r, c, "conns", "kreplay.config")?;
        self.max_conns += uint(r, c, "maxConns", "kreplay.config")?;
        self.max_in_flight += uint(r, c, "maxInFlight", "kreplay.config")?;
        let text = |key: &str| c.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        if first {
            self.speed = c.get("speed").and_then(Value::as_f64).unwrap_or(1.0);
            self.timeline_source = text("timelineSource");
            self.timeline_description = text("timelineDescription");
            self.user_agent = text("userAgent");
            self.timeline_id = c
                .get("timelineId")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        self.timings.insert(text("timing"));
        self.timeout = self.timeout.max(
            c.get("timeoutSeconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
        );
        let server = text("server");
        if !self.servers.contains(&server) {
            self.servers.push(server);
        }
        // Runner-form reports have no top-level runnerCount; their config has it.
        if let Some(n) = c.get("runnerCount").and_then(Value::as_u64) {
            self.runner_count = Some(self.runner_count.map_or(n, |c| c.max(n)));
        }
        if let Some(i) = c.get("runnerIndex").and_then(Value::as_u64) {
            self.runner_indexes.insert(i);
        }
        let start_text = text("start");
        let start = time::OffsetDateTime::parse(
            &start_text,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| {
            r.error(format!(
                "kreplay.config.start {start_text:?} is not RFC 3339 ({e})"
            ))
        })?;
        if self.start.as_ref().is_none_or(|(s, _)| start < *s) {
            self.start = Some((start, start_text));
        }
        Ok(start)
    }

    /// kperf's raw data (`errors`, `latenciesByURL`): merged when every report that has
    /// latencies or failures carries it, else left out with a note.
    fn add_raw(&mut self, r: &ReportFile) -> Result<(), MergeError> {
        let has_raw = r.root.contains_key("latenciesByURL") || r.root.contains_key("errors");
        if !has_raw {
            if r.root.contains_key("percentileLatenciesByURL") || r.root.contains_key("errorStats")
            {
                self.raw_missing = true;
            }
            return Ok(());
        }
        self.raw_seen = true;
        let empty = Map::new();
        for (key, list) in
            object(r, r.root.get("latenciesByURL"), "latenciesByURL")?.unwrap_or(&empty)
        {
            let bad = || r.error(format!("latenciesByURL[{key:?}] is not a list of seconds"));
            let list = list.as_array().ok_or_else(bad)?;
            let slot = self.raw_latencies.entry(key.clone()).or_default();
            for x in list {
                slot.push(x.as_f64().ok_or_else(bad)?);
            }
        }
        let runner = r
            .kreplay()
            .and_then(|k| k.get("config"))
            .and_then(|c| c.get("runnerIndex"))
            .and_then(Value::as_u64);
        if let Some(errors) = r.root.get("errors") {
            let list = errors
                .as_array()
                .ok_or_else(|| r.error("field `errors` is not a list"))?;
            for (i, e) in list.iter().enumerate() {
                let bad = |f: &str| r.error(format!("errors[{i}]: no valid `{f}`"));
                let s = |f: &str| {
                    e.get(f)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| bad(f))
                };
                self.raw_errors.push(ErrorEntry {
                    method: s("method")?,
                    url: s("url")?,
                    timestamp: s("timestamp")?,
                    duration: e
                        .get("duration")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| bad("duration"))?,
                    kind: s("type")?,
                    code: e
                        .get("code")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| bad("code"))?,
                    message: s("message")?,
                    runner,
                });
            }
        }
        Ok(())
    }
}
