//! HTTP/2 stream limits against the real apisim: a limit of one stream per connection, and
//! WATCHes that use up a connection's streams.

mod common;
mod run_h2_support;

use common::*;
use preprocess::profile::{ProfileRequest, Verb};
use run_h2_support::ApiSim;

fn h2_spec(conns: u32) -> preprocess::profile::Spec {
    let mut s = spec(1, conns);
    s.disable_http2 = false;
    s
}

fn gets(n: usize, at_ms: i64) -> Vec<ProfileRequest> {
    (0..n)
        .map(|i| {
            req(
                at_ms,
                Verb::Get,
                "ns",
                &format!("p{i}"),
                &format!("/api/v1/namespaces/ns/pods/p{i}"),
                "",
            )
        })
        .collect()
}

#[test]
fn one_stream_per_connection_grows_the_pool_up_to_its_cap() {
    let sim = ApiSim::start(&["--max-concurrent-streams", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &h2_spec(1), &gets(200, 0));
    let run = run_engine(
        &tl,
        dir.path(),
        &[
            "--kubeconfig",
            sim.kubeconfig.to_str().unwrap(),
            "--cores",
            "1",
            "--conns",
            "1",
            "--max-conns",
            "6",
        ],
        &[],
    );
    // Every GET meets a 404: the built-in all-failed gate exits 1, the report is written.
    assert_all_failed_exit(&run);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 200);
    // apisim answers 404 for pods that do not exist: each request completed with a response.
    let stats = report["errorStats"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        stats.keys().all(|k| k == "http/404"),
        "only 404s expected: {stats:?}"
    );
    let run_stats = &report["kreplay"]["run"];
    let opened = run_stats["connectionsOpened"].as_u64().unwrap();
    // 200 requests due together, one stream per connection: the pool grew, never past its cap.
    assert!((2..=6).contains(&opened), "{run_stats}");
}

#[test]
fn watches_that_use_up_the_streams_open_another_connection() {
    let sim = ApiSim::start(&["--max-concurrent-streams", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let mut requests: Vec<ProfileRequest> = (0..35)
        .map(|_| req(0, Verb::Watch, "ns", "", "/api/v1/namespaces/ns/pods", ""))
        .collect();
    requests.extend(gets(20, 300));
    let tl = write_timeline(dir.path(), &h2_spec(1), &requests);
    let run = run_engine(
        &tl,
        dir.path(),
        &[
            "--kubeconfig",
            sim.kubeconfig.to_str().unwrap(),
            "--cores",
            "1",
            "--conns",
            "1",
            "--raw-data",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 55);
    let stats = report["errorStats"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(stats.keys().all(|k| k == "http/404"), "{stats:?}");
    let by_url = report["latenciesByURL"].as_object().unwrap();
    let watch_heads: usize = by_url
        .iter()
        .filter(|(k, _)| k.starts_with("WATCH "))
        .map(|(_, v)| v.as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(watch_heads, 35, "every watch got its headers");
    // 35 watch streams at 10 per connection need at least 4 connections.
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .unwrap();
    assert!(opened >= 4, "{opened}");
}
