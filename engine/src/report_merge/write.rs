//! The merged report, filled into the report model (written as `engine run` writes its own)
//! with the same percentile code.

use super::accumulate::{MergedReport, Pair};
use crate::metrics::new_histogram;
use crate::report::kperf::{hdr_percentiles, sorted_seconds};
use crate::report::kreplay::{
    histogram_pair, per_second, send_lag, verb_figures, HistogramCodecError,
};
use crate::report::model::{
    Config, EncodedHistogram, Histograms, Kreplay, LagSummary, PerSecond, Rate, Report, RunCounters,
};
use crate::report::percentile::kperf_percentiles;

fn pair(p: &Pair) -> Result<crate::report::model::HistogramPair, HistogramCodecError> {
    histogram_pair(&p.scheduled, &p.service)
}

impl MergedReport {
    /// Whether kperf's raw arrays can be written: some report had them and none lacked them.
    fn raw_ok(&self) -> bool {
        self.raw_seen && !self.raw_missing
    }

    /// Renders the merged report (kperf's members, then `"kreplay"`).
    pub fn render(&mut self) -> Result<String, HistogramCodecError> {
        if self.raw_seen && self.raw_missing {
            self.notes.push(
                "some reports have raw data (--raw-data) and others not: `errors` and `latenciesByURL` are left out"
                    .to_string(),
            );
        }
        if self.servers.len() > 1 {
            self.notes.push(format!(
                "the reports name different servers ({}): per-URL keys line up only with `engine run --metric-base none`",
                self.servers.join(", ")
            ));
        }
        let mut report = self.kperf_members();
        report.kreplay = Some(self.kreplay_member()?);
        Ok(report.to_json(64 * 1024))
    }

    fn kperf_members(&self) -> Report {
        let raw = self.raw_ok();
        let raw_keys: Vec<(&String, Vec<f64>)> = self
            .raw_latencies
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, sorted_seconds(v)))
            .collect();
        let pooled = if raw {
            let all: Vec<f64> = raw_keys
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            kperf_percentiles(&sorted_seconds(&all))
        } else {
            hdr_percentiles(&self.all.service)
        };
        let by_key: std::collections::BTreeMap<String, _> = if raw {
            raw_keys
                .iter()
                .map(|(k, v)| ((*k).clone(), kperf_percentiles(v)))
                .collect()
        } else {
            self.by_url
                .iter()
                .map(|(k, m)| (k.clone(), m.percentiles.clone()))
                .collect()
        };
        let errors = self.raw_errors.iter().map(|(_, e)| e.clone()).collect();
        Report {
            total: self.total,
            duration: crate::report::gofmt::format_go_duration(self.duration),
            errors: (raw && !self.raw_errors.is_empty()).then_some(errors),
            error_stats: (!self.error_stats.is_empty()).then(|| self.error_stats.clone()),
            total_received_bytes: self.bytes,
            latencies_by_url: (raw && !raw_keys.is_empty())
                .then(|| raw_keys.into_iter().map(|(k, v)| (k.clone(), v)).collect()),
            percentile_latencies: (!pooled.is_empty()).then_some(pooled),
            percentile_latencies_by_url: (!by_key.is_empty()).then_some(by_key),
            runner_count: Some(self.runner_count.unwrap_or(self.reports as u64)),
            total_run: Some(self.run),
            total_failed: Some(self.failed),
            kreplay: None,
        }
    }

    fn kreplay_member(&self) -> Result<Kreplay, HistogramCodecError> {
        let empty = new_histogram();
        let lag = self.lag.as_ref().unwrap_or(&empty);
        let wake_error = self.wake_error.as_ref().unwrap_or(&empty);
        let watch_lag = self.watch_lag.as_ref().filter(|h| !h.is_empty());
        let per_core: Vec<_> = self
            .per_core
            .iter()
            .flat_map(|(_, cores)| cores.iter().cloned())
            .collect();
        let sched = hdr_percentiles(&self.all.scheduled);
        let verbs = self
            .verbs
            .iter()
            .filter(|(_, (count, _))| *count > 0)
            .map(|(verb, &(count, errors))| {
                let service = self.by_verb.get(verb).map_or(&empty, |p| &p.service);
                (verb.clone(), verb_figures(count, errors, service))
            })
            .collect();
        let (scheduled, sent) = self.per_second_totals();
        let by_verb = self
            .by_verb
            .iter()
            .filter(|(_, p)| !p.service.is_empty())
            .map(|(k, p)| Ok((k.clone(), pair(p)?)))
            .collect::<Result<std::collections::BTreeMap<_, _>, HistogramCodecError>>()?;
        let by_url: std::collections::BTreeMap<_, _> = self
            .by_url
            .iter()
            .map(|(k, m)| (k.clone(), m.histograms.clone()))
            .collect();
        Ok(Kreplay {
            version: env!("CARGO_PKG_VERSION").to_string(),
            send_lag: send_lag(
                lag,
                watch_lag.unwrap_or(&empty),
                self.late_1ms,
                self.late_10ms,
            ),
            wake_error: LagSummary::of(wake_error, 1e9),
            client_saturated: per_core.iter().any(|c| c.saturated()),
            per_core,
            scheduled_latency: (!sched.is_empty()).then_some(sched),
            verbs,
            rate: Rate {
                achieved_per_second: per_second(self.run, self.duration.as_secs_f64()),
                // Runners replay concurrently: their scheduled rates add up.
                scheduled_per_second: self.scheduled_rate.round(),
            },
            per_second: PerSecond::of(scheduled, sent, &self.series_total()),
            run: RunCounters {
                connections_per_core: self
                    .conns_per_core
                    .iter()
                    .flat_map(|(_, counts)| counts.iter().copied())
                    .collect(),
                timeline_damage: (!self.timeline_damage.is_empty())
                    .then(|| self.timeline_damage.join("; ")),
                ..self.counters.clone()
            },
            watches: (!self.watches.is_empty()).then(|| self.watches.clone()),
            config: Some(self.merged_config()),
            histograms: Some(Histograms {
                all: pair(&self.all)?,
                by_url: (!by_url.is_empty()).then_some(by_url),
                by_verb: (!by_verb.is_empty()).then_some(by_verb),
                send_lag: Some(EncodedHistogram::encode(lag)?),
                wake_error: Some(EncodedHistogram::encode(wake_error)?),
                watch_lag: watch_lag.map(EncodedHistogram::encode).transpose()?,
            }),
        })
    }

    fn merged_config(&self) -> Config {
        let timings: Vec<&str> = self.timings.iter().map(String::as_str).collect();
        Config {
            cpus: None,
            watch_cpus: None,
            timing: timings.join(","),
            start: self
                .start
                .as_ref()
                .map_or(String::new(), |(_, s)| s.clone()),
            runner_index: None,
            runner_count: self.runner_count,
            server: self.servers.join(","),
            merged_reports: Some(self.reports as u64),
            runner_indexes: (!self.runner_indexes.is_empty())
                .then(|| self.runner_indexes.iter().copied().collect()),
            missing_runners: (!self.missing_runners.is_empty())
                .then(|| self.missing_runners.clone()),
            ..self.config.clone()
        }
    }
}
