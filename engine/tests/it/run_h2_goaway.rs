//! HTTP/2 GOAWAY mid-run against the real apisim: the run finishes, later requests go on new
//! connections, and failures, if any, are HTTP/2 protocol failures.

use crate::util::ApiSim;
use crate::util::*;

#[test]
fn goaway_after_50_streams_moves_requests_to_new_connections() {
    let sim = ApiSim::start(&["--goaway-after", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let s = h2_spec(1, 2);
    let tl = profile()
        .each(0..300, |p, i| {
            p.create_pod(&format!("ns/p{i}")).at_ms(i * 5)
        })
        .timeline(dir.path(), &s);
    let run = run_on_apisim(&sim, &tl, dir.path(), &["--raw-data"]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    let total = num(&report, "totalRun");
    let failed = num(&report, "totalFailed");
    assert_eq!(total, 300);
    let completed = report["kreplay"]["run"]["completed"].as_u64().unwrap();
    assert_eq!(completed + failed, total, "{}", report["kreplay"]["run"]);
    let stats = error_stats(&report);
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

#[test]
fn streams_refused_by_goaway_after_every_stream_are_sent_again_as_go_does() {
    // Each connection serves one stream, then refuses the rest: a burst meets refusals on
    // every connection but the newest, and Go's transport sends each again (up to 6 times).
    let sim = ApiSim::start(&["--goaway-after", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let s = h2_spec(1, 2);
    let tl = profile()
        .each(0..200, |p, i| p.get(&format!("ns/p{i}")).at_ms(0))
        .timeline(dir.path(), &s);
    let run = run_on_apisim(&sim, &tl, dir.path(), &[]);
    // Every GET is of a pod that does not exist: every answer is a 404 (none a refusal, the
    // refused streams were sent again), so the run exits 1.
    let report = assert_all_not_found(run, 200);
    let retries = report["kreplay"]["run"]["connectionRetries"]
        .as_u64()
        .unwrap();
    assert!(retries > 0, "{}", report["kreplay"]["run"]);
    assert_eq!(report["kreplay"]["sendLag"]["count"].as_u64(), Some(200));
}
