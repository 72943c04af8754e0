//! kperf's nearest-rank percentiles (docs/kperf-compatibility.md §11): six fixed points, no
//! interpolation.

/// The percentiles kperf reports, in report order.
pub const KPERF_PERCENTILES: [f64; 6] = [0.0, 0.5, 0.9, 0.95, 0.99, 1.0];

/// Index into an ascending list of `n` values that kperf picks for percentile `p`:
/// `ceil(n·p) − 1`, or 0 when `ceil(n·p)` is 0.
///
/// When `p` is a whole number of percent (as all of [`KPERF_PERCENTILES`] are), the ceiling
/// is computed in integers, so it is exact for every `n`; for `n <= 3,000,000` this equals
/// kperf's float64 computation. Other `p` use float64 like kperf. `p` is clamped to
/// `[0, 1]` (NaN counts as 0) and the result to `n − 1`, so the index is always usable
/// for a non-empty list.
pub fn nearest_rank_index(n: u64, p: f64) -> usize {
    if n == 0 {
        return 0;
    }
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    let rank: u128 = match whole_percent(p) {
        Some(k) => (u128::from(n) * u128::from(k)).div_ceil(100),
        // f64 → u128 saturates; the clamp below keeps the index in range.
        None => (n as f64 * p).ceil() as u128,
    };
    let idx = rank.saturating_sub(1).min(u128::from(n - 1));
    usize::try_from(idx).unwrap_or(usize::MAX)
}

/// `Some(k)` when `p` is exactly the float64 nearest to `k/100` for an integer k in 0..=100.
fn whole_percent(p: f64) -> Option<u32> {
    let k = (p * 100.0).round();
    if !(0.0..=100.0).contains(&k) {
        return None;
    }
    let k = k as u32;
    (f64::from(k) / 100.0 == p).then_some(k)
}

/// kperf's `[p, value]` pairs for an ascending list: one per [`KPERF_PERCENTILES`] entry;
/// an empty list gives no pairs.
pub fn kperf_percentiles(sorted: &[f64]) -> Vec<(f64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let n = sorted.len() as u64;
    KPERF_PERCENTILES
        .iter()
        .map(|&p| (p, sorted[nearest_rank_index(n, p)]))
        .collect()
}
