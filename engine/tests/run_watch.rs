//! WATCH: a dedicated connection each, events and bytes counted, ended (and counted as
//! successes) when the replay's normal traffic ends.

mod common;

use std::time::Duration;

use common::*;
use preprocess::profile::Verb;

#[test]
fn watches_are_counted_and_end_with_the_replay() {
    let server = TestServer::start(Behavior {
        watch_events: 3,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut requests = Vec::new();
    for i in 0..2 {
        let mut w = req(0, Verb::Watch, "ns", "", "/api/v1/namespaces/ns/pods", "");
        w.label_selector = format!("app=w{i}");
        requests.push(w);
    }
    for i in 0..20i64 {
        requests.push(req(
            5 + i * 5,
            Verb::Get,
            "ns",
            &format!("p{i}"),
            &format!("/api/v1/namespaces/ns/pods/p{i}"),
            "",
        ));
    }
    let tl = write_timeline(dir.path(), &spec(1, 2), &requests);
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
