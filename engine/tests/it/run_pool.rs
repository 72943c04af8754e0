//! Pool growth up to --max-conns when every connection is busy, and the wait beyond it
//! showing in the send lag.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::util::*;

fn burst(n: i64) -> Vec<preprocess::profile::ProfileRequest> {
    profile()
        .each(0..n, |p, i| p.get(&format!("ns/p{i}")).at_ms(0))
        .build()
}

#[test]
fn busy_pool_grows_to_max_conns_and_no_further() {
    let server = TestServer::start(Behavior {
        delay: Duration::from_millis(30),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 2), &burst(20));
    let run = run_on_one_core(
        &tl,
        dir.path(),
        &server.url(),
        &["--conns", "2", "--max-conns", "8"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalFailed"), 0);
    assert_eq!(
        report["kreplay"]["run"]["connectionsOpened"].as_u64(),
        Some(8),
        "{report}"
    );
    let peers: BTreeSet<_> = server.requests().iter().filter_map(|r| r.peer).collect();
    assert_eq!(peers.len(), 8);
}

#[test]
fn waiting_for_a_connection_shows_in_the_lag() {
    let server = TestServer::start(Behavior {
        delay: Duration::from_millis(20),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &burst(5));
    let run = run_on_one_core(
        &tl,
        dir.path(),
        &server.url(),
        &["--conns", "1", "--max-conns", "1"],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    let lag = &report["kreplay"]["sendLag"];
    // One connection and 20 ms per answer: the k-th request waits at least (k-1) × 20 ms.
    assert!(lag["lateOver10ms"].as_u64().unwrap() >= 4, "{lag}");
    assert!(lag["max"].as_f64().unwrap() >= 0.080, "{lag}");
    // Latency from the due instant includes the wait; service latency does not.
    let sched_max = report["kreplay"]["scheduledLatency"][5][1]
        .as_f64()
        .unwrap();
    let service_max = report["percentileLatencies"][5][1].as_f64().unwrap();
    assert!(
        sched_max >= 0.100 && service_max < sched_max,
        "{sched_max} {service_max}"
    );
    assert_eq!(
        server
            .requests()
            .iter()
            .filter_map(|r| r.peer)
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
}

#[test]
fn a_request_in_flight_does_not_hold_back_the_next_due_one() {
    // The pool may block its core in its io_uring ring while requests are in flight; it must
    // wake for the dispatcher's timer, not wait for the slow response.
    let server = TestServer::start(Behavior {
        delay: Duration::from_millis(1500),
        delay_only: Some("slow".to_string()),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // Quick answers first: the pool handles them, then waits with the slow one alone in
    // flight while the dispatcher's timer for the next is pending.
    let requests = profile()
        .get("ns/slow")
        .at_ms(0)
        .each(0..4, |p, i| p.get(&format!("ns/quick{i}")).at_ms(i * 20))
        .get("ns/fast")
        .at_ms(300)
        .build();
    let tl = write_timeline(dir.path(), &spec(1, 2), &requests);
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--conns", "2"]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(num(&run.report.unwrap(), "totalFailed"), 0);
    let got = server.requests();
    let at = |name: &str| {
        got.iter()
            .find(|r| r.target.contains(name))
            .unwrap_or_else(|| panic!("{name} never arrived: {got:?}"))
            .at
    };
    let gap = at("/fast").duration_since(at("/slow")).unwrap();
    // Due 300 ms after the slow one, which is answered only 1.5 s after it arrived.
    assert!(gap < Duration::from_millis(1200), "{gap:?}");
}
