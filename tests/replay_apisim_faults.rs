//! End to end: the engine against apisim's injected faults (429 with Retry-After, 500s,
//! connections closed after each response, an in-flight limit, stalls). Each fault must
//! end in a complete report whose failures are classified as kperf classifies them, with
//! no request retried behind the report's back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bench::profile_gen::{write_profile_to_path, GenConfig, RateShape};
use common::{bin, preprocess, run_bounded, ApiSim};
use serde_json::Value;

const REQUESTS: u64 = 200;

/// A timeline of `REQUESTS` requests of the default mix, no watches.
fn timeline(dir: &Path, shape: RateShape) -> PathBuf {
    let profile = dir.join("profile.yaml");
    // A rate only goes with the constant shape.
    let rate = matches!(shape, RateShape::Constant).then_some(4_000.0);
    let cfg = GenConfig {
        requests: REQUESTS,
        rate,
        shape,
        objects: 40,
        namespaces: 2,
        watches: Some(0),
        conns: 8,
        seed: 11,
        ..GenConfig::default()
    };
    write_profile_to_path(&cfg, profile.to_str().expect("utf-8 path")).expect("generate");
    let out = dir.join("timeline.bin");
    preprocess(&profile, &out, &[]);
    out
}

/// Replays against a fresh apisim started with `faults`; returns the report and apisim's order log.
fn replay(timeline: &Path, faults: &[&str], engine_args: &[&str]) -> (Value, Value) {
    let mut sim_args = vec!["--plain", "--no-auth", "--seed", "3"];
    sim_args.extend_from_slice(faults);
    let sim = ApiSim::start(&sim_args);
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(timeline)
            .args(["--server", &sim.url, "--quiet", "--result"])
            .arg(&report)
            .args(engine_args),
        Duration::from_secs(120),
    );
    // A run in which every request failed exits 1 (the built-in gate), its report written.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all_failed = out.status.code() == Some(1) && stderr.contains("✗ error_rate>=100%");
    assert!(
        out.status.success() || all_failed,
        "engine run with {faults:?}: {stderr}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report written"))
            .expect("report is JSON");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(report["totalRun"], REQUESTS, "{faults:?}: {report}");
    (report, order)
}

fn error_stats(report: &Value) -> Vec<(String, u64)> {
    report["errorStats"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn throttled_requests_are_failures_not_silent_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, order) = replay(
        &tl,
        &["--throttle-fraction", "1", "--retry-after", "1"],
        &[],
    );
    assert_eq!(
        error_stats(&report),
        vec![("http/429".to_string(), REQUESTS)]
    );
    assert_eq!(report["totalFailed"], REQUESTS);
    // kperf's client-go would retry each one up to 10 times (weakness 6): apisim saw each once.
    assert_eq!(order["recorded"], REQUESTS);
}

#[test]
fn server_errors_are_classified_http_500() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, order) = replay(&tl, &["--error-fraction", "1"], &[]);
    assert_eq!(
        error_stats(&report),
        vec![("http/500".to_string(), REQUESTS)]
    );
    assert_eq!(order["recorded"], REQUESTS);
}

#[test]
fn connections_closed_after_each_response_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, order) = replay(&tl, &["--close-after", "1"], &[]);
    assert_eq!(report["totalFailed"], 0, "{}", report["errorStats"]);
    assert_eq!(order["recorded"], REQUESTS);
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .expect("connectionsOpened");
    assert!(opened >= REQUESTS, "one connection per response: {opened}");
}

#[test]
fn in_flight_limit_answers_429_beyond_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Everything due at once, each request held 20 ms: far more than 2 in flight.
    let tl = timeline(dir.path(), RateShape::AllAtZero);
    let (report, _) = replay(
        &tl,
        &["--max-in-flight", "2", "--latency", "*=20ms"],
        &["--conns", "16"],
    );
    let stats = error_stats(&report);
    // A throttled CREATE makes later reads of that object 404: the server's answer, not a fault.
    assert!(
        stats
            .iter()
            .all(|(k, _)| k == "http/429" || k == "http/404"),
        "only throttling and its consequences: {stats:?}"
    );
    let throttled: u64 = stats
        .iter()
        .filter(|(k, _)| k == "http/429")
        .map(|(_, n)| n)
        .sum();
    assert!(throttled > 0, "the limit was hit");
    let failed = report["totalFailed"].as_u64().expect("totalFailed");
    assert!(failed < REQUESTS, "requests under the limit succeeded");
    assert_eq!(failed, stats.iter().map(|(_, n)| n).sum::<u64>());
}

#[test]
fn stalled_requests_time_out_and_the_run_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, _) = replay(&tl, &["--stall-fraction", "1"], &["--timeout", "300ms"]);
    assert_eq!(report["totalFailed"], REQUESTS);
    let stats = error_stats(&report);
    assert!(
        stats.iter().all(|(k, _)| k.starts_with("connection/")),
        "timeouts are connection failures: {stats:?}"
    );
}
