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

#[test]
fn the_requests_due_at_one_instant_share_a_connection_and_successive_instants_spread() {
    // 12 instants 50 ms apart, 6 GETs each, over 8 connections. Each instant's GETs are
    // readied during the spin before it on one connection, so one `send` carries them all;
    // the next instant starts from the next connection.
    const INSTANTS: usize = 12;
    const PER_INSTANT: usize = 6;
    let sim = ApiSim::start(&["--record-requests", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let requests = profile()
        .each(0..INSTANTS * PER_INSTANT, |p, i| {
            p.get(&format!("ns/p{i}"))
                .at_ms(200 + 50 * (i / PER_INSTANT) as i64)
        })
        .build();
    let tl = write_timeline(dir.path(), &h2_spec(1, 1), &requests);
    let args = ["--conns", "8", "--max-conns", "8"];
    let run = run_on_apisim(&sim, &tl, dir.path(), &args);
    assert_all_not_found(run, (INSTANTS * PER_INSTANT) as u64);
    let log: serde_json::Value =
        serde_json::from_str(&sim.admin_get("/apisim/requests")).expect("request log JSON");
    let mut by_instant = vec![std::collections::BTreeSet::new(); INSTANTS];
    for r in log["requests"].as_array().expect("requests") {
        let target = r["target"].as_str().expect("target");
        let path = target.split('?').next().unwrap_or(target);
        let i: usize = path
            .rsplit_once("/p")
            .and_then(|(_, n)| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected target {target}"));
        by_instant[i / PER_INSTANT].insert(r["connection"].as_u64().expect("connection"));
    }
    // Spread one per connection, as before, no instant would share one. An instant whose
    // spin the machine cut short may spill onto a second connection: two thirds must share.
    let shared = by_instant.iter().filter(|c| c.len() == 1).count();
    assert!(shared * 3 >= INSTANTS * 2, "{by_instant:?}");
    let used: std::collections::BTreeSet<_> = by_instant.iter().flatten().collect();
    assert!(
        used.len() >= 4,
        "successive instants spread: {by_instant:?}"
    );
}
