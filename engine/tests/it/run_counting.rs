//! Counting as kperf counts: every 2xx is a success, and an error response's body adds 0 to
//! `totalReceivedBytes` (kreplay counts it in `kreplay.run.errorBodyBytes`).

use crate::util::scripted::{Script, ScriptedServer};
use crate::util::*;

fn status_by_name(target: &str) -> u16 {
    ["202", "299", "429", "500"]
        .into_iter()
        .find(|s| target.contains(&format!("/s{s}-")))
        .map_or(200, |s| s.parse().expect("status"))
}

/// Success bodies are 10 bytes, error bodies 100: the two sums cannot be mistaken.
fn body_by_status(target: &str) -> String {
    if status_by_name(target) < 300 {
        "x".repeat(10)
    } else {
        "e".repeat(100)
    }
}

#[test]
fn every_2xx_succeeds_and_error_bodies_add_no_received_bytes() {
    let server = ScriptedServer::start(Script {
        status_of: status_by_name,
        body_of: body_by_status,
        ..Script::default()
    });
    let names = ["s200-a", "s202-a", "s299-a", "s429-a", "s500-a", "s202-b"];
    let requests = profile()
        .each(names.iter().enumerate(), |p, (i, n)| {
            p.get(&format!("ns/{n}")).at_ms(i as i64)
        })
        .build();
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), &requests);
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let report = run.report.expect("report");
    assert_eq!(num(&report, "totalRun"), 6, "{report}");
    assert_eq!(
        num(&report, "totalFailed"),
        2,
        "202 and 299 are successes: {report}"
    );
    assert_eq!(
        report["errorStats"]["http/429"].as_u64(),
        Some(1),
        "{report}"
    );
    assert_eq!(
        report["errorStats"]["http/500"].as_u64(),
        Some(1),
        "{report}"
    );
    assert_eq!(num(&report, "totalReceivedBytes"), 4 * 10, "{report}");
    assert_eq!(
        report["kreplay"]["run"]["errorBodyBytes"].as_u64(),
        Some(2 * 100),
        "{report}"
    );
    assert_eq!(report["kreplay"]["run"]["completed"].as_u64(), Some(4));
}
