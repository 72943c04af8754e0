//! Cross-core progress counters and the start gate (the only state cores share).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Progress of one core, written by that core only, read by the progress line.
/// Aligned to 128 bytes so no two cores' counters share a cache line (or an adjacent-line prefetch pair).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreProgress {
    /// Requests whose first byte was written.
    pub sent: AtomicU64,
    /// Requests finished (successes and failures).
    pub done: AtomicU64,
    /// Failures.
    pub failed: AtomicU64,
    /// Due time (µs, profile time) of the last dispatched request.
    pub position_us: AtomicU64,
    /// p99 send lag over the run so far, µs (updated about every 100 ms).
    pub lag_p99_us: AtomicU64,
    /// Set when the core has finished.
    pub finished: AtomicBool,
    /// Per-verb counts and histogram buckets for `--metrics-listen`.
    pub live: LiveFigures,
}

/// Upper bounds (µs) of the Prometheus histogram buckets (the last is +Inf).
pub const LATENCY_BOUNDS_US: [u64; 17] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    u64::MAX,
];

/// What a core publishes for the live exposition, every tick (not per request): per-verb
/// counts and cumulative histogram buckets, stored (not incremented) by that core only.
#[derive(Debug, Default)]
pub struct LiveFigures {
    /// Requests finished, per verb (`Verb as usize`).
    pub verb_done: [AtomicU64; 8],
    /// Requests failed, per verb.
    pub verb_failed: [AtomicU64; 8],
    /// Successes at or below each bound of [`LATENCY_BOUNDS_US`], per verb.
    pub latency_buckets: [[AtomicU64; 17]; 8],
    /// Successes with a latency, per verb.
    pub latency_count: [AtomicU64; 8],
    /// Their latencies' sum, µs, per verb.
    pub latency_sum_us: [AtomicU64; 8],
    /// Sends at or below each bound of [`LATENCY_BOUNDS_US`].
    pub lag_buckets: [AtomicU64; 17],
    /// Sends.
    pub lag_count: AtomicU64,
    /// Their lags' sum, µs.
    pub lag_sum_us: AtomicU64,
    /// Pool connections (the io_uring pool counted at its largest size so far).
    pub connections: AtomicU64,
}

impl LiveFigures {
    /// Publishes `metrics` (relaxed stores: a scrape only needs each figure to be recent).
    pub fn publish(&self, metrics: &crate::metrics::CoreMetrics, connections: usize) {
        let store = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        let cumulative = |h: &hdrhistogram::Histogram<u64>, into: &[AtomicU64; 17]| {
            for (slot, &bound) in into.iter().zip(LATENCY_BOUNDS_US.iter()) {
                let n = if bound == u64::MAX || h.is_empty() || bound >= h.max() {
                    h.len()
                } else {
                    h.count_between(0, bound)
                };
                store(slot, n);
            }
        };
        for (i, v) in metrics.verbs.iter().enumerate() {
            store(&self.verb_done[i], v.count);
            store(&self.verb_failed[i], v.errors);
            let h = &v.latency.service;
            cumulative(h, &self.latency_buckets[i]);
            store(&self.latency_count[i], h.len());
            store(&self.latency_sum_us[i], (h.mean() * h.len() as f64) as u64);
        }
        cumulative(&metrics.lag, &self.lag_buckets);
        store(&self.lag_count, metrics.lag.len());
        store(
            &self.lag_sum_us,
            (metrics.lag.mean() * metrics.lag.len() as f64) as u64,
        );
        store(&self.connections, connections as u64);
    }
}

impl CoreProgress {
    /// Publishes the core's counters (relaxed: the reader only displays them).
    pub fn publish(&self, sent: u64, done: u64, failed: u64, lag_p99_us: u64) {
        self.sent.store(sent, Ordering::Relaxed);
        self.done.store(done, Ordering::Relaxed);
        self.failed.store(failed, Ordering::Relaxed);
        self.lag_p99_us.store(lag_p99_us, Ordering::Relaxed);
    }
}

/// All cores wait here until every core has connected its pool; then the main thread
/// fixes the common start instant.
#[derive(Debug, Default)]
pub struct StartGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    arrived: usize,
    failed: bool,
    start: Option<Result<Instant, ()>>,
}

impl StartGate {
    /// A core is ready (or failed, `ok == false`); blocks until the start is decided.
    /// Returns the start instant, or `None` when the run is aborted.
    pub fn arrive_and_wait(&self, ok: bool) -> Option<Instant> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.arrived += 1;
        s.failed |= !ok;
        self.changed.notify_all();
        loop {
            if let Some(start) = s.start {
                return start.ok();
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A core that could not start (its executor failed): counts as arrived and failed.
    pub fn arrive_failed(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.arrived += 1;
        s.failed = true;
        self.changed.notify_all();
    }

    /// Main thread: waits until `cores` have arrived; returns false if one failed.
    pub fn wait_all(&self, cores: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.arrived < cores {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        !s.failed
    }

    /// Main thread: releases every core with `start` (`None`: abort).
    pub fn release(&self, start: Option<Instant>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.start = Some(start.ok_or(()));
        self.changed.notify_all();
    }
}

/// A core's place at the start gate. Dropping it unused (the core never ran, e.g. its
/// executor could not be built) counts as a failed arrival, so the main thread never waits forever.
pub struct GateTicket {
    gate: Option<std::sync::Arc<StartGate>>,
}

impl GateTicket {
    /// A ticket for one core.
    pub fn new(gate: std::sync::Arc<StartGate>) -> GateTicket {
        GateTicket { gate: Some(gate) }
    }

    /// Arrives (see `StartGate::arrive_and_wait`).
    pub fn arrive_and_wait(mut self, ok: bool) -> Option<Instant> {
        self.gate.take().and_then(|g| g.arrive_and_wait(ok))
    }
}

impl Drop for GateTicket {
    fn drop(&mut self) {
        if let Some(g) = self.gate.take() {
            g.arrive_failed();
        }
    }
}

/// Counts cores that still have normal (non-WATCH) requests running; watches end
/// when it reaches zero, so every core's watches last until the whole replay ends.
#[derive(Debug)]
pub struct ReplayEnd {
    remaining: AtomicUsize,
    cores: usize,
}

impl ReplayEnd {
    /// `cores` cores have normal traffic to finish.
    pub fn new(cores: usize) -> ReplayEnd {
        ReplayEnd {
            remaining: AtomicUsize::new(cores),
            cores,
        }
    }

    /// How many cores the replay runs on.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// This core's normal traffic is done.
    pub fn core_done(&self) {
        self.remaining.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether every core's normal traffic is done.
    pub fn all_done(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

/// Polling interval of cross-core conditions (cold).
pub const CROSS_CORE_POLL: Duration = Duration::from_millis(5);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn gate_releases_all_with_one_instant() {
        let gate = Arc::new(StartGate::default());
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let g = gate.clone();
                std::thread::spawn(move || g.arrive_and_wait(i != 5))
            })
            .collect();
        assert!(gate.wait_all(3));
        let start = Instant::now();
        gate.release(Some(start));
        for h in handles {
            assert_eq!(h.join().unwrap(), Some(start));
        }
    }

    #[test]
    fn failed_core_aborts() {
        let gate = Arc::new(StartGate::default());
        let g = gate.clone();
        let h = std::thread::spawn(move || g.arrive_and_wait(false));
        assert!(!gate.wait_all(1));
        gate.release(None);
        assert_eq!(h.join().unwrap(), None);
        assert!(std::mem::align_of::<CoreProgress>() >= 128);
    }
}
