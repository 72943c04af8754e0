//! kperf's nearest-rank percentile rule (docs/kperf-compatibility.md §11).

use engine::report::percentile::{kperf_percentiles, nearest_rank_index, KPERF_PERCENTILES};

/// kperf's own computation: `int(math.Ceil(float64(n) * p))`, minus one when positive.
fn kperf_float_index(n: u64, p: f64) -> usize {
    let idx = (n as f64 * p).ceil() as usize;
    idx.saturating_sub(1)
}

#[test]
fn n4_example_from_the_spec() {
    // n=4: p0 the 1st value, p50 the 2nd, p90/p95/p99/p100 the 4th.
    let got: Vec<usize> = KPERF_PERCENTILES
        .iter()
        .map(|&p| nearest_rank_index(4, p))
        .collect();
    assert_eq!(got, vec![0, 1, 3, 3, 3, 3]);
}

#[test]
fn small_n_by_hand() {
    let table: &[(u64, [usize; 6])] = &[
        (1, [0, 0, 0, 0, 0, 0]),
        (2, [0, 0, 1, 1, 1, 1]),
        (3, [0, 1, 2, 2, 2, 2]),
        (4, [0, 1, 3, 3, 3, 3]),
        (5, [0, 2, 4, 4, 4, 4]),
        (6, [0, 2, 5, 5, 5, 5]),
        (7, [0, 3, 6, 6, 6, 6]),
        (8, [0, 3, 7, 7, 7, 7]),
        (9, [0, 4, 8, 8, 8, 8]),
        (10, [0, 4, 8, 9, 9, 9]),
        (20, [0, 9, 17, 18, 19, 19]),
        (100, [0, 49, 89, 94, 98, 99]),
        (101, [0, 50, 90, 95, 99, 100]),
    ];
    for (n, want) in table {
        for (i, &p) in KPERF_PERCENTILES.iter().enumerate() {
            assert_eq!(nearest_rank_index(*n, p), want[i], "n={n} p={p}");
        }
    }
}

#[test]
fn equals_kperf_float_computation_up_to_100k() {
    for n in 1..=100_000u64 {
        for &p in &KPERF_PERCENTILES {
            assert_eq!(
                nearest_rank_index(n, p),
                kperf_float_index(n, p),
                "n={n} p={p}"
            );
        }
    }
}

#[test]
fn large_n_is_exact_and_in_range() {
    let n = 10_000_000_000_000u64;
    assert_eq!(nearest_rank_index(n, 0.0), 0);
    assert_eq!(nearest_rank_index(n, 0.5), 4_999_999_999_999);
    assert_eq!(nearest_rank_index(n, 0.99), 9_899_999_999_999);
    assert_eq!(nearest_rank_index(n, 1.0), 9_999_999_999_999);
    assert_eq!(nearest_rank_index(u64::MAX, 1.0) as u64, u64::MAX - 1);
}

#[test]
fn odd_percentiles_are_clamped() {
    assert_eq!(nearest_rank_index(10, 1.5), 9);
    assert_eq!(nearest_rank_index(10, -0.5), 0);
    assert_eq!(nearest_rank_index(10, f64::NAN), 0);
    assert_eq!(nearest_rank_index(10, 0.333), kperf_float_index(10, 0.333));
    assert_eq!(nearest_rank_index(0, 0.5), 0);
}

#[test]
fn percentile_pairs() {
    assert!(kperf_percentiles(&[]).is_empty());
    let sorted = [0.1, 0.2, 0.3, 0.4];
    assert_eq!(
        kperf_percentiles(&sorted),
        vec![
            (0.0, 0.1),
            (0.5, 0.2),
            (0.9, 0.4),
            (0.95, 0.4),
            (0.99, 0.4),
            (1.0, 0.4)
        ]
    );
    let one = [7.5];
    assert!(kperf_percentiles(&one).iter().all(|&(_, v)| v == 7.5));
}
