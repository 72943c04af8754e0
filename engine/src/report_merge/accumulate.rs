//! Folding reports into one: counters add up, histograms are added. Each input is read
//! through the report model; a member the model gains must be given its merge rule here (the
//! `let Kreplay { .. }` and `let RunCounters { .. }` below name every member, so the compiler
//! points at this file).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::MergeError;
use crate::compare::read::ReportFile;
use crate::metrics::new_histogram;
use crate::metrics::per_second::PerSecondSeries;
use crate::report::kperf::hdr_percentiles;
use crate::report::model::{
    Config, CoreTiming, EncodedHistogram, ErrorEntry, HistogramPair, Kreplay, Percentiles, Report,
    RunCounters, WatchFigures,
};

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
    pub percentiles: Percentiles,
    /// The merged histograms, serialised.
    pub histograms: HistogramPair,
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
    /// Raw data (`--raw-data`): error records with their input's runner index (`None`: a full
    /// run), and latencies per key.
    pub(super) raw_errors: Vec<(Option<u64>, ErrorEntry)>,
    pub(super) raw_latencies: BTreeMap<String, Vec<f64>>,
    pub(super) raw_seen: bool,
    pub(super) raw_missing: bool,
    pub(super) lag: Option<Histogram<u64>>,
    /// Wake error, ns.
    pub(super) wake_error: Option<Histogram<u64>>,
    /// Send lag of the WATCHes alone (also counted in `lag`).
    pub(super) watch_lag: Option<Histogram<u64>>,
    /// Every report's `perCore` by its runner index, like `conns_per_core`.
    pub(super) per_core: Vec<(u64, Vec<CoreTiming>)>,
    pub(super) late_1ms: u64,
    pub(super) late_10ms: u64,
    pub(super) all: Pair,
    pub(super) by_url: BTreeMap<String, MergedKey>,
    pub(super) by_verb: BTreeMap<String, Pair>,
    pub(super) verbs: BTreeMap<String, (u64, u64)>,
    pub(super) scheduled_rate: f64,
    /// The counters of `kreplay.run` that add up (or take the largest, or any).
    pub(super) counters: RunCounters,
    /// Every report's `connectionsPerCore` by its runner index (a full run: after them, in
    /// the order given), concatenated at render time.
    pub(super) conns_per_core: Vec<(u64, Vec<u64>)>,
    /// Each stopped run's `timelineDamage`, prefixed with its report's path.
    pub(super) timeline_damage: Vec<String>,
    pub(super) watches: BTreeMap<String, WatchFigures>,
    /// `kreplay.config`: sums, the first report's identity, the longest timeout.
    pub(super) config: Config,
    pub(super) timings: BTreeSet<String>,
    pub(super) start: Option<(time::OffsetDateTime, String)>,
    pub(super) runner_indexes: BTreeSet<u64>,
    /// Runners expected but not among the inputs (`engine job` knows how many there were).
    pub(super) missing_runners: Vec<u64>,
    pub(super) servers: Vec<String>,
    /// Each report's start and `kreplay.perSecond` (scheduled, sent), aligned at render time.
    pub(super) per_second: Vec<(time::OffsetDateTime, Vec<u64>, Vec<u64>)>,
    /// Each report's start and per-interval series.
    pub(super) series: Vec<(time::OffsetDateTime, PerSecondSeries)>,
    /// What the merge had to leave out, for the user.
    pub notes: Vec<String>,
}

/// Adds `h` (the histogram at `field` of `r`), if there is one, into `acc`.
fn add_into(
    r: &ReportFile,
    acc: &mut Histogram<u64>,
    h: Option<&EncodedHistogram>,
    field: &str,
) -> Result<(), MergeError> {
    let Some(h) = h else { return Ok(()) };
    let h = h
        .decode()
        .map_err(|e| r.error(format!("field `kreplay.histograms.{field}`: {e}")))?;
    acc.add(&h)
        .map_err(|e| r.error(format!("{field}: cannot add the histogram ({e:?})")))?;
    Ok(())
}

/// Adds the histogram `h` of `r`, if it has one, into `acc`, created on first use.
fn add_optional(
    r: &ReportFile,
    acc: &mut Option<Histogram<u64>>,
    h: Option<&EncodedHistogram>,
    field: &str,
) -> Result<(), MergeError> {
    match h {
        Some(h) => add_into(r, acc.get_or_insert_with(new_histogram), Some(h), field),
        None => Ok(()),
    }
}

fn add_pair(
    r: &ReportFile,
    acc: &mut Pair,
    p: Option<&HistogramPair>,
    field: &str,
) -> Result<(), MergeError> {
    let Some(p) = p else { return Ok(()) };
    add_into(r, &mut acc.service, p.service.as_ref(), field)?;
    add_into(r, &mut acc.scheduled, p.scheduled.as_ref(), field)
}

/// `kreplay.histograms.byURL` of `r`, if it has one.
fn by_url(r: &ReportFile) -> Option<&BTreeMap<String, HistogramPair>> {
    r.report.histograms().and_then(|h| h.by_url.as_ref())
}

fn add_shifted(acc: &mut Vec<u64>, counts: &[u64], shift: usize) {
    if acc.len() < shift + counts.len() {
        acc.resize(shift + counts.len(), 0);
    }
    for (a, c) in acc[shift..].iter_mut().zip(counts) {
        *a += c;
    }
}

/// Inserts `item` after every entry of a runner index up to `runner` (stable: equal runners,
/// a forced merge, keep the order given).
fn insert_by_runner<T>(list: &mut Vec<(u64, T)>, runner: u64, item: T) {
    let at = list.partition_point(|(i, _)| *i <= runner);
    list.insert(at, (runner, item));
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

    /// Adds one report (already checked to carry kreplay's histograms and config).
    pub fn add(&mut self, r: &ReportFile) -> Result<(), MergeError> {
        let report: &Report = &r.report;
        let Report {
            total,
            duration: _,
            // Raw data, and what the percentiles are recomputed from.
            errors: _,
            error_stats,
            total_received_bytes,
            latencies_by_url: _,
            percentile_latencies: _,
            percentile_latencies_by_url: _,
            runner_count,
            total_run,
            total_failed,
            kreplay,
        } = report;
        let default = Kreplay::default();
        let k = kreplay.as_ref().unwrap_or(&default);
        // A full run (no runner index) sorts after every runner.
        let runner = k.config.as_ref().and_then(|c| c.runner_index);
        let order = runner.unwrap_or(u64::MAX);
        self.reports += 1;
        self.total += total;
        self.duration = self.duration.max(r.duration);
        for (key, n) in error_stats.iter().flatten() {
            *self.error_stats.entry(key.clone()).or_insert(0) += n;
        }
        self.bytes += total_received_bytes;
        if let Some(n) = *runner_count {
            self.runner_count = Some(self.runner_count.map_or(n, |c| c.max(n)));
        }
        self.add_raw(report, runner);

        let Kreplay {
            version: _,
            send_lag,
            // Recomputed from the merged histograms and cores.
            wake_error: _,
            client_saturated: _,
            per_core,
            scheduled_latency: _,
            verbs,
            rate,
            per_second,
            run,
            watches,
            config,
            histograms,
        } = k;
        let (mut run_n, mut failed_n) = (0, 0);
        for (verb, v) in verbs {
            let slot = self.verbs.entry(verb.clone()).or_insert((0, 0));
            slot.0 += v.count;
            slot.1 += v.errors;
            run_n += v.count;
            failed_n += v.errors;
        }
        // Runner reports have no totalRun/totalFailed (kperf's runner form): the verbs add up to them.
        self.run += total_run.unwrap_or(run_n);
        self.failed += total_failed.unwrap_or(failed_n);

        self.late_1ms += send_lag.late_over_1ms;
        self.late_10ms += send_lag.late_over_10ms;
        if let Some(h) = histograms {
            add_optional(r, &mut self.lag, h.send_lag.as_ref(), "sendLag")?;
            add_optional(r, &mut self.wake_error, h.wake_error.as_ref(), "wakeError")?;
            add_optional(r, &mut self.watch_lag, h.watch_lag.as_ref(), "watchLag")?;
            add_pair(r, &mut self.all, Some(&h.all), "all")?;
            for (verb, p) in h.by_verb.iter().flatten() {
                let acc = self.by_verb.entry(verb.clone()).or_default();
                add_pair(r, acc, Some(p), &format!("byVerb.{verb}"))?;
            }
        }
        self.scheduled_rate += rate.scheduled_per_second;
        self.add_run(r, run, order);
        insert_by_runner(&mut self.per_core, order, per_core.clone());
        for (key, w) in watches.iter().flatten() {
            let slot = self.watches.entry(key.clone()).or_default();
            slot.bytes += w.bytes;
            slot.events += w.events;
        }
        let start = match config {
            Some(c) => self.add_config(r, c)?,
            None => return Err(r.error("no kreplay.config: not a kreplay report").into()),
        };
        self.per_second
            .push((start, per_second.scheduled.clone(), per_second.sent.clone()));
        let series = per_second
            .series()
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

    /// Folds one report's `kreplay.run` in (`order`: its runner index, a full run last).
    fn add_run(&mut self, r: &ReportFile, run: &RunCounters, order: u64) {
        let RunCounters {
            backlog_pauses,
            completed,
            connection_retries,
            connections_opened,
            connections_per_core,
            error_body_bytes,
            interrupted,
            max_streams_per_connection,
            retries,
            sent,
            timeline_damage,
            unsent_on_stop,
        } = run;
        let c = &mut self.counters;
        c.backlog_pauses += backlog_pauses;
        c.completed += completed;
        c.connection_retries += connection_retries;
        c.connections_opened += connections_opened;
        c.error_body_bytes += error_body_bytes;
        c.interrupted |= interrupted;
        c.max_streams_per_connection = c
            .max_streams_per_connection
            .max(*max_streams_per_connection);
        c.retries += retries;
        c.sent += sent;
        c.unsent_on_stop += unsent_on_stop;
        insert_by_runner(
            &mut self.conns_per_core,
            order,
            connections_per_core.clone(),
        );
        if let Some(d) = timeline_damage {
            self.timeline_damage
                .push(format!("{}: {d}", r.path.display()));
        }
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
    pub(super) fn series_total(&self) -> PerSecondSeries {
        let mut total = PerSecondSeries::default();
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
        let keys: BTreeSet<&String> = reports
            .iter()
            .filter_map(by_url)
            .flat_map(BTreeMap::keys)
            .collect();
        for key in keys {
            let mut pair = Pair::default();
            let field = format!("byURL.{key}");
            for r in reports {
                add_pair(r, &mut pair, by_url(r).and_then(|m| m.get(key)), &field)?;
            }
            if pair.service.is_empty() {
                continue;
            }
            let merged = MergedKey {
                percentiles: hdr_percentiles(&pair.service),
                histograms: crate::report::kreplay::histogram_pair(&pair.scheduled, &pair.service)?,
            };
            self.by_url.insert(key.clone(), merged);
        }
        Ok(())
    }

    /// Folds one report's `kreplay.config` in; returns that report's start.
    fn add_config(
        &mut self,
        r: &ReportFile,
        c: &Config,
    ) -> Result<time::OffsetDateTime, MergeError> {
        let Config {
            cores,
            // Each runner's own; the merged report lists the runners instead.
            cpus: _,
            watch_cpus: _,
            conns,
            max_conns,
            max_in_flight,
            speed,
            timing,
            start,
            timeout_seconds,
            runner_index,
            runner_count,
            server,
            timeline_id,
            timeline_source,
            timeline_description,
            user_agent,
            // Of a merged input: its own figures are recomputed from this merge's inputs.
            merged_reports: _,
            runner_indexes: _,
            missing_runners: _,
        } = c;
        let m = &mut self.config;
        if self.reports == 1 {
            m.speed = *speed;
            m.timeline_source.clone_from(timeline_source);
            m.timeline_description.clone_from(timeline_description);
            m.user_agent.clone_from(user_agent);
            m.timeline_id.clone_from(timeline_id);
        }
        m.cores += cores;
        m.conns += conns;
        m.max_conns += max_conns;
        m.max_in_flight += max_in_flight;
        m.timeout_seconds = m.timeout_seconds.max(*timeout_seconds);
        self.timings.insert(timing.clone());
        if !self.servers.contains(server) {
            self.servers.push(server.clone());
        }
        // Runner-form reports have no top-level runnerCount; their config has it.
        if let Some(n) = *runner_count {
            self.runner_count = Some(self.runner_count.map_or(n, |c| c.max(n)));
        }
        if let Some(i) = *runner_index {
            self.runner_indexes.insert(i);
        }
        let parsed =
            time::OffsetDateTime::parse(start, &time::format_description::well_known::Rfc3339)
                .map_err(|e| {
                    r.error(format!(
                        "kreplay.config.start {start:?} is not RFC 3339 ({e})"
                    ))
                })?;
        if self.start.as_ref().is_none_or(|(s, _)| parsed < *s) {
            self.start = Some((parsed, start.clone()));
        }
        Ok(parsed)
    }

    /// kperf's raw data (`errors`, `latenciesByURL`): merged when every report that has
    /// latencies or failures carries it, else left out with a note.
    fn add_raw(&mut self, r: &Report, runner: Option<u64>) {
        if r.latencies_by_url.is_none() && r.errors.is_none() {
            if r.percentile_latencies_by_url.is_some() || r.error_stats.is_some() {
                self.raw_missing = true;
            }
            return;
        }
        self.raw_seen = true;
        for (key, list) in r.latencies_by_url.iter().flatten() {
            let slot = self.raw_latencies.entry(key.clone()).or_default();
            slot.extend_from_slice(list);
        }
        for e in r.errors.iter().flatten() {
            self.raw_errors.push((runner, e.clone()));
        }
    }
}
