//! Per-interval series of a run (`kreplay.perSecond`): requests completed and failed, body
//! bytes, and latency and send-lag histograms from which each interval's p99 is derived, so a
//! lab can line a replay up with the API server's own metrics and `engine merge` can add
//! runners' series exactly.
//!
//! Bounded: an interval is 1 s for runs up to [`MAX_INTERVALS`] seconds; longer timelines get
//! wider intervals (`intervalSeconds`: the span divided by [`MAX_INTERVALS`], rounded up), so a
//! series never holds more than about [`MAX_INTERVALS`] entries. The arrays are sized once,
//! before the start, for the timeline's span plus a margin; whatever happens after the last
//! interval (a run overrunning its timeline by more than the margin) is counted in the last one.
//! The hot path only indexes these per-core arrays: no allocation, no lock, no shared line; a
//! request's end reads the monotonic clock once (vDSO) to find its interval.
//!
//! Histograms are log-linear over microseconds with 8 sub-buckets per power of two (values
//! below 8 µs exact, others within 12.5 %); a p99 is reported as its bucket's upper bound.

use std::time::{Duration, Instant};

/// Most intervals a series holds (one hour of 1-second intervals).
pub const MAX_INTERVALS: u64 = 3_600;

/// Buckets of a per-interval histogram.
pub const BUCKETS: usize = 8 + 38 * 8;

/// The bucket of `micros`.
pub fn bucket_of(micros: u64) -> usize {
    if micros < 8 {
        return micros as usize;
    }
    let octave = 63 - micros.leading_zeros() as usize; // ≥ 3
    let sub = ((micros >> (octave - 3)) & 7) as usize;
    (8 + (octave - 3) * 8 + sub).min(BUCKETS - 1)
}

/// The largest value (µs) bucket `index` holds.
pub fn bucket_high(index: usize) -> u64 {
    if index < 8 {
        return index as u64;
    }
    let octave = (index - 8) / 8 + 3;
    let sub = ((index - 8) % 8) as u64;
    ((8 + sub) << (octave - 3)) + (1u64 << (octave - 3)) - 1
}

/// The value (µs, a bucket's upper bound) at quantile `q` of `counts`; `None` when empty.
pub fn quantile_micros(counts: &[u32], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += u64::from(c);
        if seen >= rank {
            return Some(bucket_high(i));
        }
    }
    None
}

/// The interval width for a timeline of `span` (at the replay's speed).
pub fn interval_for(span: Duration) -> u64 {
    (span.as_secs() + 1).div_ceil(MAX_INTERVALS).max(1)
}

/// One core's series, sized before the start.
#[derive(Debug, Clone, Default)]
pub struct PerSecondSeries {
    /// Seconds per interval (0: not sized, nothing is recorded).
    pub interval_s: u64,
    /// Successes per interval (by completion time).
    pub completed: Vec<u64>,
    /// Failures per interval (by completion time).
    pub failed: Vec<u64>,
    /// Response body bytes per interval.
    pub bytes: Vec<u64>,
    /// Service latency histograms, `BUCKETS` counts per interval.
    pub latency: Vec<u32>,
    /// Send lag histograms, `BUCKETS` counts per interval (by send time).
    pub lag: Vec<u32>,
    start: Option<Instant>,
    bytes_seen: u64,
}

impl PerSecondSeries {
    /// Series for a replay starting at `start` whose timeline spans `span`.
    pub fn new(span: Duration, start: Instant) -> PerSecondSeries {
        let interval_s = interval_for(span);
        // The span, plus a tenth of it and 2 intervals for lateness and slow last answers.
        let n = (span.as_secs() / interval_s + span.as_secs() / interval_s / 10 + 2) as usize;
        PerSecondSeries {
            interval_s,
            completed: vec![0; n],
            failed: vec![0; n],
            bytes: vec![0; n],
            latency: vec![0; n * BUCKETS],
            lag: vec![0; n * BUCKETS],
            start: Some(start),
            bytes_seen: 0,
        }
    }

    /// Intervals held.
    pub fn len(&self) -> usize {
        self.completed.len()
    }

    /// Whether nothing can be recorded.
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty()
    }

    fn interval(&self, since_start: Duration) -> Option<usize> {
        if self.completed.is_empty() {
            return None;
        }
        let i = since_start.as_secs() / self.interval_s;
        Some((i as usize).min(self.completed.len() - 1))
    }

    /// A send `since_start` after the start, `lag_us` late.
    pub fn record_send(&mut self, since_start: Duration, lag_us: u64) {
        if let Some(i) = self.interval(since_start) {
            self.lag[i * BUCKETS + bucket_of(lag_us)] += 1;
        }
    }

    /// A request ended now: a success with `latency_us`, or a failure (`None`); `bytes_total`
    /// is the core's body byte count so far (the bytes since the last end go to this interval).
    pub fn record_end(&mut self, latency_us: Option<u64>, failed: bool, bytes_total: u64) {
        let Some(start) = self.start else { return };
        let Some(i) = self.interval(Instant::now().saturating_duration_since(start)) else {
            return;
        };
        if failed {
            self.failed[i] += 1;
        } else {
            self.completed[i] += 1;
        }
        if let Some(us) = latency_us {
            self.latency[i * BUCKETS + bucket_of(us)] += 1;
        }
        self.bytes[i] += bytes_total.saturating_sub(self.bytes_seen);
        self.bytes_seen = bytes_total;
    }

    /// Adds another core's series (same timeline, same interval) interval by interval.
    pub fn merge(&mut self, other: &PerSecondSeries) {
        self.merge_shifted(other, 0);
    }

    /// Adds `other`'s interval `i` to this series' interval `i + shift` (a runner that started
    /// `shift` intervals later). Both must have the same interval width.
    pub fn merge_shifted(&mut self, other: &PerSecondSeries, shift: usize) {
        if other.is_empty() {
            return;
        }
        if self.interval_s == 0 {
            self.interval_s = other.interval_s;
        }
        let n = self.len().max(other.len() + shift);
        for v in [&mut self.completed, &mut self.failed, &mut self.bytes] {
            v.resize(n, 0);
        }
        self.latency.resize(n * BUCKETS, 0);
        self.lag.resize(n * BUCKETS, 0);
        for i in 0..other.len() {
            self.completed[i + shift] += other.completed[i];
            self.failed[i + shift] += other.failed[i];
            self.bytes[i + shift] += other.bytes[i];
        }
        let at = shift * BUCKETS;
        for (m, o) in self.latency[at..].iter_mut().zip(&other.latency) {
            *m += o;
        }
        for (m, o) in self.lag[at..].iter_mut().zip(&other.lag) {
            *m += o;
        }
    }

    /// Intervals up to the last one with anything in it.
    pub fn used_len(&self) -> usize {
        (0..self.len())
            .rev()
            .find(|&i| {
                self.completed[i] > 0
                    || self.failed[i] > 0
                    || self.bytes[i] > 0
                    || self.lag[i * BUCKETS..(i + 1) * BUCKETS]
                        .iter()
                        .any(|&c| c > 0)
            })
            .map_or(0, |i| i + 1)
    }

    /// Latency histogram of interval `i`.
    pub fn latency_at(&self, i: usize) -> &[u32] {
        &self.latency[i * BUCKETS..(i + 1) * BUCKETS]
    }

    /// Send-lag histogram of interval `i`.
    pub fn lag_at(&self, i: usize) -> &[u32] {
        &self.lag[i * BUCKETS..(i + 1) * BUCKETS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_bounded() {
        for v in [
            0u64, 1, 7, 8, 9, 15, 16, 17, 100, 999, 1_000, 123_456, 60_000_000,
        ] {
            let b = bucket_of(v);
            assert!(bucket_high(b) >= v, "{v}");
            assert!(b == 0 || bucket_high(b - 1) < v, "{v}");
            // Within 12.5 %.
            assert!(bucket_high(b) as f64 <= v as f64 * 1.125 + 1.0, "{v}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_and_intervals() {
        let mut c = vec![0u32; BUCKETS];
        c[bucket_of(100)] = 98;
        c[bucket_of(5_000)] = 2;
        assert_eq!(quantile_micros(&c, 0.5), Some(bucket_high(bucket_of(100))));
        assert_eq!(
            quantile_micros(&c, 0.99),
            Some(bucket_high(bucket_of(5_000)))
        );
        assert_eq!(quantile_micros(&[0; BUCKETS], 0.99), None);
        assert_eq!(interval_for(Duration::from_secs(10)), 1);
        assert_eq!(interval_for(Duration::from_secs(3_599)), 1);
        assert_eq!(interval_for(Duration::from_secs(7_200)), 3);
        let s = PerSecondSeries::new(Duration::from_secs(86_400), Instant::now());
        assert!(s.len() as u64 <= MAX_INTERVALS + MAX_INTERVALS / 10 + 2);
    }
}
