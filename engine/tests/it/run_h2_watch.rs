//! WATCH over HTTP/2 against the real apisim (TLS, h2): watches are streams on the pool's
//! connections, see the events that normal requests cause, and end with the replay.

use crate::util::ApiSim;
use crate::util::*;
use preprocess::profile::ProfileRequest;

const WATCHES: usize = 1000;
const OBJECTS: usize = 50;

/// `watches` WATCHes at t=0, then `objects` CREATEs and as many PATCHes later on.
fn watch_profile(watches: usize, objects: usize) -> Vec<ProfileRequest> {
    profile()
        .each(0..watches, |p, _| p.watch("ns").at_ms(0))
        .each(0..objects, |p, i| {
            p.create_pod(&format!("ns/p{i}")).at_ms(500 + i as i64 * 10)
        })
        .each(0..objects, |p, i| {
            p.patch(&format!("ns/p{i}"))
                .body(r#"{"metadata":{"labels":{"patched":"yes"}}}"#)
                .at_ms(1200 + i as i64 * 10)
        })
        .build()
}

#[test]
fn shared_watches_are_streams_on_the_pool_connections() {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &h2_spec(1, 2), &watch_profile(WATCHES, OBJECTS));
    let run = run_on_apisim(
        &sim,
        &tl,
        dir.path(),
        &["--raw-data", "--watch-connections", "shared"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    let total = (WATCHES + 2 * OBJECTS) as u64;
    assert_eq!(num(&report, "totalRun"), total);
    assert_eq!(num(&report, "totalFailed"), 0, "{}", report["errorStats"]);
    // Every WATCH got its response headers (a latency each): none was ended while waiting.
    let by_url = report["latenciesByURL"]
        .as_object()
        .expect("latenciesByURL");
    let watch_latencies: usize = by_url
        .iter()
        .filter(|(k, _)| k.starts_with("WATCH "))
        .map(|(_, v)| v.as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(watch_latencies, WATCHES, "{:?}", by_url.keys());
    // The CREATEs and PATCHes reached the watches as events.
    let watches = report["kreplay"]["watches"].as_object().expect("watches");
    let events: u64 = watches.values().filter_map(|w| w["events"].as_u64()).sum();
    let bytes: u64 = watches.values().filter_map(|w| w["bytes"].as_u64()).sum();
    assert!(events > 0 && bytes > 0, "{watches:?}");
    // Streams, not a connection each: apisim allows 1000 streams per connection, and the
    // pool has two (plus at most a few opened while workers were busy).
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .unwrap();
    assert!(opened < 10, "{opened} connections for {WATCHES} watches");
    // apisim applied every CREATE and PATCH.
    let order: serde_json::Value = serde_json::from_str(&sim.admin_get("/apisim/order")).unwrap();
    let text = order.to_string();
    assert_eq!(text.matches("\"CREATE\"").count(), OBJECTS, "{text}");
    assert_eq!(text.matches("\"PATCH\"").count(), OBJECTS, "{text}");
}

#[test]
fn watches_over_http1_keep_a_connection_each() {
    // disableHTTP2: true: the server is offered only http/1.1, so each WATCH has its own
    // connection, as before.
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 2), &watch_profile(20, 5));
    let run = run_on_apisim(&sim, &tl, dir.path(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 30);
    assert_eq!(num(&report, "totalFailed"), 0, "{}", report["errorStats"]);
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .unwrap();
    assert!(
        opened >= 20 + 2,
        "{opened} connections for 20 HTTP/1.1 watches"
    );
}

/// Connections opened by a replay of 10 WATCHes (connsPerRunner 2) with `--watch-connections`.
fn watch_connections(mode: &str) -> (u64, serde_json::Value) {
    let sim = ApiSim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &h2_spec(1, 2), &watch_profile(10, 2));
    let run = run_on_apisim(
        &sim,
        &tl,
        dir.path(),
        &["--conns", "2", "--watch-connections", mode],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalFailed"), 0, "{}", report["errorStats"]);
    let r = report["kreplay"]["run"].clone();
    (r["connectionsOpened"].as_u64().unwrap(), r)
}

#[test]
fn kperfs_rule_gives_watches_beyond_conns_per_runner_their_own_connection() {
    // The pool's 2 connections carry the first 2 WATCHes; the other 8 open their own.
    let (kperf, r) = watch_connections("kperf");
    assert!((10..=12).contains(&kperf), "{r}");
    let (own, r) = watch_connections("own");
    assert!((12..=14).contains(&own), "{r}");
    let (shared, r) = watch_connections("shared");
    assert!(shared <= 4, "{r}");
    assert!(r["maxStreamsPerConnection"].as_u64() >= Some(5), "{r}");
}
