//! End to end: generated and sample profiles are preprocessed and replayed by the
//! real `engine` binary against the real `apisim`; what apisim saw is checked.

use crate::util::order;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{bin, preprocess, run_bounded, run_to_report, ApiSim};
use bench::profile_gen::{write_profile_to_path, GenConfig};
use order::{order_violations, requests_of};
use preprocess::profile::ProfileRequest;
use serde_json::Value;

/// Runs `engine run` and returns the parsed report.
fn engine_run(timeline: &Path, args: &[&str]) -> Value {
    let (out, report) = run_to_report(timeline, args);
    assert!(
        out.status.success(),
        "engine run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    report.expect("report written")
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
        let sim = ApiSim::start(&["--plain", "--no-auth", "--latency", "*=0..3ms"]);
        let report = engine_run(
            &timeline,
            &["--server", &sim.url, "--cores", cores, "--share-cpus"],
        );
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

/// The `kreplay.config.server` and protocol facts of one run, plus the order check.
fn replay_and_check(timeline: &Path, requests: &[ProfileRequest], sim: &ApiSim, args: &[&str]) {
    let report = engine_run(timeline, args);
    assert_eq!(report["totalRun"], report["total"], "{args:?}");
    assert_eq!(
        report["totalFailed"], 0,
        "{args:?}: {}",
        report["errorStats"]
    );
    let order: Value =
        serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order log JSON");
    assert_eq!(
        order["recorded"], report["total"],
        "{args:?}: every request arrived once"
    );
    assert_per_object_order(requests, &order);
}

#[test]
fn same_requests_and_order_over_http2_tls_http1_tls_and_plain_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = generated_profile(dir.path(), 800, 2);
    let requests = requests_of(&profile);
    let timeline = dir.path().join("timeline.bin");
    preprocess(&profile, &timeline, &[]);

    // TLS with ALPN h2 (the default), TLS with HTTP/1.1 only, plain HTTP/1.1.
    for (mode, version) in [
        ("h2", "HTTP/2.0"),
        ("http1", "HTTP/1.1"),
        ("plain", "HTTP/1.1"),
    ] {
        let mut sim_args = vec!["--latency", "*=0..2ms", "--record-requests", "5000"];
        if mode == "plain" {
            sim_args.extend_from_slice(&["--plain", "--no-auth"]);
        }
        let sim = ApiSim::start(&sim_args);
        let kubeconfig = sim.kubeconfig.to_str().expect("utf-8 path").to_string();
        let url = sim.url.clone();
        let mut args = vec!["--cores", "2"];
        match mode {
            "plain" => args.extend_from_slice(&["--server", url.as_str()]),
            _ => args.extend_from_slice(&["--kubeconfig", kubeconfig.as_str()]),
        }
        if mode == "http1" {
            args.push("--http1");
        }
        replay_and_check(&timeline, &requests, &sim, &args);
        let log: Value =
            serde_json::from_str(&sim.admin_get("/apisim/requests")).expect("request log JSON");
        let seen = log["requests"].as_array().expect("recorded requests");
        assert!(
            seen.len() >= requests.len(),
            "{mode}: {} recorded",
            seen.len()
        );
        for r in seen {
            assert_eq!(r["version"], version, "{mode}: {r}");
        }
    }
}

#[test]
fn sample_profile_replays_cleanly_against_apisim() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = crate::util::fixture("kperf_sample_replay.yaml");
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
    preprocess(
        &crate::util::fixture("kperf_sample_replay.yaml"),
        &timeline,
        &[],
    );
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
