//! `--retries`: apisim answers its first requests 429 with `Retry-After: 1`. With `none`
//! (the default) the first answer is the outcome and the run ends at once; with `client-go`
//! each request is sent again after the second it was told to wait, as client-go does, and
//! succeeds once apisim stops throttling. Over plain HTTP/1.1 (the io_uring pool) and over
//! TLS with HTTP/2 (the connection workers).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{bin, preprocess, profile, run_bounded, spec, ApiSim};
use serde_json::Value;

const LISTS: u64 = 5;

/// LISTs of five namespaces' pods at t=0 (five objects: none waits for another).
fn timeline(dir: &Path, http2: bool) -> std::path::PathBuf {
    let mut s = spec(1, 2);
    s.clients_per_runner = 10;
    s.disable_http2 = !http2;
    let lists = profile().each(0..LISTS, |p, i| p.list(&format!("ns{i}")).at_ms(0));
    let yaml = dir.join("p.yaml");
    std::fs::write(&yaml, lists.yaml(&s)).unwrap();
    let out = dir.join("t.bin");
    preprocess(&yaml, &out, &[]);
    out
}

/// Replays against a fresh apisim that throttles its first 2 × LISTS requests; returns the
/// report and the wall time of the run.
fn replay(http2: bool, retries: &str) -> (Value, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let t = timeline(dir.path(), http2);
    let throttle = (2 * LISTS).to_string();
    let mut sim_args = vec!["--throttle-first", &throttle, "--retry-after", "1"];
    if !http2 {
        sim_args.extend(["--plain", "--no-auth"]);
    }
    let sim = ApiSim::start(&sim_args);
    let report = dir.path().join("r.json");
    let mut cmd = Command::new(bin("engine"));
    cmd.arg("run")
        .arg(&t)
        .args(["--quiet", "--cores", "1", "--retries", retries, "--result"])
        .arg(&report);
    if http2 {
        cmd.arg("--kubeconfig").arg(&sim.kubeconfig);
    } else {
        cmd.args(["--server", &sim.url]);
    }
    let started = Instant::now();
    let o = run_bounded(&mut cmd, Duration::from_secs(60));
    let took = started.elapsed();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // A run whose every request failed (each LIST throttled, no retries) exits 1 by design.
    let all_failed = report["totalRun"].as_u64() == report["totalFailed"].as_u64();
    let expected = if all_failed { Some(1) } else { Some(0) };
    assert_eq!(
        o.status.code(),
        expected,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (report, took)
}

fn check(http2: bool) {
    let (none, took) = replay(http2, "none");
    assert_eq!(none["totalRun"].as_u64(), Some(LISTS), "{none}");
    assert_eq!(none["totalFailed"].as_u64(), Some(LISTS), "{none}");
    assert_eq!(none["errorStats"]["http/429"].as_u64(), Some(LISTS));
    assert_eq!(none["kreplay"]["run"]["retries"].as_u64(), Some(0));
    assert!(took < Duration::from_secs(5), "none fails fast: {took:?}");

    let (go, _) = replay(http2, "client-go");
    assert_eq!(go["totalRun"].as_u64(), Some(LISTS), "{go}");
    assert_eq!(go["totalFailed"].as_u64(), Some(0), "{go}");
    // Two 429s each, then the answer: each request sent once in kperf's terms.
    assert_eq!(
        go["kreplay"]["run"]["retries"].as_u64(),
        Some(2 * LISTS),
        "{go}"
    );
    assert_eq!(go["kreplay"]["sendLag"]["count"].as_u64(), Some(LISTS));
    assert!(go["kreplay"]["run"]["errorBodyBytes"].as_u64() > Some(0));
    // Latency covers the two 1 s waits, as client-go's does.
    let p0 = go["percentileLatencies"][0][1].as_f64().expect("p0");
    assert!(p0 >= 2.0, "latency from the first send: {p0}");
}

#[test]
fn client_go_retries_over_http1() {
    check(false);
}

#[test]
fn client_go_retries_over_http2() {
    check(true);
}
