//! Faults: target down, server killed mid-run, connection closed after each response,
//! a server slower than --timeout, HTTP errors, and SIGINT. No hang, no panic, a complete report.

use std::time::{Duration, Instant};

use crate::util::*;
use engine::report::kreplay::decode_histogram;
use preprocess::profile::ProfileRequest;

fn gets(n: i64, every_ms: i64) -> Vec<ProfileRequest> {
    profile()
        .each(0..n, |p, i| p.get(&format!("ns/p{i}")).at_ms(i * every_ms))
        .build()
}

/// totalRun = successes + failures, kperf percentiles monotone, histograms decode to the success count.
fn assert_consistent(report: &serde_json::Value) {
    let run = num(report, "totalRun");
    let failed = num(report, "totalFailed");
    let completed = report["kreplay"]["run"]["completed"]
        .as_u64()
        .expect("completed");
    assert_eq!(run, completed + failed, "{report}");
    let stats_sum: u64 = report
        .get("errorStats")
        .and_then(|s| s.as_object())
        .map_or(0, |m| m.values().map(|v| v.as_u64().unwrap_or(0)).sum());
    assert_eq!(stats_sum, failed, "errorStats add up to totalFailed");
    let hist = decode_histogram(
        report["kreplay"]["histograms"]["all"]["service"]
            .as_str()
            .expect("histogram"),
    )
    .expect("decodes");
    assert_eq!(hist.len(), completed);
    if let Some(p) = report.get("percentileLatencies").and_then(|p| p.as_array()) {
        let values: Vec<f64> = p
            .iter()
            .map(|pair| pair[1].as_f64().expect("seconds"))
            .collect();
        assert_eq!(values.len(), 6);
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    }
}

#[test]
fn target_down_fails_every_request_as_connection_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(2, 2), &gets(20, 1));
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let run = run_engine(&tl, dir.path(), &["--server", &url, "--cores", "2"], &[]);
    assert_all_failed_exit(&run);
    assert!(started.elapsed() < Duration::from_secs(60));
    let report = run.report.expect("report written");
    assert_eq!(num(&report, "totalRun"), 20);
    assert_eq!(num(&report, "totalFailed"), 20);
    assert_eq!(
        report["errorStats"]["connection/connection refused"].as_u64(),
        Some(20),
        "{report}"
    );
    assert_consistent(&report);
}

#[test]
fn server_killed_mid_run_ends_with_failures_and_a_report() {
    let mut server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 2), &gets(200, 10));
    let child = spawn_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", "1", "--timeout", "2s"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.requests().len() < 20 {
        assert!(Instant::now() < deadline, "server never saw 20 requests");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.stop();
    let (status, stderr) = wait_engine(child, Duration::from_secs(60));
    let run = read_run(status, stderr, dir.path());
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.expect("report written");
    assert_eq!(num(&report, "totalRun"), 200);
    let failed = num(&report, "totalFailed");
    assert!(failed > 0 && failed < 200, "{report}");
    assert_consistent(&report);
}

#[test]
fn server_closing_after_each_response_is_fine() {
    let server = TestServer::start(Behavior {
        close_after_each: true,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &gets(50, 1));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalFailed"), 0, "{report}");
    assert_eq!(server.requests().len(), 50);
    assert!(
        report["kreplay"]["run"]["connectionsOpened"]
            .as_u64()
            .unwrap()
            >= 50
    );
    assert_consistent(&report);
}

#[test]
fn server_slower_than_timeout_fails_requests_without_hanging() {
    let server = TestServer::start(Behavior {
        stall: true,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 2), &gets(6, 5));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--timeout", "300ms"]);
    assert_all_failed_exit(&run);
    let report = run.report.unwrap();
    assert_eq!(num(&report, "totalRun"), 6);
    assert_eq!(num(&report, "totalFailed"), 6);
    let stats = report["errorStats"].as_object().unwrap();
    assert!(
        stats
            .keys()
            .all(|k| k.starts_with("connection/") && k.contains("deadline")),
        "{stats:?}"
    );
    assert_consistent(&report);
}

#[test]
fn http_errors_are_classified_and_raw_data_lists_them() {
    let server = TestServer::start(Behavior {
        status: 404,
        body: "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}".to_string(),
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &gets(5, 1));
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--raw-data"]);
    assert_all_failed_exit(&run);
    let report = run.report.unwrap();
    assert_eq!(report["errorStats"]["http/404"].as_u64(), Some(5));
    let errors = report["errors"].as_array().expect("errors with --raw-data");
    assert_eq!(errors.len(), 5);
    assert_eq!(errors[0]["type"], "http");
    assert_eq!(errors[0]["code"], 404);
    assert!(errors[0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&server.url()));
    assert_consistent(&report);
    // Key order is kperf's.
    let text = run.report_text.unwrap();
    let order = [
        "\"total\"",
        "\"duration\"",
        "\"errors\"",
        "\"errorStats\"",
        "\"totalReceivedBytes\"",
        "\"runnerCount\"",
        "\"totalRun\"",
        "\"totalFailed\"",
        "\"kreplay\"",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(k).unwrap_or_else(|| panic!("{k} missing")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn sigint_mid_run_writes_the_report_and_exits_130() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 2), &gets(2000, 10));
    let child = spawn_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", "1", "--grace", "1s"],
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.requests().len() < 10 {
        assert!(Instant::now() < deadline, "server never saw 10 requests");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child with SIGINT.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let (status, stderr) = wait_engine(child, Duration::from_secs(30));
    let run = read_run(status, stderr, dir.path());
    assert_eq!(run.status.code(), Some(130), "{}", run.stderr);
    let report = run.report.expect("report written after SIGINT");
    assert_eq!(report["kreplay"]["run"]["interrupted"], true);
    let total_run = num(&report, "totalRun");
    assert!((10..2000).contains(&total_run), "{total_run}");
    assert_eq!(total_run as usize, server.requests().len());
    assert_consistent(&report);
}

/// The runner of every request in a timeline, by its target as error records show it
/// (without the wire-only `timeout=1m0s`).
fn runner_of_targets(tl: &std::path::Path) -> std::collections::HashMap<String, u32> {
    let t = preprocess::timeline::Timeline::open(tl).unwrap();
    let mut out = std::collections::HashMap::new();
    for (i, run) in t.runs().iter().enumerate() {
        for r in t.run_records(i).unwrap() {
            let v = t.view(r).unwrap();
            let target = String::from_utf8_lossy(v.target)
                .replace("timeout=1m0s&", "")
                .replace("?timeout=1m0s", "");
            out.insert(target, run.runner);
        }
    }
    out
}

#[test]
fn raw_errors_are_listed_runner_by_runner_watches_last() {
    let server = TestServer::start(Behavior {
        status: 500,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // GETs of 24 objects spread over 3 runners, and WATCHes, interleaved in time.
    let mut p = profile();
    for i in 0..24i64 {
        let ns = format!("ns{}", i % 4);
        if i % 6 == 0 {
            p = p.watch(&ns).selector(&format!("app=w{i}")).at_ms(i);
        }
        p = p.get(&format!("{ns}/p{i}")).at_ms(i);
    }
    // WATCHes end with the last normal request, and one still waiting for its response
    // headers then counts as a success (kperf's rule), without an error. A last GET well
    // after the last WATCH gives every WATCH its 500 first, even on a loaded CI machine
    // (with the GETs above alone, the last WATCH had 5 ms).
    let requests = p.get("ns0/late").at_ms(1_500).build();
    let tl = write_timeline(dir.path(), &spec(3, 2), &requests);
    let runners = runner_of_targets(&tl);
    let distinct: std::collections::BTreeSet<_> = runners.values().collect();
    assert!(
        distinct.len() > 1,
        "the profile spreads over several runners"
    );
    let run = run_engine(
        &tl,
        dir.path(),
        &["--server", &server.url(), "--cores", "2", "--raw-data"],
        &[],
    );
    assert_all_failed_exit(&run);
    let report = run.report.unwrap();
    let errors = report["errors"].as_array().expect("errors with --raw-data");
    assert_eq!(errors.len(), requests.len());
    // (runner, is WATCH) of each error, in the report's order.
    let order: Vec<(u32, bool)> = errors
        .iter()
        .map(|e| {
            let url = e["url"].as_str().unwrap();
            let target = url.strip_prefix(&server.url()).unwrap();
            let runner = *runners
                .get(target)
                .unwrap_or_else(|| panic!("no request has the target of {url}"));
            (runner, e["method"] == "WATCH")
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        order, sorted,
        "kperf's order: runner by runner, WATCHes last"
    );
    assert!(order.iter().any(|o| o.1), "WATCH errors are listed");
}
