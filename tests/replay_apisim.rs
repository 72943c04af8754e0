//! End to end: generated and sample profiles are preprocessed and replayed by the
//! real `engine` binary against the real `apisim`; what apisim saw is checked.

mod common;
#[path = "common/order.rs"]
mod order;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bench::profile_gen::{write_profile_to_path, GenConfig};
use common::{bin, preprocess, run_bounded, ApiSim};
use order::{order_violations, requests_of};
use preprocess::profile::ProfileRequest;
use serde_json::Value;

/// Runs `engine run` and returns the parsed report.
fn engine_run(timeline: &Path, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(timeline)
            .arg("--result")
            .arg(&report)
            .args(args),
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "engine run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("report written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is JSON ({e}): {text}"))
}

/// Checks that, for every named object, apisim saw the profile's verbs in profile order.
fn assert_per_object_order(requests: &[ProfileRequest], order: &Value) {
    let violations = order_violations(requests, order);
    assert!(violations.is_empty(), "per-object order: {violations:#?}");
}

fn generated_profile(dir: &Path, requests: u64, runners: u32) -> std::path::PathBuf {
    let path = dir.join("profile.yaml");
    let cfg = GenConfig {
        requests,
        rate: Some(2_000.0),
        runners,
        conns: 4,
        objects: 60,
        namespaces: 3,
        watches: Some(0),
        seed: 7,
        ..GenConfig::default()
    };
    write_profile_to_path(&cfg, path.to_str().expect("utf-8 path")).expect("generate profile");
    path
}

#[test]
fn per_object_order_holds_with_1_2_4_cores_and_several_runners() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = generated_profile(dir.path(), 1_500, 3);
    let requests = requests_of(&profile);
    let timeline = dir.path().join("timeline.bin");
    preprocess(&profile, &timeline, &[]);

    for cores in ["1", "2", "4"] {
        // Random service time per request makes reordering likely if the engine allowed it.
        let sim = ApiSim::start(&["--plain", "--no-auth", "--latency", "*=0..3"]);
        let report = engine_run(&timeline, &["--server", &sim.url, "--cores", cores]);
        assert_eq!(report["total"], 1_500, "cores={cores}");
        assert_eq!(report["totalRun"], 1_500, "cores={cores}");
        assert_eq!(report["runnerCount"], 3, "cores={cores}");
        let order: Value =
            serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order log JSON");
        assert_eq!(order["dropped"], 0);
        assert_eq!(order["recorded"], 1_500, "every request arrived once");
        assert_per_object_order(&requests, &order);
    }
}

#[test]
fn sample_profile_replays_cleanly_against_apisim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = common::fixture("kperf_sample_replay.yaml");
    let timeline = dir.path().join("timeline.bin");
    preprocess(&profile, &timeline, &[]);
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let report = engine_run(&timeline, &["--server", &sim.url]);
    assert_eq!(report["total"], 9);
    assert_eq!(report["totalRun"], 9);
    assert_eq!(report["totalFailed"], 0, "report: {report}");
    assert!(report.get("errorStats").is_none(), "no failures: {report}");
    let by_url = report["percentileLatenciesByURL"]
        .as_object()
        .expect("latencies by URL");
    let base = sim.url.trim_end_matches('/');
    for key in [
        format!("POST {base}/api/v1/namespaces/default/pods"),
        format!("GET {base}/api/v1/namespaces/default/pods/nginx-1"),
        format!("LIST {base}/api/v1/namespaces/default/pods?labelSelector=app%3Dnginx"),
        format!("DELETE {base}/api/v1/namespaces/default/pods/:name"),
    ] {
        assert!(by_url.contains_key(&key), "missing key {key}: {by_url:?}");
    }
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_per_object_order(&requests_of(&profile), &order);
}

#[test]
fn preflight_stops_a_run_with_a_wrong_token_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let timeline = dir.path().join("timeline.bin");
    preprocess(&common::fixture("kperf_sample_replay.yaml"), &timeline, &[]);
    let sim = ApiSim::start(&[]);
    // The token user with a token apisim does not accept.
    let secret = "not-the-apisim-token-4f9a1c";
    let text = std::fs::read_to_string(&sim.kubeconfig).expect("kubeconfig");
    let token_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token: "))
        .expect("apisim's kubeconfig has a token user");
    let bad = text.replace(token_line, &format!("    token: {secret}"));
    let kubeconfig = dir.path().join("bad-kubeconfig");
    std::fs::write(&kubeconfig, bad).expect("write kubeconfig");
    let report = dir.path().join("report.json");
    let out = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&timeline)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--context", "apisim-token", "--quiet", "--result"])
            .arg(&report),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("preflight"), "stderr: {stderr}");
    assert!(stderr.contains("401"), "stderr: {stderr}");
    assert!(!stderr.contains(secret), "the token leaked: {stderr}");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(order["recorded"], 0, "no request of the timeline was sent");
}
