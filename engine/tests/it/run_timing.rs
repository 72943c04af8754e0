//! When requests leave: a request due while others wait on a slow server leaves at its
//! instant on every transport, and a socket the server does not read shows up as send lag
//! (the request could not be handed to the kernel), not as latency.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use crate::util::ApiSim;
use crate::util::*;
use preprocess::profile::ProfileRequest;

/// How long apisim takes to answer a LIST in the slow-server scenario (the plain HTTP/1.1
/// test server delays them as long).
const SLOW_LIST: &str = "LIST=1500ms";

/// Two slow LISTs at 0 ms, then GETs of other objects every 100 ms while they wait.
fn lists_then_gets() -> Vec<ProfileRequest> {
    profile()
        .list("slow1")
        .at_ms(0)
        .list("slow2")
        .each(1..=8, |p, i| p.get(&format!("ns/p{i}")).at_ms(100 * i))
        .build()
}

fn seconds_at(report: &serde_json::Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("report has no number at {pointer}"))
}

/// Runs the slow-server scenario against `sim` with `args` and checks that no GET waited
/// for the LISTs: the latest send is far below the LISTs' 1.5 s, and the timing section
/// (wake error, one core) is there.
fn gets_leave_on_time(transport: &str, http2: bool, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(1, 1);
    s.disable_http2 = !http2;
    let tl = write_timeline(dir.path(), &s, &lists_then_gets());
    let mut all = vec!["--cores", "1"];
    all.extend_from_slice(args);
    let run = run_engine(&tl, dir.path(), &all, &[]);
    let report = run
        .report
        .unwrap_or_else(|| panic!("{transport}: no report\n{}", run.stderr));
    assert_eq!(num(&report, "totalRun"), 10, "{transport}: {}", run.stderr);
    let lag_max = seconds_at(&report, "/kreplay/sendLag/max");
    assert!(
        lag_max < 0.5,
        "{transport}: a GET waited {lag_max} s behind the slow LISTs"
    );
    // Both LISTs were answered after apisim's delay: the GETs really were sent while
    // they waited.
    let list_p50 = seconds_at(&report, "/kreplay/verbs/LIST/p50");
    assert!(list_p50 >= 1.4, "{transport}: LIST took {list_p50} s");
    let wake = &report["kreplay"]["wakeError"];
    assert!(
        wake["count"].as_u64().unwrap_or(0) >= 1,
        "{transport}: {wake}"
    );
    let cores = report["kreplay"]["perCore"].as_array().cloned();
    assert_eq!(cores.map(|c| c.len()), Some(1), "{transport}");
}

#[test]
fn a_request_due_while_others_wait_on_a_slow_server_leaves_on_time_over_plain_http1() {
    let server = TestServer::start(Behavior {
        delay: Duration::from_millis(1500),
        delay_only: Some("slow".to_string()),
        ..Behavior::default()
    });
    gets_leave_on_time("HTTP/1.1", false, &["--server", &server.url()]);
}

#[test]
fn a_request_due_while_others_wait_on_a_slow_server_leaves_on_time_over_tls_http1() {
    let sim = ApiSim::start(&["--latency", SLOW_LIST]);
    let kubeconfig = sim.kubeconfig.to_str().unwrap();
    gets_leave_on_time(
        "HTTP/1.1 + TLS",
        false,
        &["--kubeconfig", kubeconfig, "--http1"],
    );
}

#[test]
fn a_request_due_while_others_wait_on_a_slow_server_leaves_on_time_over_http2() {
    let sim = ApiSim::start(&["--latency", SLOW_LIST]);
    let kubeconfig = sim.kubeconfig.to_str().unwrap();
    gets_leave_on_time("HTTP/2 + TLS", true, &["--kubeconfig", kubeconfig]);
}

/// A server that reads nothing for `stall`, then answers every request with 200 `{}`.
fn start_late_reader(stall: Duration) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        std::thread::sleep(stall);
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line
                    .to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
                {
                    length = v.parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let answer =
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}";
            if writer.write_all(answer).is_err() {
                return;
            }
        }
    });
    (url, server)
}

#[test]
fn a_socket_the_server_does_not_read_shows_as_send_lag_not_latency() {
    let (url, server) = start_late_reader(Duration::from_millis(1500));
    let dir = tempfile::tempdir().unwrap();
    // A body far larger than the socket buffers, then a GET due 100 ms later on the same
    // (only) connection: it cannot be handed to the kernel before the server reads.
    let body = format!("{{\"data\":\"{}\"}}", "x".repeat(32 << 20));
    let tl = profile()
        .create("ns/big")
        .path("/api/v1/namespaces/ns/configmaps")
        .body(&body)
        .at_ms(0)
        .get("ns/small")
        .path("/api/v1/namespaces/ns/configmaps/small")
        .at_ms(100)
        .timeline(dir.path(), &spec(1, 1));
    let run = run_on_one_core(&tl, dir.path(), &url, &["--conns", "1", "--max-conns", "1"]);
    let report = run
        .report
        .unwrap_or_else(|| panic!("no report\n{}", run.stderr));
    server.join().unwrap();
    assert_eq!(num(&report, "totalRun"), 2, "{}", run.stderr);
    assert_eq!(num(&report, "totalFailed"), 0, "{}", run.stderr);
    // The GET left once the POST's body was through: well over a second late...
    let lag_max = seconds_at(&report, "/kreplay/sendLag/max");
    assert!(lag_max >= 1.0, "send lag max {lag_max} s");
    // ...and its own latency, from its first byte, is short: the wait is not hidden in it.
    let get_max = seconds_at(&report, "/kreplay/verbs/GET/max");
    assert!(get_max < 0.5, "GET latency {get_max} s");
    // The POST's first byte left at its instant: its lag is the median's (one of two).
    let lag_p50 = seconds_at(&report, "/kreplay/sendLag/p50");
    assert!(lag_p50 < 0.5, "send lag p50 {lag_p50} s");
}

#[test]
fn a_connection_the_server_does_not_read_yet_shows_as_send_lag_not_latency_over_http2() {
    // apisim reads nothing from a new connection for 1.5 s after its TLS handshake: the
    // HTTP/2 connection cannot be set up (no SETTINGS, no PING answer), so the CREATEs due
    // meanwhile wait in the client and leave once it is ready. The wait is their send lag;
    // their latency, from their first byte, is the server's answer alone.
    let sim = ApiSim::start(&["--read-delay", "1500ms"]);
    let dir = tempfile::tempdir().unwrap();
    let tl = profile()
        .each(0..5, |p, i| p.create_pod(&format!("ns/p{i}")).at_ms(i * 10))
        .timeline(dir.path(), &h2_spec(1, 1));
    let run = run_on_apisim(&sim, &tl, dir.path(), &["--conns", "1"]);
    let report = run
        .report
        .unwrap_or_else(|| panic!("no report\n{}", run.stderr));
    assert_eq!(num(&report, "totalRun"), 5, "{}", run.stderr);
    assert_eq!(num(&report, "totalFailed"), 0, "{}", report["errorStats"]);
    // Every one waited, most over a second.
    let late = report["kreplay"]["sendLag"]["lateOver10ms"].as_u64();
    assert_eq!(late, Some(5), "{}", report["kreplay"]["sendLag"]);
    let lag_p50 = seconds_at(&report, "/kreplay/sendLag/p50");
    assert!(lag_p50 >= 1.0, "send lag p50 {lag_p50} s");
    let create_max = seconds_at(&report, "/kreplay/verbs/CREATE/max");
    assert!(create_max < 0.5, "CREATE latency {create_max} s");
}
