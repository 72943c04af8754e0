//! Measurement, not a check: what opening a large timeline and checking it for a replay cost.
//! `KREPLAY_OPEN_COST_REQUESTS=10000000 cargo test --release -p preprocess --test
//! timeline_open_cost -- --ignored --nocapture` (writes a ~1.5 GB file in $TMPDIR).

use std::time::{Duration, Instant};

use preprocess::profile::{ContentType, ProfileRequest, Spec, Verb};
use preprocess::request_target::PathMode;
use preprocess::timeline::{Timeline, TimelineWriter, WriterOptions};

fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn open_and_replay_check_cost() {
    let n: u64 = std::env::var("KREPLAY_OPEN_COST_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    let mut w = TimelineWriter::create(&path, WriterOptions::default()).expect("writer");
    let verbs = [Verb::Get, Verb::Patch, Verb::List, Verb::Create];
    let started = Instant::now();
    for i in 0..n {
        let verb = verbs[(i % 4) as usize];
        let name = match verb {
            Verb::List | Verb::Create => String::new(),
            _ => format!("pod-{}", i % 100_000),
        };
        let req = ProfileRequest {
            timestamp_ms: (i / 10) as i64,
            verb,
            namespace: format!("ns-{}", i % 10),
            resource_kind: "Pod".into(),
            api_path: format!("/api/v1/namespaces/ns-{}/pods/{name}", i % 10),
            name,
            body: if verb == Verb::Patch {
                format!("{{\"metadata\":{{\"labels\":{{\"v\":\"{}\"}}}}}}", i % 1000)
            } else {
                String::new()
            },
            label_selector: String::new(),
        };
        w.push(i, &req, PathMode::Recorded).expect("push");
    }
    let spec = Spec {
        runner_count: 4,
        conns_per_runner: 2,
        clients_per_runner: 0,
        content_type: ContentType::Json,
        disable_http2: false,
    };
    w.finish(&spec, "open cost").expect("finish");
    let bytes = std::fs::metadata(&path).expect("size").len();
    eprintln!(
        "{n} requests, {:.2} GB, written in {:.1} s",
        bytes as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );
    let open = best_of(20, || {
        Timeline::open(&path).expect("open");
    });
    let t = Timeline::open(&path).expect("open");
    let check = best_of(3, || t.verify_for_replay().expect("replay check"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "open (best of 20): {:.3} ms; verify_for_replay (best of 3, {threads} threads, page cache warm): {:.0} ms = {:.1} ns per request",
        open.as_secs_f64() * 1e3,
        check.as_secs_f64() * 1e3,
        check.as_secs_f64() * 1e9 / n as f64
    );
}
