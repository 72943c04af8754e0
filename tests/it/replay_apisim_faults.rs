//! The fault matrix, end to end: the engine against apisim's injected faults (429 storms
//! with and without Retry-After, 500s, connections closed after each response, GOAWAY every
//! few streams, an in-flight limit, stalls past `--timeout`), a server down at the start or
//! killed and restarted mid-run, small servers answering malformed HTTP/1.1, TLS with a
//! wrong CA, a token file that disappears and SIGINT / SIGTERM mid-run. Every run ends (each
//! is bounded) in a complete report whose counts add up (every scheduled request run or
//! unsent on a stop, every run request completed or failed, every failure classified), with
//! failures classified as kperf classifies them and no request retried behind its back.
//! Exec plugins that hang or print garbage are in `run_limits_signals.rs`, an unwritable
//! `--result` in `report_destination.rs`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{
    free_port, generated_timeline, read_report, run_to_report, spawn_engine_run, wait_bounded,
    ApiSim,
};
use bench::profile_gen::{GenConfig, RateShape};
use serde_json::Value;

const REQUESTS: u64 = 200;

/// A timeline of `REQUESTS` requests of the default mix, no watches.
fn timeline(dir: &Path, shape: RateShape) -> PathBuf {
    // A rate only goes with the constant shape.
    let rate = matches!(shape, RateShape::Constant).then_some(4_000.0);
    let cfg = GenConfig {
        requests: REQUESTS,
        rate,
        shape,
        objects: 40,
        namespaces: 2,
        watches: Some(0),
        conns: 8,
        seed: 11,
        ..GenConfig::default()
    };
    generated_timeline(dir, "timeline", &cfg, &[])
}

/// Replays against a fresh apisim started with `faults`; returns the report and apisim's order log.
fn replay(timeline: &Path, faults: &[&str], engine_args: &[&str]) -> (Value, Value) {
    let mut sim_args = vec!["--plain", "--no-auth", "--seed", "3"];
    sim_args.extend_from_slice(faults);
    let sim = ApiSim::start(&sim_args);
    let mut args = vec!["--server", sim.url.as_str()];
    args.extend_from_slice(engine_args);
    let (out, report) = run_to_report(timeline, &args);
    // A run in which every request failed exits 1 (the built-in gate), its report written.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all_failed = out.status.code() == Some(1) && stderr.contains("✗ error_rate>=100%");
    assert!(
        out.status.success() || all_failed,
        "engine run with {faults:?}: {stderr}"
    );
    let report = report.expect("report written");
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    assert_eq!(report["totalRun"], REQUESTS, "{faults:?}: {report}");
    assert_counts_add_up(&report);
    (report, order)
}

/// Nothing silently dropped: every scheduled request was run or left unsent by a stop,
/// every run request completed or failed, every failure is in `errorStats`.
fn assert_counts_add_up(report: &Value) {
    let n = |v: &Value| {
        v.as_u64()
            .unwrap_or_else(|| panic!("not a count: {v} in {report}"))
    };
    let run = &report["kreplay"]["run"];
    assert_eq!(
        n(&report["total"]),
        n(&report["totalRun"]) + n(&run["unsentOnStop"]),
        "scheduled = run + unsent: {report}"
    );
    assert_eq!(
        n(&report["totalRun"]),
        n(&run["completed"]) + n(&report["totalFailed"]),
        "run = completed + failed: {report}"
    );
    let classified: u64 = error_stats(report).iter().map(|(_, c)| c).sum();
    assert_eq!(classified, n(&report["totalFailed"]), "{report}");
}

/// `engine run TIMELINE ARGS --quiet --result R`, bounded; the output and the report (if any).
/// Like [`run_to_report`], for a run that must end with a report whose counts add up: exit 0, or
/// exit 1 exactly when every request failed (the built-in gate, `✗ error_rate>=100%`).
fn engine_ok(timeline: &Path, args: &[&str]) -> Value {
    let (out, report) = run_to_report(timeline, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = report.unwrap_or_else(|| panic!("engine run {args:?}: no report: {stderr}"));
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    let all_failed = count(&report["totalRun"]) > 0
        && count(&report["totalRun"]) == count(&report["totalFailed"]);
    if all_failed {
        assert_eq!(out.status.code(), Some(1), "engine run {args:?}: {stderr}");
        assert!(
            stderr.contains("✗ error_rate>=100%"),
            "engine run {args:?}: {stderr}"
        );
    } else {
        assert!(out.status.success(), "engine run {args:?}: {stderr}");
    }
    assert_counts_add_up(&report);
    report
}

/// A timeline of `requests` GETs/LISTs etc. at `rate` per second.
fn paced_timeline(dir: &Path, requests: u64, rate: f64) -> PathBuf {
    let cfg = GenConfig {
        requests,
        rate: Some(rate),
        shape: RateShape::Constant,
        objects: 20,
        namespaces: 2,
        watches: Some(0),
        conns: 4,
        seed: 17,
        ..GenConfig::default()
    };
    generated_timeline(dir, "paced", &cfg, &[])
}

fn recorded(sim: &ApiSim) -> u64 {
    let order: Value = serde_json::from_str(&sim.admin_get("/apisim/order")).expect("order JSON");
    order["recorded"].as_u64().expect("recorded")
}

/// Waits (at most 30 s) until apisim has recorded at least `n` requests.
fn wait_recorded(sim: &ApiSim, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded(sim) < n {
        assert!(Instant::now() < deadline, "apisim never saw {n} requests");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn error_stats(report: &Value) -> Vec<(String, u64)> {
    report["errorStats"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn throttled_requests_are_failures_not_silent_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    // A 429 storm with and without Retry-After.
    for faults in [
        &["--throttle-fraction", "1", "--retry-after", "1"][..],
        &["--throttle-fraction", "1"][..],
    ] {
        let (report, order) = replay(&tl, faults, &[]);
        assert_eq!(
            error_stats(&report),
            vec![("http/429".to_string(), REQUESTS)]
        );
        assert_eq!(report["totalFailed"], REQUESTS);
        // kperf's client-go would retry each one up to 10 times (weakness 6): apisim saw each once.
        assert_eq!(order["recorded"], REQUESTS);
    }
}

#[test]
fn server_errors_are_classified_http_500() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, order) = replay(&tl, &["--error-fraction", "1"], &[]);
    assert_eq!(
        error_stats(&report),
        vec![("http/500".to_string(), REQUESTS)]
    );
    assert_eq!(order["recorded"], REQUESTS);
}

#[test]
fn connections_closed_after_each_response_are_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, order) = replay(&tl, &["--close-after", "1"], &[]);
    assert_eq!(report["totalFailed"], 0, "{}", report["errorStats"]);
    assert_eq!(order["recorded"], REQUESTS);
    let opened = report["kreplay"]["run"]["connectionsOpened"]
        .as_u64()
        .expect("connectionsOpened");
    assert!(opened >= REQUESTS, "one connection per response: {opened}");
}

#[test]
fn in_flight_limit_answers_429_beyond_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Everything due at once, each request held 20 ms: far more than 2 in flight.
    let tl = timeline(dir.path(), RateShape::AllAtZero);
    let (report, _) = replay(
        &tl,
        &["--max-in-flight", "2", "--latency", "*=20ms"],
        &["--conns", "16"],
    );
    let stats = error_stats(&report);
    // A throttled CREATE makes later reads of that object 404: the server's answer, not a fault.
    assert!(
        stats
            .iter()
            .all(|(k, _)| k == "http/429" || k == "http/404"),
        "only throttling and its consequences: {stats:?}"
    );
    let throttled: u64 = stats
        .iter()
        .filter(|(k, _)| k == "http/429")
        .map(|(_, n)| n)
        .sum();
    assert!(throttled > 0, "the limit was hit");
    let failed = report["totalFailed"].as_u64().expect("totalFailed");
    assert!(failed < REQUESTS, "requests under the limit succeeded");
    assert_eq!(failed, stats.iter().map(|(_, n)| n).sum::<u64>());
}

#[test]
fn stalled_requests_time_out_and_the_run_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let (report, _) = replay(&tl, &["--stall-fraction", "1"], &["--timeout", "300ms"]);
    assert_eq!(report["totalFailed"], REQUESTS);
    let stats = error_stats(&report);
    assert!(
        stats.iter().all(|(k, _)| k.starts_with("connection/")),
        "timeouts are connection failures: {stats:?}"
    );
}

#[test]
fn a_server_down_at_the_start_stops_the_preflight_or_fails_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let url = format!("http://127.0.0.1:{}", free_port());
    let (out, report) = run_to_report(&tl, &["--server", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("preflight"), "{stderr}");
    assert!(report.is_none(), "no report of a run that never started");

    let report = engine_ok(
        &tl,
        &["--server", &url, "--no-preflight", "--timeout", "2s"],
    );
    assert_eq!(report["totalFailed"], REQUESTS, "{report}");
    assert!(
        error_stats(&report)
            .iter()
            .all(|(k, _)| k.starts_with("connection/")),
        "{report}"
    );
}

#[test]
fn a_server_killed_and_restarted_on_its_port_mid_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = paced_timeline(dir.path(), 150, 50.0);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let sim = ApiSim::start_on(&listen, &["--plain", "--no-auth"]);
    let url = sim.url.clone();
    let report_path = dir.path().join("report.json");
    let child = spawn_engine_run(&tl, &["--server", &url, "--timeout", "2s"], &report_path);
    wait_recorded(&sim, 20);
    drop(sim);
    let restarted = ApiSim::start_on(&listen, &["--plain", "--no-auth"]);
    let out = wait_bounded(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&report_path);
    assert_counts_add_up(&report);
    assert_eq!(report["totalRun"], 150, "{report}");
    assert!(
        recorded(&restarted) > 0,
        "the run went on against the restarted server"
    );
}

#[test]
fn sigint_and_sigterm_mid_run_write_the_report_of_what_ran() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = paced_timeline(dir.path(), 300, 50.0);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let sim = ApiSim::start(&["--plain", "--no-auth"]);
        let report_path = dir.path().join(format!("report-{signal}.json"));
        let child = spawn_engine_run(&tl, &["--server", &sim.url], &report_path);
        wait_recorded(&sim, 10);
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = wait_bounded(child, Duration::from_secs(60));
        assert_eq!(
            out.status.code(),
            Some(130),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report = read_report(&report_path);
        assert_counts_add_up(&report);
        assert_eq!(report["kreplay"]["run"]["interrupted"], true);
        let unsent = report["kreplay"]["run"]["unsentOnStop"]
            .as_u64()
            .expect("unsent");
        assert!(unsent > 0, "stopped before the end: {report}");
    }
}

#[test]
fn goaway_every_few_streams_ends_with_counts_that_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let sim = ApiSim::start(&["--goaway-after", "5"]);
    let kubeconfig = sim.kubeconfig.to_str().expect("utf-8").to_string();
    let report = engine_ok(&tl, &["--kubeconfig", &kubeconfig]);
    assert_eq!(report["totalRun"], REQUESTS, "{report}");
}

#[test]
fn tls_with_a_wrong_ca_is_stopped_by_the_preflight_or_fails_every_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = timeline(dir.path(), RateShape::Constant);
    let sim = ApiSim::start(&[]);
    let other = ApiSim::start(&[]);
    // The other apisim's kubeconfig (its own CA) pointed at the first one.
    let text = std::fs::read_to_string(&other.kubeconfig).expect("kubeconfig");
    let wrong = text.replace(&other.url, &sim.url);
    assert_ne!(wrong, text);
    let kubeconfig = dir.path().join("wrong-ca");
    std::fs::write(&kubeconfig, wrong).expect("write");
    let kc = kubeconfig.to_str().expect("utf-8");
    let (out, report) = run_to_report(&tl, &["--kubeconfig", kc]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("preflight"), "{stderr}");
    assert!(report.is_none());
    assert_eq!(recorded(&sim), 0, "nothing was sent");

    let report = engine_ok(&tl, &["--kubeconfig", kc, "--no-preflight"]);
    assert_eq!(report["totalFailed"], REQUESTS, "{report}");
    assert_eq!(recorded(&sim), 0, "nothing reached the server");
}

#[test]
fn a_token_file_that_disappears_mid_run_keeps_the_last_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = paced_timeline(dir.path(), 150, 50.0);
    let sim = ApiSim::start(&["--plain", "--token", "file-t0ken"]);
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "file-t0ken\n").expect("write token");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user:\n    tokenFile: {}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n\
             current-context: x\n",
            sim.url,
            token_file.display()
        ),
    )
    .expect("write kubeconfig");
    let report_path = dir.path().join("report.json");
    let kc = kubeconfig.to_str().expect("utf-8");
    let child = spawn_engine_run(&tl, &["--kubeconfig", kc], &report_path);
    wait_recorded(&sim, 20);
    std::fs::remove_file(&token_file).expect("remove the token file");
    let out = wait_bounded(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_report(&report_path);
    assert_counts_add_up(&report);
    assert_eq!(report["totalRun"], 150, "{report}");
    assert_eq!(report["totalFailed"], 0, "{}", report["errorStats"]);
}

/// How a purpose-built server misbehaves after reading a request head.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Writes these bytes, then closes.
    Answer(&'static [u8]),
    /// Writes a head of more than 1 MiB of headers.
    OversizedHead,
    /// Writes a chunked body that never ends (until the client goes away, at most 30 s).
    EndlessBody,
}

/// A server on 127.0.0.1 that answers every request with `how`; returns its URL.
fn misbehaving_server(how: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || serve(conn, how));
        }
    });
    url
}

fn serve(mut conn: TcpStream, how: Misbehaviour) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65_536 {
        if conn.read(&mut byte).map_or(true, |n| n == 0) {
            return;
        }
        head.push(byte[0]);
    }
    match how {
        Misbehaviour::Answer(bytes) => {
            let _ = conn.write_all(bytes);
        }
        Misbehaviour::OversizedHead => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Filler: {}\r\n", "a".repeat(1000));
            for _ in 0..1100 {
                if conn.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
            let _ = conn.write_all(b"Content-Length: 0\r\n\r\n");
        }
        Misbehaviour::EndlessBody => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = format!("400\r\n{}\r\n", "b".repeat(1024));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if conn.write_all(chunk.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

#[test]
fn malformed_responses_fail_their_requests_and_the_run_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tl = paced_timeline(dir.path(), 20, 200.0);
    let cases: [(&str, Misbehaviour, u64); 6] = [
        (
            "bad status line",
            Misbehaviour::Answer(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
            20,
        ),
        ("oversized head", Misbehaviour::OversizedHead, 20),
        (
            "Content-Length larger than the body, then close",
            Misbehaviour::Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"short\":1}"),
            20,
        ),
        (
            "bad chunk size",
            Misbehaviour::Answer(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            ),
            20,
        ),
        ("endless body", Misbehaviour::EndlessBody, 20),
        (
            "1xx then 200",
            Misbehaviour::Answer(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            ),
            0,
        ),
    ];
    for (name, how, failures) in cases {
        let url = misbehaving_server(how);
        let started = Instant::now();
        let report = engine_ok(
            &tl,
            &["--server", &url, "--no-preflight", "--timeout", "1s"],
        );
        // Every request ends within its 1 s timeout, so the run ends long before the endless
        // body's 30 s: a run that lasts as long missed its timeouts (the tick that checks them
        // did not run while the core's loop waited in its ring).
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "{name}: the run took {took:?}"
        );
        assert_eq!(report["totalRun"], 20, "{name}: {report}");
        assert_eq!(
            report["totalFailed"], failures,
            "{name}: {}",
            report["errorStats"]
        );
    }
}
