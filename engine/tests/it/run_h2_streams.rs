//! HTTP/2 stream limits against the real apisim: a limit of one stream per connection,
//! WATCHes that use up a connection's streams, and the pause of a core whose streams are all
//! taken while it is behind its schedule.

use crate::util::ApiSim;
use crate::util::*;
use preprocess::profile::ProfileRequest;

fn gets(n: usize, at_ms: i64) -> Vec<ProfileRequest> {
    profile()
        .each(0..n, |p, i| p.get(&format!("ns/p{i}")).at_ms(at_ms))
        .build()
}

#[test]
fn one_stream_per_connection_grows_the_pool_up_to_its_cap() {
    let sim = ApiSim::start(&["--max-concurrent-streams", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &h2_spec(1, 1), &gets(200, 0));
    let run = run_on_apisim(&sim, &tl, dir.path(), &["--conns", "1", "--max-conns", "6"]);
    // apisim answers 404 for pods that do not exist: each request completed with a response,
    // the built-in all-failed gate exits 1, the report is written.
    let report = assert_all_not_found(run, 200);
    let run_stats = &report["kreplay"]["run"];
    let opened = run_stats["connectionsOpened"].as_u64().unwrap();
    // 200 requests due together, one stream per connection: the pool grew, never past its cap.
    assert!((2..=6).contains(&opened), "{run_stats}");
}

#[test]
fn watches_that_use_up_the_streams_open_another_connection() {
    let sim = ApiSim::start(&["--max-concurrent-streams", "10"]);
    let dir = tempfile::tempdir().unwrap();
    let mut requests = profile().each(0..35, |p, _| p.watch("ns").at_ms(0)).build();
    requests.extend(gets(20, 300));
    let tl = write_timeline(dir.path(), &h2_spec(1, 1), &requests);
    let run = run_on_apisim(&sim, &tl, dir.path(), &["--conns", "1", "--raw-data"]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 55);
    let stats = error_stats(&report);
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

#[test]
fn a_core_behind_its_schedule_pauses_to_read_answers_together_and_one_on_schedule_never_does() {
    // Each GET takes apisim 2 ms: 1,000 due at once on one connection with 64 streams keep
    // every stream taken while the rest wait, soon over 1 ms late, so the loop pauses
    // before reading answers.
    let sim = ApiSim::start(&["--latency", "GET=2ms"]);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &h2_spec(1, 1), &gets(1000, 0));
    let args = ["--conns", "1", "--max-conns", "1", "--max-in-flight", "64"];
    let report = assert_all_not_found(run_on_apisim(&sim, &tl, dir.path(), &args), 1000);
    let r = &report["kreplay"]["run"];
    assert!(r["backlogPauses"].as_u64() > Some(0), "{r}");
    assert_eq!(r["maxStreamsPerConnection"].as_u64(), Some(64), "{r}");
    // One GET each millisecond: two in flight at a time, never a full window, never a pause.
    let dir = tempfile::tempdir().unwrap();
    let on_time = profile()
        .each(0..300, |p, i| p.get(&format!("ns/q{i}")).at_ms(i as i64))
        .build();
    let tl = write_timeline(dir.path(), &h2_spec(1, 1), &on_time);
    let report = assert_all_not_found(run_on_apisim(&sim, &tl, dir.path(), &args), 300);
    let r = &report["kreplay"]["run"];
    assert_eq!(r["backlogPauses"].as_u64(), Some(0), "{r}");
}
