//! HdrHistogram's answers for a few sorted samples, without building the histogram.
//!
//! A label with few samples (most labels of a kperf profile) is reported as if its samples
//! were recorded into a [`crate::metrics::new_histogram`]: the same percentiles and a V2
//! payload that decodes to the same counts. Building that histogram meant zeroing and
//! scanning a counts array of thousands of entries per label; here the cost follows the
//! samples.
//!
//! The bucket layout is HdrHistogram's for lowest discernible value 1 and 3 significant
//! digits (`SIGFIG`): 2,048 sub-buckets, the first bucket exact, each later one twice as
//! wide. The tests check every function against the `hdrhistogram` crate.

use std::ops::Range;

use crate::metrics::SIGFIG;

/// log2 of half the sub-bucket count (2,048 sub-buckets for 3 significant digits).
const HALF_MAGNITUDE: u32 = 10;
const SUB_BUCKET_MASK: u64 = (1 << (HALF_MAGNITUDE + 1)) - 1;
/// 64 − unit magnitude (0) − `HALF_MAGNITUDE` − 1.
const LEADING_ZERO_BASE: u32 = 64 - HALF_MAGNITUDE - 1;
/// The V2 cookie with its word-size bits (0x10), as every HdrHistogram writer sets them.
const V2_COOKIE: u32 = 0x1c84_9313;

const _: () = assert!(SIGFIG == 3, "the layout above is for 3 significant digits");

const fn bucket_of(v: u64) -> u32 {
    LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros()
}

/// Index of `v`'s count in the histogram's counts array.
const fn index_of(v: u64) -> usize {
    let bucket = bucket_of(v);
    let sub = v >> bucket;
    // (bucket + 1) · half + sub − half, with sub ≥ half beyond the first bucket.
    (((bucket as u64 + 1) << HALF_MAGNITUDE) + sub - (1 << HALF_MAGNITUDE)) as usize
}

/// The smallest value counted with `v`.
pub fn lowest_equivalent(v: u64) -> u64 {
    let bucket = bucket_of(v);
    (v >> bucket) << bucket
}

/// The largest value counted with `v`.
pub fn highest_equivalent(v: u64) -> u64 {
    let bucket = bucket_of(v);
    lowest_equivalent(v).saturating_add((1u64 << bucket) - 1)
}

/// `Histogram::min()` of the samples (`sorted`, ascending, not empty).
pub fn min(sorted: &[u32]) -> u64 {
    match sorted.first() {
        Some(&v) => lowest_equivalent(u64::from(v)),
        None => 0,
    }
}

/// `Histogram::max()` of the samples (`sorted`, ascending, not empty).
pub fn max(sorted: &[u32]) -> u64 {
    sorted
        .last()
        .map_or(0, |&v| highest_equivalent(u64::from(v)))
}

/// `Histogram::value_at_quantile(quantile)` of the samples (`sorted`, ascending).
pub fn value_at_quantile(sorted: &[u32], quantile: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let quantile = quantile.min(1.0);
    // The same float steps as the crate, so that ties fall the same way.
    let count = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    let v = u64::from(sorted[count - 1]);
    if quantile == 0.0 {
        lowest_equivalent(v)
    } else {
        highest_equivalent(v)
    }
}

/// Appends the samples (`sorted`, ascending, not empty) as an uncompressed HdrHistogram V2
/// payload (header and zig-zag LEB128 counts, runs of zeros as negative numbers).
pub fn write_v2(sorted: &[u32], out: &mut Vec<u8>) {
    let start = out.len();
    let highest = u64::from(sorted.last().copied().unwrap_or(0).max(2));
    out.extend_from_slice(&V2_COOKIE.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // payload length, below
    out.extend_from_slice(&0u32.to_be_bytes()); // normalizing index offset
    out.extend_from_slice(&u32::from(SIGFIG).to_be_bytes());
    out.extend_from_slice(&1u64.to_be_bytes()); // lowest discernible value
    out.extend_from_slice(&highest.to_be_bytes());
    out.extend_from_slice(&1.0f64.to_be_bytes()); // integer to double ratio
    let counts_start = out.len();
    // Each occupied index writes at most a run of zeros and a count: size the buffer once
    // and write by position (a capacity check and a call per byte cost more than the rest).
    let most = sorted.len() * (ZERO_RUN_MAX_BYTES + varint_len(zig_zag(sorted.len() as i64)));
    out.resize(counts_start + most, 0);
    let buf = &mut out[counts_start..];
    let mut at = 0;
    let mut next = 0usize; // the first index not yet written
    let mut i = 0;
    while i < sorted.len() {
        let v = sorted[i];
        let start = i;
        i += 1;
        let index = if v <= SUB_BUCKET_MASK as u32 {
            // The first bucket counts each value alone (most small labels' latencies).
            v as usize
        } else {
            // The samples counted at `index` are the next ones up to its highest value.
            let top = highest_equivalent(u64::from(v));
            while i < sorted.len() && u64::from(sorted[i]) <= top {
                i += 1;
            }
            index_of(u64::from(v))
        };
        while i < sorted.len() && sorted[i] == v {
            i += 1;
        }
        let count = (i - start) as i64;
        match index - next {
            0 => {}
            // A lone empty index is written as a count of 0, a longer run as −length.
            1 => at = put_varint(buf, at, zig_zag(0)),
            zeros => at = put_varint(buf, at, zig_zag(-(zeros as i64))),
        }
        at = put_varint(buf, at, zig_zag(count));
        next = index + 1;
    }
    out.truncate(counts_start + at);
    let len = at as u32;
    out[start + 4..start + 8].copy_from_slice(&len.to_be_bytes());
}

/// The longest run of zeros a varint holds: u32 samples reach index 23,551 (zig-zag
/// 47,101), 3 bytes.
const ZERO_RUN_MAX_BYTES: usize = 3;
const _: () = assert!(index_of(u32::MAX as u64) < 1 << 20);

/// Small labels' samples, each label's and each kind's sorted, one buffer per kind: sorted
/// once for both halves of the report (kperf's percentiles, kreplay's histograms).
#[derive(Debug, Default)]
pub struct SortedSamples {
    /// Service latencies, µs.
    service: Vec<u32>,
    /// Scheduled latencies, µs.
    scheduled: Vec<u32>,
}

impl SortedSamples {
    /// Room for `pairs` samples in all.
    pub fn with_capacity(pairs: usize) -> Self {
        SortedSamples {
            service: Vec::with_capacity(pairs),
            scheduled: Vec::with_capacity(pairs),
        }
    }

    /// Adds a small label's (service, scheduled) pairs; returns where its samples are.
    pub fn push(&mut self, pairs: &[[u32; 2]]) -> Range<usize> {
        let start = self.service.len();
        self.service.extend(pairs.iter().map(|p| p[0]));
        self.scheduled.extend(pairs.iter().map(|p| p[1]));
        self.service[start..].sort_unstable();
        self.scheduled[start..].sort_unstable();
        start..self.service.len()
    }

    /// The service latencies at `at` (from `push`), ascending.
    pub fn service(&self, at: Range<usize>) -> &[u32] {
        &self.service[at]
    }

    /// The scheduled latencies at `at` (from `push`), ascending.
    pub fn scheduled(&self, at: Range<usize>) -> &[u32] {
        &self.scheduled[at]
    }
}

fn zig_zag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// Bytes of `v` as a varint (`put_varint`).
fn varint_len(v: u64) -> usize {
    ((64 - v.leading_zeros() as usize).div_ceil(7)).clamp(1, 9)
}

/// Writes `v` at `buf[at..]` in HdrHistogram's LEB128 variant (at most 9 bytes, the ninth
/// taking 8 whole bits); returns the position after it.
#[inline(always)]
fn put_varint(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    for _ in 0..8 {
        if v < 0x80 {
            buf[at] = v as u8;
            return at + 1;
        }
        buf[at] = 0x80 | (v & 0x7f) as u8;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, record_value};
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
    use hdrhistogram::Histogram;

    /// Sample sets: latencies as replays see them, with equal values, zeros, bucket edges
    /// and the largest µs a label keeps.
    fn sample_sets() -> Vec<Vec<u32>> {
        let mut sets = vec![
            vec![0],
            vec![1],
            vec![0, 0, 5],
            vec![2047, 2048, 2049, 4095, 4096, 4097],
            vec![u32::MAX],
            vec![3, 3, 3, 3],
        ];
        // A small deterministic generator: no test depends on a random seed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in [2usize, 7, 190, 1000, 4096] {
            let mut v: Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Mostly sub-ms to tens of ms, some seconds.
                    (match x % 10 {
                        0 => x % 5_000_000,
                        1..=3 => x % 50_000,
                        _ => 200 + x % 2_000,
                    }) as u32
                })
                .collect();
            v.sort_unstable();
            sets.push(v);
        }
        sets
    }

    fn histogram_of(samples: &[u32]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in samples {
            record_value(&mut h, u64::from(v));
        }
        h
    }

    #[test]
    fn the_layout_is_the_crates() {
        let h = histogram_of(&[1]);
        for v in (0..70_000u64).chain([1 << 20, (1 << 20) + 1, u64::from(u32::MAX)]) {
            assert_eq!(
                lowest_equivalent(v),
                h.lowest_equivalent(v),
                "lowest of {v}"
            );
            assert_eq!(
                highest_equivalent(v),
                h.highest_equivalent(v),
                "highest of {v}"
            );
        }
    }

    #[test]
    fn percentiles_are_the_histograms() {
        for sorted in sample_sets() {
            let h = histogram_of(&sorted);
            assert_eq!(min(&sorted), h.min(), "{sorted:?}");
            assert_eq!(max(&sorted), h.max(), "{sorted:?}");
            for q in [0.0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0, 1.5] {
                assert_eq!(
                    value_at_quantile(&sorted, q),
                    h.value_at_quantile(q),
                    "q {q} of {} samples",
                    sorted.len()
                );
            }
        }
    }

    #[test]
    fn the_payload_decodes_to_the_same_counts() {
        for sorted in sample_sets() {
            let h = histogram_of(&sorted);
            let mut payload = Vec::new();
            write_v2(&sorted, &mut payload);
            let back: Histogram<u64> = Deserializer::new()
                .deserialize(&mut payload.as_slice())
                .expect("decodes");
            assert_eq!(back.len(), h.len());
            assert_eq!(back.min(), h.min());
            assert_eq!(back.max(), h.max());
            let mine: Vec<_> = back
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            let theirs: Vec<_> = h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect();
            assert_eq!(mine, theirs, "{} samples", sorted.len());
            // The counts are the bytes the crate's serializer writes (its header differs
            // only in the highest trackable value, which follows the histogram's growth).
            let mut crate_bytes = Vec::new();
            V2Serializer::new().serialize(&h, &mut crate_bytes).unwrap();
            assert_eq!(payload[40..], crate_bytes[40..], "{} samples", sorted.len());
            assert_eq!(payload[..24], crate_bytes[..24]);
        }
    }
}
