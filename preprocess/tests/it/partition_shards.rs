//! `shard_of` spreads each runner's keys evenly over its shards, whatever the runner
//! count, because it is independent of `runner_of`.

use preprocess::partition::{key_hash, runner_of, shard_of};
use preprocess::profile::{ProfileRequest, Verb};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Key hashes of realistic requests: namespaced and cluster objects, selector LISTs.
fn sample_hashes(count: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x6b72_6570_6c61_7921);
    let kinds = [
        "Pod",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Node",
        "Lease",
        "Widget",
    ];
    (0..count)
        .map(|i| {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let namespaced = kind != "Node";
            let selector = i % 50 == 0;
            let req = ProfileRequest {
                timestamp_ms: 0,
                verb: if selector { Verb::List } else { Verb::Get },
                namespace: if namespaced {
                    format!("ns-{}", rng.gen_range(0..500))
                } else {
                    String::new()
                },
                resource_kind: kind.into(),
                name: if selector {
                    String::new()
                } else {
                    format!("{}-{}", kind.to_lowercase(), rng.gen::<u32>())
                },
                api_path: "/".into(),
                body: String::new(),
                label_selector: if selector {
                    format!("app=a{i}")
                } else {
                    String::new()
                },
            };
            key_hash(&req)
        })
        .collect()
}

/// Counts per (runner, shard) cell; `None` when a cell's count strays more than six
/// standard deviations from the mean (binomial), with the worst deviation found.
fn spread_check(
    hashes: &[u64],
    runners: u32,
    shards: u32,
    shard: impl Fn(u64, u32) -> u32,
) -> Result<(), String> {
    let cells = (runners * shards) as usize;
    let mut counts = vec![0u64; cells];
    for &h in hashes {
        let r = runner_of(h, runners);
        let s = shard(h, shards);
        assert!(r < runners && s < shards);
        counts[(r * shards + s) as usize] += 1;
    }
    let n = hashes.len() as f64;
    let p = 1.0 / cells as f64;
    let mean = n * p;
    let sigma = (n * p * (1.0 - p)).sqrt();
    for (cell, &c) in counts.iter().enumerate() {
        let z = (c as f64 - mean) / sigma.max(1.0);
        if z.abs() > 6.0 {
            return Err(format!(
                "{runners} runners × {shards} shards: cell {cell} has {c}, expected {mean:.0} (z = {z:.1})"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_shard_of_every_runner_gets_its_share() {
    let hashes = sample_hashes(200_000);
    for runners in 1..=8 {
        for shards in 1..=16 {
            if let Err(e) = spread_check(&hashes, runners, shards, shard_of) {
                panic!("{e}");
            }
        }
    }
}

#[test]
fn the_check_catches_a_shard_function_tied_to_the_runner() {
    // A plain modulo correlates with runner_of: with 2 runners and 2 shards each
    // runner's keys all land in one shard. The check above must reject it.
    let hashes = sample_hashes(20_000);
    let plain = |h: u64, s: u32| (h % u64::from(s)) as u32;
    assert!(spread_check(&hashes, 2, 2, plain).is_err());
    assert!(spread_check(&hashes, 2, 2, shard_of).is_ok());
}

#[test]
fn one_object_always_lands_in_one_shard() {
    let req = ProfileRequest {
        timestamp_ms: 0,
        verb: Verb::Delete,
        namespace: "default".into(),
        resource_kind: "Pod".into(),
        name: "nginx-1".into(),
        api_path: "/api/v1/namespaces/default/pods/nginx-1".into(),
        body: String::new(),
        label_selector: String::new(),
    };
    let get = ProfileRequest {
        verb: Verb::Get,
        timestamp_ms: 5,
        ..req.clone()
    };
    assert_eq!(key_hash(&req), key_hash(&get));
    assert_eq!(shard_of(key_hash(&req), 8), shard_of(key_hash(&get), 8));
}

proptest! {
    #[test]
    fn runner_and_shard_stay_in_range(hash in any::<u64>(), runners in 1u32.., shards in 1u32..) {
        prop_assert!(runner_of(hash, runners) < runners);
        prop_assert!(shard_of(hash, shards) < shards);
        prop_assert_eq!(u64::from(runner_of(hash, runners)), hash % u64::from(runners));
    }
}
