//! `kreplay-floor` against the real apisim on 127.0.0.1: each I/O model completes exactly the
//! requests asked for, and the server saw each one.

use std::process::Command;

use crate::util::{call, ApiSim};

const FLOOR: &str = env!("CARGO_BIN_EXE_kreplay-floor");

/// apisim's count of GETs of pods answered 404 (the probe asks for a pod that does not exist).
async fn pod_404s(addr: &str) -> u64 {
    let metrics = call(addr, "GET", "/metrics", &[], "").await.text();
    let line = "apisim_requests_total{verb=\"GET\",resource=\"pods\",code=\"404\"} ";
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

#[tokio::test]
async fn every_model_completes_every_request_once() {
    let sim = ApiSim::start(&["--plain", "--no-auth"]);
    let url = format!("{}/api/v1/namespaces/default/pods/absent", sim.url);
    let mut expected = 0;
    for (model, requests, conns) in [
        ("glommio", 500, 8),
        ("uring", 700, 5),
        ("glommio-ring", 600, 6),
    ] {
        let out = Command::new(FLOOR)
            .args([model, &url, "--requests", &requests.to_string()])
            .args(["--conns", &conns.to_string(), "--max-seconds", "20"])
            .output()
            .expect("run kreplay-floor");
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let done: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count");
        assert_eq!(done, requests, "{model}");
        expected += requests;
        assert_eq!(
            pod_404s(&sim.addr).await,
            expected,
            "{model}: requests seen by apisim"
        );
    }
}

#[test]
fn refuses_targets_off_loopback() {
    let out = Command::new(FLOOR)
        .args(["uring", "http://example.com/x", "--requests", "1"])
        .output()
        .expect("run kreplay-floor");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only talks to 127.0.0.1"), "{err}");
}
