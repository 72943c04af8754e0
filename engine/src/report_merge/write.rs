//! Writing the merged report in `engine run`'s format, through the same Go JSON writer
//! and percentile code.

use super::accumulate::{MergedReport, Pair};
use crate::metrics::new_histogram;
use crate::report::gofmt::format_go_duration;
use crate::report::json_writer::GoJsonWriter;
use crate::report::kperf::{hdr_percentiles, write_pairs};
use crate::report::kreplay::{
    encode_histogram, seconds, write_counts, write_series, HistogramCodecError,
};
use crate::report::percentile::kperf_percentiles;

fn write_pair(w: &mut GoJsonWriter, p: &Pair) -> Result<(), HistogramCodecError> {
    w.begin_object();
    w.key("scheduled").string(&encode_histogram(&p.scheduled)?);
    w.key("service").string(&encode_histogram(&p.service)?);
    w.end_object();
    Ok(())
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
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
        let mut w = GoJsonWriter::with_capacity(64 * 1024);
        w.begin_object();
        self.write_kperf(&mut w);
        self.write_kreplay(&mut w)?;
        w.end_object();
        Ok(w.finish())
    }

    fn write_kperf(&self, w: &mut GoJsonWriter) {
        let raw = self.raw_ok();
        w.key("total").uint(self.total);
        w.key("duration").string(&format_go_duration(self.duration));
        if raw && !self.raw_errors.is_empty() {
            w.key("errors").begin_array();
            for e in &self.raw_errors {
                w.begin_object();
                w.key("method").string(&e.method);
                w.key("url").string(&e.url);
                w.key("timestamp").string(&e.timestamp);
                w.key("duration").float(e.duration);
                w.key("type").string(&e.kind);
                w.key("code").int(e.code);
                w.key("message").string(&e.message);
                w.end_object();
            }
            w.end_array();
        }
        if !self.error_stats.is_empty() {
            w.key("errorStats").begin_object();
            for (k, v) in &self.error_stats {
                w.key(k).uint(*v);
            }
            w.end_object();
        }
        w.key("totalReceivedBytes").uint(self.bytes);
        let raw_keys: Vec<(&String, Vec<f64>)> = self
            .raw_latencies
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, sorted(v)))
            .collect();
        if raw && !raw_keys.is_empty() {
            w.key("latenciesByURL").begin_object();
            for (k, v) in &raw_keys {
                w.key(k).begin_array();
                for x in v {
                    w.float(*x);
                }
                w.end_array();
            }
            w.end_object();
        }
        let pooled = if raw {
            let all: Vec<f64> = raw_keys
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .collect();
            kperf_percentiles(&sorted(&all))
        } else {
            hdr_percentiles(&self.all.service)
        };
        if !pooled.is_empty() {
            w.key("percentileLatencies");
            write_pairs(w, &pooled);
        }
        let by_key: Vec<(&String, Vec<(f64, f64)>)> = if raw {
            raw_keys
                .iter()
                .map(|(k, v)| (*k, kperf_percentiles(v)))
                .collect()
        } else {
            self.by_url
                .iter()
                .map(|(k, m)| (k, m.percentiles.clone()))
                .collect()
        };
        if !by_key.is_empty() {
            w.key("percentileLatenciesByURL").begin_object();
            for (k, pairs) in &by_key {
                w.key(k);
                write_pairs(w, pairs);
            }
            w.end_object();
        }
        w.key("runnerCount")
            .uint(self.runner_count.unwrap_or(self.reports as u64));
        w.key("totalRun").uint(self.run);
        w.key("totalFailed").uint(self.failed);
    }

    fn write_lag(&self, w: &mut GoJsonWriter) {
        let empty = new_histogram();
        crate::report::kreplay::write_send_lag(
            w,
            self.lag.as_ref().unwrap_or(&empty),
            self.watch_lag.as_ref().unwrap_or(&empty),
            self.late_1ms,
            self.late_10ms,
        );
    }

    fn write_kreplay(&self, w: &mut GoJsonWriter) -> Result<(), HistogramCodecError> {
        w.key("kreplay").begin_object();
        w.key("version").string(env!("CARGO_PKG_VERSION"));
        self.write_lag(w);
        let cores: Vec<crate::report::timing::CoreTiming> = self
            .per_core
            .iter()
            .flat_map(|(_, cores)| cores.iter().cloned())
            .collect();
        let empty = new_histogram();
        crate::report::timing::write_timing(
            w,
            &crate::report::timing::LagSummary::of(self.wake_error.as_ref().unwrap_or(&empty), 1e9),
            &cores,
        );
        let sched = hdr_percentiles(&self.all.scheduled);
        if !sched.is_empty() {
            w.key("scheduledLatency");
            write_pairs(w, &sched);
        }

        w.key("verbs").begin_object();
        for (verb, (count, errors)) in self.verbs.iter().filter(|(_, (c, _))| *c > 0) {
            w.key(verb).begin_object();
            w.key("count").uint(*count);
            w.key("errors").uint(*errors);
            if let Some(h) = self
                .by_verb
                .get(verb)
                .map(|p| &p.service)
                .filter(|h| !h.is_empty())
            {
                w.key("p50").float(seconds(h.value_at_quantile(0.5)));
                w.key("p90").float(seconds(h.value_at_quantile(0.9)));
                w.key("p99").float(seconds(h.value_at_quantile(0.99)));
                w.key("max").float(seconds(h.max()));
            }
            w.end_object();
        }
        w.end_object();

        let secs = self.duration.as_secs_f64();
        w.key("rate").begin_object();
        w.key("achievedPerSecond").float(if secs > 0.0 {
            (self.run as f64 / secs).round()
        } else {
            0.0
        });
        // Runners replay concurrently: their scheduled rates add up.
        w.key("scheduledPerSecond")
            .float(self.scheduled_rate.round());
        w.end_object();

        let (scheduled, sent) = self.per_second_totals();
        let series = self.series_total();
        w.key("perSecond").begin_object();
        w.key("scheduled");
        write_counts(w, &scheduled);
        w.key("sent");
        write_counts(w, &sent);
        write_series(w, &series);
        w.end_object();

        w.key("run").begin_object();
        w.key("completed").uint(self.completed);
        w.key("connectionRetries").uint(self.connection_retries);
        w.key("connectionsOpened").uint(self.conns_opened);
        w.key("connectionsPerCore");
        let per_core: Vec<u64> = self
            .conns_per_core
            .iter()
            .flat_map(|(_, counts)| counts.iter().copied())
            .collect();
        write_counts(w, &per_core);
        w.key("errorBodyBytes").uint(self.error_body_bytes);
        w.key("interrupted").bool(self.interrupted);
        w.key("maxStreamsPerConnection").uint(self.max_streams);
        w.key("retries").uint(self.retries);
        w.key("sent").uint(self.sent);
        if !self.timeline_damage.is_empty() {
            w.key("timelineDamage")
                .string(&self.timeline_damage.join("; "));
        }
        w.key("unsentOnStop").uint(self.unsent);
        w.end_object();

        if !self.watches.is_empty() {
            w.key("watches").begin_object();
            for (k, (bytes, events)) in &self.watches {
                w.key(k).begin_object();
                w.key("bytes").uint(*bytes);
                w.key("events").uint(*events);
                w.end_object();
            }
            w.end_object();
        }

        w.key("config").begin_object();
        w.key("cores").uint(self.cores);
        w.key("conns").uint(self.conns);
        w.key("maxConns").uint(self.max_conns);
        w.key("maxInFlight").uint(self.max_in_flight);
        w.key("speed").float(self.speed);
        let timings: Vec<&str> = self.timings.iter().map(String::as_str).collect();
        w.key("timing").string(&timings.join(","));
        w.key("start")
            .string(self.start.as_ref().map_or("", |(_, s)| s.as_str()));
        w.key("timeoutSeconds").float(self.timeout);
        if let Some(n) = self.runner_count {
            w.key("runnerCount").uint(n);
        }
        w.key("server").string(&self.servers.join(","));
        if let Some(id) = &self.timeline_id {
            w.key("timelineId").string(id);
        }
        w.key("timelineSource").string(&self.timeline_source);
        w.key("timelineDescription")
            .string(&self.timeline_description);
        w.key("userAgent").string(&self.user_agent);
        w.key("mergedReports").uint(self.reports as u64);
        if !self.runner_indexes.is_empty() {
            w.key("runnerIndexes").begin_array();
            for i in &self.runner_indexes {
                w.uint(*i);
            }
            w.end_array();
        }
        if !self.missing_runners.is_empty() {
            w.key("missingRunners").begin_array();
            for i in &self.missing_runners {
                w.uint(*i);
            }
            w.end_array();
        }
        w.end_object();

        w.key("histograms").begin_object();
        w.key("all");
        write_pair(w, &self.all)?;
        if !self.by_url.is_empty() {
            w.key("byURL").begin_object();
            for (k, m) in &self.by_url {
                w.key(k).begin_object();
                w.key("scheduled").string(&m.scheduled);
                w.key("service").string(&m.service);
                w.end_object();
            }
            w.end_object();
        }
        let verbs: Vec<_> = self
            .by_verb
            .iter()
            .filter(|(_, p)| !p.service.is_empty())
            .collect();
        if !verbs.is_empty() {
            w.key("byVerb").begin_object();
            for (k, p) in verbs {
                w.key(k);
                write_pair(w, p)?;
            }
            w.end_object();
        }
        let empty = new_histogram();
        w.key("sendLag")
            .string(&encode_histogram(self.lag.as_ref().unwrap_or(&empty))?);
        w.key("wakeError").string(&encode_histogram(
            self.wake_error.as_ref().unwrap_or(&empty),
        )?);
        if let Some(h) = self.watch_lag.as_ref().filter(|h| !h.is_empty()) {
            w.key("watchLag").string(&encode_histogram(h)?);
        }
        w.end_object();

        w.end_object();
        Ok(())
    }
}
