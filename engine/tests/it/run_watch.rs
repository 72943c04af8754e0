//! WATCH: a dedicated connection each, events and bytes counted, ended (and counted as
//! successes) when the replay's normal traffic ends.

use std::time::Duration;

use crate::util::*;

#[test]
fn watches_are_counted_and_end_with_the_replay() {
    let server = TestServer::start(Behavior {
        watch_events: 3,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = profile()
        .each(0..2, |p, i| {
            p.watch("ns").selector(&format!("app=w{i}")).at_ms(0)
        })
        .each(0..20i64, |p, i| p.get(&format!("ns/p{i}")).at_ms(5 + i * 5))
        .timeline(dir.path(), &spec(1, 2));
    let started = std::time::Instant::now();
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", "2"],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    // The watches never end on their own: the replay ended them.
    assert!(started.elapsed() < Duration::from_secs(60));
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 22);
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    let watches = report["kreplay"]["watches"]
        .as_object()
        .expect("watch counters");
    assert_eq!(watches.len(), 2, "{watches:?}");
    for (key, w) in watches {
        assert!(
            key.starts_with("WATCH ") && key.contains("watch=true"),
            "{key}"
        );
        assert_eq!(w["events"].as_u64(), Some(3), "{key}");
        assert!(w["bytes"].as_u64().unwrap() > 0);
    }
    let got = server.requests();
    let watch_reqs: Vec<_> = got
        .iter()
        .filter(|r| r.target.contains("watch=true"))
        .collect();
    assert_eq!(watch_reqs.len(), 2);
    assert!(watch_reqs
        .iter()
        .all(|r| r.method == "GET" && r.target.contains("labelSelector=app%3Dw")));
    assert_eq!(
        report["kreplay"]["verbs"]["WATCH"]["count"].as_u64(),
        Some(2)
    );
}
