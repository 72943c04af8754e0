//! kperf's object key, FNV-1a hash and runner, checked against every row of
//! preprocess/tests/fixtures/partition_vectors.tsv (produced by an independent implementation).

use std::collections::HashMap;

use preprocess::partition::{fnv1a64, key_hash, object_key, runner_of};
use preprocess::profile::{ProfileRequest, Verb};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/partition_vectors.tsv"
);

/// The TSV as (header, rows), each row a column-name → field map.
fn read_vectors() -> Vec<HashMap<String, String>> {
    let text = match std::fs::read_to_string(VECTORS) {
        Ok(t) => t,
        Err(e) => panic!("cannot read {VECTORS}: {e}"),
    };
    let mut lines = text.lines();
    let header: Vec<&str> = match lines.next() {
        Some(h) => h.split('\t').collect(),
        None => panic!("{VECTORS} is empty"),
    };
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(
                fields.len(),
                header.len(),
                "{VECTORS} line {}: {} fields, header has {}",
                i + 2,
                fields.len(),
                header.len()
            );
            header
                .iter()
                .zip(fields)
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

fn request_of(row: &HashMap<String, String>) -> ProfileRequest {
    let verb = match Verb::from_profile(&row["verb"]) {
        Some(v) => v,
        None => panic!("unknown verb in {row:?}"),
    };
    ProfileRequest {
        timestamp_ms: 0,
        verb,
        namespace: row["namespace"].clone(),
        resource_kind: row["resourceKind"].clone(),
        name: row["name"].clone(),
        api_path: "/".into(),
        body: String::new(),
        label_selector: row["labelSelector"].clone(),
    }
}

#[test]
fn every_vector_matches_key_hash_and_runners() {
    let rows = read_vectors();
    assert!(
        rows.len() >= 40,
        "expected the full vector set, got {} rows",
        rows.len()
    );
    let mut key = String::from("left over from a previous call");
    let mut runner_columns = 0;
    for row in &rows {
        let req = request_of(row);
        object_key(&req, &mut key);
        assert_eq!(key, row["objectKey"], "object key of {row:?}");
        let want_hash: u64 = match row["fnv1a64"].parse() {
            Ok(h) => h,
            Err(e) => panic!("bad fnv1a64 in {row:?}: {e}"),
        };
        assert_eq!(fnv1a64(key.as_bytes()), want_hash, "fnv1a64 of {key:?}");
        assert_eq!(key_hash(&req), want_hash, "key_hash of {row:?}");
        for (column, value) in row {
            let Some(n) = column.strip_prefix("runner_n") else {
                continue;
            };
            let (Ok(n), Ok(want)) = (n.parse::<u32>(), value.parse::<u32>()) else {
                panic!("bad runner column {column}={value} in {row:?}");
            };
            assert_eq!(
                runner_of(want_hash, n),
                want,
                "runner of {key:?} for {n} runners"
            );
            runner_columns += 1;
        }
    }
    assert_eq!(
        runner_columns,
        rows.len() * 6,
        "every row has six runner counts"
    );
}

#[test]
fn runner_uses_unsigned_64_bit_modulo() {
    // Values above i64::MAX: a signed modulo would differ.
    let hash = 17442384004305078551u64;
    assert_eq!(runner_of(hash, 7), (hash % 7) as u32);
    assert_eq!(
        runner_of(u64::MAX, u32::MAX),
        (u64::MAX % u64::from(u32::MAX)) as u32
    );
    assert_eq!(runner_of(hash, 1), 0);
}
