//! Concurrency as kperf allows it: 40 GETs due at once against a server that takes 0.5 s,
//! with 2 runners × clientsPerRunner 20, all go out at once (kperf's 40 workers would send
//! them all) instead of waiting for a handful of connections. (The pods do not exist: the
//! answers are 404s, which changes nothing about when they go out.)

use std::process::Command;
use std::time::Duration;

use crate::util::{bin, preprocess, profile, run_bounded, spec, ApiSim};
use serde_json::Value;

/// Forty GETs at t=0; 2 runners × 1 connection × 20 clients.
fn forty_gets_at_once() -> String {
    let mut s = spec(2, 1);
    s.clients_per_runner = 20;
    profile()
        .each(0..40, |p, i| p.get(&format!("default/p{i}")).at_ms(0))
        .yaml(&s)
}

#[test]
fn forty_gets_due_at_once_all_leave_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("p.yaml");
    std::fs::write(&yaml, forty_gets_at_once()).unwrap();
    let timeline = dir.path().join("t.bin");
    preprocess(&yaml, &timeline, &[]);
    let sim = ApiSim::start(&["--plain", "--no-auth", "--latency", "GET=500ms"]);
    let report_path = dir.path().join("r.json");
    let o = run_bounded(
        Command::new(bin("engine"))
            .arg("run")
            .arg(&timeline)
            .args(["--server", &sim.url, "--quiet", "--cores", "1", "--result"])
            .arg(&report_path),
        Duration::from_secs(60),
    );
    // The pods do not exist: every GET is a 404 after its 500 ms, so the run exits 1 (every
    // request failed); what matters here is when each one left.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("✗ error_rate>=100%"), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let k = &report["kreplay"];
    assert_eq!(report["totalRun"].as_u64(), Some(40), "{report}");
    // Nobody waited for a connection: one that had would have waited for an answer, 0.5 s.
    // (The margin is the server's latency, not a timing goal: a loaded machine is slower
    // to connect 40 sockets but never that slow.)
    assert_eq!(k["sendLag"]["count"].as_u64(), Some(40), "{k}");
    let max_lag = k["sendLag"]["max"].as_f64().expect("sendLag.max");
    assert!(
        max_lag < 0.25,
        "a request waited {max_lag} s for a connection"
    );
    let in_flight = k["config"]["maxInFlight"].as_u64().expect("maxInFlight");
    assert!(
        in_flight >= 40,
        "kperf allows 2 × 20 in flight: {in_flight}"
    );
    let opened = k["run"]["connectionsOpened"].as_u64().expect("opened");
    assert!(
        opened >= 40,
        "HTTP/1.1 grew to one connection per request: {opened}"
    );
    // kperf's `duration` (Go text): the run ends with the first and only round of answers.
    let secs = go_duration_seconds(report["duration"].as_str().expect("duration"));
    assert!(secs < 1.3, "run took {secs} s");
}

/// Seconds of a Go duration text (`512.3ms`, `1.2s`, `1m2s`).
fn go_duration_seconds(text: &str) -> f64 {
    let mut total = 0.0;
    let mut num = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_digit() {
                break;
            }
            unit.push(n);
            chars.next();
        }
        let v: f64 = num.parse().expect("number");
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "µs" | "us" => 1e-6,
            "ns" => 1e-9,
            other => panic!("unit {other}"),
        };
    }
    total
}
