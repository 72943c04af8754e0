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
fn a_goaway_after_every_stream_loses_no_request_and_opens_no_stream_after_it() {
    // Each connection serves one stream, then shuts down gracefully (hyper: GOAWAY with the
    // highest id and a PING, then GOAWAY with the last stream it read). As Go's transport,
    // the client opens no stream on a connection after its first GOAWAY, so every stream it
    // sent was read before the final GOAWAY: all are answered, none is refused, and the burst
    // moves to new connections.
    let sim = ApiSim::start(&["--goaway-after", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let s = h2_spec(1, 2);
    let tl = profile()
        .each(0..200, |p, i| p.get(&format!("ns/p{i}")).at_ms(0))
        .timeline(dir.path(), &s);
    let run = run_on_apisim(&sim, &tl, dir.path(), &[]);
    // Every GET is of a pod that does not exist: every answer is a 404, so the run exits 1.
    let report = assert_all_not_found(run, 200);
    let stats = &report["kreplay"]["run"];
    assert_eq!(stats["connectionRetries"].as_u64(), Some(0), "{stats}");
    // Each connection takes only the streams opened before its GOAWAY reached the client.
    let per_conn = stats["maxStreamsPerConnection"].as_u64().unwrap();
    let opened = stats["connectionsOpened"].as_u64().unwrap();
    assert!(per_conn < 200 && opened >= 2, "{stats}");
    assert_eq!(report["kreplay"]["sendLag"]["count"].as_u64(), Some(200));
}
