//! Latency histograms, and a label's latencies: plain samples while few, then histograms.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Significant digits of every histogram.
pub const SIGFIG: u8 = 3;

/// A new auto-resizing µs histogram.
pub fn new_histogram() -> Histogram<u64> {
    // `new` only fails for sigfig > 5.
    let mut h = Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("sigfig 3 is valid"));
    h.auto(true);
    h
}

/// Records `value`, growing the histogram as needed (`saturating_record` would clamp
/// instead of growing); clamps only if growing fails.
pub fn record_value(h: &mut Histogram<u64>, value: u64) {
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// Whole microseconds of a duration, saturating.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Service latency (first byte sent → body read) and response time from the due
/// instant (coordinated-omission free), for one group of requests.
#[derive(Debug, Clone)]
pub struct LatencyHistograms {
    /// First byte sent → response fully read.
    pub service: Histogram<u64>,
    /// Due instant → response fully read.
    pub scheduled: Histogram<u64>,
}

impl Default for LatencyHistograms {
    fn default() -> Self {
        LatencyHistograms {
            service: new_histogram(),
            scheduled: new_histogram(),
        }
    }
}

impl LatencyHistograms {
    /// Records one request.
    pub fn record(&mut self, service_us: u64, scheduled_us: u64) {
        record_value(&mut self.service, service_us);
        record_value(&mut self.scheduled, scheduled_us);
    }

    /// Records a small label's (service, scheduled) µs pairs.
    fn record_pairs(&mut self, pairs: &[[u32; 2]]) {
        for [s, d] in pairs {
            self.record(u64::from(*s), u64::from(*d));
        }
    }

    /// Adds another group's counts.
    pub fn merge(&mut self, other: &LatencyHistograms) {
        // Auto-resizing histograms accept any other histogram's range.
        let _ = self.service.add(&other.service);
        let _ = self.scheduled.add(&other.scheduled);
    }
}

/// A label keeps up to this many latency pairs as plain values before switching to
/// histograms: kperf profiles have one label per unmasked GET path, often hit a few
/// times each. Two 3-digit histograms cost 32–80 KiB per label (latencies up to ~16 ms),
/// as much as 4,096 pairs, and growing them page-faults and zeroes, a visible share of a
/// replay's CPU when a profile has a thousand such labels (`bench/RESULTS.md`, issue 3).
pub const SMALL_LABEL_LIMIT: usize = 4096;

/// Latencies of one label: a few plain (service, scheduled) µs pairs, or histograms.
#[derive(Debug, Clone)]
pub enum LabelLatency {
    /// Up to `SMALL_LABEL_LIMIT` pairs, µs (clamped to u32, ~71 minutes).
    Small(Vec<[u32; 2]>),
    /// Histograms, once the label has more samples.
    Hist(Box<LatencyHistograms>),
}

impl Default for LabelLatency {
    fn default() -> Self {
        LabelLatency::Small(Vec::new())
    }
}

fn clamp_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl LabelLatency {
    /// Hints the caches about where the next `record` writes (a small label's next pair).
    #[inline]
    pub fn prefetch_next(&self) {
        if let LabelLatency::Small(v) = self {
            crate::prefetch::prefetch(v.as_ptr().wrapping_add(v.len()));
        }
    }

    /// Records one request.
    pub fn record(&mut self, service_us: u64, scheduled_us: u64) {
        match self {
            LabelLatency::Small(v) if v.len() < SMALL_LABEL_LIMIT => {
                v.push([clamp_u32(service_us), clamp_u32(scheduled_us)]);
            }
            LabelLatency::Small(v) => {
                let mut h = LatencyHistograms::default();
                h.record_pairs(v);
                h.record(service_us, scheduled_us);
                *self = LabelLatency::Hist(Box::new(h));
            }
            LabelLatency::Hist(h) => h.record(service_us, scheduled_us),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        match self {
            LabelLatency::Small(v) => v.len() as u64,
            LabelLatency::Hist(h) => h.service.len(),
        }
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A small label's (service, scheduled) µs pairs; `None` once it keeps histograms.
    pub fn small_pairs(&self) -> Option<&[[u32; 2]]> {
        match self {
            LabelLatency::Small(v) => Some(v),
            LabelLatency::Hist(_) => None,
        }
    }

    /// The samples as histograms (built on the fly for a small label).
    pub fn histograms(&self) -> std::borrow::Cow<'_, LatencyHistograms> {
        match self {
            LabelLatency::Small(v) => {
                let mut h = LatencyHistograms::default();
                h.record_pairs(v);
                std::borrow::Cow::Owned(h)
            }
            LabelLatency::Hist(h) => std::borrow::Cow::Borrowed(h),
        }
    }

    /// Adds another label's samples.
    pub fn merge(&mut self, other: &LabelLatency) {
        match other {
            LabelLatency::Small(v) => {
                for [s, d] in v {
                    self.record(u64::from(*s), u64::from(*d));
                }
            }
            LabelLatency::Hist(h) => {
                let mut mine = self.histograms().into_owned();
                mine.merge(h);
                *self = LabelLatency::Hist(Box::new(mine));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_labels_switch_to_histograms_without_losing_samples() {
        let mut a = LabelLatency::default();
        let mut b = LabelLatency::default();
        for i in 0..(SMALL_LABEL_LIMIT as u64 + 10) {
            a.record(i, i + 1);
        }
        b.record(5_000, 6_000);
        assert!(matches!(a, LabelLatency::Hist(_)));
        assert!(matches!(b, LabelLatency::Small(_)));
        assert_eq!(a.len(), SMALL_LABEL_LIMIT as u64 + 10);
        b.merge(&a);
        assert_eq!(b.len(), SMALL_LABEL_LIMIT as u64 + 11);
        let h = b.histograms();
        assert_eq!(h.service.max(), h.service.highest_equivalent(5_000));
        let mut c = LabelLatency::default();
        c.merge(&LabelLatency::Small(vec![[1, 2]]));
        assert_eq!(c.histograms().scheduled.max(), 2);
    }

    #[test]
    fn small_pairs_are_given_until_the_switch_to_histograms() {
        let mut l = LabelLatency::default();
        l.record(10, 20);
        l.record(30, 40);
        assert_eq!(l.small_pairs(), Some(&[[10, 20], [30, 40]][..]));
        for i in 0..SMALL_LABEL_LIMIT as u64 {
            l.record(i, i);
        }
        assert_eq!(l.small_pairs(), None);
        assert_eq!(l.len(), SMALL_LABEL_LIMIT as u64 + 2);
    }
}
