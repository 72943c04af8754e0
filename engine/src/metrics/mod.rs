//! Per-core measurements: HDR histograms (µs, 3 significant digits), counters, error stats.
//!
//! Each core owns one `CoreMetrics` and nobody else touches it until the run ends;
//! `merge` then folds the cores together. Per-label statistics are allocated on a
//! label's first use; histograms auto-resize, so memory follows the largest value seen.
//! Per-label latencies are logged per request and folded into their labels in short
//! batches (see `PendingLatency`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use preprocess::profile::Verb;

mod latency;
pub mod per_second;

pub use latency::{
    micros, new_histogram, record_value, LabelLatency, LatencyHistograms, SIGFIG, SMALL_LABEL_LIMIT,
};

/// Statistics of one metric label.
#[derive(Debug, Clone, Default)]
pub struct LabelStats {
    /// Latencies of successful requests.
    pub latency: LabelLatency,
    /// Raw latencies in seconds (only with `--raw-data`), in completion order.
    pub raw_seconds: Vec<f64>,
    /// WATCH events (lines) received.
    pub watch_events: u64,
    /// WATCH body bytes received.
    pub watch_bytes: u64,
}

/// Statistics of one verb.
#[derive(Debug, Clone, Default)]
pub struct VerbStats {
    /// Requests that completed (successes and failures).
    pub count: u64,
    /// Failures.
    pub errors: u64,
    /// Latencies of successful requests.
    pub latency: LatencyHistograms,
}

/// One failure, kept with `--raw-data` (kperf's `errors` array).
#[derive(Debug, Clone)]
pub struct ErrorRecord {
    /// kperf's metric method label (`GET`, `LIST`, `POST`, ...).
    pub method: &'static str,
    /// The request URL (base URL + target).
    pub url: String,
    /// When the failure was seen.
    pub timestamp: SystemTime,
    /// Time from first byte sent to the failure, seconds.
    pub duration: f64,
    /// `http`, `http2-protocol`, `connection` or `unknown`.
    pub kind: &'static str,
    /// HTTP code (0 unless `http`).
    pub code: i32,
    /// Message ("" for `http`).
    pub message: String,
    /// The runner (partition) of the request: kperf lists errors runner by runner.
    pub runner: u32,
    /// A WATCH: kperf lists a runner's WATCH errors after its other errors.
    pub watch: bool,
}

/// Counts per whole second since the replay's start (the replay's shape). Grows only
/// when a second beyond the reserved span is first hit, so the hot path rarely allocates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecondCounts(pub Vec<u64>);

impl SecondCounts {
    /// Zeroed counts for `seconds` seconds.
    pub fn with_seconds(seconds: usize) -> SecondCounts {
        SecondCounts(vec![0; seconds])
    }

    /// Counts one event `since_start` after the start.
    pub fn add(&mut self, since_start: Duration) {
        let i = usize::try_from(since_start.as_secs()).unwrap_or(usize::MAX);
        if i >= self.0.len() {
            // Days-long spans would be a bug upstream; never grow past a week of seconds.
            if i >= 7 * 86_400 {
                return;
            }
            self.0.resize((i + 1).max(self.0.len() * 2), 0);
        }
        self.0[i] += 1;
    }

    /// Adds another core's counts second by second.
    pub fn merge(&mut self, other: &SecondCounts) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    /// The counts up to the last non-zero second.
    pub fn trimmed(&self) -> &[u64] {
        let end = self.0.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
        &self.0[..end]
    }
}

/// A success waiting to be folded into its label's latencies. Recording into one of
/// thousands of labels between a send and a receive missed the cache on every request; a
/// short log folded in one go keeps the histogram code and the labels' data hot for the
/// whole batch.
#[derive(Debug, Clone, Copy)]
struct PendingLatency {
    label: u32,
    service_ns: u64,
    scheduled_us: u64,
}

/// Successes logged before a fold. Small on purpose: 6 KiB stays in L1, and a short fold
/// never holds a due request back for long. A much longer log sorted by label was no
/// cheaper per request and stalled the core for milliseconds per fold (`bench/RESULTS.md`,
/// issue 3).
const PENDING_BATCH: usize = 256;

/// Everything one core measured.
#[derive(Debug, Clone)]
pub struct CoreMetrics {
    /// Send lag: first byte written − due instant, µs.
    pub lag: Histogram<u64>,
    /// Wake error: the send lag of the first request written after each release of due
    /// requests (the scheduler's own lateness, without a burst's serialisation), ns.
    pub wake_error: Histogram<u64>,
    /// Send lag of the WATCHes alone (they are in `lag` too): a WATCH's lag includes its
    /// connect, so the report tells the other requests' lag apart from it.
    pub watch_lag: Histogram<u64>,
    /// All successful requests: the sum of `verbs`, built by `finish` (not recorded per
    /// request: two fewer histogram updates on the hot path).
    pub all: LatencyHistograms,
    /// Per label id (allocated on first use).
    pub labels: Vec<Option<Box<LabelStats>>>,
    /// Per verb (`Verb as usize`).
    pub verbs: [VerbStats; 8],
    /// Requests whose first byte was written.
    pub sent: u64,
    /// Requests sent, per second since the start.
    pub sent_per_second: SecondCounts,
    /// Completions, failures, bytes, latency and lag per interval (`kreplay.perSecond`).
    pub per_second: per_second::PerSecondSeries,
    /// Requests that reached execution (kperf `totalRun`).
    pub run: u64,
    /// Requests that succeeded.
    pub completed: u64,
    /// Requests that failed (kperf `totalFailed`).
    pub failed: u64,
    /// Body bytes of successful responses (kperf `totalReceivedBytes`; kperf adds 0 for an
    /// error response).
    pub bytes_received: u64,
    /// Body bytes of error responses (status outside 2xx), kept apart from kperf's figure.
    pub error_body_bytes: u64,
    /// Requests sent again under `--retries client-go` (429/5xx with `Retry-After`).
    pub retries: u64,
    /// Requests sent again because their connection failed before any response byte (a
    /// reused connection the server had closed, an HTTP/2 stream the server refused).
    pub connection_retries: u64,
    /// Pauses of the loop before reading its answers, while behind its schedule against a
    /// busy server (`runtime/ring/pace.rs`).
    pub backlog_pauses: u64,
    /// Requests sent more than 1 ms after their due instant.
    pub late_1ms: u64,
    /// Requests sent more than 10 ms after their due instant.
    pub late_10ms: u64,
    /// kperf `errorStats`: key → count.
    pub error_stats: BTreeMap<String, u64>,
    /// kperf `errors` (only with `--raw-data`).
    pub errors: Vec<ErrorRecord>,
    /// Whether raw latencies and error records are kept.
    pub raw_data: bool,
    /// Label latencies not yet in `labels` (folded when full, and by `merge`/`finish`).
    pending: Vec<PendingLatency>,
}

impl CoreMetrics {
    /// Empty metrics sized for `label_count` labels.
    pub fn new(label_count: u32, raw_data: bool) -> CoreMetrics {
        CoreMetrics {
            lag: new_histogram(),
            wake_error: new_histogram(),
            watch_lag: new_histogram(),
            all: LatencyHistograms::default(),
            labels: vec![None; label_count as usize],
            verbs: Default::default(),
            sent: 0,
            sent_per_second: SecondCounts::default(),
            per_second: per_second::PerSecondSeries::default(),
            run: 0,
            completed: 0,
            failed: 0,
            bytes_received: 0,
            error_body_bytes: 0,
            retries: 0,
            connection_retries: 0,
            backlog_pauses: 0,
            late_1ms: 0,
            late_10ms: 0,
            error_stats: BTreeMap::new(),
            errors: Vec::new(),
            raw_data,
            pending: Vec::with_capacity(if label_count > 0 { PENDING_BATCH } else { 0 }),
        }
    }

    /// Counts a response's body bytes: kperf's figure for a 2xx, `error_body_bytes` otherwise.
    pub fn add_body_bytes(&mut self, status_ok: bool, bytes: u64) {
        if status_ok {
            self.bytes_received += bytes;
        } else {
            self.error_body_bytes += bytes;
        }
    }

    /// Records that a request's first byte is being written `lag` after its due instant,
    /// `since_start` after the replay's start.
    pub fn record_send(&mut self, lag: Duration, since_start: Duration) {
        let us = micros(lag);
        record_value(&mut self.lag, us);
        self.sent += 1;
        self.sent_per_second.add(since_start);
        self.per_second.record_send(since_start, us);
        if us > 1_000 {
            self.late_1ms += 1;
        }
        if us > 10_000 {
            self.late_10ms += 1;
        }
    }

    /// Records the wake error of a release: its first request was written `late` after
    /// its due instant.
    pub fn record_wake_error(&mut self, late: Duration) {
        record_value(
            &mut self.wake_error,
            u64::try_from(late.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    /// Like [`record_send`](Self::record_send), for a WATCH (also kept in `watch_lag`).
    pub fn record_watch_send(&mut self, lag: Duration, since_start: Duration) {
        self.record_send(lag, since_start);
        record_value(&mut self.watch_lag, micros(lag));
    }

    /// Send lag of the requests that are not WATCHes (`lag` without `watch_lag`).
    pub fn lag_without_watches(&self) -> Histogram<u64> {
        lag_without(&self.lag, &self.watch_lag)
    }

    /// The stats of `label`, created on first use.
    pub fn label_mut(&mut self, label: u32) -> Option<&mut LabelStats> {
        let slot = self.labels.get_mut(label as usize)?;
        Some(slot.get_or_insert_with(Default::default))
    }

    /// Records a success.
    pub fn record_success(
        &mut self,
        verb: Verb,
        label: u32,
        service: Duration,
        scheduled: Duration,
    ) {
        let (s_us, d_us) = (micros(service), micros(scheduled));
        self.run += 1;
        self.completed += 1;
        self.per_second
            .record_end(Some(s_us), false, self.bytes_received);
        let v = &mut self.verbs[verb as usize];
        v.count += 1;
        v.latency.record(s_us, d_us);
        if (label as usize) < self.labels.len() {
            self.pending.push(PendingLatency {
                label,
                service_ns: u64::try_from(service.as_nanos()).unwrap_or(u64::MAX),
                scheduled_us: d_us,
            });
            if self.pending.len() >= PENDING_BATCH {
                self.fold_pending();
            }
        }
    }

    /// Records the logged label latencies into their labels, in completion order.
    pub fn fold_pending(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        let raw = self.raw_data;
        // Labels are hit in no useful order, and a sample is three dependent misses away:
        // the label's table entry, its stats, the spot its latencies go to. A pass over the
        // whole log per hop lets each hop's misses overlap instead of queueing.
        use crate::prefetch::prefetch;
        for p in &pending {
            prefetch(self.labels.as_ptr().wrapping_add(p.label as usize));
        }
        for p in &pending {
            if let Some(Some(l)) = self.labels.get(p.label as usize) {
                prefetch(&**l);
            }
        }
        for p in &pending {
            if let Some(Some(l)) = self.labels.get(p.label as usize) {
                l.latency.prefetch_next();
            }
        }
        for p in &pending {
            if let Some(l) = self.label_mut(p.label) {
                let service = Duration::from_nanos(p.service_ns);
                l.latency.record(micros(service), p.scheduled_us);
                if raw {
                    l.raw_seconds.push(service.as_secs_f64());
                }
            }
        }
        pending.clear();
        self.pending = pending;
    }

    /// Records a failure (cold path: builds the stats key).
    pub fn record_failure(&mut self, verb: Verb, record: ErrorRecord) {
        self.count_failed(verb);
        let key = if record.kind == "http" {
            format!("http/{}", record.code)
        } else {
            format!("{}/{}", record.kind, record.message)
        };
        *self.error_stats.entry(key).or_insert(0) += 1;
        if self.raw_data {
            self.errors.push(record);
        }
    }

    /// Records a WATCH that was still waiting for its response headers when the replay
    /// ended: a success for kperf, with no latency to record.
    pub fn record_watch_ended(&mut self, verb: Verb) {
        self.run += 1;
        self.completed += 1;
        self.per_second.record_end(None, false, self.bytes_received);
        self.verbs[verb as usize].count += 1;
    }

    /// Records a request kperf counts as run and failed without an error record
    /// (its target could not be built).
    pub fn record_unbuildable(&mut self, verb: Verb) {
        self.count_failed(verb);
    }

    /// Counts a request that ended in failure: run, failed, its verb's count and errors.
    fn count_failed(&mut self, verb: Verb) {
        self.run += 1;
        self.failed += 1;
        self.per_second.record_end(None, true, self.bytes_received);
        let v = &mut self.verbs[verb as usize];
        v.count += 1;
        v.errors += 1;
    }

    /// Builds `all` from the per-verb histograms and puts `errors` in kperf's order:
    /// runner by runner, WATCHes last, each in completion order (once, after the cores
    /// are merged).
    pub fn finish(&mut self) {
        self.fold_pending();
        self.debug_assert_counts_add_up();
        self.errors
            .sort_by_key(|e| (e.runner, e.watch, e.timestamp));
        let mut all = LatencyHistograms::default();
        for v in &self.verbs {
            all.merge(&v.latency);
        }
        self.all = all;
    }

    /// The counts that must agree at the end of a run (debug builds): every request that was
    /// run either completed or failed, under its verb, and every send has its lag.
    fn debug_assert_counts_add_up(&self) {
        debug_assert_eq!(
            self.run,
            self.completed + self.failed,
            "run = completed + failed"
        );
        debug_assert_eq!(
            self.verbs.iter().map(|v| v.count).sum::<u64>(),
            self.run,
            "the verbs' counts add up to run"
        );
        debug_assert_eq!(
            self.verbs.iter().map(|v| v.errors).sum::<u64>(),
            self.failed,
            "the verbs' errors add up to failed"
        );
        debug_assert_eq!(self.lag.len(), self.sent, "every send has its lag");
        debug_assert!(
            self.watch_lag.len() <= self.lag.len() && self.wake_error.len() <= self.sent,
            "WATCH lag and wake error are parts of the sends"
        );
    }

    /// Folds `other` into `self` (`all` is left to `finish`).
    pub fn merge(&mut self, mut other: CoreMetrics) {
        self.fold_pending();
        other.fold_pending();
        let _ = self.lag.add(&other.lag);
        let _ = self.wake_error.add(&other.wake_error);
        let _ = self.watch_lag.add(&other.watch_lag);
        if self.labels.len() < other.labels.len() {
            self.labels.resize(other.labels.len(), None);
        }
        for (mine, theirs) in self.labels.iter_mut().zip(other.labels) {
            let Some(theirs) = theirs else { continue };
            match mine {
                None => *mine = Some(theirs),
                Some(m) => {
                    m.latency.merge(&theirs.latency);
                    m.raw_seconds.extend_from_slice(&theirs.raw_seconds);
                    m.watch_events += theirs.watch_events;
                    m.watch_bytes += theirs.watch_bytes;
                }
            }
        }
        for (mine, theirs) in self.verbs.iter_mut().zip(other.verbs.iter()) {
            mine.count += theirs.count;
            mine.errors += theirs.errors;
            mine.latency.merge(&theirs.latency);
        }
        self.sent += other.sent;
        self.sent_per_second.merge(&other.sent_per_second);
        self.per_second.merge(&other.per_second);
        self.run += other.run;
        self.completed += other.completed;
        self.failed += other.failed;
        self.bytes_received += other.bytes_received;
        self.error_body_bytes += other.error_body_bytes;
        self.retries += other.retries;
        self.connection_retries += other.connection_retries;
        self.backlog_pauses += other.backlog_pauses;
        self.late_1ms += other.late_1ms;
        self.late_10ms += other.late_10ms;
        for (k, v) in other.error_stats {
            *self.error_stats.entry(k).or_insert(0) += v;
        }
        self.errors.extend(other.errors);
    }
}

/// `lag` less `watch_lag`: the send lag of the requests that are not WATCHes.
pub fn lag_without(lag: &Histogram<u64>, watch_lag: &Histogram<u64>) -> Histogram<u64> {
    let mut h = lag.clone();
    // Every value of `watch_lag` was recorded in `lag` too, so this cannot underflow.
    let _ = h.subtract(watch_lag);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_label_latencies_fold_in_completion_order_across_batches() {
        let mut m = CoreMetrics::new(3, true);
        // Two of every three are logged: more than two whole batches and a partial one.
        let n = 3 * PENDING_BATCH as u64 + 100;
        for i in 0..n {
            // Labels 2 and 0 interleaved; label 7 does not exist and is not recorded.
            let label = [2, 0, 7][(i % 3) as usize];
            m.record_success(
                Verb::Get,
                label,
                Duration::from_micros(i + 1),
                Duration::from_micros(2 * i + 1),
            );
        }
        // Nothing has been folded for the last partial batch until `finish`.
        assert!(!m.pending.is_empty());
        m.finish();
        assert!(m.pending.is_empty());
        let raw = |l: usize| m.labels[l].as_ref().unwrap().raw_seconds.clone();
        let expect = |r: u64| -> Vec<f64> {
            (0..n)
                .filter(|i| i % 3 == r)
                .map(|i| Duration::from_micros(i + 1).as_secs_f64())
                .collect()
        };
        assert_eq!(raw(2), expect(0));
        assert_eq!(raw(0), expect(1));
        assert!(m.labels[1].is_none());
        let l2 = m.labels[2]
            .as_ref()
            .unwrap()
            .latency
            .histograms()
            .into_owned();
        assert_eq!(l2.service.len(), expect(0).len() as u64);
        assert_eq!(l2.scheduled.min(), 1);
        assert_eq!(m.verbs[Verb::Get as usize].latency.service.len(), n);
    }

    #[test]
    fn second_counts_grow_and_merge() {
        let mut a = SecondCounts::with_seconds(2);
        a.add(Duration::from_millis(999));
        a.add(Duration::from_millis(1_000));
        a.add(Duration::from_secs(5));
        let mut b = SecondCounts::default();
        b.add(Duration::ZERO);
        b.merge(&a);
        assert_eq!(b.trimmed(), &[2, 1, 0, 0, 0, 1]);
        a.add(Duration::from_secs(30 * 86_400));
        assert_eq!(a.0.iter().sum::<u64>(), 3, "absurd offsets are not counted");
        assert!(SecondCounts::with_seconds(3).trimmed().is_empty());
    }

    #[test]
    fn counts_and_merge_add_up() {
        let mut a = CoreMetrics::new(3, true);
        let mut b = CoreMetrics::new(3, true);
        a.record_send(Duration::from_micros(500), Duration::from_millis(10));
        a.record_send(Duration::from_millis(2), Duration::from_millis(1_500));
        b.record_send(Duration::from_millis(20), Duration::from_millis(3_200));
        a.record_success(
            Verb::Get,
            0,
            Duration::from_millis(1),
            Duration::from_millis(2),
        );
        b.record_success(
            Verb::Get,
            0,
            Duration::from_millis(3),
            Duration::from_millis(3),
        );
        b.record_success(
            Verb::List,
            2,
            Duration::from_millis(4),
            Duration::from_millis(5),
        );
        let err = ErrorRecord {
            method: "GET",
            url: "http://x/a".into(),
            timestamp: SystemTime::UNIX_EPOCH,
            duration: 0.1,
            kind: "connection",
            code: 0,
            message: "connection refused".into(),
            runner: 0,
            watch: false,
        };
        a.record_failure(Verb::Get, err.clone());
        b.record_failure(Verb::Get, err);
        a.merge(b);
        a.finish();
        assert_eq!((a.sent, a.late_1ms, a.late_10ms), (3, 2, 1));
        assert_eq!(a.sent_per_second.trimmed(), &[1, 1, 0, 1]);
        assert_eq!((a.run, a.completed, a.failed), (5, 3, 2));
        assert_eq!(a.error_stats.get("connection/connection refused"), Some(&2));
        assert_eq!(a.errors.len(), 2);
        let l0 = a.labels[0].as_ref().unwrap();
        assert_eq!(l0.latency.len(), 2);
        assert_eq!(l0.raw_seconds.len(), 2);
        assert!(a.labels[1].is_none());
        assert_eq!(a.verbs[Verb::Get as usize].count, 4);
        assert_eq!(a.verbs[Verb::Get as usize].errors, 2);
        assert_eq!(a.all.service.len(), 3);
        assert_eq!(a.all.service.max(), a.all.service.highest_equivalent(4_000));
    }
}
