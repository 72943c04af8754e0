//! HTTP/2 GOAWAY mid-run against the real apisim: the run finishes, later requests go on new
//! connections, and failures, if any, are HTTP/2 protocol failures.

mod common;
mod run_h2_support;

use common::*;
use preprocess::profile::Verb;
use run_h2_support::ApiSim;

#[test]
fn goaway_after_50_streams_moves_requests_to_new_connections() {
    let sim = ApiSim::start(&["--goaway-after", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(1, 2);
    s.disable_http2 = false;
    let requests: Vec<_> = (0..300)
        .map(|i| {
            let name = format!("p{i}");
            let body = format!(
                "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\"ns\"}}}}"
            );
            req(
                i as i64 * 5,
                Verb::Create,
                "ns",
                &name,
                "/api/v1/namespaces/ns/pods",
                &body,
            )
        })
        .collect();
    let tl = write_timeline(dir.path(), &s, &requests);
    let run = run_engine(
        &tl,
        dir.path(),
        &[
            "--kubeconfig",
            sim.kubeconfig.to_str().unwrap(),
            "--cores",
            "1",
            "--raw-data",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    let total = num(&report, "totalRun");
    let failed = num(&report, "totalFailed");
    assert_eq!(total, 300);
    let completed = report["kreplay"]["run"]["completed"].as_u64().unwrap();
    assert_eq!(completed + failed, total, "{}", report["kreplay"]["run"]);
    let stats = report["errorStats"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        stats.keys().all(|k| k.starts_with("http2-protocol/")),
        "failures must be HTTP/2 protocol failures: {stats:?}"
    );
    // 50 streams per connection: 300 requests need at least 6 connections.
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .unwrap();
    assert!(opened >= 6, "{opened}");
    // Every CREATE that did not fail reached apisim.
    let order = sim.admin_get("/apisim/order");
    assert_eq!(
        order.matches("\"CREATE\"").count() as u64,
        completed,
        "{order}"
    );
}
