//! Keep-alive connections the server ends: closed while idle (as load balancers and API
//! servers do), closed silently after each response, or sent bytes beyond a response's
//! Content-Length. None of them fails a request: a connection seen closed is not reused,
//! and a GET that meets a close on a reused connection goes once more on a fresh one.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::util::scripted::{Script, ScriptedServer};
use crate::util::*;
use preprocess::profile::ProfileRequest;

fn gets(n: i64, every_ms: i64) -> Vec<ProfileRequest> {
    profile()
        .each(0..n, |p, i| p.get(&format!("ns/p{i}")).at_ms(i * every_ms))
        .build()
}

/// Replays `requests` on one core and one connection against `script`; returns the report
/// and the server.
fn replay(script: Script, requests: &[ProfileRequest]) -> (serde_json::Value, ScriptedServer) {
    let server = ScriptedServer::start(script);
    let dir = tempfile::tempdir().unwrap();
    let tl = write_timeline(dir.path(), &spec(1, 1), requests);
    let run = run_on_one_core(&tl, dir.path(), &server.url(), &["--max-in-flight", "1"]);
    assert!(run.status.success(), "{}", run.stderr);
    (run.report.expect("report"), server)
}

fn assert_no_failure(report: &serde_json::Value, n: u64) {
    assert_eq!(num(report, "totalRun"), n, "{report}");
    assert_eq!(num(report, "totalFailed"), 0, "{report}");
    assert_eq!(report["kreplay"]["run"]["completed"].as_u64(), Some(n));
    assert_eq!(
        report["kreplay"]["sendLag"]["count"].as_u64(),
        Some(n),
        "one send each"
    );
}

#[test]
fn connections_closed_while_idle_are_not_reused() {
    let script = Script {
        idle_close: Some(Duration::from_millis(500)),
        ..Script::default()
    };
    // Every request finds its connection idle past the server's limit.
    let (report, server) = replay(script, &gets(7, 700));
    assert_no_failure(&report, 7);
    assert_eq!(server.answered.load(Ordering::SeqCst), 7);
    assert!(
        server.accepted.load(Ordering::SeqCst) >= 7,
        "a fresh connection each"
    );
    // Seen closed before reuse: no request met the close and had to go again.
    let retries = report["kreplay"]["run"]["connectionRetries"].as_u64();
    assert_eq!(retries, Some(0), "{}", report["kreplay"]["run"]);
}

#[test]
fn a_server_that_closes_silently_after_each_response_fails_nothing() {
    let script = Script {
        close_silently: true,
        ..Script::default()
    };
    let (report, server) = replay(script, &gets(200, 1));
    assert_no_failure(&report, 200);
    assert_eq!(server.answered.load(Ordering::SeqCst), 200);
}

#[test]
fn bytes_beyond_content_length_end_the_connection_not_the_next_request() {
    let script = Script {
        trailing_garbage: b"HTTP/1.1 200 OK\r\nbogus",
        ..Script::default()
    };
    let (report, server) = replay(script, &gets(200, 1));
    assert_no_failure(&report, 200);
    assert_eq!(server.answered.load(Ordering::SeqCst), 200);
    assert!(server.accepted.load(Ordering::SeqCst) >= 200);
}
