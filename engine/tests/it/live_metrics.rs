//! `--metrics-listen`: scraped during a run and parsed by Python's `prometheus_client`
//! OpenMetrics parser (a real parser, installed by scripts/test.sh).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;
use serde_json::Value;

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
"#;

fn parse(text: &str) -> Value {
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample(families: &Value, family: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"]
        .as_array()?
        .iter()
        .find_map(|s| {
            let ok = s[0] == name && labels.iter().all(|(k, v)| s[1][k] == *v);
            if ok {
                s[2].as_f64()
            } else {
                None
            }
        })
}

/// Scrapes `port` every 100 ms (for at most 30 s) until the `core` entry's sent counter is at
/// least `sent`; the exposition and its parse then.
fn scrape_until_sent(port: u16, core: &str, sent: f64) -> Option<(String, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(text) = scrape(port) {
            let f = parse(&text);
            if sample(
                &f,
                "kreplay_requests_sent",
                "kreplay_requests_sent_total",
                &[("core", core)],
            )
            .is_some_and(|v| v >= sent)
            {
                return Some((text, f));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Runs the engine on `tl` against `server` on one core with `--metrics-listen` and `extra`
/// flags, scraping until `core` reports `at_least` sent (see [`scrape_until_sent`]); the run
/// must succeed.
fn run_scraping(
    tl: &Path,
    dir: &Path,
    server: &str,
    extra: &[&str],
    core: &str,
    at_least: f64,
) -> Option<(String, Value)> {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--server",
        server,
        "--cores",
        "1",
        "--metrics-listen",
        &listen,
    ];
    args.extend_from_slice(extra);
    let child = spawn_engine(tl, dir, &args, &[]);
    let seen = scrape_until_sent(port, core, at_least);
    let (status, stderr) = wait_engine(child, Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    seen
}

#[test]
fn exposition_during_a_run_parses_with_a_real_parser() {
    let server = TestServer::start(Behavior::default());
    let dir = tempfile::tempdir().unwrap();
    // 4 s at 250/s, GETs and LISTs.
    let reqs = profile()
        .each(0..1000i64, |p, i| {
            if i % 4 == 0 {
                p.list("ns").at_ms(i * 4)
            } else {
                p.get("ns/p").at_ms(i * 4)
            }
        })
        .build();
    let tl = write_timeline(dir.path(), &spec(1, 2), &reqs);
    // Mid-run: once core 0 has sent 100.
    let seen = run_scraping(&tl, dir.path(), &server.url(), &[], "0", 100.0);
    let (text, f) = seen.expect("a scrape during the run showed requests sent");
    assert!(text.ends_with("# EOF\n"), "{text}");
    for (family, kind) in [
        ("kreplay_requests_sent", "counter"),
        ("kreplay_requests_done", "counter"),
        ("kreplay_requests_failed", "counter"),
        ("kreplay_verb_requests_done", "counter"),
        ("kreplay_latency_seconds", "histogram"),
        ("kreplay_send_lag_seconds", "histogram"),
        ("kreplay_in_flight", "gauge"),
        ("kreplay_connections", "gauge"),
    ] {
        assert_eq!(f[family]["type"], kind, "{family}: {text}");
    }
    let sent = sample(
        &f,
        "kreplay_requests_sent",
        "kreplay_requests_sent_total",
        &[("core", "0")],
    )
    .unwrap();
    assert!(sent < 1000.0, "scraped mid-run: {sent} of 1000 sent");
    let gets = sample(
        &f,
        "kreplay_latency_seconds",
        "kreplay_latency_seconds_count",
        &[("core", "0"), ("verb", "GET")],
    )
    .unwrap();
    assert!(gets > 0.0, "GET latencies observed");
    let inf = sample(
        &f,
        "kreplay_latency_seconds",
        "kreplay_latency_seconds_bucket",
        &[("core", "0"), ("verb", "GET"), ("le", "+Inf")],
    )
    .unwrap();
    assert_eq!(inf, gets, "the +Inf bucket holds every observation");
    let lag = sample(
        &f,
        "kreplay_send_lag_seconds",
        "kreplay_send_lag_seconds_count",
        &[("core", "0")],
    )
    .unwrap();
    assert!(lag > 0.0);
    assert!(
        sample(
            &f,
            "kreplay_connections",
            "kreplay_connections",
            &[("core", "0")]
        )
        .unwrap()
            >= 1.0
    );
}

#[test]
fn the_watch_lane_has_its_own_entry_during_a_run() {
    // Each WATCH gets one event, then its stream stays open until the replay ends.
    let server = TestServer::start(Behavior {
        watch_events: 1,
        ..Behavior::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // 20 WATCHes over the first 2 s (each with a selector of its own), GETs for 4 s.
    let mut reqs = profile()
        .each(0..20i64, |p, i| {
            p.watch("ns").selector(&format!("app=w{i}")).at_ms(i * 100)
        })
        .each(0..400i64, |p, i| p.get("ns/p").at_ms(i * 10))
        .build();
    reqs.sort_by_key(|r| r.timestamp_ms);
    let tl = write_timeline(dir.path(), &spec(1, 2), &reqs);
    let lane = [("core", "watch-lane")];
    // Mid-run: once the lane has published a WATCH sent.
    let seen = run_scraping(
        &tl,
        dir.path(),
        &server.url(),
        &["--watch-executor", "separate"],
        "watch-lane",
        1.0,
    )
    .map(|(_, f)| f);
    let f = seen.expect("a scrape during the run showed the lane's WATCHes sent");
    let lane_sent = sample(
        &f,
        "kreplay_requests_sent",
        "kreplay_requests_sent_total",
        &lane,
    )
    .expect("the lane's sent counter");
    assert!(
        lane_sent <= 20.0,
        "the lane sends only the 20 WATCHes: {lane_sent}"
    );
    let core_sent = sample(
        &f,
        "kreplay_requests_sent",
        "kreplay_requests_sent_total",
        &[("core", "0")],
    )
    .expect("core 0's sent counter");
    assert!(
        core_sent <= 400.0,
        "core 0 sends only the 400 GETs: {core_sent}"
    );
    let lane_watches = sample(
        &f,
        "kreplay_verb_requests_done",
        "kreplay_verb_requests_done_total",
        &[("core", "watch-lane"), ("verb", "GET")],
    )
    .unwrap_or(0.0);
    assert_eq!(lane_watches, 0.0, "no GET is counted on the lane");
}
