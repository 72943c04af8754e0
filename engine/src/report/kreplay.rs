//! The `"kreplay"` member of a run's report, filled from the measurements: what kperf cannot
//! tell (send lag, latency from the scheduled instant, per-verb figures, rates,
//! configuration) and every histogram serialised so reports merge exactly.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use preprocess::profile::Verb;

pub use super::histogram_codec::{
    decode_histogram, encode_histogram, encode_sorted, HistogramCodecError,
};

use super::gofmt::format_rfc3339_nano;
use super::kperf::{hdr_percentiles, ReportKeys};
use super::model::{
    Config, EncodedHistogram, HistogramPair, Histograms, Kreplay, LagSummary, PerSecond, Quantiles,
    Rate, RunCounters, SendLag, VerbFigures, WatchFigures,
};
use super::ReportContext;
use crate::metrics::LatencyHistograms;

/// How a timeline's content id appears in `kreplay.config.timelineId`.
pub fn timeline_id(content_id: u64) -> String {
    format!("xxh3:{content_id:016x}")
}

/// `kreplay.sendLag` (of a run, or of merged runs): percentiles of every request's send lag
/// (µs), the late counts and, when WATCHes were sent, the lag of WATCHes and of the rest.
pub(crate) fn send_lag(
    lag: &Histogram<u64>,
    watch_lag: &Histogram<u64>,
    late_over_1ms: u64,
    late_over_10ms: u64,
) -> SendLag {
    let watched = !watch_lag.is_empty();
    SendLag {
        all: LagSummary::of(lag, 1e6),
        late_over_1ms,
        late_over_10ms,
        // A WATCH's lag includes its connect: the other requests' lag is told apart.
        watches: watched.then(|| LagSummary::of(watch_lag, 1e6)),
        without_watches: watched
            .then(|| LagSummary::of(&crate::metrics::lag_without(lag, watch_lag), 1e6)),
    }
}

/// `kreplay.verbs.VERB` of a verb that ran `count` times, `errors` of them failed, with its
/// service latency histogram (µs).
pub(crate) fn verb_figures(count: u64, errors: u64, service: &Histogram<u64>) -> VerbFigures {
    VerbFigures {
        count,
        errors,
        latency: Quantiles::of(service, 1e6, false),
    }
}

/// A group's two histograms, encoded.
pub(crate) fn histogram_pair(
    scheduled: &Histogram<u64>,
    service: &Histogram<u64>,
) -> Result<HistogramPair, HistogramCodecError> {
    Ok(HistogramPair {
        scheduled: Some(EncodedHistogram::encode(scheduled)?),
        service: Some(EncodedHistogram::encode(service)?),
    })
}

fn pair_of(l: &LatencyHistograms) -> Result<HistogramPair, HistogramCodecError> {
    histogram_pair(&l.scheduled, &l.service)
}

/// The run's verbs, by name, that pass `keep`.
fn verbs_where(keep: impl Fn(Verb) -> bool) -> Vec<Verb> {
    let mut verbs: Vec<Verb> = Verb::ALL.into_iter().filter(|v| keep(*v)).collect();
    verbs.sort_by_key(|v| v.as_str());
    verbs
}

/// The `"kreplay"` member of the run in `ctx`.
pub fn kreplay_member(
    ctx: &ReportContext<'_>,
    keys: &ReportKeys<'_>,
) -> Result<Kreplay, HistogramCodecError> {
    let o = ctx.outcome;
    let m = &o.metrics;
    let sched = hdr_percentiles(&m.all.scheduled);
    let verbs = verbs_where(|v| m.verbs[v as usize].count > 0)
        .into_iter()
        .map(|v| {
            let s = &m.verbs[v as usize];
            let figures = verb_figures(s.count, s.errors, &s.latency.service);
            (v.as_str().to_string(), figures)
        })
        .collect();
    let secs = o.duration.as_secs_f64();
    let span = o.scheduled_span_us as f64 / 1e6 / ctx.speed;
    let watches: BTreeMap<String, WatchFigures> = keys
        .entries
        .iter()
        .filter(|e| e.stats.watch_events > 0 || e.stats.watch_bytes > 0)
        .map(|e| {
            let figures = WatchFigures {
                bytes: e.stats.watch_bytes,
                events: e.stats.watch_events,
            };
            (e.key.clone(), figures)
        })
        .collect();
    Ok(Kreplay {
        version: env!("CARGO_PKG_VERSION").to_string(),
        send_lag: send_lag(&m.lag, &m.watch_lag, m.late_1ms, m.late_10ms),
        wake_error: LagSummary::of(&m.wake_error, 1e9),
        client_saturated: o.per_core.iter().any(|c| c.saturated()),
        per_core: o.per_core.clone(),
        scheduled_latency: (!sched.is_empty()).then_some(sched),
        verbs,
        rate: Rate {
            achieved_per_second: per_second(m.run, secs),
            scheduled_per_second: per_second(o.scheduled, span),
        },
        per_second: PerSecond::of(
            o.scheduled_per_second.trimmed().to_vec(),
            m.sent_per_second.trimmed().to_vec(),
            &m.per_second,
        ),
        run: RunCounters {
            backlog_pauses: m.backlog_pauses,
            completed: m.completed,
            connection_retries: m.connection_retries,
            connections_opened: o.conns_opened,
            connections_per_core: o.conns_opened_per_core.clone(),
            error_body_bytes: m.error_body_bytes,
            interrupted: o.interrupted,
            max_streams_per_connection: o.max_streams,
            retries: m.retries,
            sent: m.sent,
            timeline_damage: o.check_failure.as_ref().map(ToString::to_string),
            unsent_on_stop: o.unsent_on_stop,
        },
        watches: (!watches.is_empty()).then_some(watches),
        config: Some(config(ctx)),
        histograms: Some(histograms(ctx, keys)?),
    })
}

/// `n` over `secs`, rounded; 0 for no time.
pub(crate) fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (n as f64 / secs).round()
    } else {
        0.0
    }
}

fn config(ctx: &ReportContext<'_>) -> Config {
    let o = ctx.outcome;
    let c = &ctx.config;
    let info = ctx.source.info();
    Config {
        cores: o.cores as u64,
        cpus: Some(o.cpus.iter().map(|&cpu| cpu as u64).collect()),
        watch_cpus: o
            .watch_cpus
            .as_ref()
            .map(|cpus| cpus.iter().map(|&cpu| cpu as u64).collect()),
        conns: o.conns as u64,
        max_conns: o.max_conns as u64,
        max_in_flight: o.max_in_flight as u64,
        speed: ctx.speed,
        timing: c.timing.to_string(),
        start: format_rfc3339_nano(o.start_wall, 0),
        timeout_seconds: c.timeout.as_secs_f64(),
        runner_index: c.runner_index.map(u64::from),
        runner_count: Some(u64::from(info.runner_count)),
        server: c.server.clone(),
        timeline_id: info.content_id.map(timeline_id),
        timeline_source: info.source.clone(),
        timeline_description: info.description.clone(),
        user_agent: c.user_agent.clone(),
        merged_reports: None,
        runner_indexes: None,
        missing_runners: None,
    }
}

fn histograms(
    ctx: &ReportContext<'_>,
    keys: &ReportKeys<'_>,
) -> Result<Histograms, HistogramCodecError> {
    let m = &ctx.outcome.metrics;
    let mut by_url = BTreeMap::new();
    for e in keys.entries.iter().filter(|e| !e.stats.latency.is_empty()) {
        let pair = match keys.sorted(e) {
            Some((service, scheduled)) => HistogramPair {
                scheduled: Some(EncodedHistogram(encode_sorted(scheduled)?)),
                service: Some(EncodedHistogram(encode_sorted(service)?)),
            },
            None => pair_of(&e.stats.latency.histograms())?,
        };
        by_url.insert(e.key.clone(), pair);
    }
    let mut by_verb = BTreeMap::new();
    for v in verbs_where(|v| !m.verbs[v as usize].latency.service.is_empty()) {
        by_verb.insert(
            v.as_str().to_string(),
            pair_of(&m.verbs[v as usize].latency)?,
        );
    }
    Ok(Histograms {
        all: pair_of(&m.all)?,
        by_url: (!by_url.is_empty()).then_some(by_url),
        by_verb: (!by_verb.is_empty()).then_some(by_verb),
        send_lag: Some(EncodedHistogram::encode(&m.lag)?),
        wake_error: Some(EncodedHistogram::encode(&m.wake_error)?),
        // What `engine merge` needs to tell WATCHes' lag from the rest's.
        watch_lag: (!m.watch_lag.is_empty())
            .then(|| EncodedHistogram::encode(&m.watch_lag))
            .transpose()?,
    })
}
