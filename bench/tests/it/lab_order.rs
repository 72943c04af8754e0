//! `kreplay-lab order-violations` on a generated profile: an order log in profile order has no
//! violation; one with two requests of an object swapped, or one dropped, has.

use std::collections::BTreeMap;
use std::process::Command;

use bench::lab::order::expected_order;
use serde_json::{json, Value};

fn order_log(expected: &BTreeMap<String, Vec<&'static str>>) -> Value {
    let mut seq = 0;
    let objects: serde_json::Map<String, Value> = expected
        .iter()
        .map(|(k, verbs)| {
            let list = verbs
                .iter()
                .map(|v| {
                    seq += 1;
                    json!({"seq": seq, "verb": v})
                })
                .collect();
            (k.clone(), Value::Array(list))
        })
        .collect();
    json!({"recorded": seq, "dropped": 0, "objects": objects})
}

fn violations(
    profile: &std::path::Path,
    log: &Value,
    dir: &std::path::Path,
) -> (bool, String, String) {
    let order = dir.join("order.json");
    std::fs::write(&order, log.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kreplay-lab"))
        .args([
            "order-violations",
            "--profile",
            profile.to_str().unwrap(),
            "--order",
            order.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn order_violations_counts_objects_seen_out_of_profile_order() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.yaml.gz");
    let gen = Command::new(env!("CARGO_BIN_EXE_kreplay-gen"))
        .args([
            "-n",
            "3000",
            "--rate",
            "1000",
            "--watches",
            "10",
            "--seed",
            "7",
            "-o",
            profile.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let expected = expected_order(&profile).unwrap();
    assert!(expected.len() > 10, "the default mix has named objects");

    let good = order_log(&expected);
    assert_eq!(
        violations(&profile, &good, dir.path()),
        (true, "0".into(), String::new())
    );

    // Swap the first two different verbs of some object.
    let (key, i) = expected
        .iter()
        .find_map(|(k, v)| {
            v.windows(2)
                .position(|w| w[0] != w[1])
                .map(|i| (k.clone(), i))
        })
        .expect("an object with two different verbs");
    let mut swapped = good.clone();
    swapped["objects"][&key]
        .as_array_mut()
        .unwrap()
        .swap(i, i + 1);
    let (ok, count, err) = violations(&profile, &swapped, dir.path());
    assert!(ok, "{err}");
    assert_eq!(count, "1");
    assert!(
        err.contains(&format!("order violation: {key}: saw")),
        "{err}"
    );

    // A request apisim never saw is a violation too.
    let mut missing = good.clone();
    missing["objects"].as_object_mut().unwrap().remove(&key);
    assert_eq!(violations(&profile, &missing, dir.path()).1, "1");

    // A log that dropped entries proves nothing: an error naming the flag.
    let mut dropped = good;
    dropped["dropped"] = json!(4);
    let (ok, _, err) = violations(&profile, &dropped, dir.path());
    assert!(!ok);
    assert!(err.contains("--order-log-limit"), "{err}");
}

#[test]
fn a_broken_profile_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("bad.yaml");
    std::fs::write(
        &profile,
        "version: 1\nspec: {runnerCount: 0}\nrequests: []\n",
    )
    .unwrap();
    let (ok, _, err) = violations(&profile, &json!({"dropped": 0, "objects": {}}), dir.path());
    assert!(!ok);
    assert!(err.contains("bad.yaml"), "{err}");
}
