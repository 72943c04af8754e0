//! CI smoke benchmark: a small paced replay (3,000 requests at 1,000/s, the default mix
//! and a few WATCHes) against the real apisim, checked for behaviour only — every request
//! completed, no per-object order violation, a parseable report, and `engine compare`
//! passing the run against itself and failing it against a copy with a doubled p99.
//! No timing thresholds: timing goals are benchmarks, not tests.

use crate::util::order;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{bin, preprocess, run_bounded, ApiSim};
use bench::profile_gen::{write_profile_to_path, GenConfig};
use serde_json::Value;

const REQUESTS: u64 = 3_000;

fn engine(args: &[&std::ffi::OsStr]) -> Output {
    run_bounded(
        Command::new(bin("engine")).args(args),
        Duration::from_secs(120),
    )
}

fn compare(base: &Path, new: &Path) -> Output {
    engine(&["compare".as_ref(), base.as_os_str(), new.as_os_str()])
}

#[test]
fn paced_replay_against_apisim_completes_in_order_and_gates_on_p99() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.yaml");
    let cfg = GenConfig {
        requests: REQUESTS,
        rate: Some(1_000.0),
        watches: Some(4),
        seed: 11,
        ..GenConfig::default()
    };
    write_profile_to_path(&cfg, profile.to_str().expect("utf-8 path")).expect("generate profile");
    let requests = order::requests_of(&profile);
    assert_eq!(requests.len() as u64, REQUESTS);
    let timeline = dir.path().join("timeline.bin");
    preprocess(&profile, &timeline, &[]);

    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let report = dir.path().join("report.json");
    let out = engine(&[
        "run".as_ref(),
        timeline.as_os_str(),
        "--server".as_ref(),
        sim.url.as_ref(),
        "--result".as_ref(),
        report.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "engine run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let text = std::fs::read_to_string(&report).expect("report written");
    let r: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is JSON ({e}): {text}"));
    assert_eq!(r["total"], REQUESTS);
    assert_eq!(r["totalRun"], REQUESTS, "every request completed");
    assert_eq!(r["totalFailed"], 0, "errorStats: {}", r["errorStats"]);
    assert_eq!(r["kreplay"]["verbs"]["WATCH"]["count"], 4);
    assert!(
        r["percentileLatencies"].is_array(),
        "latency percentiles: {text}"
    );

    let log: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order log JSON");
    assert_eq!(log["dropped"], 0, "order log complete");
    let violations = order::order_violations(&requests, &log);
    assert!(
        violations.is_empty(),
        "per-object order violations:\n{}",
        violations.join("\n")
    );

    let same = compare(&report, &report);
    assert_eq!(
        same.status.code(),
        Some(0),
        "compare against itself: {}",
        String::from_utf8_lossy(&same.stderr)
    );
    let mut slower = r.clone();
    for pair in slower["percentileLatencies"]
        .as_array_mut()
        .expect("percentiles")
    {
        if pair[0].as_f64() == Some(0.99) {
            let v = pair[1].as_f64().expect("p99 seconds");
            pair[1] = Value::from(v * 2.0);
        }
    }
    let doctored = dir.path().join("doubled-p99.json");
    std::fs::write(&doctored, slower.to_string()).expect("write doctored report");
    let worse = compare(&report, &doctored);
    let err = String::from_utf8_lossy(&worse.stderr);
    assert_eq!(worse.status.code(), Some(1), "{err}");
    assert!(
        err.contains("p99 latency of all requests regressed +100.0%"),
        "{err}"
    );
}
